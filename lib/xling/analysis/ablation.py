"""The translation ablation: what is lost when a post is translated into English first.

Two readings of "translation loses accuracy" are kept apart (they differ in the authors' data):

- comparison ``a``: the same variant on the original posts against on their translations;
- comparison ``b``: the English variant on the translations against a variant that reads the
  original language (``multi``, ``en-es``) on the originals.

Both are paired (the same posts on each side), so each row gives the accuracy of each side, the
difference (translated minus original) with a paired bootstrap interval, and McNemar's exact test
on the discordant posts (statsmodels). Rows are split by language, by translation quality (the
human check, chrF terciles) and by what is scored: the exact label, the topic (about immigration
or not) or the stance (the exact label among posts about immigration).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xling.analysis.metrics import bootstrap_ci
from xling.schema import RELATED

#: What a row scores: the exact label, the topic, or the stance among posts about immigration.
SCORED = ("label", "topic", "stance")
ABLATION_COLUMNS = (
    "comparison",
    "variant",
    "native_variant",
    "best_native",
    "split",
    "lang",
    "metric",
    "quality_bucket",
    "n_pairs",
    "acc_original",
    "acc_original_low",
    "acc_original_high",
    "acc_translated",
    "acc_translated_low",
    "acc_translated_high",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "n_original_only",
    "n_translated_only",
    "mcnemar_p",
    "mcnemar_p_holm",
)
#: Quality buckets, in the order tables and figures show them.
BUCKETS = ("all", "human: good", "human: bad", "chrF: low", "chrF: mid", "chrF: high")


# --------------------------------------------------------------------------------------------
# Paired statistics
# --------------------------------------------------------------------------------------------


def correct(truth, pred, metric: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """(which posts count, whether each counted post is right) under ``metric``.

    ``label``: every post, right when the label is exact. ``topic``: every post, right when
    the prediction and the gold label agree on related (neutral, pro, anti) versus unrelated;
    ``failed`` is wrong. ``stance``: only posts whose gold label is related, right when exact.
    """
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    gold_rel = np.isin(truth, RELATED)
    if metric == "label":
        return np.ones(len(truth), bool), truth == pred
    if metric == "topic":
        ok = np.where(gold_rel, np.isin(pred, RELATED), pred == "unrelated")
        return np.ones(len(truth), bool), ok.astype(bool)
    if metric == "stance":
        return gold_rel, (truth == pred)[gold_rel]
    raise ValueError(f"unknown metric {metric!r}; one of {', '.join(SCORED)}")


def mcnemar_exact(correct_original, correct_translated) -> float:
    """McNemar's exact test (statsmodels; a two-sided binomial test on the discordant pairs)
    that the two sides are right equally often. 1.0 when no pair is discordant."""
    from statsmodels.stats.contingency_tables import mcnemar

    co = np.asarray(correct_original, bool)
    ct = np.asarray(correct_translated, bool)
    b, c = int((co & ~ct).sum()), int((~co & ct).sum())
    if b + c == 0:
        return 1.0
    table = [[int((co & ct).sum()), b], [c, int((~co & ~ct).sum())]]
    return float(mcnemar(table, exact=True).pvalue)


def paired_comparison(
    correct_original, correct_translated, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Accuracy of each side with bootstrap intervals, the difference translated - original with
    its paired bootstrap interval (posts resampled, both sides together), the discordant counts
    and McNemar's exact p."""
    co = np.asarray(correct_original, float)
    ct = np.asarray(correct_translated, float)
    if len(co) != len(ct):
        raise ValueError("the two sides must hold the same posts")
    a, a_lo, a_hi = bootstrap_ci(co, n_boot, seed=seed)
    t, t_lo, t_hi = bootstrap_ci(ct, n_boot, seed=seed)
    d, d_lo, d_hi = bootstrap_ci(ct - co, n_boot, seed=seed)
    return {
        "n_pairs": len(co),
        "acc_original": a,
        "acc_original_low": a_lo,
        "acc_original_high": a_hi,
        "acc_translated": t,
        "acc_translated_low": t_lo,
        "acc_translated_high": t_hi,
        "diff": d,
        "diff_ci_low": d_lo,
        "diff_ci_high": d_hi,
        "n_original_only": int(((co == 1) & (ct == 0)).sum()),
        "n_translated_only": int(((co == 0) & (ct == 1)).sum()),
        "mcnemar_p": mcnemar_exact(co == 1, ct == 1) if len(co) else float("nan"),
    }


