"""The authors' released answers and metrics: import, mapping, and released-vs-recomputed."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from conftest import write
from xling import data
from xling.analysis import released
from xling.analysis.released import prediction_from_raw, raw_output_kind
from xling.data.validate import PostsError
from xling.schema import PREDICTION_COLUMNS

Q4, FULL = released.BACKEND_Q4, released.BACKEND_FULL


# --------------------------------------------------------------------------------------------
# Small hand-made inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1", "pro-immigration"),
        ("2", "anti-immigration"),
        ("3", "neutral"),
        ("4", "unrelated"),
        (" 4 ", "unrelated"),
        ("3.0", "neutral"),  # a spreadsheet's number
        ("unrelated", "unrelated"),
        ("Neutral", "neutral"),
        (" Pro Immigration ", "pro-immigration"),
        ("ANTI-IMMIGRATION", "anti-immigration"),
        ("failed", "failed"),
        ("", "failed"),
        (None, "failed"),
        (float("nan"), "failed"),
        ("5", "failed"),
        ("0", "failed"),
        ("12", "failed"),
        ("Answer = 2", "failed"),  # label_llama is already parsed; prose is not an answer
        ("immigration", "failed"),
    ],
)
def test_prediction_from_raw(raw, expected):
    assert prediction_from_raw(raw) == expected


def test_raw_output_kinds():
    kinds = [raw_output_kind(x) for x in ["neutral", "Neutral", "2", "failed", "", None, "x"]]
    assert kinds == ["label", "label-respelled", "number", "failed", "empty", "empty", "other"]
    table = pd.DataFrame({"raw_output": ["neutral", "neutral", "4", None]})
    counts = released.raw_output_kinds(table)
    assert counts.to_dict() == {
        "label": 2,
        "label-respelled": 0,
        "number": 1,
        "failed": 0,
        "empty": 1,
        "other": 0,
    }


def _posts(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    """A posts table from (post_id, text, lang, label, split) tuples."""
    df = pd.DataFrame(rows, columns=["post_id", "text", "lang", "label", "split"])
    df["evalset"] = df["lang"]
    df["text_en"] = None
    return df


HEADER = "message_id,label,catCode,plaintext,lang,label_llama,tweet_lang\n"


def test_import_tiny_folder(tmp_path):
    posts = _posts(
        [
            ("de-test-0001", "Hallo Welt", "de", "unrelated", "test"),
            ("de-test-0002", "Grenzen auf", "de", "pro-immigration", "test"),
            ("id-train-0001", "Halo dunia", "id", "neutral", "train"),
        ]
    )
    write(
        tmp_path / "test_dataset_raw/llama-32-3B-en-Q4_K_M_andreanasuto_mig-de-L3_test.csv",
        HEADER + "1.5E+18,unrelated,4,Hallo Welt,de,unrelated,de\n"
        "1.5E+18,pro-immigration,1,Grenzen auf,de,2,de\n",
    )
    # The pooled file puts the Indonesian post ('in') in its test split and a German one too.
    write(
        tmp_path / "extra/llama-32-3B-multi_andreanasuto_mig-multi-L3_test.csv",
        HEADER + "1,Neutral,3,Halo dunia,in,failed,in\n2,unrelated,4,Hallo Welt,de,junk,de\n",
    )
    got = released.load_released_predictions(tmp_path, posts)
    assert list(got.columns) == list(PREDICTION_COLUMNS)
    de = got[got["evalset"] == "de"]
    assert de["post_id"].tolist() == ["de-test-0001", "de-test-0002"]
    assert de["prediction"].tolist() == ["unrelated", "anti-immigration"]  # '2' via CAT_CODES
    assert set(de["backend"]) == {Q4} and set(de["input"]) == {"original"}
    pooled = got[got["evalset"] == "multi"]
    assert pooled["post_id"].tolist() == ["id-train-0001", "de-test-0001"]
    assert pooled["lang"].tolist() == ["id", "de"]
    assert set(pooled["split"]) == {"test"}  # the pooled file's own split
    assert pooled["label"].tolist() == ["neutral", "unrelated"]  # 'Neutral' normalized
    assert pooled["prediction"].tolist() == ["failed", "failed"]
    assert pooled["raw_output"].tolist() == ["failed", "junk"]
    assert set(pooled["backend"]) == {FULL} and set(pooled["variant"]) == {"multi"}


def test_unmatched_row_names_file_and_row(tmp_path):
    posts = _posts([("de-test-0001", "Hallo Welt", "de", "unrelated", "test")])
    name = "llama-32-3B-es_andreanasuto_mig-de-L3_test.csv"
    write(
        tmp_path / "test_dataset_raw" / name,
        HEADER + "1,unrelated,4,Hallo Welt,de,unrelated,de\n2,unrelated,4,Tschüss,de,4,de\n",
    )
    with pytest.raises(PostsError, match=rf"{name}, row 3, field 'plaintext'") as err:
        released.load_released_predictions(tmp_path, posts)
    assert err.value.row == 3 and err.value.field == "plaintext"


def test_gold_label_that_disagrees_with_the_post_is_refused(tmp_path):
    posts = _posts([("de-test-0001", "Hallo Welt", "de", "unrelated", "test")])
    write(
        tmp_path / "x/llama-32-3B-en_andreanasuto_mig-de-L3_test.csv",
        HEADER + "1,neutral,3,Hallo Welt,de,unrelated,de\n",
    )
    with pytest.raises(PostsError, match=r"row 2, field 'label'.*de-test-0001"):
        released.load_released_predictions(tmp_path, posts)


def test_metrics_tiny_folder(tmp_path):
    m = tmp_path / "test_dataset_raw/metrics"
    write(
        m / "accuracy_metrics_test.csv",
        "Model,Dataset,Accuracy,Size\n"
        "llama-32-3B-en-Q4_K_M,andreanasuto/mig-in-L3,0.5,4\n"
        "llama32-3B-mig-en-es-full-Q4_K_M,andreanasuto/mig-ko-L3-extra,0.25,4\n",
    )
    write(
        m / "f1_metrics_test.csv",
        "Model,Dataset,F1 Score,Size\n"
        "llama-32-3B-en-Q4_K_M,andreanasuto/mig-in-L3,0.4,4\n"
        "llama32-3B-mig-en-es-full-Q4_K_M,andreanasuto/mig-ko-L3-extra,0.2,4\n",
    )
    # The text file repeats one cell and adds one the CSVs lack (the unquantized multi model).
    write(
        m / "validation_metrics_test.txt",
        "Model: llama-32-3B-en-Q4_K_M | Dataset: andreanasuto/mig-in-L3\nAccuracy: 0.5000\n"
        "F1 Weighted Macro Score: 0.4000\n\n\n"
        "Model: llama-32-3B-multi | Dataset: andreanasuto/mig-multi-L3\nAccuracy: 0.7000\n"
        "F1 Weighted Macro Score: 0.6000\n",
    )
    got = released.load_released_metrics(tmp_path)
    assert list(got.columns) == list(released.RELEASED_METRIC_COLUMNS)
    rows = {(r.variant, r.backend, r.split, r.evalset): r for r in got.itertuples()}
    assert set(rows) == {
        ("en", Q4, "test", "id"),
        ("en-es-full", Q4, "test", "ko-extra"),
        ("multi", FULL, "test", "multi"),
    }
    assert rows[("en", Q4, "test", "id")].released_weighted_f1 == 0.4
    assert rows[("en", Q4, "test", "id")].released_n == 4
    txt_only = rows[("multi", FULL, "test", "multi")]
    assert txt_only.released_accuracy == 0.7 and pd.isna(txt_only.released_n)
    assert txt_only.source.startswith("test_dataset_raw/metrics/validation_metrics_test.txt:")


def test_metrics_bad_model_names_file_row_field(tmp_path):
    write(
        tmp_path / "a/metrics/accuracy_metrics_train.csv",
        "Model,Dataset,Accuracy,Size\nllama-32-3B-en,andreanasuto/mig-en-L3,0.5,4\n"
        "gpt-4o,andreanasuto/mig-en-L3,0.5,4\n",
    )
    with pytest.raises(PostsError, match=r"accuracy_metrics_train.csv, row 3, field 'Model'"):
        released.load_released_metrics(tmp_path)


def _table(gold, pred, written=None) -> pd.DataFrame:
    n = len(gold)
    df = pd.DataFrame(
        {
            "post_id": [f"de-test-{i:04d}" for i in range(1, n + 1)],
            "lang": "de",
            "label": gold,
            "split": "test",
            "evalset": "de",
            "variant": "en",
            "backend": Q4,
            "input": "original",
            "method": "generate",
            "prediction": pred,
            "raw_output": pred,
        }
    )
    if written is not None:
        df["label_as_written"] = written
    return df


def _cells(*values: tuple[float, float], n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "variant": "en",
                "backend": Q4,
                "split": "test",
                "evalset": "de",
                "released_accuracy": acc,
                "released_weighted_f1": f1,
                "released_n": n,
                "source": "hand-made",
            }
            for acc, f1 in values
        ]
    )


P, A, N, U = "pro-immigration", "anti-immigration", "neutral", "unrelated"


def test_released_vs_recomputed_hand_made():
    # gold  P P P A N U ; pred  P P A A U U  -> accuracy 4/6.
    # F1 per class: P 2*2/(4+0+1) = 0.8, A 2/(2+1) = 2/3, N 0, U 2/3.
    # weighted = (3*0.8 + 2/3 + 0 + 2/3) / 6 = 0.622222
    # macro = (0.8 + 2/3 + 0 + 2/3) / 4 = 0.533333
    # If post 5 (gold N) had been answered A instead of U: U -> 1.0, A -> 2/3, weighted 0.677778.
    preds = _table([P, P, P, A, N, U], [P, P, A, A, U, U])
    cells = _cells(
        (4 / 6, 0.6222222),
        (4 / 6, 0.5333333),
        (0.67, 0.62),
        (4 / 6, 0.6777778),
        (0.1, 0.1),
    )
    got = released.released_vs_recomputed(cells, preds)
    assert list(got.columns) == list(released.COMPARISON_COLUMNS)
    assert got["matches"].tolist() == [True, False, False, False, False]
    assert got["n"].tolist() == [6] * 5
    assert got["accuracy"].iloc[0] == pytest.approx(4 / 6)
    assert got["weighted_f1"].iloc[0] == pytest.approx(0.6222222, abs=1e-7)
    reasons = got["reason"].tolist()
    assert reasons[0] == ""
    assert reasons[1] == "matches when the released F1 is macro F1 (not weighted)"
    assert reasons[2] == "matches when our values are rounded to 2 places"
    assert reasons[3].startswith("matches if one answer differed from the released file")
    assert reasons[4] == "unexplained"


def test_released_vs_recomputed_respelled_gold_label():
    # gold as written: Neutral neutral unrelated unrelated; answers: N N U N.
    # Normalized: accuracy 3/4, weighted F1 (2*0.8 + 2*2/3)/4 = 0.733333.
    # 'Neutral' as its own class: accuracy 2/4; F1 Neutral 0 (1 post), neutral 2*1/(2+2) = 0.5
    # (1 post), unrelated 2/3 (2 posts) -> (0 + 0.5 + 4/3)/4 = 0.458333.
    preds = _table([N, N, U, U], [N, N, U, N], written=["Neutral", N, U, U])
    got = released.released_vs_recomputed(_cells((0.5, 0.4583333), (0.75, 0.7333333), n=4), preds)
    assert got["matches"].tolist() == [False, True]
    assert got["reason"].iloc[0] == "matches when 'Neutral' is kept as its own class"
    # Without the spelling the explanation cannot be tested.
    plain = released.released_vs_recomputed(
        _cells((0.5, 0.4583333), n=4), preds.drop(columns="label_as_written")
    )
    assert plain["reason"].iloc[0] == "unexplained"


def test_released_cell_without_predictions():
    got = released.released_vs_recomputed(_cells((0.5, 0.5)), _table([P], [P]).iloc[:0])
    assert got["reason"].tolist() == ["no released predictions for this cell"]
    assert got["n"].tolist() == [0]


# --------------------------------------------------------------------------------------------
# The authors' files (skipped without them)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported(paper_data, paper_posts) -> pd.DataFrame:
    return released.load_released_predictions(paper_data, paper_posts, keep_label_as_written=True)


@pytest.fixture(scope="module")
def released_metrics(paper_data) -> pd.DataFrame:
    return released.load_released_metrics(paper_data)


@pytest.fixture(scope="module")
def comparison(released_metrics, imported) -> pd.DataFrame:
    return released.released_vs_recomputed(released_metrics, imported)


def _file_rows(pf: data.PaperFile) -> int:
    """Data rows of a released file, counted without the importer: csv records, or workbook rows
    with a text or a label (below the data the training workbooks carry stray answers only)."""
    if pf.path.suffix == ".csv":
        with open(pf.path, newline="", encoding="utf-8") as f:
            return sum(1 for _ in csv.DictReader(f))
    df = pd.read_excel(pf.path, dtype=str)
    return int((df["plaintext"].notna() | df["label"].notna()).sum())


def test_row_counts_equal_the_files(paper_data, imported):
    expected: Counter = Counter()
    for pf in data.paper_files(paper_data):
        key = (
            pf.variant,
            Q4 if pf.quantized else FULL,
            "translated" if pf.path.suffix == ".xlsx" else "original",
            "multi" if pf.dataset == "multi" else pf.evalset,
            pf.split if pf.dataset == "multi" else pf.posts_split,
        )
        expected[key] += _file_rows(pf)
    # The tr training workbook holds its 75 posts twice, with the same answers: kept once.
    tr_train = ("en", Q4, "translated", "tr", "train")
    assert expected[tr_train] == 150
    expected[tr_train] = 75
    got = imported.groupby(["variant", "backend", "input", "evalset", "split"]).size()
    assert got.to_dict() == dict(expected)
    # Per folder (measured): train_dataset_raw 15750, test_dataset_raw 7380, extra 27020,
    # translation workbooks 1500 + 500 -> 52150 rows; 2000 of them on translated text.
    assert len(imported) == 52150
    assert (imported["input"] == "translated").sum() == 2000


def test_every_post_id_exists_and_agrees(paper_posts, imported):
    posts = paper_posts.set_index("post_id")
    assert imported["post_id"].isin(posts.index).all()
    assert (
        imported["label"].to_numpy() == posts.loc[imported["post_id"], "label"].to_numpy()
    ).all()
    assert (imported["lang"].to_numpy() == posts.loc[imported["post_id"], "lang"].to_numpy()).all()
    assert set(imported["method"]) == {"generate"}
    # Each (model, input, evalset, split) holds a post at most once.
    keys = ["variant", "backend", "input", "evalset", "split", "post_id"]
    assert not imported.duplicated(keys).any()


def test_pooled_files_are_the_same_posts(paper_posts, imported):
    pooled = imported[(imported["evalset"] == "multi") & (imported["variant"] == "multi")]
    pooled = pooled[pooled["backend"] == Q4]
    split_of = paper_posts.set_index("post_id")["split"]
    cross = pd.crosstab(pooled["split"], split_of[pooled["post_id"]].to_numpy())
    # FACTS.md: 703 test posts are test posts in both; 172 Spanish posts each way swap sides.
    assert cross.loc["test", "test"] == 703 and cross.loc["test", "train"] == 172
    assert cross.loc["train", "test"] == 172 and cross.loc["train", "train"] == 2453


def _one(imported, posts, *, text, lang, variant, backend, inp, evalset, split):
    """The imported row of the one post of ``lang`` whose text contains ``text``."""
    match = posts[(posts["lang"] == lang) & posts["text"].str.contains(text, regex=False)]
    assert len(match) == 1, text
    pid = match["post_id"].iloc[0]
    rows = imported[
        (imported["post_id"] == pid)
        & (imported["variant"] == variant)
        & (imported["backend"] == backend)
        & (imported["input"] == inp)
        & (imported["evalset"] == evalset)
        & (imported["split"] == split)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_hand_checked_rows(paper_posts, imported):
    # test_dataset_raw/llama-32-3B-en-Q4_K_M_andreanasuto_mig-de-L3_test.csv, line 2:
    # "@Slumlor29851577 Das Sicherheitsgeschäft ...", label neutral, label_llama anti-immigration.
    kw = dict(lang="de", variant="en", backend=Q4, evalset="de", split="test")
    row = _one(imported, paper_posts, text="@Slumlor29851577 Das", inp="original", **kw)
    assert (row["label"], row["prediction"]) == ("neutral", "anti-immigration")
    # The same post in test_dataset_translation/...mig-de-L3_test_checked.xlsx, row 2: the
    # English model answered neutral on the translation.
    row = _one(imported, paper_posts, text="@Slumlor29851577 Das", inp="translated", **kw)
    assert (row["label"], row["prediction"], row["raw_output"]) == ("neutral", "neutral", "neutral")
    # train_dataset_raw/llama-32-3B-multi_andreanasuto_mig-in-L3_train.csv, line 2 (lang 'in'):
    # "Pada akhirnya kita memang ...", unrelated / unrelated, the unquantized model.
    row = _one(
        imported,
        paper_posts,
        text="Pada akhirnya kita memang",
        lang="id",
        variant="multi",
        backend=FULL,
        inp="original",
        evalset="id",
        split="train",
    )
    assert (row["label"], row["prediction"]) == ("unrelated", "unrelated")
    # test_dataset_raw/llama-32-3B-es-Q4_K_M_andreanasuto_mig-tr-L3-extra_test.csv, line 104:
    # "İngiltere - Ruanda- Türkiye ...", gold written 'Neutral', label_llama neutral.
    row = _one(
        imported,
        paper_posts,
        text="İngiltere - Ruanda- Türkiye",
        lang="tr",
        variant="es",
        backend=Q4,
        inp="original",
        evalset="tr-extra",
        split="extra",
    )
    assert (row["label"], row["label_as_written"], row["prediction"]) == ("neutral", "Neutral", N)
    # extra/llama-32-3B-multi-Q4_K_M_andreanasuto_mig-multi-L3_test.csv, line 627: a Spanish
    # post ("@MarioNolio @Samurai29464219 ...", unrelated / unrelated) that is in the pooled test
    # split but in the per-language es training set.
    row = _one(
        imported,
        paper_posts,
        text="Una pregunta que me he formulado, de que irá a vivir el bueno",
        lang="es",
        variant="multi",
        backend=Q4,
        inp="original",
        evalset="multi",
        split="test",
    )
    assert row["post_id"].startswith("es-train-")
    assert (row["label"], row["prediction"]) == ("unrelated", "unrelated")


def test_repeated_korean_post_gets_both_ids(paper_posts, imported):
    # extra/...en-es-full..._mig-ko-L3-extra_test.csv, lines 29 and 59: the same text twice.
    text = "더보이즈 주연 #JUYEON #주연 #더보이즈주연 #이주연 #더보이즈"
    ids = set(paper_posts.loc[paper_posts["text"] == text, "post_id"])
    assert len(ids) == 2
    ko = imported[(imported["evalset"] == "ko-extra") & (imported["variant"] == "en-es-full")]
    assert set(ko["post_id"]) >= ids and len(ko) == 70 and ko["post_id"].is_unique


def test_released_answers_are_all_clean_label_names(imported):
    # Measured: all 52150 label_llama values are one of the four names; no 'failed', number,
    # respelling or empty cell in the release.
    kinds = released.raw_output_kinds(imported)
    assert kinds["label"] == len(imported)
    assert (imported["prediction"] == imported["raw_output"]).all()


def test_released_metrics_cells(paper_data, released_metrics):
    # 91 train cells (7 models x 13 sets) + 76 test cells (4 models x 19 sets); the text files
    # repeat them rounded to 4 places and add none.
    assert len(released_metrics) == 167
    assert released_metrics["source"].str.contains("accuracy_metrics_").all()
    assert released_metrics["source"].str.contains("f1_metrics_").all()
    assert not released_metrics.duplicated(["variant", "backend", "split", "evalset"]).any()
    # Values as in the files: the first data row of each accuracy CSV.
    for split in ("train", "test"):
        path = Path(paper_data) / f"{split}_dataset_raw/metrics/accuracy_metrics_{split}.csv"
        with open(path, newline="") as f:
            first = next(csv.DictReader(f))
        variant, backend = "en", Q4
        assert first["Model"] == "llama-32-3B-en-Q4_K_M"
        evalset = first["Dataset"].split("mig-")[1].split("-L3")[0]
        cell = released_metrics[
            (released_metrics["variant"] == variant)
            & (released_metrics["backend"] == backend)
            & (released_metrics["split"] == split)
            & (released_metrics["evalset"] == evalset)
        ]
        assert cell["released_accuracy"].tolist() == [float(first["Accuracy"])]
        assert cell["released_n"].tolist() == [int(first["Size"])]
    evalsets = set(released_metrics["evalset"])
    assert {"multi", "id", "ko-extra", "tr-extra"} <= evalsets and "in" not in evalsets


def test_released_vs_recomputed_on_the_files(comparison):
    # Measured: 159 of 167 released cells are reproduced within 1e-4 (all train cells, all
    # pooled 'multi' cells); every cell has as many answers as the release says. The 8 others
    # are extra test sets:
    #  - tr-extra en, en-es, multi: reproduced when 'Neutral' (13 gold labels) is its own class;
    #  - tr-extra es: the same and one answer different from the file;
    #  - it-extra en, en-es, es and pt-extra es: accuracy equal, F1 reproduced if one wrong answer
    #    had been another wrong label (the metrics came from a slightly different run).
    assert (comparison["n"] == comparison["released_n"]).all()
    assert comparison["matches"].sum() == 159
    assert (comparison.loc[comparison["matches"], "reason"] == "").all()
    bad = comparison[~comparison["matches"]]
    assert sorted(bad["evalset"]) == ["it-extra"] * 3 + ["pt-extra"] + ["tr-extra"] * 4
    reasons = Counter(r.split(" (")[0] for r in bad["reason"])
    assert reasons == {
        "matches when 'Neutral' is kept as its own class": 3,
        "matches when 'Neutral' is kept as its own class and one answer differed from the "
        "released file": 1,
        "matches if one answer differed from the released file": 4,
    }
    it_extra = bad[bad["evalset"] == "it-extra"]
    assert (it_extra["accuracy"] == it_extra["released_accuracy"]).all()
