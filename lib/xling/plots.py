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
