"""Figures of notebook 04_translation_ablation: original against translated, the gap by translation
quality.
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import _lang_order

#: Colours of the two sides of a translation comparison, the same in both figures.
SIDE_COLORS = {"original": "#3b75af", "translated": "#e4572e"}


COMPARISON_COLORS = {"a": "#3b75af", "b": "#8c564b"}


def _comparison_title(comparison: str, variant: str, native: str | None = None) -> str:
    if comparison == "a":
        return f"(a) {variant} on the originals vs on their translations"
    natives = f" ({native})" if native else ""
    return f"(b) {variant} on translations vs the best native variant{natives} on originals"


def plot_translation_accuracy(
    ablation: pd.DataFrame, metric: str = "label", alpha: float = 0.05, title: str = ""
) -> Figure:
    """Accuracy on the originals beside accuracy on the translations, per language (and all
    languages pooled), with 95% bootstrap intervals; one row of panels per comparison (a: the
    same variant on both; b: the native variant on the originals), one column per split. A star
    marks a language whose difference McNemar's exact test finds at ``alpha``; the number under
    each language is its paired posts. For b, the native variant chosen is named on each."""
    import numpy as np

    view = ablation[
        (ablation["quality_bucket"] == "all")
        & (ablation["metric"] == metric)
        & ablation["best_native"].astype(bool)
    ]
    panels = list(dict.fromkeys(zip(view["comparison"], view["variant"], strict=True)))
    splits = [s for s in ("test", "extra", "train") if s in set(view["split"])]
    splits += sorted(set(view["split"]) - set(splits))
    langs_of = {
        split: _lang_order(set(view.loc[view["split"] == split, "lang"]) - {"all"}) + ["all"]
        for split in splits
    }
    widths = [len(langs_of[s]) + 0.6 for s in splits]
    fig, axes = plt.subplots(
        len(panels),
        len(splits),
        figsize=(1.2 + 0.55 * sum(widths), 2.9 * len(panels) + 0.7),
        squeeze=False,
        sharey=True,
        gridspec_kw={"width_ratios": widths},
    )
    for i, (comparison, variant) in enumerate(panels):
        for j, split in enumerate(splits):
            ax, langs = axes[i][j], langs_of[split]
            g = view[
                (view["comparison"] == comparison)
                & (view["variant"] == variant)
                & (view["split"] == split)
            ].set_index("lang")
            xs = np.arange(len(langs))
            for side, dx, marker in (("original", -0.17, "o"), ("translated", 0.17, "s")):
                acc = g.reindex(langs)[f"acc_{side}"].to_numpy(dtype=float)
                lo = g.reindex(langs)[f"acc_{side}_low"].to_numpy(dtype=float)
                hi = g.reindex(langs)[f"acc_{side}_high"].to_numpy(dtype=float)
                ax.errorbar(
                    xs + dx,
                    acc,
                    yerr=[acc - lo, hi - acc],
                    fmt=marker,
                    ms=4.5,
                    color=SIDE_COLORS[side],
                    elinewidth=1,
                    capsize=2,
                )
            for k, lang in enumerate(langs):
                if lang not in g.index:
                    continue
                r = g.loc[lang]
                ax.plot(
                    [k - 0.17, k + 0.17],
                    [r.acc_original, r.acc_translated],
                    color="0.55",
                    lw=0.8,
                    zorder=0,
                )
                if r.mcnemar_p < alpha:
                    ax.text(k, 1.04, "*", ha="center", va="center", fontsize=12)
                ax.text(k, -0.13, f"{int(r.n_pairs)}", ha="center", fontsize=6.5, color="0.35")
                if comparison == "b":
                    ax.text(
                        k,
                        -0.06,
                        str(r.native_variant),
                        ha="center",
                        fontsize=5.5,
                        color=SIDE_COLORS["original"],
                    )
            ax.axvline(len(langs) - 1.5, color="0.7", lw=0.8, ls="--")
            ax.set_xticks(xs, langs, fontsize=8)
            ax.set_xlim(-0.6, len(langs) - 0.4)
            ax.set_ylim(-0.17, 1.09)
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
            ax.grid(axis="y", alpha=0.3, lw=0.5)
            name = _comparison_title(comparison, variant)
            ax.set_title(f"{name}\n{split} posts", fontsize=8.5)
        axes[i][0].set_ylabel(f"{metric} accuracy")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=SIDE_COLORS["original"], label="original post"),
        plt.Line2D([], [], marker="s", ls="", color=SIDE_COLORS["translated"], label="translation"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=2, frameon=False)
    note = (
        f"* McNemar exact p < {alpha}; grey numbers: paired posts; bars: 95% bootstrap "
        "intervals; (b): the native variant named above each count"
    )
    fig.text(0.5, 0.005, note, ha="center", fontsize=7.5)
    fig.suptitle(
        title or f"{metric} accuracy, original vs translated", fontsize=10, x=0.02, ha="left"
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_gap_by_quality(
    ablation: pd.DataFrame, lang: str = "all", min_pairs: int = 10, title: str = ""
) -> Figure:
    """The difference translated - original (with its paired 95% bootstrap interval) per
    translation-quality bucket, for the exact label, the topic and the stance separately; both
    comparisons in each panel (b with its best native variant), one row of panels per split.
    Left of zero: the translation loses. Cells of fewer than ``min_pairs`` posts are not drawn
    (their interval spans everything)."""
    import numpy as np

    from xling.analysis.ablation import BUCKETS, SCORED

    view = ablation[
        (ablation["lang"] == lang)
        & ablation["best_native"].astype(bool)
        & (ablation["n_pairs"] >= min_pairs)
    ]
    splits = [s for s in ("test", "extra", "train") if s in set(view["split"])]
    splits += sorted(set(view["split"]) - set(splits))
    buckets = [b for b in BUCKETS if b in set(view["quality_bucket"])]
    series = list(dict.fromkeys(zip(view["comparison"], view["variant"], strict=True)))
    fig, axes = plt.subplots(
        len(splits),
        len(SCORED),
        figsize=(3.4 * len(SCORED) + 0.8, 0.55 * len(buckets) * len(splits) + 1.4),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    step = 0.5 / max(1, len(series))
    lows = view.loc[view["quality_bucket"].isin(buckets), "diff_ci_low"].abs()
    highs = view.loc[view["quality_bucket"].isin(buckets), "diff_ci_high"].abs()
    reach = float(np.nanmax([lows.max(), highs.max(), 0.1]))
    for i, split in enumerate(splits):
        for j, metric in enumerate(SCORED):
            ax = axes[i][j]
            ax.axvline(0, color="0.4", lw=0.8)
            for k, (comparison, variant) in enumerate(series):
                g = view[
                    (view["split"] == split)
                    & (view["metric"] == metric)
                    & (view["comparison"] == comparison)
                    & (view["variant"] == variant)
                ].set_index("quality_bucket")
                g = g.reindex(buckets)
                ys = np.arange(len(buckets)) + (k - (len(series) - 1) / 2) * step
                d = g["diff"].to_numpy(dtype=float)
                lo = g["diff_ci_low"].to_numpy(dtype=float)
                hi = g["diff_ci_high"].to_numpy(dtype=float)
                ax.errorbar(
                    d,
                    ys,
                    xerr=[d - lo, hi - d],
                    fmt="o",
                    ms=4,
                    color=COMPARISON_COLORS.get(comparison, "0.3"),
                    elinewidth=1,
                    capsize=2,
                )
                for y, n, x in zip(ys, g["n_pairs"], hi, strict=True):
                    if np.isfinite(x):
                        ax.text(x + 0.02, y, f"{int(n)}", va="center", fontsize=6, color="0.35")
            ax.set_xlim(-reach - 0.05, reach + 0.15)  # room for the counts on the right
            ax.set_yticks(range(len(buckets)), buckets, fontsize=8)
            ax.set_ylim(len(buckets) - 0.5, -0.5)
            ax.grid(axis="x", alpha=0.3, lw=0.5)
            ax.set_title(f"{metric}, {split} posts", fontsize=9)
            if i == len(splits) - 1:
                ax.set_xlabel("accuracy on translation - on original", fontsize=8)
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=COMPARISON_COLORS.get(c, "0.3"),
            label=_comparison_title(c, v),
        )
        for c, v in series
    ]
    fig.legend(handles=handles, loc="lower center", fontsize=7.5, ncol=1, frameon=False)
    where = "all languages pooled" if lang == "all" else lang
    fig.suptitle(
        title
        or f"what translation changes, by translation quality ({where}; numbers: posts; "
        f"cells under {min_pairs} posts left out)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(series), 1, 0.97))
    return fig
