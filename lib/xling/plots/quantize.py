"""Figures of notebook 02_quantize: agreement, KL and size of each file."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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
