"""Figures: functions take tables and return a matplotlib Figure; notebooks save them.

``save_figure`` writes PNG and PDF under figures/<profile>/ with the Agg backend, named after what
the figure shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling import paths  # noqa: E402
from xling.data import LABELS, PAPER_LANGS, SPLITS  # noqa: E402

#: One colour per label, the same in every figure.
LABEL_COLORS = {
    "unrelated": "#b8b8b8",
    "neutral": "#7fa7c9",
    "pro-immigration": "#4daf4a",
    "anti-immigration": "#e4572e",
}


def save_figure(fig: Figure, profile: str, name: str) -> list[Path]:
    """Save ``fig`` as figures/<profile>/<name>.png and .pdf; return the two paths."""
    out = paths.figure_dir(profile)
    written = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        written.append(path)
    return written


def _lang_order(langs) -> list[str]:
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    return sorted(set(langs), key=lambda x: (order.get(x, 99), x))


def plot_label_counts(posts: pd.DataFrame, title: str = "") -> Figure:
    """Posts per language, stacked by label, one panel per split (train / test / extra)."""
    splits = [s for s in SPLITS if (posts["split"] == s).any()]
    langs = _lang_order(posts["lang"])
    fig, axes = plt.subplots(
        1, len(splits), figsize=(4.2 * len(splits) + 1, 4.2), sharey=False, squeeze=False
    )
    for ax, split in zip(axes[0], splits, strict=True):
        sub = posts[posts["split"] == split]
        counts = (
            sub.groupby(["lang", "label"])
            .size()
            .unstack(fill_value=0)
            .reindex(index=[lang for lang in langs if lang in set(sub["lang"])], fill_value=0)
            .reindex(columns=list(LABELS), fill_value=0)
        )
        bottom = pd.Series(0, index=counts.index)
        for label in LABELS:
            ax.bar(
                counts.index,
                counts[label],
                bottom=bottom,
                color=LABEL_COLORS[label],
                label=label,
                edgecolor="white",
                linewidth=0.4,
            )
            bottom += counts[label]
        for x, total in enumerate(bottom):
            ax.text(x, total, str(int(total)), ha="center", va="bottom", fontsize=7)
        ax.set_title(f"{split} ({len(sub)} posts)")
        ax.set_xlabel("language")
        ax.tick_params(axis="x", labelrotation=0, labelsize=8)
        ax.margins(y=0.12)
    axes[0][0].set_ylabel("posts")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, names, loc="upper center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.03)
    )
    if title:
        fig.suptitle(title, y=1.09)
    fig.tight_layout()
    return fig


def plot_unrelated_share(share: pd.DataFrame, title: str = "") -> Figure:
    """Share of unrelated posts per evaluation set: the accuracy of always answering 'unrelated'."""
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(share) + 1.5), 3.6))
    ax.bar(share.index, share["share_unrelated"], color=LABEL_COLORS["unrelated"])
    for x, (v, n) in enumerate(zip(share["share_unrelated"], share["n"], strict=True)):
        ax.text(x, v, f"{v:.0%}\nn={n}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("share of unrelated posts")
    ax.set_xlabel("evaluation set")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    ax.set_title(title or "Majority-class floor: accuracy of always answering 'unrelated'")
    fig.tight_layout()
    return fig


def plot_loss_curves(losses: dict[str, pd.DataFrame], smooth: int = 5) -> Figure:
    """Training loss per step for each variant (thin: raw, thick: running mean of ``smooth``)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for i, (variant, df) in enumerate(losses.items()):
        color = f"C{i}"
        ax.plot(df["step"], df["loss"], color=color, alpha=0.25, linewidth=0.8)
        ax.plot(
            df["step"],
            df["loss"].rolling(smooth, min_periods=1).mean(),
            color=color,
            linewidth=2,
            label=f"{variant} ({len(df)} steps)",
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss on the answer tokens")
    ax.set_title("LoRA fine-tuning: loss per variant")
    ax.legend(frameon=False)
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    return fig


def plot_quantization(comparison: pd.DataFrame) -> Figure:
    """Agreement with the unquantized model, KL divergence and size, per backend and variant."""
    backends = list(dict.fromkeys(comparison["backend"]))
    variants = list(dict.fromkeys(comparison["variant"]))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    width = 0.8 / max(1, len(variants))
    for k, (col, title) in enumerate(
        [
            ("agreement", "agreement with unquantized"),
            ("kl", "KL(unquantized || file)"),
            ("size_mb", "size (MB)"),
        ]
    ):
        ax = axes[k]
        for i, variant in enumerate(variants):
            sub = comparison[comparison["variant"] == variant].set_index("backend")
            vals = [sub[col].get(b, float("nan")) for b in backends]
            ax.bar([x + i * width for x in range(len(backends))], vals, width, label=variant)
        ax.set_xticks([x + width * (len(variants) - 1) / 2 for x in range(len(backends))])
        ax.set_xticklabels(
            [b.replace("llamacpp-", "").replace("transformers-", "hf-") for b in backends],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax.set_title(title)
        if col == "kl":
            ax.set_yscale("symlog", linthresh=1e-3)
    axes[0].set_ylim(0, 1.05)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, title="variant", loc="center right", frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    return fig


def _evalset_order(evalsets) -> list[str]:
    """Per-language sets in the paper's order, then the extra sets, then the pooled ``multi``."""
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}

    def key(e: str):
        group = 2 if e == "multi" else (1 if e.endswith("-extra") else 0)
        lang = e.split("-")[0]
        return (group, order.get(lang, 99), e)

    return sorted(set(evalsets), key=key)


def _variant_order(variants) -> list[str]:
    """The untuned base first, then the paper's variants in its order, then any others."""
    known = ["base", "en", "es", "en-es", "multi", "en-es-full"]
    present = list(dict.fromkeys(variants))
    return [v for v in known if v in present] + [v for v in present if v not in known]


def _seen(variant: str, evalset: str, training: dict[str, list[str]]) -> bool:
    langs = training.get(variant, [])
    if evalset == "multi":
        return False
    return evalset.split("-")[0] in langs


def plot_accuracy_heatmap(
    table: pd.DataFrame,
    training: dict[str, list[str]],
    value: str = "accuracy",
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    marked=(),
) -> Figure:
    """Variants (rows) by evaluation sets (columns), coloured and annotated with ``value``; a
    cell whose language the variant was trained on is boxed, so the unboxed cells are transfer
    to languages the variant never saw. Cells in ``marked`` ((variant, evalset) pairs: sets
    holding posts the variant's training set held) get a red corner mark. ``table`` has one row
    per (variant, evalset)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    marked = set(marked)
    variants = _variant_order(table["variant"])
    sets = _evalset_order(table["evalset"])
    grid = table.pivot_table(index="variant", columns="evalset", values=value, aggfunc="first")
    grid = grid.reindex(index=variants, columns=sets)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * len(sets), 0.9 + 0.48 * len(variants)))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i, variant in enumerate(variants):
        for j, evalset in enumerate(sets):
            v = grid.iat[i, j]
            if not np.isnan(v):
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < (vmin + vmax) / 2 else "black",
                )
            if _seen(variant, evalset, training):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="#ff7f0e"))
            if (variant, evalset) in marked:
                ax.plot(j + 0.36, i - 0.3, marker="v", color="#d62728", markersize=5)
    ax.set_xticks(range(len(sets)), sets, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(variants)), variants, fontsize=8)
    label = "evaluation set (boxed: a language the variant was trained on"
    if marked:
        label += "; red mark: holds posts the variant trained on"
    ax.set_xlabel(label + ")")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label=value.replace("_", " "))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_matrices(predictions: pd.DataFrame, title: str = "") -> Figure:
    """One confusion matrix per variant (rows: gold label, columns: prediction, ``failed``
    added when some output failed to parse), shares of each gold row, counts annotated."""
    import numpy as np

    variants = _variant_order(predictions["variant"])
    cols = list(LABELS) + (["failed"] if (predictions["prediction"] == "failed").any() else [])
    short = {
        "unrelated": "unrel.",
        "neutral": "neutral",
        "pro-immigration": "pro",
        "anti-immigration": "anti",
        "failed": "failed",
    }
    n = len(variants)
    fig, axes = plt.subplots(1, n, figsize=(2.7 * n + 0.6, 3.0), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        sub = predictions[predictions["variant"] == variant]
        counts = pd.crosstab(sub["label"], sub["prediction"]).reindex(
            index=list(LABELS), columns=cols, fill_value=0
        )
        share = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
        ax.imshow(share.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(LABELS)):
            for j in range(len(cols)):
                ax.text(
                    j,
                    i,
                    int(counts.iat[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share.iat[i, j] > 0.5 else "black",
                )
        ax.set_xticks(
            range(len(cols)), [short[c] for c in cols], rotation=45, ha="right", fontsize=7
        )
        ax.set_yticks(range(len(LABELS)), [short[c] for c in LABELS], fontsize=7)
        ax.set_title(variant, fontsize=9)
        ax.set_xlabel("predicted", fontsize=7)
    axes[0][0].set_ylabel("gold", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_topic_stance(
    table: pd.DataFrame, training: dict[str, list[str]], title: str = ""
) -> Figure:
    """Topic accuracy (about immigration or not) beside stance accuracy (the exact label among
    posts about immigration), variants by evaluation sets: does topic transfer where stance
    does not?"""
    import numpy as np
    from matplotlib.patches import Rectangle

    variants = _variant_order(table["variant"])
    sets = _evalset_order(table["evalset"])
    fig, axes = plt.subplots(
        2, 1, figsize=(1.2 + 0.62 * len(sets), 2 * (0.9 + 0.45 * len(variants))), sharex=True
    )
    for ax, col, name in zip(
        axes,
        ("topic_accuracy", "stance_accuracy"),
        ("topic accuracy", "stance accuracy"),
        strict=True,
    ):
        grid = table.pivot_table(index="variant", columns="evalset", values=col, aggfunc="first")
        grid = grid.reindex(index=variants, columns=sets)
        ax.imshow(grid.to_numpy(dtype=float), cmap="magma", vmin=0, vmax=1, aspect="auto")
        for i, variant in enumerate(variants):
            for j, evalset in enumerate(sets):
                v = grid.iat[i, j]
                if not np.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if v < 0.5 else "black",
                    )
                if _seen(variant, evalset, training):
                    ax.add_patch(
                        Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.8, ec="#2ca02c")
                    )
        ax.set_xticks(range(len(sets)), sets, rotation=45, ha="right", fontsize=7.5)
        ax.set_yticks(range(len(variants)), variants, fontsize=8)
        ax.set_title(name, fontsize=10)
    fig.text(0.5, 0.0, "boxed: a language the variant was trained on", ha="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
