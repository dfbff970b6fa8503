"""Figures of notebook 01_finetune: loss curves."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


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