# --------------------------------------------------------------------------------------------
# Quality buckets and seen posts
# --------------------------------------------------------------------------------------------


def chrf_edges(chrf) -> tuple[float, float]:
    """The two tercile edges of sentence chrF (NaN ignored)."""
    values = pd.Series(chrf, dtype=float).dropna()
    if values.empty:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [1 / 3, 2 / 3])
    return float(lo), float(hi)


def quality_buckets(translations: pd.DataFrame) -> pd.DataFrame:
    """Which quality buckets each translated post is in (post_id, quality_bucket; a post is in
    ``all`` and in at most one human and one chrF bucket).

    Human: ``translation_ok`` 1 (good) or 0 (bad); unchecked posts are in neither. chrF: the
    terciles of sentence chrF against the reference (column ``chrf``) over all the posts, so a
    bucket means the same quality in every language; ties at an edge go to the lower bucket.
    """
    rows = [pd.DataFrame({"post_id": translations["post_id"], "quality_bucket": "all"})]
    if "translation_ok" in translations.columns:
        ok = pd.to_numeric(translations["translation_ok"], errors="coerce")
        for value, name in ((1, "human: good"), (0, "human: bad")):
            ids = translations.loc[ok == value, "post_id"]
            rows.append(pd.DataFrame({"post_id": ids, "quality_bucket": name}))
    if "chrf" in translations.columns:
        chrf = pd.to_numeric(translations["chrf"], errors="coerce")
        lo, hi = chrf_edges(chrf)
        if np.isfinite(lo):
            bucket = np.where(
                chrf <= lo, "chrF: low", np.where(chrf <= hi, "chrF: mid", "chrF: high")
            )
            has = chrf.notna().to_numpy()
            rows.append(
                pd.DataFrame(
                    {"post_id": translations["post_id"][has], "quality_bucket": bucket[has]}
                )
            )
    return pd.concat(rows, ignore_index=True)


def seen_posts(
    posts: pd.DataFrame, training: dict[str, list[str]], train_splits: dict[str, list[str]]
) -> pd.DataFrame:
    """(variant, post_id) of every post a variant may have learned from, under each training
    split the profile allows it (default ``per_language``): its training posts themselves, and
    the evaluation posts its training set holds exactly or nearly
    (:func:`xling.data.seen_allowed`)."""
    from xling.data.audit import seen_allowed, training_posts

    allowed = {v: train_splits.get(v, ["per_language"]) for v in training}
    parts = []
    for variant, langs in training.items():
        for split in allowed[variant]:
            ids = training_posts(posts, langs, split)["post_id"]
            parts.append(pd.DataFrame({"variant": variant, "post_id": ids}))
    parts.append(seen_allowed(posts, training, train_splits)[["variant", "post_id"]])
    out = pd.concat(parts, ignore_index=True).drop_duplicates()
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The ablation table
# --------------------------------------------------------------------------------------------


def _side(predictions: pd.DataFrame, variant: str, inp: str, backend: str, method: str):
    p = predictions[
        (predictions["variant"] == variant)
        & (predictions["input"] == inp)
        & (predictions["backend"] == backend)
        & (predictions["method"] == method)
        & (predictions["evalset"] != "multi")  # the pooled set repeats per-language posts
    ]
    return p.drop_duplicates("post_id").set_index("post_id")


