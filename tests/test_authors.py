"""The authors' Models 1-6 (xling.analysis.authors): their table's rules, R's aliasing, the fits
against R, and the identification audit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xling.analysis import authors as au
from xling.data.validate import PostsError

HERE = Path(__file__).parent
#: R's fits and R's table, cell by cell (tests/r/authors_reference.R on the released files)
R_REFERENCE = HERE / "data" / "authors_r_reference.csv"
R_CELLS = HERE / "data" / "authors_r_cells.csv"


def _csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _xlsx(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_excel(path, index=False)


def _post(mid, text, label, pred, lang="de", col="tweet_lang"):
    return {"message_id": mid, "plaintext": text, "label": label, "label_llama": pred, col: lang}


@pytest.fixture
def quirky(tmp_path) -> Path:
    """A released-data folder with every quirk the authors' rules handle."""
    raw_test, raw_train = tmp_path / "test_dataset_raw", tmp_path / "train_dataset_raw"
    tr_test = tmp_path / "test_dataset_translation"
    tr_train = tmp_path / "train_dataset_translation"
    en = "llama-32-3B-en-Q4_K_M_andreanasuto_mig-{}-L3_{}.csv"
    _csv(
        raw_test / en.format("de", "test"),
        [
            _post("1", "t1", "neutral", "neutral"),
            _post("2", "t2", "Neutral", "neutral"),  # relabelled, but compared as written: wrong
            _post("3", "t3", "unrelated", ""),  # no prediction: dropped
        ],
    )
    _csv(
        raw_train / en.format("de", "train"),
        [
            _post("1", "t1", "neutral", "unrelated"),  # t1 again for this model: test row kept
            _post("4", "  t4 ", "unrelated", "unrelated"),  # readr trims the cell
        ],
    )
    _csv(
        raw_test / "llama-32-3B-es-Q4_K_M_andreanasuto_mig-de-L3_test.csv",
        [_post("1", "t1", "neutral", "neutral"), _post("6", "t6", "unrelated", "neutral")],
    )
    # not read: a file without Q4 in its name, and a 'full' model's file
    _csv(raw_train / "llama-32-3B-en_andreanasuto_mig-de-L3_train.csv", [_post("9", "x", "a", "a")])
    _csv(
        raw_test / "llama32-3B-mig-en-es-full-Q4_K_M_andreanasuto_mig-de-L3_test.csv",
        [_post("9", "x", "a", "a")],
    )
    _xlsx(
        tr_test / "llama-32-3B-en-Q4_K_M_andreanasuto_mig-de-L3_test_checked.xlsx",
        [
            {**_post(1, "t1", "neutral", "neutral", col="lang"), "translation_check": 1},
            {**_post(2, "t2", "neutral", "unrelated", col="lang"), "translation_check": 0},
        ],
    )
    _xlsx(
        tr_train / "llama-32-3B-en-Q4_K_M_andreanasuto_mig-hu-L3_train.xlsx",
        [_post(5, "t5", "unrelated", "unrelated", lang="hu", col="lang")],  # no check column
    )
    return tmp_path


def test_the_table_follows_the_authors_rules(quirky):
    t = au.build_table(quirky)
    # kept: English t1, t2 (de test), t4 (de train); Spanish t1, t6 (de test); English
    # translated t1 (Good), t2 (Bad) and t5 (Hungarian, Unknown): 8 rows. Dropped: t3 (no
    # prediction), English's train t1 (same model, text and flag as its test row), the non-Q4
    # and the 'full' files.
    assert len(t) == 8
    key = t.set_index(["Model", "Translation", "plaintext"])
    assert key.loc[("English", 0, "t1"), "Train_Test"] == "Test"
    assert key.loc[("English", 0, "t4"), "Train_Test"] == "Train"  # trimmed text
    assert key.loc[("English", 0, "t2"), "label"] == "neutral"
    assert key.loc[("English", 0, "t2"), "Correct"] == 0  # 'neutral' != 'Neutral'
    assert key.loc[("English", 0, "t1"), "Correct"] == 1
    assert "x" not in set(t["plaintext"]) and "t3" not in set(t["plaintext"])
    assert set(t["Model"]) == {"English", "Spanish"}
    q = key["TranslationQuality"]
    assert q.loc[("English", 1, "t1")] == "Good" and q.loc[("English", 1, "t2")] == "Bad"
    assert q.loc[("English", 1, "t5")] == "Unknown" and q.loc[("English", 0, "t1")] == (
        "Not Translated"
    )
    assert key.loc[("English", 1, "t5"), "Language"] == "Hungarian"
    # German test rows: English t1, t2, Spanish t1, t6, translated t1, t2: one of six unrelated
    share = t.groupby(["Language", "Train_Test"])["Share_Unrelated"].first()
    assert share[("German", "Test")] == pytest.approx(1 / 6)
    assert share[("German", "Train")] == 1.0
    # distinct texts per language x split x flag x quality: German test untranslated t1, t2, t6
    size = t.groupby(["Language", "Train_Test", "Translation", "TranslationQuality"])[
        "DatasetSize"
    ].first()
    assert size[("German", "Test", 0, "Not Translated")] == 3
    assert size[("German", "Test", 1, "Good")] == 1
    # LLaMA 2's table: German 0.17%, Hungarian 0.03%
    assert key.loc[("English", 0, "t1"), "LangShare"] == pytest.approx(0.17)
    assert key.loc[("English", 1, "t5"), "LangShare"] == pytest.approx(0.03)
    # the same text has one id across models, files and flags
    assert t.loc[t["plaintext"] == "t1", "newId"].nunique() == 1


