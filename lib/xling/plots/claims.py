"""The claims' forest plot (notebook 08): one row per claim test, its estimate and 95% interval,
coloured by verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

VERDICT_COLORS = {
    "supported": "#1b9e77",
    "contradicted": "#d95f02",
    "not distinguishable": "#7570b3",
    "not testable from the released data": "#999999",
    "not testable from this run's data": "#999999",
}


def plot_claims(claims: pd.DataFrame, title: str = "") -> Figure:
    """Estimates with intervals of every claim test that has one (accuracy differences, in
    points; the regression terms, which are on other scales, in a panel of their own)."""
    c = claims[claims["estimate"].notna() & claims["ci_low"].notna()].copy()
    # each regression claim on its own scale (C4's share slope, C4b's slope difference)
    c["panel"] = np.where(
        c["claim"].isin(["C4", "C4b"]), c["claim"] + ": regression terms", "accuracy difference"
    )
    order = ("accuracy difference", "C4: regression terms", "C4b: regression terms")
    panels = [p for p in order if p in set(c["panel"])]
    sizes = [max(int((c["panel"] == p).sum()), 1) for p in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 0.28 * sum(sizes) + 1.6 * len(panels)),
        gridspec_kw={"height_ratios": sizes},
        squeeze=False,
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        rows = c[c["panel"] == panel].iloc[::-1]
        y = np.arange(len(rows))
        for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
            color = VERDICT_COLORS.get(r["verdict"], "k")
            ax.plot([r["ci_low"], r["ci_high"]], [yi, yi], color=color, lw=2)
            ax.scatter([r["estimate"]], [yi], color=color, s=24, zorder=3)
        labels = [f"{r['claim']} {r['test']} [{r['split']}]" for _, r in rows.iterrows()]
        ax.set_yticks(y, labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_title(panel, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    handles = [
        plt.Line2D([], [], color=col, lw=3, label=v)
        for v, col in VERDICT_COLORS.items()
        if v in set(c["verdict"])
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97 if title else 1))
    return fig
