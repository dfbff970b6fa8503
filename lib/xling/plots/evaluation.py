"""Figures of notebook 03_crosslingual_eval: the accuracy heatmap, confusion matrices, topic versus
stance.
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import _evalset_order, _variant_order, trained_on
from xling.schema import FAILED  # noqa: E402
from xling.tasks import load_task


def plot_accuracy_heatmap(
    table: pd.DataFrame,
    training: dict[str, list[str]],
    value: str = "accuracy",
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    marked=(),
    pairs: dict[str, list[str]] | None = None,
) -> Figure:
    """Variants (rows) by evaluation sets (columns), coloured and annotated with ``value``; a
    cell whose language the variant was trained on is boxed, so the unboxed cells are transfer
    to languages the variant never saw. A cell of a language the variant saw only as translation
    pairs (``pairs``: variant -> languages, 01's ``pair_variants``) gets a dashed box. Cells in
    ``marked`` ((variant, evalset) pairs: sets holding posts the variant's training set held) get
    a red corner mark. ``table`` has one row per (variant, evalset)."""
    import numpy as np
    from matplotlib.patches import Rectangle

    marked = set(marked)
    pairs = pairs or {}
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
            if trained_on(variant, evalset, training):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="#ff7f0e"))
            elif evalset != "multi" and evalset.split("-")[0] in pairs.get(variant, ()):
                corner, side = (j - 0.45, i - 0.45), 0.9
                dashed = {"fill": False, "lw": 1.5, "ls": "--", "ec": "#ff7f0e"}
                ax.add_patch(Rectangle(corner, side, side, **dashed))
            if (variant, evalset) in marked:
                ax.plot(j + 0.36, i - 0.3, marker="v", color="#d62728", markersize=5)
    ax.set_xticks(range(len(sets)), sets, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(variants)), variants, fontsize=8)
    label = "evaluation set (boxed: a language the variant was trained on"
    if any(pairs.values()):
        label += "; dashed: seen as translation pairs only"
    if marked:
        label += "; red mark: holds posts the variant trained on"
    ax.set_xlabel(label + ")")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label=value.replace("_", " "))
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_matrices(predictions: pd.DataFrame, title: str = "", task=None) -> Figure:
    """One confusion matrix per variant (rows: gold label, columns: prediction, ``failed``
    added when some output failed to parse), shares of each gold row, counts annotated; labels
    in ``task``'s order under their short names (default the paper's task)."""
    import numpy as np

    task = load_task(task)
    labels = list(task.labels)
    variants = _variant_order(predictions["variant"])
    cols = labels + ([FAILED] if (predictions["prediction"] == FAILED).any() else [])
    short = {**task.short, FAILED: FAILED}
    n = len(variants)
    fig, axes = plt.subplots(1, n, figsize=(2.7 * n + 0.6, 3.0), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        sub = predictions[predictions["variant"] == variant]
        counts = pd.crosstab(sub["label"], sub["prediction"]).reindex(
            index=labels, columns=cols, fill_value=0
        )
        share = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0)
        ax.imshow(share.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
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
        ax.set_yticks(range(len(labels)), [short[c] for c in labels], fontsize=7)
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
    """Topic accuracy (about the task's topic or not: immigration in the paper) beside stance
    accuracy (the exact label among posts on the topic), variants by evaluation sets (``table``
    as :func:`xling.metrics.topic_stance` gives it, for any task): does topic transfer where
    stance does not?"""
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
                if trained_on(variant, evalset, training):
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


def plot_answer_shares(shares: pd.DataFrame, methods=("score", "calibrated"), task=None) -> Figure:
    """How often each model answers each label, raw (``score``) against calibrated, one panel
    per answer group (this run's test posts, each evaluation file): a stacked bar per variant and
    method, the gold shares on top, each bar's accuracy (and the group's floor) at its end.
    ``shares`` is :func:`xling.metrics.answer_shares`."""
    import numpy as np

    spec = load_task(task)
    colors = dict(spec.colors)
    groups = list(dict.fromkeys(shares["group"]))
    variants = _variant_order(shares.loc[shares["method"].isin(methods), "variant"])
    rows = [("gold", "gold")] + [(v, m) for v in variants for m in methods]
    fig, axes = plt.subplots(
        1, len(groups), figsize=(4.6 * len(groups), 0.8 + 0.3 * len(rows)), squeeze=False
    )
    for ax, group in zip(axes[0], groups, strict=True):
        mine = shares[shares["group"] == group]
        ticks = []
        for i, (variant, method) in enumerate(rows):
            row = mine[(mine["variant"] == variant) & (mine["method"] == method)]
            ticks.append("gold labels" if variant == "gold" else f"{variant} · {method}")
            if row.empty:
                continue
            r = row.iloc[0]
            left = 0.0
            for label in spec.labels:
                width = float(r[f"answers_{label}"])
                ax.barh(i, width, left=left, color=colors[label], edgecolor="white", lw=0.5)
                left += width
            if variant != "gold" and not np.isnan(r["accuracy"]):
                ax.text(1.02, i, f"{r['accuracy']:.2f}", va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), ticks, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        for k in range(len(variants)):  # a line between variants
            ax.axhline(0.5 + k * len(methods), color="0.6", lw=0.6)
        floor = mine["floor"].dropna()
        title = f"{group} (n = {int(mine['n'].max())})"
        if len(floor):
            title += f"\naccuracy at the right; floor {floor.iloc[0]:.2f}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("share of answers", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[label]) for label in spec.labels]
    fig.legend(
        handles, spec.labels, loc="lower center", ncol=len(spec.labels), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
