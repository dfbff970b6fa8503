"""Your own data: evaluation sets from files, the loader on real-world files (xlsx, ``;``, an
unclosed quote, the same text labelled twice), the floor of every set and the run's data card."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from xling import data, metrics, paths

TRAIN = """post_id,text,lang,label,split
t1,Welcome the refugees who arrive,en,pro-immigration,train
t2,Close every border now,en,anti-immigration,train
t3,Parliament debates the asylum law,en,neutral,train
t4,Great match last night,en,unrelated,train
t5,Refugees enrich our towns,en,pro-immigration,test
t6,Lovely weather today,en,unrelated,test
"""

# an evaluation file: three Spanish posts, and one English post the training set holds verbatim
EVAL = """text,lang,label
Los refugiados son bienvenidos,es,pro-immigration
Cerrad las fronteras ya,es,anti-immigration
Hace buen tiempo hoy,es,unrelated
Close every border now,en,anti-immigration
"""


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def posts(tmp_path):
    return data.load_user_posts(_write(tmp_path / "train.csv", TRAIN))


def test_an_eval_file_becomes_its_own_evaluation_set_never_trained_on(tmp_path, posts):
    path = _write(tmp_path / "speeches.csv", EVAL)
    out = data.load_eval_files({"speeches": path}, posts)
    mine = out[out["evalset"] == "speeches"]
    # the 4 rows of EVAL, all split eval, numbered name-00001.., the source names the set
    assert len(mine) == 4 and set(mine["split"]) == {"eval"}
    assert list(mine["post_id"]) == [f"speeches-{i:05d}" for i in range(1, 5)]
    assert set(mine["source"]) == {"eval:speeches"}
    # the posts already there are unchanged
    pd.testing.assert_frame_equal(out.iloc[: len(posts)].reset_index(drop=True), posts)
    # no variant trains on them: the training posts of English are still t1-t4
    train = data.training_posts(out, ["en", "es"], "per_language")
    assert sorted(train["post_id"]) == ["t1", "t2", "t3", "t4"]
    # the split audit flags the English post that the training set holds (1 of the 4)
    audit = data.audit_splits(out, {"en": ["en"]}, ["per_language"])
    row = audit[audit["evalset"] == "speeches"].iloc[0]
    assert (row["n_eval"], row["n_seen_exact"]) == (4, 1)
    assert any("speeches" in line for line in data.describe_audit(audit))


def test_a_split_column_in_an_eval_file_is_ignored_with_a_warning(tmp_path, posts):
    text = "text,lang,label,split\nHola,es,unrelated,train\nAdiós,es,neutral,test\n"
    with pytest.warns(UserWarning, match="split column is ignored"):
        out = data.load_eval_files({"other": _write(tmp_path / "o.csv", text)}, posts)
    assert set(out.loc[out["evalset"] == "other", "split"]) == {"eval"}


@pytest.mark.parametrize(
    "name, message",
    [
        ("es", "3 to 40"),  # a language code names a language's own set
        ("multi", "not 'multi'"),
        ("My-Set", "lower-case"),
        ("en-extra", "lower-case"),
    ],
)
def test_bad_eval_set_names_are_refused(tmp_path, posts, name, message):
    path = _write(tmp_path / "e.csv", EVAL)
    with pytest.raises(data.PostsError, match=message) as err:
        data.load_eval_files({name: path}, posts)
    assert "eval_files" in str(err.value)


def test_an_eval_file_with_ids_already_used_is_refused_naming_both(tmp_path, posts):
    text = "post_id,text,lang,label\nt5,Otra cosa,es,neutral\n"
    with pytest.raises(data.PostsError, match="'t5' is used already") as err:
        data.load_eval_files({"clash": _write(tmp_path / "c.csv", text)}, posts)
    assert "c.csv" in str(err.value) and "train.csv" in str(err.value)


def test_bad_rows_of_an_eval_file_name_the_file_and_row(tmp_path, posts):
    text = "text,lang,label\nHola,es,unrelated\nAdiós,es,sideways\n"
    with pytest.raises(data.PostsError, match=r"bad\.csv, row 3, field 'label'"):
        data.load_eval_files({"bad_one": _write(tmp_path / "bad.csv", text)}, posts)


def test_an_xlsx_sheet_reads_like_the_csv(tmp_path):
    csv = _write(tmp_path / "posts.csv", TRAIN)
    pd.read_csv(csv, dtype=str).to_excel(tmp_path / "posts.xlsx", index=False)
    a = data.load_user_posts(csv)
    b = data.load_user_posts(tmp_path / "posts.xlsx", source="posts.csv")
    pd.testing.assert_frame_equal(a, b)
    # a bad cell names the sheet's row: row 4 is the third post (the header is row 1)
    frame = pd.read_csv(csv, dtype=str)
    frame.loc[2, "label"] = "sideways"
    frame.to_excel(tmp_path / "bad.xlsx", index=False)
    with pytest.raises(data.PostsError, match=r"bad\.xlsx, row 4, field 'label'"):
        data.load_user_posts(tmp_path / "bad.xlsx")


def test_an_xlsx_with_more_sheets_reads_the_first_and_says_so(tmp_path):
    with pd.ExcelWriter(tmp_path / "two.xlsx") as xl:
        pd.read_csv(pd.io.common.StringIO(TRAIN)).to_excel(xl, sheet_name="posts", index=False)
        pd.DataFrame({"note": ["x"]}).to_excel(xl, sheet_name="notes", index=False)
    with pytest.warns(UserWarning, match="first sheet 'posts'.*'notes'"):
        assert len(data.load_user_posts(tmp_path / "two.xlsx")) == 6


def test_not_a_workbook_is_refused_naming_the_file(tmp_path):
    _write(tmp_path / "fake.xlsx", "text,lang,label\n")
    with pytest.raises(data.PostsError, match=r"fake\.xlsx.*cannot read as an \.xlsx"):
        data.load_user_posts(tmp_path / "fake.xlsx")


def test_a_semicolon_separated_csv_is_recognised_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="splits on ';'"):
        got = data.load_user_posts(_write(tmp_path / "s.csv", TRAIN.replace(",", ";")))
    pd.testing.assert_frame_equal(
        got, data.load_user_posts(_write(tmp_path / "c.csv", TRAIN), source="s.csv")
    )


def test_an_unclosed_quote_is_refused_naming_its_line(tmp_path):
    # line 3 opens a quote that never closes: the rest of the file (over 131,072 characters)
    # becomes one field, which the csv module refuses; the error names line 3
    body = 'text,lang,label\nfine,en,unrelated\n"never closed,en,neutral\n' + "x" * 140_000 + "\n"
    with pytest.raises(data.PostsError, match=r"u\.csv, row 3: a field of more than 131,072"):
        data.load_user_posts(_write(tmp_path / "u.csv", body))


CONFLICT = """text,lang,label
Same words,en,unrelated
Other post,en,neutral
Same words ,en,neutral
Same words,es,pro-immigration
"""


def test_the_same_text_labelled_twice_is_refused_naming_rows_and_labels(tmp_path):
    # rows 2 and 4 hold "Same words" in English (trimmed), labelled unrelated and neutral; row 5
    # is the same words in Spanish, another post
    path = _write(tmp_path / "k.csv", CONFLICT)
    with pytest.raises(data.PostsError, match=r"k\.csv, row 4.*rows 2, 4.*'unrelated', 'neutral'"):
        data.load_user_posts(path)


def test_conflicting_labels_drop_or_keep_the_first(tmp_path):
    path = _write(tmp_path / "k.csv", CONFLICT)
    with pytest.warns(UserWarning, match="dropped every such row"):
        dropped = data.load_user_posts(path, conflicts="drop", test_size=0.5)
    # rows 2 and 4 go; "Other post" and the Spanish post stay
    assert sorted(dropped["text"]) == ["Other post", "Same words"]
    assert list(dropped["lang"][dropped["text"] == "Same words"]) == ["es"]
    with pytest.warns(UserWarning, match="kept the first row"):
        first = data.load_user_posts(path, conflicts="first", test_size=0.5)
    # row 4 goes: "Same words" in English keeps row 2's label
    en = first[(first["lang"] == "en") & (first["text"] == "Same words")]
    assert list(en["label"]) == ["unrelated"] and len(first) == 3
    with pytest.raises(ValueError, match="one of refuse, drop, first"):
        data.load_user_posts(path, conflicts="ignore")


def test_the_floor_is_the_commonest_labels_share():
    # set A: 3 unrelated of 4 -> floor 0.75 'unrelated'; set B: 1 neutral, 1 pro -> a tie at 0.5,
    # broken by name ('neutral' < 'pro-immigration')
    posts = pd.DataFrame(
        {
            "evalset": ["aaa"] * 4 + ["bbb"] * 2 + ["aaa"],
            "split": ["eval"] * 6 + ["train"],
            "label": ["unrelated"] * 3 + ["anti-immigration", "pro-immigration", "neutral", "pro"],
        }
    )
    floor = data.label_floor(posts).set_index("evalset")
    assert floor.loc["aaa", "floor"] == 0.75 and floor.loc["aaa", "floor_label"] == "unrelated"
    assert floor.loc["bbb", "floor"] == 0.5 and floor.loc["bbb", "floor_label"] == "neutral"
    assert floor.loc["aaa", "n"] == 4  # the train row is not an evaluation post


def _predictions(labels, predicted, evalset="speeches", split="eval", variant="en"):
    n = len(labels)
    return pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(n)],
            "lang": "es",
            "label": labels,
            "split": split,
            "evalset": evalset,
            "variant": variant,
            "backend": "llamacpp-q4_k_m+lora",
            "input": "original",
            "method": "score",
            "prediction": predicted,
            "raw_output": "",
        }
    )


def test_eval_file_metrics_read_each_variant_against_the_floor():
    # 20 posts: 15 unrelated, 5 anti. Variant "en" answers pro for everything: accuracy 0, far
    # below the floor 0.75 (15/20), recall 0 for both labels present, answers pro 100%.
    # Variant "multi" gets every post right: accuracy 1.0, above the floor.
    labels = ["unrelated"] * 15 + ["anti-immigration"] * 5
    preds = pd.concat(
        [
            _predictions(labels, ["pro-immigration"] * 20, variant="en"),
            _predictions(labels, labels, variant="multi"),
            _predictions(labels, labels, evalset="es", split="test", variant="en"),
        ]
    )
    table = metrics.eval_file_metrics(
        metrics.by_evalset(preds, n_boot=200), metrics.per_class(preds)
    ).set_index("variant")
    assert set(table["evalset"]) == {"speeches"}  # the test set is not an evaluation file
    en, multi = table.loc["en"], table.loc["multi"]
    assert en["floor"] == 0.75 and en["floor_label"] == "unrelated"
    assert en["accuracy"] == 0 and en["versus_floor"] == "below"
    assert en["answers_pro-immigration"] == 1.0 and en["answers_unrelated"] == 0
    assert en["recall_unrelated"] == 0 and en["recall_anti-immigration"] == 0
    assert np.isnan(en["recall_neutral"])  # no neutral post: recall undefined, not 0
    assert multi["accuracy"] == 1.0 and multi["versus_floor"] == "above"
    assert multi["recall_anti-immigration"] == 1.0 and multi["answers_unrelated"] == 0.75
    lines = metrics.describe_eval_files(table.reset_index())
    assert "en on speeches (20 posts): accuracy 0.000" in lines[0]
    assert "floor of 0.750 (always 'unrelated'): below" in lines[0]
    assert "answers 'pro-immigration' for 100% of the posts, never 'unrelated'" in lines[0]


def test_the_data_card_says_sources_counts_floors_duplicates_and_overlaps(tmp_path, posts):
    out = data.load_eval_files({"speeches": _write(tmp_path / "s.csv", EVAL)}, posts)
    audit = data.audit_splits(out, {"en": ["en"]}, ["per_language"])
    card = data.data_card(
        out,
        audit,
        run="mine",
        profile="demo",
        source="file (train.csv)",
        eval_files={"speeches": "s.csv"},
        notes=["normalized 2 labels"],
    )
    assert card.startswith("# Data card: run mine (profile demo)")
    # 10 posts: 4 train, 2 test, 4 eval -> "4 for training, 6 for evaluation only"
    assert "10 posts in 2 languages" in card and "4 for training, 6 for evaluation only" in card
    assert "- `speeches`: s.csv (4 posts)" in card and "- normalized 2 labels" in card
    # the floor of speeches: 2 anti of 4 (one Spanish, one English) -> 0.500
    assert "| speeches | 4 | anti-immigration | 0.500 |" in card
    # "Close every border now" twice in English (t2 and speeches-00004), same label, two splits
    assert (
        "1 texts occur more than once within a language (2 posts); 0 of them with different" in card
    )
    assert "| en | train | 1 | 1 | 1 | 1 | 4 |" in card  # counts: one of each label in en train
    assert "| en | per_language | speeches | 4 | 1 | 1 |" in card  # the audit's overlap


def test_data_card_is_in_the_contract():
    assert paths.CONTRACT["data_card.md"] == "00_data"


def test_no_warning_on_a_clean_file(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load_user_posts(_write(tmp_path / "c.csv", TRAIN))


def test_a_stratified_sample_keeps_each_labels_share():
    # 10 posts: 6 unrelated, 3 neutral, 1 anti. n = 5: exact quotas 3.0, 1.5, 0.5 -> floors
    # 3, 1, 0 and 1 post left over; the remainders tie at 0.5 (neutral, anti), label order
    # (neutral before anti) breaks it -> 3 unrelated, 2 neutral, 0 anti
    posts = pd.DataFrame(
        {"post_id": range(10), "label": ["unrelated"] * 6 + ["neutral"] * 3 + ["anti-immigration"]}
    )
    got = data.stratified_sample(posts, 5, seed=3)
    assert got["label"].value_counts().to_dict() == {"unrelated": 3, "neutral": 2}
    assert got.equals(data.stratified_sample(posts, 5, seed=3))  # the same for the same seed
    assert len(data.stratified_sample(posts, 50)) == 10  # fewer than asked: all of them


def test_the_authors_sample_is_one_eval_set_per_language_capped(paper_data):
    sample = data.load_paper_sample(paper_data, 30, seed=1)
    # test posts only: en 375 and es 250 give 30 each, the ten other languages have 25 each
    # (FACTS.md), so 30 + 30 + 10 * 25 = 310; Korean has extra posts only, so none
    sizes = sample.groupby("lang").size()
    assert sizes["en"] == 30 and sizes["es"] == 30 and len(sample) == 310
    assert "ko" not in sizes and set(sample["split"]) == {"eval"}
    assert set(sample["evalset"]) == {data.AUTHORS_SAMPLE}
    assert sample["post_id"].str.startswith("authors_test-").all()


def test_the_authors_sample_is_skipped_saying_why_without_their_data(tmp_path):
    posts, notes = data.load_run_posts(
        "demo", paper_sample=30, paper_data=str(tmp_path / "nowhere")
    )
    assert "authors_test" not in set(posts["evalset"])
    assert any("authors_test skipped: the authors' data is not at" in n for n in notes)
