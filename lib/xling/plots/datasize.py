"""Figures of notebook 06_data_size: the learning curve, diversity versus volume."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import _lang_order


def plot_learning_curve(curve: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy and macro F1 against k (posts of the target language added to English), one
    column per target language: on the target's own test posts, each seed a point with its 95%
    bootstrap interval and the seeds' mean as a line; the other languages' mean dashed."""
    targets = _lang_order(curve["target_lang"].unique())
    fig, axes = plt.subplots(
        2, len(targets), figsize=(3.4 * len(targets) + 0.6, 5.6), squeeze=False, sharey="row"
    )
    seeds = sorted(curve["seed"].unique())
    for j, target in enumerate(targets):
        mine = curve[curve["target_lang"] == target]
        ks = sorted(mine["k"].unique())
        span = (max(ks) - min(ks)) or 1
        for i, (metric, name) in enumerate((("accuracy", "accuracy"), ("macro_f1", "macro F1"))):
            ax = axes[i][j]
            own = mine[mine["eval_lang"] == target]
            low, high = (
                ("acc_ci_low", "acc_ci_high") if i == 0 else ("macro_f1_ci_low", "macro_f1_ci_high")
            )
            for s, seed in enumerate(seeds):
                g = own[own["seed"] == seed].sort_values("k")
                dx = (s - (len(seeds) - 1) / 2) * 0.015 * span
                ax.errorbar(
                    g["k"] + dx,
                    g[metric],
                    yerr=[g[metric] - g[low], g[high] - g[metric]],
                    fmt="o",
                    ms=3.5,
                    color=f"C{s}",
                    alpha=0.7,
                    elinewidth=0.8,
                    capsize=2,
                    label=f"seed {seed}" if j == 0 and i == 0 else None,
                )
            mean = own.groupby("k")[metric].mean()
            ax.plot(
                mean.index,
                mean.to_numpy(),
                color="black",
                lw=1.8,
                label="mean of seeds" if j == 0 and i == 0 else None,
            )
            other = mine[mine["eval_lang"] != target].groupby("k")[metric].mean()
            if len(other):
                ax.plot(
                    other.index,
                    other.to_numpy(),
                    color="0.5",
                    ls="--",
                    lw=1.2,
                    label="other languages (mean)" if j == 0 and i == 0 else None,
                )
            if i == 0 and "majority" in own and len(own):
                ax.axhline(
                    own["majority"].iloc[0],
                    color="0.3",
                    ls=":",
                    lw=1,
                    label="commonest label, always" if j == 0 else None,
                )
            n = int(own["n"].max()) if len(own) else 0
            ax.set_xticks(ks)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3, lw=0.5)
            if i == 0:
                ax.set_title(f"target {target} ({n} test posts)", fontsize=9)
            else:
                ax.set_xlabel(f"k: {target} training posts added to English")
            if j == 0:
                ax.set_ylabel(name)
    fig.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        fontsize=7.5,
        frameon=False,
        ncol=min(len(seeds) + 3, 5),
    )
    fig.suptitle(
        title or "Learning curve: English plus k posts of a target language",
        fontsize=10,
        x=0.02,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    return fig


def plot_diversity(table: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy of the multilingual variant and of the token-matched English+Spanish control per
    evaluation language (and all pooled), with 95% bootstrap intervals; a star where the paired
    interval of the difference excludes 0."""
    import numpy as np

    langs = _lang_order(set(table["eval_lang"]) - {"all"}) + ["all"]
    g = table.set_index("eval_lang").reindex(langs)
    xs = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.2 + 0.55 * len(langs)), 4.0))
    for name, dx, color in (("multi", -0.17, "#3b75af"), ("control", 0.17, "#8c564b")):
        acc = g[f"acc_{name}"].to_numpy(dtype=float)
        lo = g[f"acc_{name}_ci_low"].to_numpy(dtype=float)
        hi = g[f"acc_{name}_ci_high"].to_numpy(dtype=float)
        label = (
            f"multilingual ({int(g['posts_multi'].iloc[0])} posts, "
            f"{int(g['tokens_multi'].iloc[0])} tokens)"
            if name == "multi"
            else f"en+es control ({int(g['posts_control'].iloc[0])} posts, "
            f"{int(g['tokens_control'].iloc[0])} tokens)"
        )
        ax.errorbar(
            xs + dx,
            acc,
            yerr=[acc - lo, hi - acc],
            fmt="o",
            ms=4.5,
            color=color,
            elinewidth=1,
            capsize=2,
            label=label,
        )
    for k, lang in enumerate(langs):
        if not g.loc[lang, "within_noise"]:
            ax.text(k, 1.04, "*", ha="center", va="center", fontsize=12)
        ax.text(k, -0.1, f"{int(g.loc[lang, 'n_posts'])}", ha="center", fontsize=6.5, color="0.35")
    ax.axvline(len(langs) - 1.5, color="0.7", lw=0.8, ls="--")
    ax.set_xticks(xs, langs, fontsize=8)
    ax.set_ylim(-0.14, 1.09)
    ax.set_ylabel("accuracy")
    ax.grid(axis="y", alpha=0.3, lw=0.5)
    ax.legend(fontsize=7.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    ax.set_title(
        title
        or "Diversity vs volume: multilingual vs English+Spanish at the same posts and tokens\n"
        "(* paired 95% interval of the difference excludes 0; grey: posts)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def plot_pairs(table: pd.DataFrame, title: str = "") -> Figure:
    """Translation pairs against labelled posts (pairs.csv): accuracy against n, the target
    posts added to English as labelled posts (k) or as translation pairs (m), one column per
    target language; top, on the target's own test posts (seed-averaged, 95% bootstrap
    intervals); bottom, the mean over the other evaluation languages. n = 0 is English alone,
    shared by both lines; the commonest label, always answered, dotted."""
    targets = _lang_order(table["target_lang"].unique())
    fig, axes = plt.subplots(
        2,
        len(targets),
        figsize=(max(6.4, 3.6 * len(targets) + 0.8), 6.0),
        squeeze=False,
        sharey="row",
    )
    styles = {
        "labels": ("labelled posts (k)", "#3b75af", "o", -1, "-"),
        "pairs": ("translation pairs (m), no label", "#d95f02", "s", 1, "--"),
    }
    for j, target in enumerate(targets):
        mine = table[table["target_lang"] == target]
        ns = sorted(mine["n"].unique())
        span = (max(ns) - min(ns)) or 1
        own = mine[mine["eval_lang"] == target]
        other = mine[mine["eval_lang"] != target]
        for axis, (label, color, marker, side, ls) in styles.items():
            g = own[own["axis"] == axis].sort_values("n")
            dx = side * 0.012 * span
            axes[0][j].errorbar(
                g["n"] + dx,
                g["accuracy"],
                yerr=[g["accuracy"] - g["acc_ci_low"], g["acc_ci_high"] - g["accuracy"]],
                fmt=marker,
                ls=ls,
                ms=4.5,
                color=color,
                lw=1.6,
                elinewidth=0.9,
                capsize=2.5,
                label=label if j == 0 else None,
            )
            o = other[other["axis"] == axis].groupby("n")["accuracy"].mean()
            if len(o):
                axes[1][j].plot(
                    o.index, o.to_numpy(), marker=marker, ls=ls, ms=4, color=color, lw=1.4
                )
        if len(own):
            axes[0][j].axhline(
                own["majority"].iloc[0],
                color="0.3",
                ls=":",
                lw=1,
                label="commonest label, always" if j == 0 else None,
            )
        n_own = int(own["n_posts"].max()) if len(own) else 0
        others = sorted(other["eval_lang"].unique())
        axes[0][j].set_title(f"{target}: its own {n_own} test posts", fontsize=9)
        axes[1][j].set_title(
            f"mean of the other languages ({', '.join(others) or 'none'})", fontsize=8.5
        )
        for i in (0, 1):
            ax = axes[i][j]
            ax.set_xticks(ns)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3, lw=0.5)
        axes[1][j].set_xlabel(f"n: {target} training posts added to English")
    axes[0][0].set_ylabel("accuracy")
    axes[1][0].set_ylabel("accuracy")
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=7.5, frameon=False, ncol=3)
    fig.suptitle(
        title
        or "Translation pairs instead of labels: English labelled posts plus n posts\n"
        "of the target language, labelled or as translation pairs\n"
        "(same seeds, steps and evaluation posts; 95% bootstrap intervals)",
        fontsize=9.5,
        x=0.02,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.9))
    return fig