def pairs(
    predictions: pd.DataFrame,
    original_variant: str,
    translated_variant: str,
    backend: str,
    method: str,
    splits=("test",),
    seen: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The posts both sides classified: post_id, lang, split, label, pred_original (the
    ``original_variant`` on the original text), pred_translated (``translated_variant`` on the
    translation). A post either variant may have learned from (``seen``) is left out."""
    orig = _side(predictions, original_variant, "original", backend, method)
    trans = _side(predictions, translated_variant, "translated", backend, method)
    ids = trans.index.intersection(orig.index)
    out = pd.DataFrame(
        {
            "post_id": ids,
            "lang": orig.loc[ids, "lang"].to_numpy(),
            "split": orig.loc[ids, "split"].to_numpy(),
            "label": orig.loc[ids, "label"].to_numpy(),
            "pred_original": orig.loc[ids, "prediction"].to_numpy(),
            "pred_translated": trans.loc[ids, "prediction"].to_numpy(),
        }
    )
    if (trans.loc[ids, "label"].to_numpy() != out["label"].to_numpy()).any():
        raise ValueError("the two sides give a post different gold labels")
    out = out[out["split"].isin(list(splits))]
    if seen is not None and len(seen):
        learned = set(zip(seen["variant"], seen["post_id"], strict=True))
        keep = [
            (original_variant, p) not in learned and (translated_variant, p) not in learned
            for p in out["post_id"]
        ]
        out = out[np.array(keep, dtype=bool)]
    return out.reset_index(drop=True)


def _rows(
    paired: pd.DataFrame, buckets: pd.DataFrame, n_boot: int, seed: int, fixed: dict
) -> list[dict]:
    rows = []
    bucket_ids = {b: set(g["post_id"]) for b, g in buckets.groupby("quality_bucket", sort=False)}
    bucket_ids.setdefault("all", set(paired["post_id"]))
    for split, by_split in paired.groupby("split", sort=False):
        langs = [(lang, g) for lang, g in by_split.groupby("lang", sort=True)]
        langs.append(("all", by_split))
        for lang, g in langs:
            for bucket in [b for b in BUCKETS if b in bucket_ids]:
                sub = g[g["post_id"].isin(bucket_ids[bucket])] if bucket != "all" else g
                if sub.empty:
                    continue
                for metric in SCORED:
                    counted, ok_o = correct(sub["label"], sub["pred_original"], metric)
                    _, ok_t = correct(sub["label"], sub["pred_translated"], metric)
                    if not counted.any():
                        continue
                    rows.append(
                        {
                            **fixed,
                            "split": split,
                            "lang": lang,
                            "metric": metric,
                            "quality_bucket": bucket,
                            **paired_comparison(ok_o, ok_t, n_boot, seed),
                        }
                    )
    return rows


def ablation_table(
    predictions: pd.DataFrame,
    buckets: pd.DataFrame,
    backend: str,
    method: str,
    translated_variants=("en",),
    english_variant: str = "en",
    native_variants=("multi", "en-es"),
    splits=("test",),
    seen: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Both comparisons per split, language (and ``all``), quality bucket and metric.

    ``a``: each of ``translated_variants`` that has translated predictions, originals against
    translations (``native_variant`` is the variant itself). ``b``: ``english_variant`` on the
    translations against each of ``native_variants`` on the originals; ``best_native`` marks,
    per split and language, the native variant with the higher label accuracy on all the paired
    posts (chosen on the same posts, so its side is read optimistically). ``diff`` is translated
    minus original; ``mcnemar_p_holm`` is Holm-adjusted over the languages of one
    (comparison, variant, native variant, split, metric, bucket). Columns: ABLATION_COLUMNS.
    """
    have = set(predictions.loc[predictions["input"] == "translated", "variant"])
    rows = []
    for variant in [v for v in translated_variants if v in have]:
        paired = pairs(predictions, variant, variant, backend, method, splits, seen)
        fixed = {"comparison": "a", "variant": variant, "native_variant": variant}
        rows += _rows(paired, buckets, n_boot, seed, fixed)
    originals = set(predictions.loc[predictions["input"] == "original", "variant"])
    if english_variant in have:
        for native in [v for v in native_variants if v in originals]:
            paired = pairs(predictions, native, english_variant, backend, method, splits, seen)
            fixed = {"comparison": "b", "variant": english_variant, "native_variant": native}
            rows += _rows(paired, buckets, n_boot, seed, fixed)
    table = pd.DataFrame(rows, columns=[c for c in ABLATION_COLUMNS if c != "best_native"])
    table.insert(3, "best_native", _best_native(table))
    table["mcnemar_p_holm"] = _holm(table)
    return table[list(ABLATION_COLUMNS)]


def _best_native(table: pd.DataFrame) -> pd.Series:
    """For comparison b: whether the row's native variant is, in its split and language, the
    one with the highest label accuracy over all paired posts (ties: the first listed)."""
    flag = pd.Series(False, index=table.index)
    head = table[
        (table["comparison"] == "b")
        & (table["metric"] == "label")
        & (table["quality_bucket"] == "all")
    ]
    for (split, lang), g in head.groupby(["split", "lang"], sort=False):
        best = g.loc[g["acc_original"].idxmax(), "native_variant"]
        flag |= (
            (table["comparison"] == "b")
            & (table["split"] == split)
            & (table["lang"] == lang)
            & (table["native_variant"] == best)
        )
    flag[table["comparison"] == "a"] = True  # one "native" side only: itself
    return flag


def _holm(table: pd.DataFrame) -> pd.Series:
    from statsmodels.stats.multitest import multipletests

    out = pd.Series(np.nan, index=table.index)
    per_lang = table[table["lang"] != "all"]
    family = ["comparison", "variant", "native_variant", "split", "metric", "quality_bucket"]
    for _, g in per_lang.groupby(family, sort=False):
        p = g["mcnemar_p"].to_numpy(dtype=float)
        out[g.index] = multipletests(p, method="holm")[1] if len(p) else p
    return out


def describe_ablation(table: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Sentences computed from the table: per comparison (best native variant for b), split
    and metric: pooled accuracies, the difference and its interval, and in how many languages
    the difference is significant by McNemar's exact test (raw and Holm-adjusted)."""
    lines = []
    main = table[table["quality_bucket"] == "all"]
    main = main[main["best_native"] | (main["comparison"] == "a")]
    for (comp, variant, split, metric), g in main.groupby(
        ["comparison", "variant", "split", "metric"], sort=False
    ):
        pooled = g[g["lang"] == "all"]
        langs = g[g["lang"] != "all"]
        if pooled.empty:
            continue
        r = pooled.iloc[0]
        what = (
            f"({comp}) {variant} on originals vs on translations"
            if comp == "a"
            else f"({comp}) {variant} on translations vs the best native variant on originals"
        )
        worse = langs[(langs["mcnemar_p"] < alpha) & (langs["diff"] < 0)]
        better = langs[(langs["mcnemar_p"] < alpha) & (langs["diff"] > 0)]
        holm = langs[langs["mcnemar_p_holm"] < alpha]
        natives = ""
        if comp == "b":
            picks = langs.groupby("native_variant").size()
            natives = " [native: " + ", ".join(f"{v} in {n}" for v, n in picks.items()) + "]"
        lines.append(
            f"{what}, {split}, {metric}: {r.acc_original:.3f} -> {r.acc_translated:.3f} "
            f"(diff {r['diff']:+.3f} [{r.diff_ci_low:+.3f}, {r.diff_ci_high:+.3f}], "
            f"McNemar p {r.mcnemar_p:.3g}, {int(r.n_pairs)} posts); per language p < {alpha}: "
            f"{len(worse)} worse, {len(better)} better of {len(langs)} "
            f"({len(holm)} after Holm){natives}"
        )
    return lines
