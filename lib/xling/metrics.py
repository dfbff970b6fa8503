"""Metrics with uncertainty: accuracy, weighted F1, and bootstrap confidence intervals.

Test sets here are small (25 posts per language in the paper), so every accuracy comes with a
bootstrap interval, and comparisons of two models on the same posts use the paired bootstrap
(resampling posts, not models), which is what "A beats B" needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def accuracy(truth, pred) -> float:
    truth, pred = np.asarray(truth), np.asarray(pred)
    return float((truth == pred).mean()) if len(truth) else float("nan")


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0):
    """Mean of ``values`` and its percentile bootstrap interval (resampling items)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(values.mean()), float(lo), float(hi)


def compare_accuracy(truth, pred_a, pred_b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of A and B on the same posts with bootstrap CIs, and the paired bootstrap CI of
    A - B. ``a_better`` is True when that interval lies above zero."""
    truth = np.asarray(truth)
    ca = (np.asarray(pred_a) == truth).astype(float)
    cb = (np.asarray(pred_b) == truth).astype(float)
    a, a_lo, a_hi = bootstrap_ci(ca, n_boot, seed=seed)
    b, b_lo, b_hi = bootstrap_ci(cb, n_boot, seed=seed)
    d, d_lo, d_hi = bootstrap_ci(ca - cb, n_boot, seed=seed)
    return {
        "n": len(truth),
        "acc_a": a,
        "acc_a_low": a_lo,
        "acc_a_high": a_hi,
        "acc_b": b,
        "acc_b_low": b_lo,
        "acc_b_high": b_hi,
        "diff": d,
        "diff_low": d_lo,
        "diff_high": d_hi,
        "a_better": bool(d_lo > 0),
    }


def finetune_gains(predictions: pd.DataFrame, base_variant: str = "base", **kw) -> pd.DataFrame:
    """Per variant: its accuracy against the untuned base model's on the same posts.

    ``predictions`` has columns post_id, label, variant, prediction (the base included).
    """
    base = predictions[predictions["variant"] == base_variant].set_index("post_id")["prediction"]
    rows = []
    for variant, sub in predictions[predictions["variant"] != base_variant].groupby(
        "variant", sort=False
    ):
        sub = sub[sub["post_id"].isin(base.index)]
        res = compare_accuracy(sub["label"], sub["prediction"], base.loc[sub["post_id"]], **kw)
        rows.append({"variant": variant, **res})
    return pd.DataFrame(rows)
