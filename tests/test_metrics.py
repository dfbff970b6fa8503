"""xling.metrics: the evaluation arithmetic on small hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from xling import data
from xling.analysis import metrics

U, N, P, A, F = "unrelated", "neutral", "pro-immigration", "anti-immigration", "failed"
TRUTH = [U, U, N, P, A, A]
PRED = [U, N, N, P, F, U]


def table(truth=TRUTH, pred=PRED, **cols) -> pd.DataFrame:
    n = len(truth)
    base = {
        "post_id": [f"x-{i}" for i in range(n)],
        "lang": "en",
        "label": truth,
        "split": "test",
        "evalset": "en",
        "variant": "en",
        "backend": "llamacpp-q4_k_m",
        "input": "original",
        "method": "generate",
        "prediction": pred,
        "raw_output": None,
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_scores_on_a_hand_worked_case():
    s = metrics.scores(TRUTH, PRED)
    # correct: posts 0 (U), 2 (N), 3 (P) -> 3 of 6
    assert s["accuracy"] == pytest.approx(0.5)
    # per class F1: U P=1/2 R=1/2 -> 0.5; N P=1/2 R=1 -> 2/3; P -> 1; A (never predicted) -> 0
    assert s["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1 + 0) / 4)
    # weighted by gold support 2, 1, 1, 2
    assert s["weighted_f1"] == pytest.approx((2 * 0.5 + 2 / 3 + 1 + 0) / 6)
    assert s["n"] == 6 and s["n_failed"] == 1


def test_f1_is_averaged_over_the_gold_labels_present():
    # no anti post in the gold labels: macro over U, N, P only; an anti prediction is just wrong
    s = metrics.scores([U, N, P], [U, N, A])
    assert s["macro_f1"] == pytest.approx((1 + 1 + 0) / 3)
    assert s["accuracy"] == pytest.approx(2 / 3)


def test_topic_and_stance_on_a_hand_worked_case():
    row = metrics.topic_stance(table(), n_boot=200).iloc[0]
    # topic right for posts 0 (U->U), 2 (N->N), 3 (P->P); wrong for 1 (U->N), 4 (failed), 5 (A->U)
    assert row["topic_accuracy"] == pytest.approx(0.5)
    # related as positive: TP 2 (posts 2, 3), FP 1 (post 1), FN 2 (posts 4, 5) -> 4/7
    assert row["topic_f1"] == pytest.approx(4 / 7)
    # gold related: posts 2-5; exact for 2 and 3
    assert row["stance_n"] == 4 and row["stance_accuracy"] == pytest.approx(0.5)
    # of those the model called related (posts 2, 3), both right
    assert row["stance_accuracy_when_related"] == pytest.approx(1.0)
    # stances present N, P, A: F1 1, 1, 0
    assert row["stance_macro_f1"] == pytest.approx(2 / 3)


def test_per_class_counts_failed_as_a_miss():
    pc = metrics.per_class(table()).set_index("class")
    assert pc.loc[A, "recall"] == 0 and pc.loc[A, "support"] == 2 and pc.loc[A, "predicted"] == 0
    assert pc.loc[N, "precision"] == pytest.approx(0.5) and pc.loc[N, "recall"] == 1
    assert pc["support"].sum() == 6


def test_vectorized_macro_f1_equals_scikit_learn():
    rng = np.random.default_rng(0)
    labels = [U, N, P, A]
    for _ in range(50):
        n = int(rng.integers(3, 40))
        truth = rng.choice(labels, n)
        pred = rng.choice(labels + [F], n)
        t, p, k = metrics._codes(truth, pred)
        ours = metrics._macro_f1_counts(metrics._confusion_counts(t, p, k), np.unique(t))[0]
        present = [x for x in labels if (truth == x).any()]
        ref = f1_score(truth, pred, labels=present, average="macro", zero_division=0)
        assert ours == pytest.approx(ref)


def test_bootstrap_intervals_hold_the_estimate_and_repeat_with_the_seed():
    rng = np.random.default_rng(1)
    truth = rng.choice([U, N, P, A], 80)
    pred = np.where(rng.random(80) < 0.7, truth, U)
    a = metrics.bootstrap_scores(truth, pred, n_boot=500, seed=3)
    b = metrics.bootstrap_scores(truth, pred, n_boot=500, seed=3)
    assert a == b
    s = metrics.scores(truth, pred)
    assert a["accuracy"][0] < s["accuracy"] < a["accuracy"][1]
    assert a["macro_f1"][0] < s["macro_f1"] < a["macro_f1"][1]
    # all right: a degenerate interval at 1
    assert metrics.bootstrap_scores(truth, truth, n_boot=100)["accuracy"] == (1.0, 1.0)


def test_by_evalset_groups_and_pooled_multi():
    en = table()
    de = table(truth=[U, N], pred=[U, U], lang="de", evalset="de")
    ko = table(truth=[U], pred=[N], lang="ko", evalset="ko-extra", split="extra")
    preds = metrics.with_pooled_multi(pd.concat([en, de, ko]), training_langs=["en", "de"])
    out = metrics.by_evalset(preds, n_boot=100).set_index("evalset")
    assert out.loc["en", "n"] == 6 and out.loc["de", "accuracy"] == pytest.approx(0.5)
    # pooled: the 8 test posts of en and de, never ko-extra; 4 right
    assert out.loc["multi", "n"] == 8 and out.loc["multi", "accuracy"] == pytest.approx(0.5)
    assert out.loc["ko-extra", "n"] == 1
    assert out.loc["en", "n_failed"] == 1
    # a table that has the authors' own pooled set keeps it as it is
    own = pd.concat([en, en.assign(evalset="multi")])
    assert len(metrics.with_pooled_multi(own, ["en"])) == len(own)


def test_bad_predictions_table_is_refused_with_row_and_field():
    with pytest.raises(ValueError, match="missing column"):
        data.check_predictions(table().drop(columns="method"))
    bad = table(pred=[U, N, N, P, "Neutral", U])
    with pytest.raises(ValueError, match="row 4, field prediction"):
        data.check_predictions(bad)
