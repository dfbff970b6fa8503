"""The pretraining-bias regression (xling.regression) on the real share table and on simulated
predictions whose share slopes are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xling.analysis import regression as reg
from xling.schema import PREDICTION_COLUMNS

# Twelve made-up languages (real ISO codes, made-up shares), three of them below the threshold.
SIM_SHARES = {
    "de": 0.17,
    "fr": 0.16,
    "es": 0.13,
    "it": 0.11,
    "pl": 0.09,
    "pt": 0.09,
    "ko": 0.06,
    "hu": 0.03,
    "id": 0.03,
    "ar": None,
    "hi": None,
    "tr": None,
}


def sim_shares() -> pd.DataFrame:
    rows = [
        {
            "language": lang,
            "share_percent": share,
            "source": "simulated",
            "note": "" if share is not None else "below_threshold: simulated",
        }
        for lang, share in {**SIM_SHARES, "en": 89.7}.items()
    ]
    shares = pd.DataFrame(rows)
    shares["share_percent"] = shares["share_percent"].astype(float)
    shares["below_threshold"] = shares["share_percent"].isna()
    return shares


def log_share(lang: str) -> float:
    """The half_threshold coding: below-threshold languages at 0.0025%."""
    share = SIM_SHARES[lang]
    return math.log10(share if share is not None else 0.0025)


def simulate(prob, variants=("en", "multi"), n_per_lang: int = 400, seed: int = 0):
    """A predictions table: per variant and language, ``n_per_lang`` related test posts (plus
    an English set, which the models leave out), each correct with ``prob(variant, x)``."""
    rng = np.random.default_rng(seed)
    rows = []
    for variant in variants:
        for lang in [*SIM_SHARES, "en"]:
            x = log_share(lang) if lang != "en" else 2.0
            correct = rng.random(n_per_lang) < prob(variant, x)
            for i, ok in enumerate(correct):
                label = ("neutral", "pro-immigration", "anti-immigration")[i % 3]
                rows.append(
                    {
                        "post_id": f"{lang}-test-{i:04d}",
                        "lang": lang,
                        "label": label,
                        "split": "test",
                        "evalset": lang,
                        "variant": variant,
                        "backend": "b",
                        "input": "original",
                        "method": "score",
                        "prediction": label if ok else "unrelated",
                        "raw_output": "",
                    }
                )
    return pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))


def row(coefs: pd.DataFrame, model: str, term: str) -> pd.Series:
    hit = coefs[(coefs["model"] == model) & (coefs["term"] == term)]
    assert len(hit) == 1, (model, term, coefs[["model", "term"]])
    return hit.iloc[0]


# --- the share table and its codings ------------------------------------------------------------


def test_share_table_records_below_threshold_languages_as_such_not_as_zero():
    shares = reg.load_shares()
    by_lang = shares.set_index("language")
    for lang in ("ar", "hi", "tr"):
        assert by_lang.loc[lang, "below_threshold"]
        assert math.isnan(by_lang.loc[lang, "share_percent"])
        assert by_lang.loc[lang, "note"].startswith("below_threshold")
    listed = shares[~shares["below_threshold"]]
    assert (listed["share_percent"] >= reg.THRESHOLD).all()
    assert by_lang.loc["en", "share_percent"] == pytest.approx(89.70)
    assert by_lang.loc["ko", "share_percent"] == pytest.approx(0.06)
    assert shares["source"].str.contains("arXiv:2307.09288").all()
    assert shares["source"].str.contains("Table 10").all()


def test_codings_on_hand_worked_values():
    shares = reg.load_shares()
    authors = reg.code_shares(shares, "authors", langs=["ar", "de"])
    # authors: below threshold -> 0, share regressed untransformed
    assert authors.loc["ar", "share_percent"] == 0.0
    assert "log10_share" not in authors.columns
    half = reg.code_shares(shares, "half_threshold", langs=["ar", "de"])
    # half the 0.005% cut-off: log10(0.0025) = -2.60206; log10(0.17) = -0.76955
    assert half.loc["ar", "share_percent"] == pytest.approx(0.0025)
    assert half.loc["ar", "log10_share"] == pytest.approx(-2.60206, abs=1e-5)
    assert half.loc["de", "log10_share"] == pytest.approx(-0.76955, abs=1e-5)
    drop = reg.code_shares(shares, "drop", langs=["ar", "de", "hi"])
    assert list(drop.index) == ["de"]
    with pytest.warns(UserWarning, match="sw"):
        unknown = reg.code_shares(shares, "half_threshold", langs=["sw"])
    assert unknown.loc["sw", "below_threshold"]
    with pytest.raises(ValueError, match="coding"):
        reg.regressor("zero")


# --- what the models see ------------------------------------------------------------------------


def test_selection_keeps_one_model_and_the_per_language_sets():
    pred = simulate(lambda v, x: 0.5, n_per_lang=3)
    pooled = pred[pred["lang"] == "de"].assign(evalset="multi")
    extra = pred[pred["lang"] == "ko"].assign(split="extra", evalset="ko-extra")
    other = pred[pred["lang"] == "de"].assign(backend="other")
    table = pd.concat([pred[pred["lang"] != "ko"], pooled, extra, other], ignore_index=True)
    selected = reg.select_predictions(table, "b", "score")
    assert set(selected["evalset"]) == set(SIM_SHARES) - {"ko"} | {"en"}
    assert (selected["backend"] == "b").all() and len(selected) == len(pred) - 2 * 3
    with_extra = reg.select_predictions(table, "b", "score", include_extra=True)
    assert "ko-extra" in set(with_extra["evalset"])
    with pytest.raises(ValueError, match="b / score / original"):
        reg.select_predictions(table, "b", "generate")


def test_post_table_failed_is_wrong_english_left_out_translation_flag():
    pred = simulate(lambda v, x: 1.0, variants=("en",), n_per_lang=2)
    pred.loc[0, "prediction"] = "failed"  # variant en, language de, post 0
    posts = pd.DataFrame(
        {"post_id": ["de-test-0001", "fr-test-0000"], "translation_ok": [0.0, 1.0]}
    )
    table = reg.post_table(pred, sim_shares(), "half_threshold", posts)
    assert "en" not in set(table["lang"])
    de = table[table["lang"] == "de"].set_index("post_id")
    assert de.loc["de-test-0000", "correct"] == 0 and de.loc["de-test-0001", "correct"] == 1
    assert de.loc["de-test-0001", "translation_bad"] == 1
    assert table.set_index("post_id").loc["fr-test-0000", "translation_bad"] == 0
    assert table["translation_bad"].sum() == 1  # unchecked posts are not flagged
    assert reg.constant_variants(pred) == []
    assert reg.constant_variants(pred.assign(prediction="neutral")) == ["en"]


def test_nothing_left_to_model_is_said_in_words():
    # a model whose every generation failed to parse (the rehearsal's tiny Llama): notebook 05
    # leaves its variants out as constant, and the fit says why instead of numpy's empty max
    pred = simulate(lambda v, x: 1.0, variants=("en",), n_per_lang=2).assign(prediction="failed")
    left = pred[~pred["variant"].isin(reg.constant_variants(pred))]
    with pytest.raises(ValueError, match="no predictions to model.*method score"):
        reg.fit_share_models(left, sim_shares(), "half_threshold")


# --- known slopes recovered ---------------------------------------------------------------------


def test_ols_recovers_a_known_slope_within_its_interval():
    # accuracy = 0.75 + 0.12 x (x = log10 share): 0.44 at 0.0025%, 0.66 at 0.17%
    pred = simulate(lambda v, x: 0.75 + 0.12 * x, variants=("en",))
    fit = reg.fit_share_models(pred, sim_shares(), "half_threshold", compare=("en", "multi"))
    slope = row(fit.coefficients, "ols_lang[en]", "log10_share")
    assert slope["ci_low"] < 0.12 < slope["ci_high"]
    assert slope["ci_low"] > 0  # and the data can tell it from no slope
    assert slope["n"] == 12  # languages, English left out
    assert fit.diff is None  # no multi variant: no slope difference to test


def test_interaction_detects_slopes_that_differ():
    # en: slope 0.12; multi: flat at 0.6 -> multi's slope minus en's is -0.12
    prob = {"en": lambda x: 0.75 + 0.12 * x, "multi": lambda x: 0.6 + 0 * x}
    pred = simulate(lambda v, x: prob[v](x), seed=1)
    fit = reg.fit_share_models(pred, sim_shares(), "half_threshold")
    diff = row(fit.coefficients, "slope_diff[multi-en]", "log10_share")
    assert diff["ci_low"] < -0.12 < diff["ci_high"]
    assert diff["ci_high"] < 0
    glm = row(fit.coefficients, "glm_post", "variant[multi]:log10_share")
    assert glm["ci_high"] < 0  # post level, clustered by language: the same conclusion
    text = " ".join(reg.summarize(fit.coefficients))
    assert "multi's slope is smaller than en's" in text
    assert f"{diff['estimate']:+.3f}" in text


def test_interaction_finds_nothing_where_slopes_are_equal():
    # both slope 0.12, multi shifted up by 0.1
    pred = simulate(lambda v, x: (0.85 if v == "multi" else 0.75) + 0.12 * x, seed=2)
    fit = reg.fit_share_models(pred, sim_shares(), "half_threshold")
    diff = row(fit.coefficients, "slope_diff[multi-en]", "log10_share")
    assert diff["ci_low"] < 0 < diff["ci_high"]
    glm = row(fit.coefficients, "glm_post", "variant[multi]:log10_share")
    assert glm["ci_low"] < 0 < glm["ci_high"]
    assert "cannot tell multi's slope from en's" in " ".join(reg.summarize(fit.coefficients))


def test_slope_difference_on_hand_worked_accuracies():
    # x = 0, 1, 2; en 0.2, 0.4, 0.6 (slope 0.2); multi 0.5, 0.55, 0.6 (slope 0.05)
    # -> differences 0.3, 0.15, 0.0: slope -0.15, intercept 0.3, exactly
    lang_acc = pd.DataFrame(
        {
            "variant": ["en"] * 3 + ["multi"] * 3,
            "lang": ["a", "b", "c"] * 2,
            "accuracy": [0.2, 0.4, 0.6, 0.5, 0.55, 0.6],
            "log10_share": [0.0, 1.0, 2.0] * 2,
        }
    )
    _, coefs = reg.fit_slope_difference(lang_acc, "half_threshold")
    assert row(coefs, "slope_diff[multi-en]", "log10_share")["estimate"] == pytest.approx(-0.15)
    assert row(coefs, "slope_diff[multi-en]", "Intercept")["estimate"] == pytest.approx(0.3)
    fits = reg.fit_share_regression(lang_acc, "half_threshold")
    assert row(fits.coefficients, "ols_lang[en]", "log10_share")["estimate"] == pytest.approx(0.2)


# --- codings compared, the authors' specification -----------------------------------------------


def test_codings_compared_and_range_effect():
    pred = simulate(lambda v, x: 0.75 + 0.12 * x, variants=("en", "multi"), n_per_lang=100)
    coefs, fits = reg.compare_codings(pred, sim_shares())
    assert set(coefs["coding"]) == set(reg.CODINGS)
    assert fits["drop"].lang_acc["lang"].nunique() == 9  # ar, hi, tr dropped
    assert fits["authors"].lang_acc.set_index("lang").loc["ar", "share_percent"].iloc[0] == 0
    terms = reg.share_terms(coefs, fits)
    # range_effect = slope x spread of the regressor: log10(0.17) - log10(0.0025) = 1.8325
    r = terms[(terms["coding"] == "half_threshold") & (terms["model"] == "ols_lang[en]")].iloc[0]
    assert r["range_effect"] == pytest.approx(r["estimate"] * 1.832509, rel=1e-5)
    # authors' spread: 0.17 - 0 percentage points
    a = terms[(terms["coding"] == "authors") & (terms["model"] == "ols_lang[en]")].iloc[0]
    assert a["range_effect"] == pytest.approx(a["estimate"] * 0.17)
    table = reg.conclusions(terms)
    assert list(table.columns[-4:]) == [*reg.CODINGS, "stable"]
    assert table.loc[table["model"] == "ols_lang[en]", "half_threshold"].iloc[0] == "positive"


def test_authors_specification_reports_the_aliased_share_term():
    pred = simulate(lambda v, x: 0.75 + 0.12 * x, n_per_lang=60, seed=3)
    train = pred.assign(split="train", post_id=pred["post_id"].str.replace("test", "train"))
    both = pd.concat([pred, train], ignore_index=True)
    table = reg.post_table(both, sim_shares(), "authors", exclude_langs=())
    result, coefs, aliased = reg.fit_authors_glm(table)
    # share is constant within a language: with language dummies it is not identified
    assert aliased == ["share_percent"]
    share = row(coefs, "authors_glm", "share_percent")
    assert math.isnan(share["estimate"])
    inter = row(coefs, "authors_glm", "variant[multi]:share_percent")
    assert np.isfinite(inter["estimate"]) and inter["std_err"] > 0
    assert "split[train]" in set(coefs["term"])
    assert "Not identified" in " ".join(reg.summarize(coefs))
    assert list(coefs.columns) == reg.TIDY_COLUMNS
