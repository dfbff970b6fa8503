"""xling.data: the posts table from users' files, with every validation error."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from conftest import write
from xling import data
from xling.analysis import metrics

GOOD = (
    "post_id,text,lang,label\n"
    "a1,Welcome to all newcomers,en,pro-immigration\n"
    "a2,Close the borders now,en,anti-immigration\n"
    "a3,Visa office opens at 9,en,neutral\n"
    "a4,Great match tonight,en,unrelated\n"
)


def test_user_csv_loads_with_defaults(tmp_path):
    posts = data.load_user_posts(write(tmp_path / "p.csv", GOOD), seed=1)
    assert list(posts.columns) == list(data.POSTS_COLUMNS)
    assert list(posts["post_id"]) == ["a1", "a2", "a3", "a4"]
    assert set(posts["split"]) <= {"train", "test"}
    assert (posts["evalset"] == "en").all()
    assert (posts["source"] == "p.csv").all()


@pytest.mark.parametrize(
    ("content", "row", "field", "message"),
    [
        ("post_id,text,lang\na,hi,en\n", None, "label", "missing column"),
        ("text,lang,label\nhello,en,pro\n", 2, "label", "unknown label 'pro'"),
        ("text,lang,label\nok,en,neutral\n   ,en,neutral\n", 3, "text", "empty text"),
        (
            "text,lang,label\nok,en,neutral\nhola,sp,neutral\n",
            3,
            "lang",
            "unknown language code 'sp'",
        ),
        (
            "post_id,text,lang,label\nx,a,en,neutral\ny,b,en,neutral\nx,c,en,neutral\n",
            4,
            "post_id",
            "duplicate post_id 'x' (first at row 2)",
        ),
        ("text,lang,label,split\nok,en,neutral,validation\n", 2, "split", "unknown split"),
        ("text,lang,label,translation_ok\nok,en,neutral,2\n", 2, "translation_ok", "0, 1 or empty"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, content, row, field, message):
    f = write(tmp_path / "bad.csv", content)
    with pytest.raises(data.PostsError) as err:
        data.load_user_posts(f)
    e = err.value
    assert (e.file, e.row, e.field) == (str(f), row, field)
    assert message in str(e) and str(f) in str(e)


def test_row_numbers_count_lines_of_multiline_quoted_fields(tmp_path):
    # row 2 spans lines 2-3, so the bad label of the next record sits on line 4
    content = 'text,lang,label\n"two\nlines",en,neutral\nx,en,bogus\n'
    with pytest.raises(data.PostsError) as err:
        data.load_user_posts(write(tmp_path / "m.csv", content))
    assert err.value.row == 4


def test_undecodable_bytes_name_the_line(tmp_path):
    f = write(
        tmp_path / "latin.csv",
        b"text,lang,label\nok,en,neutral\n" + b"caf\xe9,fr,neutral\n",
    )
    with pytest.raises(data.PostsError, match=r"row 3: bytes that are not UTF-8"):
        data.load_user_posts(f)


def test_labels_in_other_case_or_spacing_are_normalized_with_a_warning(tmp_path):
    f = write(
        tmp_path / "p.csv",
        "text,lang,label\na,en, Neutral \nb,en,Pro Immigration\nc,en,unrelated\n",
    )
    with pytest.warns(UserWarning, match=r"normalized 2 labels") as rec:
        posts = data.load_user_posts(f)
    assert list(posts["label"]) == ["neutral", "pro-immigration", "unrelated"]
    assert "p.csv" in str(rec[0].message)


def test_authors_indonesian_code_is_mapped(tmp_path):
    posts = data.load_user_posts(write(tmp_path / "p.csv", "text,lang,label\nhalo,in,unrelated\n"))
    assert posts["lang"].tolist() == ["id"]


def test_tsv_and_parquet(tmp_path):
    tsv = write(tmp_path / "p.tsv", GOOD.replace(",", "\t"))
    assert len(data.load_user_posts(tsv)) == 4
    pq = tmp_path / "p.parquet"
    pd.read_csv(tmp_path / "p.tsv", sep="\t").to_parquet(pq)
    assert data.load_user_posts(pq)["label"].tolist() == data.load_user_posts(tsv)["label"].tolist()
    with pytest.raises(data.PostsError, match="unsupported file type"):
        data.load_user_posts(write(tmp_path / "p.json", "{}"))


def test_missing_file(tmp_path):
    with pytest.raises(data.PostsError, match="file not found"):
        data.load_user_posts(tmp_path / "nope.csv")


def test_stratified_split_is_repeatable_and_stratified():
    # 8 posts per label in one language -> round(8 * 0.25) = 2 test posts per label, 8 in all
    posts = pd.DataFrame({"lang": "en", "label": [lab for lab in data.LABELS for _ in range(8)]})
    a = data.stratified_split(posts, 0.25, seed=5)
    b = data.stratified_split(posts, 0.25, seed=5)
    c = data.stratified_split(posts, 0.25, seed=6)
    assert a.equals(b) and not a.equals(c)
    assert (a == "test").sum() == 8
    assert posts[a == "test"].groupby("label").size().tolist() == [2, 2, 2, 2]


def test_extra_split_gets_an_extra_evalset(tmp_path):
    f = write(
        tmp_path / "p.csv", "text,lang,label,split\n안녕,ko,unrelated,extra\nhi,en,neutral,train\n"
    )
    assert data.load_user_posts(f)["evalset"].tolist() == ["ko-extra", "en"]


def test_write_and_read_round_trip(tmp_path):
    posts = data.load_user_posts(
        write(tmp_path / "p.csv", GOOD + 'a5,"quote, comma ""x""",en,neutral\n')
    )
    out = data.write_posts(posts, tmp_path / "out" / "posts.csv")
    back = data.read_posts(out)
    assert data.posts_fingerprint(back) == data.posts_fingerprint(posts)
    assert not (tmp_path / "out" / "posts.csv.tmp").exists()