def test_a_folder_without_the_authors_folders_is_refused(tmp_path):
    with pytest.raises(PostsError, match="test_dataset_raw"):
        au.build_table(tmp_path)


def test_a_file_missing_a_column_is_named(quirky):
    f = quirky / "test_dataset_raw" / "llama-32-3B-en-Q4_K_M_andreanasuto_mig-de-L3_test.csv"
    pd.read_csv(f).drop(columns="label_llama").to_csv(f, index=False)
    with pytest.raises(PostsError, match="label_llama") as err:
        au.build_table(quirky)
    assert f.name in str(err.value)


def test_model_names_from_file_names():
    assert au.model_name("llama-32-3B-en-es-Q4_K_M_andreanasuto_mig-hu-L3_train.csv") == (
        "English-Spanish"
    )
    assert au.model_name("llama-32-3B-multi-Q4_K_M_andreanasuto_mig-hu-L3_train.csv") == (
        "Multilanguage"
    )


def _lang_share_data(n_per=8, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    langs = np.repeat(["English", "German", "French"], n_per)
    share = pd.Series(langs).map({"English": 90.0, "German": 0.17, "French": 0.16})
    model = np.tile(["English", "Spanish"], len(langs) // 2)
    return pd.DataFrame(
        {
            "Correct": rng.integers(0, 2, len(langs)),
            "Language": pd.Categorical(langs, categories=["English", "French", "German"]),
            "Model": pd.Categorical(model, categories=["English", "Spanish"]),
            "LangShare": share.to_numpy(),
        }
    )


def test_r_aliases_the_later_of_two_collinear_columns():
    d = _lang_share_data()
    # Columns (Intercept), LangShare, LanguageFrench, LanguageGerman. The share takes three
    # values, one per language: 90 - 89.84*French - 89.83*German. 1 and the share span two
    # directions; French is not an affine function of the share (English 90 -> 0, French 0.16
    # -> 1, German 0.17 -> 0), so it is kept; German completes the span of all functions of the
    # language: R reports LanguageGerman as NA.
    x = au.design(d, "Correct ~ LangShare + Language")
    assert x.names == ["(Intercept)", "LangShare", "LanguageFrench", "LanguageGerman"]
    assert [x.names[j] for j in au.r_aliased(x.matrix)] == ["LanguageGerman"]
    # written the other way round, the dummies come first and the share is the one aliased
    x = au.design(d, "Correct ~ Language + LangShare")
    assert [x.names[j] for j in au.r_aliased(x.matrix)] == ["LangShare"]


def test_interaction_columns_in_r_order():
    d = _lang_share_data()
    x = au.design(d, "Correct ~ Model * Language")
    # R: main effects, then Model:Language with Model varying fastest (one model level here)
    assert x.names == [
        "(Intercept)",
        "ModelSpanish",
        "LanguageFrench",
        "LanguageGerman",
        "ModelSpanish:LanguageFrench",
        "ModelSpanish:LanguageGerman",
    ]
    assert au.parse_formula("y ~ a * b + c + a * d") == [
        ("a",),
        ("b",),
        ("c",),
        ("d",),
        ("a", "b"),
        ("a", "d"),
    ]


def test_fit_matches_the_closed_form_of_a_saturated_model():
    # English 3 of 4 correct, German 1 of 4. Intercept = logit(3/4) = log 3; the German
    # contrast = logit(1/4) - logit(3/4) = -2 log 3. A cell with a successes and b failures
    # has var(logit) = 1/a + 1/b: 1/3 + 1 = 4/3 for each cell, so se(Intercept) = sqrt(4/3)
    # and se(German) = sqrt(8/3).
    d = pd.DataFrame(
        {
            "Correct": [1, 1, 1, 0, 1, 0, 0, 0],
            "Language": pd.Categorical(
                ["English"] * 4 + ["German"] * 4, categories=["English", "German"]
            ),
        }
    )
    fit = au.fit_glm(d, "Correct ~ Language", "T")
    t = fit.table.set_index("term")
    assert t.loc["(Intercept)", "estimate"] == pytest.approx(math.log(3), abs=1e-8)
    assert t.loc["LanguageGerman", "estimate"] == pytest.approx(-2 * math.log(3), abs=1e-8)
    assert t.loc["(Intercept)", "std_err"] == pytest.approx(math.sqrt(4 / 3), rel=1e-6)
    assert t.loc["LanguageGerman", "std_err"] == pytest.approx(math.sqrt(8 / 3), rel=1e-6)
    assert t.loc["LanguageGerman", "z"] == pytest.approx(-2 * math.log(3) / math.sqrt(8 / 3))


def test_the_audit_flags_a_planted_non_identified_term():
    d = _lang_share_data(n_per=40, seed=3)
    fit = au.fit_glm(d, "Correct ~ Model + LangShare + Language", "P")
    assert fit.aliased == ["LanguageGerman"]
    audit = au.identification(fit, d).set_index("term")
    # the share is constant within a language: its coefficient trades off against the language
    # dummies (dropping French or the share instead of German gives the same fit)
    assert not audit.loc["LangShare", "identified"]
    assert not audit.loc["LanguageFrench", "identified"]
    assert audit.loc["LangShare", "estimate_min"] < audit.loc["LangShare", "estimate_max"]
    # the model contrast varies within every language: the same whatever column is dropped
    assert audit.loc["ModelSpanish", "identified"]
    lo, hi = audit.loc["ModelSpanish", ["estimate_min", "estimate_max"]]
    assert hi - lo < 1e-8


def test_a_full_rank_model_needs_no_audit():
    d = _lang_share_data(n_per=40, seed=3)
    fit = au.fit_glm(d, "Correct ~ Model + Language", "F")
    assert fit.aliased == []
    assert au.identification(fit, d).empty


def test_verdicts_and_sensitivity():
    assert au.verdict(0.5, 0.01) == "+"
    assert au.verdict(-0.5, 0.01) == "-"
    assert au.verdict(-0.5, 0.2) == "n.s."
    assert au.verdict(float("nan"), float("nan")) == "aliased"
    a = pd.DataFrame(
        {"model": ["M1", "M1"], "term": ["x", "y"], "estimate": [1.0, 1.0], "p_value": [0.01, 0.01]}
    )
    o = pd.DataFrame(
        {
            "model": ["M1", "M1"],
            "term": ["x", "y"],
            "estimate": [1.0, -1.0],
            "p_value": [0.01, 0.5],
            "ci_low": [0.2, -3.0],
            "ci_high": [1.8, 1.0],
        }
    )
    s = au.sensitivity(a, o).set_index("term")
    assert not s.loc["x", "changed"] and s.loc["y", "changed"]
    assert s.loc["y", "verdict_ours"] == "n.s."
    # our intervals travel with the table (notebook 08 reads them)
    assert s.loc["y", "ci_low_ours"] == -3.0 and s.loc["x", "ci_high_ours"] == 1.8


@pytest.fixture(scope="module")
def authors_fits(paper_data):
    table = au.build_table(paper_data)
    fits = au.fit_models(table)
    _, ols = au.share_ols(au.with_levels(table))
    return table, fits, au.models_table(fits, ols)


def test_the_paper_table_has_the_authors_rows(authors_fits):
    table, _, _ = authors_fits
    ref = pd.read_csv(R_REFERENCE)
    # the row count of R's table (tests/r/authors_reference.R), also the 19,876
    assert len(table) == int(ref.loc[ref["model"] == "TABLE", "estimate"].iloc[0]) == 19876


def test_the_paper_table_agrees_with_r_cell_by_cell(authors_fits):
    table, _, _ = authors_fits
    keys = ["Model", "Language", "Train_Test", "TranslationQuality"]
    ours = (
        table.groupby(keys)
        .agg(
            rows=("Correct", "size"),
            correct=("Correct", "sum"),
            texts=("plaintext", "nunique"),
            unrelated=("label", lambda s: int((s == "unrelated").sum())),
        )
        .reset_index()
    )
    ref = pd.read_csv(R_CELLS)
    merged = ref.merge(ours, on=keys, how="outer", suffixes=("_r", ""), indicator=True)
    assert (merged["_merge"] == "both").all()
    for col in ("rows", "correct", "texts", "unrelated"):
        assert (merged[col] == merged[f"{col}_r"]).all(), col


def test_the_fits_agree_with_r(authors_fits):
    _, fits, ours = authors_fits
    ref = pd.read_csv(R_REFERENCE)
    ref = ref[ref["model"] != "TABLE"]
    merged = ref.merge(ours, on=["model", "term"], how="outer", suffixes=("_r", ""), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[
        merged["_merge"] != "both", ["model", "term"]
    ]
    assert (merged["aliased_r"] == merged["aliased"]).all()
    est = merged[~merged["aliased"]]
    assert np.abs(est["estimate"] - est["estimate_r"]).max() < 1e-4
    assert (np.abs(est["std_err"] / est["std_err_r"] - 1)).max() < 1e-3
    dev = ref.groupby("model")["deviance"].first().dropna()
    for model, d in dev.items():
        assert fits[model].deviance == pytest.approx(d, rel=1e-8)


def test_the_paper_audit_finds_the_share_main_effect_unidentified(authors_fits):
    table, fits, _ = authors_fits
    audit = au.identification_table(fits, table).set_index(["model", "term"])
    # Model 5: the share is constant within a language, so beside the language dummies its
    # main effect is not identified; the model x share interactions are
    assert not audit.loc[("M5", "LangShare"), "identified"]
    assert audit.loc[("M5", "ModelMultilanguage:LangShare"), "identified"]
    # Model 4: 'Unknown' quality is the three unchecked languages (hu, id, pl) in the
    # translated rows, so it trades off against those languages' dummies
    assert not audit.loc[("M4", "LanguageHungarian"), "identified"]
    assert audit.loc[("M4", "labelunrelated"), "identified"]


def test_our_table_from_a_predictions_table():
    def row(pid, lang, split, variant, inp, label, pred, evalset=None, backend="llamacpp-q4_k_m"):
        return {
            "post_id": pid,
            "lang": lang,
            "label": label,
            "split": split,
            "evalset": evalset or lang,
            "variant": variant,
            "backend": backend,
            "input": inp,
            "method": "generate",
            "prediction": pred,
        }

    preds = pd.DataFrame(
        [
            row("de-1", "de", "test", "en", "original", "neutral", "neutral"),
            row("id-1", "id", "train", "es", "original", "unrelated", "neutral"),
            row("de-1", "de", "test", "en", "translated", "neutral", "unrelated"),
            row("de-2", "de", "extra", "en", "translated", "unrelated", "unrelated", "de-extra"),
            row("de-1", "de", "test", "multi", "original", "neutral", "neutral", "multi"),  # pooled
            row("de-1", "de", "test", "en", "original", "neutral", "neutral", backend="f16"),
            row("de-1", "de", "test", "base", "original", "neutral", "neutral"),  # not a variant
        ]
    )
    posts = pd.DataFrame(
        {
            "post_id": ["de-1", "de-2", "id-1"],
            "translation_ok": pd.array([1, pd.NA, pd.NA], dtype="Int64"),
        }
    )
    t = au.our_table(preds, posts).set_index(["Translation", "message_id"])
    # kept: English's three Q4_K_M rows and Spanish's one; the pooled set, the f16 backend and
    # the base left out
    assert len(t) == 4
    assert t.loc[(0, "id-1"), "Language"] == "Indonesian"  # our 'id' is the authors' 'in'
    assert t.loc[(0, "id-1"), "Train_Test"] == "Train" and t.loc[(0, "id-1"), "Correct"] == 0
    assert t.loc[(1, "de-1"), "TranslationQuality"] == "Good"  # checked good
    assert t.loc[(1, "de-2"), "TranslationQuality"] == "Unknown"  # no check
    assert t.loc[(0, "de-1"), "TranslationQuality"] == "Not Translated"
    assert t.loc[(1, "de-2"), "Train_Test"] == "Test"  # an extra set is test posts
    assert t.loc[(1, "de-1"), "Correct"] == 0 and t.loc[(0, "de-1"), "Correct"] == 1
