"""Figure of notebook 09_classify_archive (and ``xling classify``): what an archive says, label
shares per language and per day."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import LABEL_COLORS, _lang_order
from xling.schema import LABELS  # noqa: E402


def plot_archive_summary(summary: pd.DataFrame, title: str = "") -> Figure:
    """Label shares per language (stacked bars, posts per language above them) and, where the
    summary has days, per day (stacked areas): the table :func:`xling.archive.summary_table`
    makes. With neither, one bar for the whole archive."""
    by_lang = summary[(summary["lang"] != "all") & (summary["day"] == "all")]
    by_day = summary[(summary["lang"] == "all") & (summary["day"] != "all")]
    by_day = by_day[by_day["day"] != "unknown"].sort_values("day")
    if by_lang.empty:
        by_lang = summary[(summary["lang"] == "all") & (summary["day"] == "all")]
    panels = 1 + (not by_day.empty)
    fig, axes = plt.subplots(
        1,
        panels,
        figsize=(max(5.0, 0.5 * len(by_lang) + 2) + 5.5 * (panels - 1), 4.0),
        squeeze=False,
        gridspec_kw={"width_ratios": [max(1.0, len(by_lang) / 8)] + [1.2] * (panels - 1)},
    )
    ax = axes[0][0]
    langs = _lang_order(by_lang["lang"])
    table = by_lang.set_index("lang").reindex(langs)
    bottom = np.zeros(len(table))
    for label in LABELS:
        ax.bar(
            table.index,
            table[label],
            bottom=bottom,
            color=LABEL_COLORS[label],
            label=label,
            edgecolor="white",
            linewidth=0.4,
        )
        bottom += table[label].to_numpy()
    for x, n in enumerate(table["n_posts"]):
        ax.text(x, 1.01, f"{int(n)}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("share of posts")
    ax.set_xlabel("language (posts above each bar)")
    ax.set_title(f"by language ({int(table['n_posts'].sum())} posts)")
    ax.tick_params(axis="x", labelsize=8)
    if panels == 2:
        ax2 = axes[0][1]
        days = pd.to_datetime(by_day["day"])
        ax2.stackplot(
            days,
            *[by_day[label].to_numpy() for label in LABELS],
            colors=[LABEL_COLORS[label] for label in LABELS],
            labels=list(LABELS),
            alpha=0.95,
        )
        ax2.set_ylim(0, 1)
        ax2.set_xlim(days.min(), days.max())
        ax2.set_title(f"by day ({len(by_day)} days, {int(by_day['n_posts'].sum())} posts)")
        ax2.set_ylabel("share of posts")
        ax2.tick_params(axis="x", labelsize=7, labelrotation=30)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(
        handles, names, loc="upper center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.04)
    )
    if title:
        fig.suptitle(title, y=1.1)
    fig.tight_layout()
    return fig
