"""Figures of the authors' Models 1-6 (notebook 05), drawn in our style: coefficient plots grouped
as the authors group their terms, Model 2's predicted accuracy per model and language, Model 3's
share-of-unrelated curves, Model 5's accuracy against the pretraining share, Model 6's size term.
Terms the identification audit flags are drawn hollow and marked "not identified".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from xling.analysis.authors import MODEL_ORDER

#: Term groups in the order the panels are drawn, with their colours.
GROUPS = {
    "Label": "#009E73",
    "Model": "#E69F00",
    "Translation": "#D55E00",
    "Language": "#0072B2",
    "Data split": "#999999",
    "Share unrelated": "#56B4E9",
    "Pretraining share": "#CC79A7",
    "Dataset size": "#999999",
    "Model × Language": "#E69F00",
    "Model × Share unrelated": "#56B4E9",
    "Model × Pretraining share": "#CC79A7",
    "Model × Label": "#009E73",
}
MODEL_COLORS = {
    "English": "#9A9A9A",
    "Spanish": "#E69F00",
    "English-Spanish": "#FE6100",
    "Multilanguage": "#0072B2",
}


def term_group(term: str) -> str:
    """The panel a term goes in (the authors' grouping, interaction blocks apart)."""
    if ":" in term:
        other = term.split(":", 1)[1]
        if other.startswith("Language"):
            return "Model × Language"
        if other.startswith("Share_Unrelated"):
            return "Model × Share unrelated"
        if other.startswith("LangShare"):
            return "Model × Pretraining share"
        return "Model × Label"
    for prefix, group in (
        ("Model", "Model"),
        ("Language", "Language"),
        ("TranslationQuality", "Translation"),
        ("label", "Label"),
        ("Train_Test", "Data split"),
        ("Share_Unrelated", "Share unrelated"),
        ("LangShare", "Pretraining share"),
        ("DatasetSize", "Dataset size"),
    ):
        if term.startswith(prefix):
            return group
    return "Other"


def clean_term(term: str) -> str:
    """A term as a reader says it: ``ModelSpanish:LanguageGerman`` -> ``Spanish × German``."""
    names = {
        "Share_Unrelated": "share unrelated",
        "LangShare": "pretraining share",
        "DatasetSize": "dataset size",
        "Train_TestTest": "test split",
    }
    parts = []
    for p in term.split(":"):
        if p in names:
            parts.append(names[p])
            continue
        for prefix in ("TranslationQuality", "Language", "Model", "label", "Train_Test"):
            if p.startswith(prefix):
                p = p[len(prefix) :]
                break
        parts.append(p)
    return " × ".join(parts)


def plot_coefficients(
    terms: pd.DataFrame, unidentified=(), title: str = "", max_rows: int = 70
) -> Figure:
    """Coefficients with 95% intervals, one panel per term group, sorted by estimate within a
    panel; aliased terms left out, terms in ``unidentified`` hollow and labelled so."""
    t = terms[(terms["term"] != "(Intercept)") & ~terms["aliased"]].copy()
    t["group"] = t["term"].map(term_group)
    groups = [g for g in GROUPS if g in set(t["group"])] + sorted(set(t["group"]) - set(GROUPS))
    t = t.sort_values("estimate")
    sizes = [len(t[t["group"] == g]) for g in groups]
    height = min(0.22 * sum(sizes) + 0.6 * len(groups) + 1, 0.22 * max_rows + 8)
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(9, max(height, 3)),
        sharex=True,
        gridspec_kw={"height_ratios": [max(s, 1) for s in sizes]},
        squeeze=False,
    )
    unidentified = set(unidentified)
    for ax, g in zip(axes[:, 0], groups, strict=True):
        rows = t[t["group"] == g]
        y = np.arange(len(rows))
        color = GROUPS.get(g, "#444444")
        ax.axvline(0, color="k", lw=0.8, ls="--", alpha=0.6)
        ax.errorbar(
            rows["estimate"],
            y,
            xerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
            fmt="none",
            ecolor=color,
            lw=1.2,
            capsize=2,
        )
        ident = ~rows["term"].isin(unidentified).to_numpy()
        ax.scatter(rows["estimate"][ident], y[ident], color=color, s=22, zorder=3)
        ax.scatter(
            rows["estimate"][~ident],
            y[~ident],
            facecolor="white",
            edgecolor=color,
            s=26,
            zorder=3,
            label="not identified",
        )
        labels = [
            clean_term(x) + ("  (not identified)" if x in unidentified else "")
            for x in rows["term"]
        ]
        ax.set_yticks(y, labels, fontsize=7 if len(rows) > 20 else 9)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_ylabel(g, fontsize=9, fontweight="bold", rotation=90)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("coefficient (log-odds of a correct prediction), 95% Wald interval")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight() if title else 1))
    return fig