def test_fingerprint_changes_with_content_not_order(tmp_path):
    posts = data.load_user_posts(write(tmp_path / "p.csv", GOOD))
    fp = data.posts_fingerprint(posts)
    assert data.posts_fingerprint(posts.iloc[::-1]) == fp
    changed = posts.copy()
    changed.loc[0, "text"] = "Welcome to all newcomers!"
    assert data.posts_fingerprint(changed) != fp


def test_subsample_keeps_every_label_and_caps_groups():
    posts = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(40)],
            "evalset": "en",
            "split": ["train"] * 30 + ["test"] * 10,
            "label": [data.LABELS[i % 4] if i < 30 else "unrelated" for i in range(40)],
        }
    )
    small = data.subsample(posts, 4, seed=0)
    assert small.groupby("split").size().to_dict() == {"test": 4, "train": 4}
    assert set(small[small["split"] == "train"]["label"]) == set(data.LABELS)


def test_counts_and_unrelated_share(tmp_path):
    split = "text,lang,label,split\n" + "".join(
        f"t{i},en,{lab},{s}\n"
        for i, (lab, s) in enumerate(
            [
                ("unrelated", "test"),
                ("neutral", "test"),
                ("neutral", "test"),
                ("neutral", "test"),
                ("unrelated", "train"),
                ("unrelated", "train"),
            ]
        )
    )
    posts = data.load_user_posts(write(tmp_path / "p.csv", split))
    counts = data.count_posts(posts)
    assert counts["total"].sum() == 6
    assert counts.loc[("en", "train"), "unrelated"] == 2
    share = data.unrelated_share(posts)
    assert share.loc["en", "share_unrelated"] == 0.25  # test posts only: 1 of 4 is unrelated


def test_compare_sizes_flags_differences():
    posts = pd.DataFrame({"evalset": ["en", "en", "de"], "split": ["train", "train", "test"]})
    table = data.compare_sizes(posts, {("en", "train"): 2, ("de", "test"): 2})
    assert table.set_index("evalset")["ok"].to_dict() == {"de": False, "en": True}


def test_load_posts_dispatch_errors():
    with pytest.raises(ValueError, match="unknown posts source"):
        data.load_posts("nope")
    with pytest.raises(data.PostsError, match="posts_path"):
        data.load_posts("file")


