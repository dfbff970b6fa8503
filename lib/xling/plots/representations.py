"""Figures of notebook 07_representations: the logit lens per variant, ABX error per layer, probe
transfer per layer, and a grid of PCA panels."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator

from xling.analysis.representations import ABX_TASKS, lens_by_group
from xling.plots.common import LABEL_COLORS, _lang_order
from xling.schema import LABELS

#: One colour per model: the base model grey, variants in order.
_MODEL_COLORS = ["0.35", "C0", "C3", "C2", "C4", "C1"]


def _model_colors(models) -> dict[str, str]:
    models = list(dict.fromkeys(models))
    rest = [m for m in models if m != "base"]
    colors = {"base": _MODEL_COLORS[0]} if "base" in models else {}
    colors.update({m: _MODEL_COLORS[1 + i % 5] for i, m in enumerate(rest)})
    return colors


def plot_lens(lens: pd.DataFrame, title: str = "") -> Figure:
    """Per model, one panel: the gold label's probability among the four answers when each
    layer's state at the answer position is read through the final norm and output embedding;
    thin lines per language, thick lines pooled over trained-on (solid) and never-seen
    (dashed) languages; chance (0.25) dotted."""
    models = list(dict.fromkeys(lens["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(3.6 * len(models) + 0.4, 3.4), squeeze=False, sharey=True
    )
    groups = lens_by_group(lens)
    for ax, m in zip(axes[0], models, strict=True):
        mine = lens[lens["model"] == m]
        for _lang, g in mine.groupby("lang"):
            color = "C0" if g["seen"].iloc[0] else "C3"
            g = g.sort_values("layer")
            ax.plot(g["layer"], g["p_gold"], color=color, lw=0.6, alpha=0.35)
        for seen, style, color in ((True, "-", "C0"), (False, "--", "C3")):
            g = groups[(groups["model"] == m) & (groups["seen"] == seen)].sort_values("layer")
            if g.empty:
                continue
            n_langs = mine.loc[mine["seen"] == seen, "lang"].nunique()
            what = "trained-on" if seen else "never-seen"
            ax.plot(
                g["layer"],
                g["p_gold"],
                style,
                color=color,
                lw=2,
                label=f"{what} ({n_langs} lang., {int(g['n'].iloc[0])} posts)",
            )
        ax.axhline(1 / len(LABELS), color="0.3", ls=":", lw=1)
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("layer (0: embedding)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("P(gold answer) among the four")
    fig.suptitle(title or "Logit lens at the answer position", fontsize=11)
    fig.tight_layout()
    return fig


def plot_abx(abx: pd.DataFrame, position: str = "mean", title: str = "") -> Figure:
    """One panel per ABX task: error per layer with its 95% bootstrap band, one line per model;
    0.5 (chance) dashed. Lower error: the representation discriminates better."""
    ab = abx[abx["position"] == position]
    tasks = [t for t in ABX_TASKS if t in set(ab["task"])]
    colors = _model_colors(ab["model"])
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(3.8 * len(tasks) + 0.4, 3.4), squeeze=False, sharey=True
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        mine = ab[ab["task"] == task]
        for m, color in colors.items():
            g = mine[mine["model"] == m].sort_values("layer")
            ax.fill_between(g["layer"], g["low"], g["high"], color=color, alpha=0.18, lw=0)
            ax.plot(g["layer"], g["error"], color=color, lw=1.6, label=m)
        ax.axhline(0.5, color="0.3", ls="--", lw=1)
        n = int(mine["n_triplets"].iloc[0]) if len(mine) else 0
        ax.set_title(f"{task} ({n} triplets)", fontsize=10)
        ax.set_xlabel("layer (0: embedding)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0][0].set_ylabel(f"ABX error ({position} of post tokens)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(
        title or "ABX discrimination per layer (cosine; lower: better told apart)", fontsize=11
    )
    fig.tight_layout()
    return fig


def plot_probes(probes: pd.DataFrame, position: str = "mean", title: str = "") -> Figure:
    """Three panels: the English-trained label probe (four classes) and topic probe (about
    immigration or not) on the other languages pooled, and the language-identity probe
    (cross-validated), balanced accuracy (mean recall over classes) per layer, one line per
    model; chance (1 over the classes) dotted."""
    pr = probes[probes["position"] == position]
    colors = _model_colors(pr["model"])
    panels = [
        ("label", "others", "label probe: trained on en, tested on others"),
        ("topic", "others", "topic probe: trained on en, tested on others"),
        ("language", "all", "language probe (cross-validated)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(11.8, 3.4), squeeze=False, sharey=True)
    for ax, (probe, test, name) in zip(axes[0], panels, strict=True):
        mine = pr[(pr["probe"] == probe) & (pr["test_lang"] == test)]
        for m, color in colors.items():
            g = mine[mine["model"] == m].sort_values("layer")
            ax.plot(g["layer"], g["balanced_accuracy"], color=color, lw=1.6, label=m)
        if len(mine):
            ax.axhline(mine["chance_balanced"].iloc[0], color="0.3", ls=":", lw=1)
            n = int(mine["n_test"].iloc[0])
            name = f"{name}\n({n} posts)"
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("layer (0: embedding)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, lw=0.5)
    axes[0][0].set_ylabel(f"balanced accuracy ({position} of post tokens)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title or "Linear probes per layer", fontsize=11)
    fig.tight_layout()
    return fig


#: Marker of each label in the PCA grid's rows coloured by label.
LABEL_MARKERS = dict(zip(LABELS, ("o", "s", "^", "v"), strict=True))


def plot_pca_grid(pca: pd.DataFrame, layers: list[int], title: str = "") -> Figure:
    """Rows: each model twice, its posts coloured by language and then by label; columns: the
    given layers. Each panel is that model and layer's own PCA (first two components, their
    share of the variance in the corner)."""
    models = list(dict.fromkeys(pca["model"]))
    langs = _lang_order(pca["lang"].unique())
    cmap = plt.get_cmap("tab20")
    lang_colors = {lang: cmap(i % 20) for i, lang in enumerate(langs)}
    rows = [(m, by) for m in models for by in ("language", "label")]
    fig, axes = plt.subplots(
        len(rows), len(layers), figsize=(2.3 * len(layers) + 1.6, 2.2 * len(rows)), squeeze=False
    )
    for i, (m, by) in enumerate(rows):
        for j, layer in enumerate(layers):
            ax = axes[i][j]
            g = pca[(pca["model"] == m) & (pca["layer"] == layer)]
            if by == "language":
                colors = g["lang"].map(lang_colors)
                ax.scatter(g["pc1"], g["pc2"], c=list(colors), s=7, lw=0, alpha=0.85)
            else:  # labels by shape as well as colour: apart from the languages at a glance
                for lab, marker in LABEL_MARKERS.items():
                    h = g[g["label"] == lab]
                    ax.scatter(
                        h["pc1"],
                        h["pc2"],
                        color=LABEL_COLORS[lab],
                        marker=marker,
                        s=9,
                        lw=0,
                        alpha=0.85,
                    )
            if len(g):
                ax.text(
                    0.02,
                    0.02,
                    f"{g['var1'].iloc[0] + g['var2'].iloc[0]:.0%} var.",
                    transform=ax.transAxes,
                    fontsize=6,
                    color="0.3",
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"layer {layer}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{m}\nby {by}", fontsize=8)
    by_language = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=lang)
        for lang, c in lang_colors.items()
    ]
    by_label = [
        plt.Line2D([], [], marker=LABEL_MARKERS[lab], ls="", color=LABEL_COLORS[lab], label=lab)
        for lab in LABELS
        if lab in set(pca["label"])
    ]
    # two legends, each titled with the rows it reads: one list would run languages and labels
    # together, and some of their colours are alike
    for handles, where, y, rows in (
        (by_language, "upper right", 0.9, "language"),
        (by_label, "lower right", 0.1, "label"),
    ):
        fig.legend(  # a figure keeps every legend it is given (an axes keeps its last)
            handles=handles,
            loc=where,
            bbox_to_anchor=(1, y),
            fontsize=7,
            frameon=False,
            title=f"rows 'by {rows}'",
            title_fontsize=7,
        )
    position = pca["position"].iloc[0] if len(pca) else ""
    fig.suptitle(
        title or f"PCA of the posts' representations ({position} of post tokens)", fontsize=11
    )
    fig.tight_layout(rect=(0, 0, 1 - 1.8 / (2.3 * len(layers) + 1.6), 0.97))
    return fig