def surface(terms: pd.DataFrame, models, languages) -> pd.DataFrame:
    """Model 2's model × language surface as the authors draw it: the sum of the model, language
    and interaction coefficients (the intercept and the other terms left out, as in their
    figure), and its logistic transform."""
    est = dict(zip(terms["term"], terms["estimate"].fillna(0.0), strict=True))
    rows = []
    for m in models:
        for lang in languages:
            eta = est.get(f"Model{m}", 0) + est.get(f"Language{lang}", 0)
            eta += est.get(f"Model{m}:Language{lang}", 0)
            rows.append(
                {"Model": m, "Language": lang, "log_odds": eta, "accuracy": 1 / (1 + np.exp(-eta))}
            )
    return pd.DataFrame(rows)


def plot_surface(surf: pd.DataFrame, title: str = "") -> Figure:
    """The model × language heatmap of Model 2 (languages ordered by mean predicted value)."""
    order = surf.groupby("Language")["accuracy"].mean().sort_values().index
    models = [m for m in MODEL_ORDER if m in set(surf["Model"])]
    wide = surf.pivot(index="Language", columns="Model", values="accuracy").loc[order, models]
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(order) + 1.6))
    im = ax.imshow(wide.to_numpy(), cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(models)), models, rotation=20)
    ax.set_yticks(range(len(order)), list(order))
    for i in range(wide.shape[0]):
        for j in range(wide.shape[1]):
            v = wide.iat[i, j]
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v > 0.6 else "black",
            )
    fig.colorbar(im, ax=ax, label="logistic(model + language + model × language)")
    ax.set_title(title or "Model 2: predicted accuracy by model and language", fontsize=10)
    fig.tight_layout()
    return fig


def plot_share_unrelated(grid: pd.DataFrame, observed: pd.DataFrame, title: str = "") -> Figure:
    """Model 3's predicted accuracy against the share of unrelated posts, one panel per language,
    one line per model (train split, untranslated), with each language's observed shares marked."""
    langs = sorted(grid["Language"].unique())
    ncol = 4
    nrow = int(np.ceil(len(langs) / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(12, 2.4 * nrow + 0.8), sharex=True, sharey=True, squeeze=False
    )
    for ax, lang in zip(axes.flat, langs, strict=False):
        g = grid[grid["Language"] == lang]
        for m in [m for m in MODEL_ORDER if m in set(g["Model"])]:
            gm = g[g["Model"] == m]
            ax.plot(
                gm["Share_Unrelated"], gm["Accuracy"], color=MODEL_COLORS.get(m), lw=1.6, label=m
            )
        for s in observed.loc[observed["Language"] == lang, "Share_Unrelated"]:
            ax.axvline(s, color="k", lw=0.6, ls=":")
        ax.set_title(lang, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(langs) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("share of unrelated posts")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted accuracy")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(
        title
        or "Model 3: accuracy against the share of unrelated posts "
        "(train split, untranslated; dotted: the shares observed)",
        y=0.995,
        fontsize=10,
    )
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.97),
        ncol=len(labels),
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def plot_langshare(acc: pd.DataFrame, ols: pd.DataFrame, title: str = "") -> Figure:
    """Model 5's summary: accuracy (stance posts, English left out) against the language's
    pretraining share, one panel per model, with each model's OLS line and slope."""
    models = [m for m in MODEL_ORDER if m in set(acc["Model"])]
    fig, axes = plt.subplots(
        1, len(models), figsize=(3.2 * len(models), 3.4), sharey=True, squeeze=False
    )
    est = dict(zip(ols["term"], ols["estimate"], strict=True))
    pval = dict(zip(ols["term"], ols["p_value"], strict=True))
    for ax, m in zip(axes[0], models, strict=True):
        a = acc[acc["Model"] == m]
        ax.scatter(a["LangShare"], a["accuracy"], s=18, color=MODEL_COLORS.get(m))
        for _, r in a.iterrows():
            ax.annotate(
                r["Language"][:3],
                (r["LangShare"], r["accuracy"]),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
        if f"{m}:LangShare" in est:
            xs = np.linspace(0, a["LangShare"].max(), 20)
            ax.plot(xs, est[f"{m}:(Intercept)"] + est[f"{m}:LangShare"] * xs, color="k", lw=1)
            ax.set_title(
                f"{m}\nslope {est[f'{m}:LangShare']:.2f} per point, p={pval[f'{m}:LangShare']:.3f}",
                fontsize=8,
            )
        ax.set_xlabel("LLaMA 2 share (% of tokens)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (stance posts)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