def test_no_warning_for_clean_labels(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load_user_posts(write(tmp_path / "p.csv", GOOD))


def _audit_posts() -> pd.DataFrame:
    """A small posts table with two planted overlaps: de-test-2 is de-train-1 with another link
    and mention (a near-copy), and es-test-1 is in the pooled training split (split_multi)."""
    rows = [
        (
            "de-train-1",
            "Die Grenze bleibt offen, sagt @amt https://t.co/aaa",
            "de",
            "train",
            "train",
        ),
        ("de-train-2", "Heute regnet es in Berlin schon wieder", "de", "train", "train"),
        ("de-test-1", "Neue Zahlen zu Asylanträgen im Oktober", "de", "test", "test"),
        (
            "de-test-2",
            "Die Grenze bleibt offen, sagt @behoerde https://t.co/bbb",
            "de",
            "test",
            "test",
        ),
        ("es-train-1", "Mañana juega el Betis en casa", "es", "train", "train"),
        ("es-test-1", "Los nuevos vecinos de Siria abren una panadería", "es", "test", "train"),
        ("es-test-2", "Otra vez sube el precio del alquiler en Madrid", "es", "test", "test"),
        ("ko-1", "오늘 날씨가 정말 좋네요", "ko", "extra", None),
    ]
    df = pd.DataFrame(rows, columns=["post_id", "text", "lang", "split", "split_multi"])
    df["label"] = "unrelated"
    df["evalset"] = [r[2] if r[3] != "extra" else "ko-extra" for r in rows]
    df["text_en"], df["translation_ok"], df["source"] = None, pd.NA, "test"
    return data.validate_posts(df, "planted.csv")


def test_split_audit_finds_exactly_the_planted_overlaps():
    posts = _audit_posts()
    variants = {"de": ["de"], "es": ["es"], "multi": ["de", "es"]}
    audit = data.audit_splits(posts, variants).set_index(["variant", "train_split", "evalset"])
    hits = audit[audit["n_seen_near"] > 0]
    assert set(hits.index) == {
        ("de", "per_language", "de"),
        ("de", "pooled", "de"),
        ("multi", "per_language", "de"),
        ("multi", "pooled", "de"),
        ("es", "pooled", "es"),
        ("multi", "pooled", "es"),
    }
    # de-test-2 equals de-train-1 once links and mentions are dropped: exact after normalizing
    assert audit.loc[("de", "per_language", "de"), "n_seen_exact"] == 1
    assert audit.loc[("es", "pooled", "es"), ["n_eval", "n_seen_exact"]].tolist() == [2, 1]
    seen = data.seen_in_training(posts, variants)
    assert set(seen.loc[seen["train_split"] == "pooled", "post_id"]) == {"de-test-2", "es-test-1"}
    assert data.describe_audit(audit.reset_index().query("variant == 'es'"))[0].startswith(
        "WARNING: es trained on the pooled split holds 1 of the 2 es"
    )


def test_split_multi_defaults_to_split_and_is_validated():
    posts = _audit_posts().drop(columns="split_multi")
    assert (data.validate_posts(posts, "x.csv")["split_multi"] == posts["split"]).all()
    bad = _audit_posts()
    bad.loc[2, "split_multi"] = "dev"
    with pytest.raises(data.PostsError, match="split_multi"):
        data.validate_posts(bad, "x.csv")


def test_seen_allowed_keeps_only_each_variants_splits_and_survives_no_overlap():
    posts = _audit_posts()
    variants = {"de": ["de"], "es": ["es"], "multi": ["de", "es"]}
    seen = data.seen_allowed(posts, variants, {"multi": ["per_language", "pooled"]})
    assert set(zip(seen["variant"], seen["post_id"], strict=True)) == {
        ("de", "de-test-2"),
        ("multi", "de-test-2"),
        ("multi", "es-test-1"),
    }
    assert list(seen.columns) == ["variant", "post_id", "evalset", "exact"]
    # no overlap at all (the demo corpus's case): an empty table that keeps its columns, which
    # metrics.accuracy_unseen reads (an empty list as a row mask once selected no columns)
    clean = posts[posts["post_id"] != "de-test-2"]
    none = data.seen_allowed(clean, {"de": ["de"]}, {})
    assert none.empty and list(none.columns) == ["variant", "post_id", "evalset", "exact"]
    preds = clean[clean["split"] == "test"].assign(
        variant="de", backend="b", method="score", input="original", prediction="unrelated"
    )
    assert metrics.accuracy_unseen(preds, none).empty


def test_form_gap_sets_this_corpus_beside_the_authors_tweets():
    from xling.data import summaries

    posts = pd.DataFrame(
        {
            "text": [
                "Nice weather in Leeds!",  # own, unrelated: nothing
                "The border queue was long https://t.co/x",  # own, neutral: link, topic word
                "@bob Grenze zu, Asyl stoppen #de",  # authors', anti (de): all four
                "@ann Flüchtlinge willkommen",  # authors', pro (de): mention, topic word
                "@cat Konzert heute",  # authors', unrelated (de): mention only
            ],
            "lang": ["en", "en", "de", "de", "de"],
            "evalset": ["en", "en", "authors_test", "authors_test", "authors_test"],
            "split": ["train", "test", "eval", "eval", "eval"],
            "label": ["unrelated", "neutral", "anti-immigration", "pro-immigration", "unrelated"],
        }
    )
    form = summaries.post_form(posts)
    assert form["topic_word"].tolist() == [False, True, True, True, False]
    assert form["mention"].tolist() == [False, False, True, True, True]
    assert form["link"].tolist() == [False, True, False, False, False]
    assert form["hashtag"].tolist() == [False, False, True, False, False]
    gap = summaries.form_gap(posts).set_index(["source", "label"])
    assert gap.loc[("this corpus", "neutral"), "chars"] == len(posts["text"][1])
    assert gap.loc[("authors_test", "unrelated"), "mention"] == 1.0
    assert gap.loc[("authors_test", "anti-immigration"), "topic_word"] == 1.0
    # labels without posts in a source have no row: own posts have no pro or anti
    assert ("this corpus", "pro-immigration") not in gap.index
    lines = summaries.describe_form_gap(summaries.form_gap(posts))
    # own posts: none of 2 has an @mention, all 3 of the authors' do; lengths 22 and 40 -> 31
    assert "posts with an @mention: 0% in this corpus, 100% in authors_test" in lines
    assert lines[0].startswith("mean length: 31 characters in this corpus")
    # topic words: neither unrelated post has one; every on-topic post has one
    assert lines[-1] == (
        "a topic word in unrelated posts: 0% in this corpus, 0% in authors_test "
        "(on-topic posts: 100% and 100%)"
    )
    # without the authors' tweets: nothing to compare
    assert summaries.form_gap(posts[posts["evalset"] == "en"]).empty
    assert summaries.describe_form_gap(pd.DataFrame()) == []
