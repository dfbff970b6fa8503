"""Verdicts on the paper's claims (xling.analysis.claims): the rule, the floor, and claims whose
inputs are missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling.analysis import claims as cl


def test_the_verdict_rule():
    assert cl.verdict(0.01, 0.2) == "supported"  # excludes 0, claimed direction
    assert cl.verdict(-0.2, -0.01) == "contradicted"
    assert cl.verdict(-0.1, 0.1) == "not distinguishable"
    assert cl.verdict(-0.2, -0.01, direction=-1) == "supported"
    assert cl.verdict(np.nan, np.nan) == cl.NOT_TESTABLE
    # equivalence within 2 points
    assert cl.verdict(-0.01, 0.015, equivalence=True) == "supported"
    assert cl.verdict(-0.08, -0.03, equivalence=True) == "contradicted"
    assert cl.verdict(-0.03, -0.01, equivalence=True) == "not distinguishable"


def test_the_floor_is_the_commonest_labels_share():
    # 65 of 70 unrelated (the Korean extra set's make-up): 65/70 = 0.9286
    labels = ["unrelated"] * 65 + ["neutral"] * 3 + ["pro-immigration"] * 2
    assert cl.floor(labels) == pytest.approx(65 / 70)
    assert cl.floor(cl.topic_labels(labels)) == pytest.approx(65 / 70)


def _preds(variant, correct_flags, split="test", lang="de"):
    n = len(correct_flags)
    labels = ["neutral", "unrelated"] * (n // 2)
    wrong = {"neutral": "unrelated", "unrelated": "neutral"}
    return pd.DataFrame(
        {
            "post_id": [f"{lang}-{i}" for i in range(n)],
            "lang": lang,
            "label": labels,
            "split": split,
            "evalset": lang,
            "variant": variant,
            "backend": "b",
            "input": "original",
            "method": "m",
            "prediction": [
                lab if ok else wrong[lab] for lab, ok in zip(labels, correct_flags, strict=True)
            ],
        }
    )


def _c3(multi_flags, en_flags):
    p = pd.concat([_preds("multi", multi_flags), _preds("en", en_flags)])
    out = cl.claims_from_predictions(
        p,
        None,
        "b",
        "m",
        {"en": ["en"], "multi": ["de"]},
        unquantized=None,
        splits=("test",),
        n_boot=500,
    )
    return out[out["claim"] == "C3"].iloc[0]


def test_planted_predictions_give_each_verdict():
    rng = np.random.default_rng(0)
    n = 200
    good = rng.random(n) < 0.9
    bad = rng.random(n) < 0.4
    same = good.copy()
    # multi right far more often than en on the same German test posts: C3 holds
    assert _c3(good, bad)["verdict"] == "supported"
    # reversed
    assert _c3(bad, good)["verdict"] == "contradicted"
    # identical answers: no effect
    row = _c3(good, same)
    assert row["verdict"] == "not distinguishable" and row["estimate"] == 0


def test_a_claim_without_its_inputs_is_not_testable_with_the_reason():
    p = _preds("en", [True, False] * 10)
    out = cl.claims_from_predictions(
        p, None, "b", "m", {"en": ["en"]}, splits=("test",), n_boot=200
    )
    c6 = out[out["claim"] == "C6"].iloc[0]
    assert c6["verdict"] == cl.NOT_TESTABLE and "unquantized" in c6["evidence"]
    c5 = out[out["claim"].str.startswith("C5")].iloc[0]
    assert c5["verdict"] == cl.NOT_TESTABLE and "translated" in c5["evidence"]
    c4 = cl.claims_from_models(pd.DataFrame(columns=["model", "term"]), pd.DataFrame())
    assert (c4["verdict"] == cl.NOT_TESTABLE).all()


def test_a_non_identified_share_term_is_not_testable():
    models = pd.DataFrame(
        {
            "model": ["M5", "M5"],
            "term": ["LangShare", "ModelMultilanguage:LangShare"],
            "estimate": [0.0136, -0.0068],
            "ci_low": [0.011, -0.009],
            "ci_high": [0.016, -0.004],
            "p_value": [1e-30, 1e-7],
        }
    )
    audit = pd.DataFrame(
        {"model": ["M5", "M5"], "term": models["term"], "identified": [False, True]}
    )
    out = cl.claims_from_models(models, audit).set_index("test")
    main = out.filter(like="main effect", axis=0).iloc[0]
    assert main["verdict"] == cl.NOT_TESTABLE and "not identified" in main["evidence"]
    flat = out.filter(like="Multilanguage", axis=0).iloc[0]
    assert flat["verdict"] == "supported"  # negative, claimed negative (flatter)


def test_the_untuned_base_is_a_second_floor_for_c1():
    # en answers every German post right, the base half of them: +0.5 on the same posts
    flags = [True] * 20
    p = pd.concat([_preds("en", flags), _preds("base", [True, False] * 10)])
    out = cl.claims_from_predictions(
        p, None, "b", "m", {"en": ["en"]}, unquantized=None, splits=("test",), n_boot=300
    )
    row = out[out["test"].str.contains("untuned base")].iloc[0]
    assert row["estimate"] == pytest.approx(0.5) and row["verdict"] == "supported"


def test_c4_on_our_corrected_table_from_the_sensitivity_run():
    models = pd.DataFrame(
        {
            "model": ["M5"],
            "term": ["ModelMultilanguage:LangShare"],
            "estimate": [-0.0068],
            "ci_low": [-0.009],
            "ci_high": [-0.004],
            "p_value": [1e-7],
        }
    )
    sens = pd.DataFrame(
        {
            "model": ["M5"],
            "term": ["ModelMultilanguage:LangShare"],
            "estimate_ours": [0.001],
            "p_ours": [0.6],
            "ci_low_ours": [-0.002],
            "ci_high_ours": [0.004],
        }
    )
    out = cl.claims_from_models(models, pd.DataFrame(), sens)
    assert list(out["verdict"]) == ["supported", "not distinguishable"]
    assert "our corrected table" in out["test"].iloc[1]


def test_c3_from_the_learning_curve_takes_the_most_posts_of_the_target():
    gains = pd.DataFrame(
        {
            "target_lang": ["hu", "hu", "hu"],
            "k": [25, 75, 75],
            "eval_lang": ["hu", "hu", "es"],
            "n_seeds": [2, 2, 2],
            "majority": [0.5, 0.5, 0.4],
            "diff": [0.01, 0.12, -0.3],
            "diff_ci_low": [-0.05, 0.04, -0.4],
            "diff_ci_high": [0.07, 0.2, -0.2],
        }
    )
    out = cl.claims_from_datasize(gains)
    # one row: hu evaluated on hu at k = 75 (the es row is another language's set)
    assert len(out) == 1 and out["estimate"].iloc[0] == 0.12
    assert out["verdict"].iloc[0] == "supported" and "75 hu posts" in out["test"].iloc[0]
    assert cl.claims_from_datasize(None).empty


def test_a_verdict_that_differs_between_test_and_train_is_listed_and_said():
    rng = np.random.default_rng(1)
    n = 200
    good, bad = rng.random(n) < 0.9, rng.random(n) < 0.4
    # on test posts multi and en answer alike (no effect); on train posts multi is far better
    p = pd.concat(
        [
            _preds("multi", good, "test"),
            _preds("en", good, "test"),
            _preds("multi", good, "train").assign(post_id=lambda d: "tr-" + d["post_id"]),
            _preds("en", bad, "train").assign(post_id=lambda d: "tr-" + d["post_id"]),
        ]
    )
    out = cl.claims_from_predictions(
        p, None, "b", "m", {"en": ["en"], "multi": ["de"]}, unquantized=None, n_boot=500
    )
    c3 = out[out["claim"] == "C3"].set_index("split")
    assert c3.loc["test", "verdict"] == "not distinguishable"
    assert c3.loc["train", "verdict"] == "supported"
    # the pooled row pairs all 400 posts: half the train gain, (mean(good) - mean(bad)) / 2
    assert c3.loc["train+test", "estimate"] == pytest.approx((good.mean() - bad.mean()) / 2)
    d = cl.differences(out)
    c3d = d[d["claim"] == "C3"]
    assert set(c3d["where"]) == {"test posts", "train posts"}  # the pooled row is not compared
    text = " ".join(cl.paragraphs(out))
    assert "The verdict depends on the posts" in text
    assert "test posts: not distinguishable" in text and "train posts: supported" in text
    # a version that could not be tested on one side is missing data, not a differing verdict
    untestable = out[(out["claim"] == "C3") & (out["split"] == "train")].assign(
        verdict=cl.NOT_TESTABLE, estimate=np.nan, ci_low=np.nan, ci_high=np.nan
    )
    partial = pd.concat([out[~((out["claim"] == "C3") & (out["split"] == "train"))], untestable])
    assert (cl.differences(partial)["claim"] != "C3").all()
    # a comparison run on one split only (the pooled row) is never listed
    one_split = out[out["split"] == "train+test"]
    assert not d["comparison"].isin(one_split["test"]).any()


def test_paragraphs_count_the_verdicts_and_quote_the_numbers():
    rows = pd.DataFrame(
        [
            dict(
                claim="C9",
                statement="s",
                test="t1",
                split="test",
                estimate=0.10,
                ci_low=0.05,
                ci_high=0.15,
                p_value=0.001,
                floor=np.nan,
                verdict="supported",
                evidence="predictions.csv",
            ),
            dict(
                claim="C9",
                statement="s",
                test="t2",
                split="test",
                estimate=-0.02,
                ci_low=-0.06,
                ci_high=0.02,
                p_value=0.4,
                floor=np.nan,
                verdict="not distinguishable",
                evidence="predictions.csv",
            ),
        ]
    )
    (para,) = cl.paragraphs(rows)
    assert para.startswith("**C9** (s): 2 tests; 1 supported, 1 not distinguishable.")
    assert "t1, test posts: +0.100 (95% CI +0.050 to +0.150; p = 0.001)" in para
    assert "`predictions.csv`" in para


def test_not_testable_is_worded_for_a_runs_own_models():
    c7 = cl.not_testable_c7()
    assert cl.for_run(c7, released=True)["verdict"].iloc[0] == cl.NOT_TESTABLE
    assert cl.for_run(c7, released=False)["verdict"].iloc[0] == cl.NOT_TESTABLE_RUN
    assert "released" not in cl.NOT_TESTABLE_RUN
