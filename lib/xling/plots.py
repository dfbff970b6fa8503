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


# --- Pretraining-bias regression (notebook 05) --------------------------------------------------


def _share_axis(ax, regressor: str, values) -> None:
    """Tick a share axis in percent, whether it holds log10 shares or shares."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if regressor == "log10_share":
        candidates = [0.0025, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 90]
        lo, hi = np.nanmin(values), np.nanmax(values)
        ticks = [t for t in candidates if lo - 0.05 <= np.log10(t) <= hi + 0.05]
        ax.set_xticks([np.log10(t) for t in ticks], [f"{t:g}%" for t in ticks])
        ax.set_xlabel("share of LLaMA 2 pretraining tokens (log scale)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.set_xlabel("share of LLaMA 2 pretraining tokens")


def _label_points(ax, xs, ys, texts, fontsize: float = 7) -> None:
    """Write a label beside each point, moving a label down or up (in steps of a text line)
    while it would overlap one already written: no overlap for the few points of a panel."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the limits, so data -> display coordinates hold
    to_px = ax.transData.transform
    line = fontsize * fig.dpi / 72 * 1.15
    placed: list[tuple[float, float, float, float]] = []
    for i in sorted(range(len(texts)), key=lambda k: (-ys[k], xs[k])):
        px, py = to_px((xs[i], ys[i]))
        width = 0.62 * fontsize * fig.dpi / 72 * len(texts[i])
        x0 = px + 4 * fig.dpi / 72
        for step in (0, -1, 1, -2, 2, -3, 3, -4, 4):
            y0 = py + 2 * fig.dpi / 72 + step * line
            box = (x0, y0, x0 + width, y0 + line)
            if not any(
                box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
            ):
                break
        placed.append(box)
        ax.annotate(
            texts[i],
            (xs[i], ys[i]),
            xytext=((x0 - px) * 72 / fig.dpi, (y0 - py) * 72 / fig.dpi),
            textcoords="offset points",
            fontsize=fontsize,
            va="bottom",
            arrowprops=dict(arrowstyle="-", color="0.6", linewidth=0.5) if step else None,
        )


def plot_share_regression(
    lang_acc: pd.DataFrame,
    bands: pd.DataFrame,
    regressor: str,
    slopes: pd.DataFrame | None = None,
    title: str = "",
) -> Figure:
    """Language-level accuracy against pretraining share, one panel per variant: a point per
    language (area by its number of posts; hollow: below the share table's threshold, placed by
    the coding), the OLS line and its 95% confidence band. ``bands``: variant, x, fit, ci_low,
    ci_high; ``slopes``: tidy rows of the per-variant OLS (model ``ols_lang[VARIANT]``) for the
    panel titles."""
    import numpy as np

    variants = _variant_order(lang_acc["variant"])
    ncols = min(3, len(variants))
    nrows = int(np.ceil(len(variants) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.3 * ncols, 3.5 * nrows + 0.5), squeeze=False, sharey=True
    )
    xs = lang_acc[regressor]
    pad = 0.06 * ((xs.max() - xs.min()) or 1)
    for k, variant in enumerate(variants):
        ax = axes[k // ncols][k % ncols]
        sub = lang_acc[lang_acc["variant"] == variant].reset_index(drop=True)
        band = bands[bands["variant"] == variant] if len(bands) else bands
        if len(band):
            ax.fill_between(band["x"], band["ci_low"], band["ci_high"], color="C0", alpha=0.18)
            ax.plot(band["x"], band["fit"], color="C0", linewidth=1.8)
        below = sub["below_threshold"].astype(bool).to_numpy()
        size = 10 + 4 * np.sqrt(sub["n"].to_numpy(dtype=float))
        x, y = sub[regressor].to_numpy(dtype=float), sub["accuracy"].to_numpy(dtype=float)
        ax.scatter(
            x[~below],
            y[~below],
            s=size[~below],
            color="C1",
            edgecolor="black",
            linewidth=0.5,
            zorder=3,
        )
        ax.scatter(
            x[below],
            y[below],
            s=size[below],
            facecolor="white",
            edgecolor="C1",
            linewidth=1.2,
            zorder=3,
        )
        name = variant
        if slopes is not None:
            row = slopes[
                (slopes["model"] == f"ols_lang[{variant}]") & (slopes["term"] == regressor)
            ]
            if len(row):
                r = row.iloc[0]
                name += f": slope {r.estimate:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
        ax.set_title(name, fontsize=9)
        ax.set_xlim(xs.min() - pad, xs.max() + 4 * pad)
        ax.set_ylim(-0.05, 1.1)
        ax.grid(alpha=0.3, linewidth=0.5)
        _share_axis(ax, regressor, xs)
        ax.tick_params(labelsize=8)
        ax.xaxis.label.set_size(8)
    for k in range(len(variants), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    for row in axes:
        row[0].set_ylabel("accuracy on related posts")
    note = "point: a language (related posts in brackets); line: OLS fit; band: its 95% CI"
    if lang_acc["below_threshold"].any():
        note += "; hollow: below the table's 0.005% threshold, placed by the coding"
    fig.text(0.5, 0.0, note, ha="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    for k, variant in enumerate(variants):  # labels last: they need the final layout
        sub = lang_acc[lang_acc["variant"] == variant]
        _label_points(
            axes[k // ncols][k % ncols],
            sub[regressor].to_numpy(dtype=float),
            sub["accuracy"].to_numpy(dtype=float),
            [f"{r.lang} ({r.n})" for r in sub.itertuples(index=False)],
        )
    return fig


def plot_share_coefficients(terms: pd.DataFrame, title: str = "") -> Figure:
    """Share slopes with 95% intervals, one panel per coding (their units differ): each
    variant's language-level OLS slope, and in red the slope differences (``slope_diff``).
    ``terms``: rows of regression.share_terms (coding, regressor, model, estimate, ci_low,
    ci_high, n_langs). Filled markers: the interval excludes 0."""
    from xling.regression import CODINGS, unit_phrase

    rows = terms[terms["model"].str.startswith(("ols_lang[", "slope_diff["))]
    codings = [c for c in CODINGS if c in set(rows["coding"])]
    labels = list(dict.fromkeys(rows["model"]))
    ols = [m for m in labels if m.startswith("ols_lang[")]
    order = {f"ols_lang[{v}]": i for i, v in enumerate(_variant_order(m[9:-1] for m in ols))}
    labels = sorted(labels, key=lambda m: (m.startswith("slope_diff["), order.get(m, 0), m))
    fig, axes = plt.subplots(
        1,
        len(codings),
        figsize=(3.6 * len(codings) + 0.8, 0.42 * len(labels) + 1.6),
        sharey=True,
        squeeze=False,
    )
    axes = list(axes[0])
    for ax, coding in zip(axes, codings, strict=True):
        sub = rows[rows["coding"] == coding].set_index("model")
        for y, model in enumerate(labels):
            if model not in sub.index:
                continue
            r = sub.loc[model]
            color = "#d62728" if model.startswith("slope_diff[") else "C0"
            excludes = r["ci_low"] > 0 or r["ci_high"] < 0
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=color, linewidth=1.6)
            ax.plot(
                r["estimate"],
                y,
                "o",
                color=color,
                markersize=6,
                markerfacecolor=color if excludes else "white",
            )
        ax.axvline(0, color="black", linewidth=0.7, linestyle=":")
        n_langs = int(sub["n_langs"].iloc[0]) if len(sub) else 0
        ax.set_title(f"coding: {coding} ({n_langs} languages)", fontsize=9)
        regressor = sub["regressor"].iloc[0] if len(sub) else "log10_share"
        ax.set_xlabel(f"accuracy change {unit_phrase(regressor)}", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    pretty = [
        m[9:-1] if m.startswith("ols_lang[") else "slope " + m[11:-1].replace("-", " − ", 1)
        for m in labels
    ]
    axes[0].set_yticks(range(len(labels)), pretty)
    axes[0].invert_yaxis()
    fig.text(0.5, -0.02, "line: 95% CI; filled: it excludes 0", ha="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# --- Translation ablation (notebook 04) ---------------------------------------------------------

#: Colours of the two sides of a translation comparison, the same in both figures.
SIDE_COLORS = {"original": "#3b75af", "translated": "#e4572e"}
COMPARISON_COLORS = {"a": "#3b75af", "b": "#8c564b"}


def _comparison_title(comparison: str, variant: str, native: str | None = None) -> str:
    if comparison == "a":
        return f"(a) {variant} on the originals vs on their translations"
    natives = f" ({native})" if native else ""
    return f"(b) {variant} on translations vs the best native variant{natives} on originals"


def plot_translation_accuracy(
    ablation: pd.DataFrame, metric: str = "label", alpha: float = 0.05, title: str = ""
) -> Figure:
    """Accuracy on the originals beside accuracy on the translations, per language (and all
    languages pooled), with 95% bootstrap intervals; one row of panels per comparison (a: the
    same variant on both; b: the native variant on the originals), one column per split. A star
    marks a language whose difference McNemar's exact test finds at ``alpha``; the number under
    each language is its paired posts. For b, the native variant chosen is named on each."""
    import numpy as np

    view = ablation[
        (ablation["quality_bucket"] == "all")
        & (ablation["metric"] == metric)
        & ablation["best_native"].astype(bool)
    ]
    panels = list(dict.fromkeys(zip(view["comparison"], view["variant"], strict=True)))
    splits = [s for s in ("test", "extra", "train") if s in set(view["split"])]
    splits += sorted(set(view["split"]) - set(splits))
    langs_of = {
        split: _lang_order(set(view.loc[view["split"] == split, "lang"]) - {"all"}) + ["all"]
        for split in splits
    }
    widths = [len(langs_of[s]) + 0.6 for s in splits]
    fig, axes = plt.subplots(
        len(panels),
        len(splits),
        figsize=(1.2 + 0.55 * sum(widths), 2.9 * len(panels) + 0.7),
        squeeze=False,
        sharey=True,
        gridspec_kw={"width_ratios": widths},
    )
    for i, (comparison, variant) in enumerate(panels):
        for j, split in enumerate(splits):
            ax, langs = axes[i][j], langs_of[split]
            g = view[
                (view["comparison"] == comparison)
                & (view["variant"] == variant)
                & (view["split"] == split)
            ].set_index("lang")
            xs = np.arange(len(langs))
            for side, dx, marker in (("original", -0.17, "o"), ("translated", 0.17, "s")):
                acc = g.reindex(langs)[f"acc_{side}"].to_numpy(dtype=float)
                lo = g.reindex(langs)[f"acc_{side}_low"].to_numpy(dtype=float)
                hi = g.reindex(langs)[f"acc_{side}_high"].to_numpy(dtype=float)
                ax.errorbar(
                    xs + dx,
                    acc,
                    yerr=[acc - lo, hi - acc],
                    fmt=marker,
                    ms=4.5,
                    color=SIDE_COLORS[side],
                    elinewidth=1,
                    capsize=2,
                )
            for k, lang in enumerate(langs):
                if lang not in g.index:
                    continue
                r = g.loc[lang]
                ax.plot(
                    [k - 0.17, k + 0.17],
                    [r.acc_original, r.acc_translated],
                    color="0.55",
                    lw=0.8,
                    zorder=0,
                )
                if r.mcnemar_p < alpha:
                    ax.text(k, 1.04, "*", ha="center", va="center", fontsize=12)
                ax.text(k, -0.13, f"{int(r.n_pairs)}", ha="center", fontsize=6.5, color="0.35")
                if comparison == "b":
                    ax.text(
                        k,
                        -0.06,
                        str(r.native_variant),
                        ha="center",
                        fontsize=5.5,
                        color=SIDE_COLORS["original"],
                    )
            ax.axvline(len(langs) - 1.5, color="0.7", lw=0.8, ls="--")
            ax.set_xticks(xs, langs, fontsize=8)
            ax.set_xlim(-0.6, len(langs) - 0.4)
            ax.set_ylim(-0.17, 1.09)
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
            ax.grid(axis="y", alpha=0.3, lw=0.5)
            name = _comparison_title(comparison, variant)
            ax.set_title(f"{name}\n{split} posts", fontsize=8.5)
        axes[i][0].set_ylabel(f"{metric} accuracy")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=SIDE_COLORS["original"], label="original post"),
        plt.Line2D([], [], marker="s", ls="", color=SIDE_COLORS["translated"], label="translation"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=2, frameon=False)
    note = (
        f"* McNemar exact p < {alpha}; grey numbers: paired posts; bars: 95% bootstrap "
        "intervals; (b): the native variant named above each count"
    )
    fig.text(0.5, 0.005, note, ha="center", fontsize=7.5)
    fig.suptitle(
        title or f"{metric} accuracy, original vs translated", fontsize=10, x=0.02, ha="left"
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_gap_by_quality(
    ablation: pd.DataFrame, lang: str = "all", min_pairs: int = 10, title: str = ""
) -> Figure:
    """The difference translated - original (with its paired 95% bootstrap interval) per
    translation-quality bucket, for the exact label, the topic and the stance separately; both
    comparisons in each panel (b with its best native variant), one row of panels per split.
    Left of zero: the translation loses. Cells of fewer than ``min_pairs`` posts are not drawn
    (their interval spans everything)."""
    import numpy as np

    from xling.ablation import BUCKETS, SCORED

    view = ablation[
        (ablation["lang"] == lang)
        & ablation["best_native"].astype(bool)
        & (ablation["n_pairs"] >= min_pairs)
    ]
    splits = [s for s in ("test", "extra", "train") if s in set(view["split"])]
    splits += sorted(set(view["split"]) - set(splits))
    buckets = [b for b in BUCKETS if b in set(view["quality_bucket"])]
    series = list(dict.fromkeys(zip(view["comparison"], view["variant"], strict=True)))
    fig, axes = plt.subplots(
        len(splits),
        len(SCORED),
        figsize=(3.4 * len(SCORED) + 0.8, 0.55 * len(buckets) * len(splits) + 1.4),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    step = 0.5 / max(1, len(series))
    lows = view.loc[view["quality_bucket"].isin(buckets), "diff_ci_low"].abs()
    highs = view.loc[view["quality_bucket"].isin(buckets), "diff_ci_high"].abs()
    reach = float(np.nanmax([lows.max(), highs.max(), 0.1]))
    for i, split in enumerate(splits):
        for j, metric in enumerate(SCORED):
            ax = axes[i][j]
            ax.axvline(0, color="0.4", lw=0.8)
            for k, (comparison, variant) in enumerate(series):
                g = view[
                    (view["split"] == split)
                    & (view["metric"] == metric)
                    & (view["comparison"] == comparison)
                    & (view["variant"] == variant)
                ].set_index("quality_bucket")
                g = g.reindex(buckets)
                ys = np.arange(len(buckets)) + (k - (len(series) - 1) / 2) * step
                d = g["diff"].to_numpy(dtype=float)
                lo = g["diff_ci_low"].to_numpy(dtype=float)
                hi = g["diff_ci_high"].to_numpy(dtype=float)
                ax.errorbar(
                    d,
                    ys,
                    xerr=[d - lo, hi - d],
                    fmt="o",
                    ms=4,
                    color=COMPARISON_COLORS.get(comparison, "0.3"),
                    elinewidth=1,
                    capsize=2,
                )
                for y, n, x in zip(ys, g["n_pairs"], hi, strict=True):
                    if np.isfinite(x):
                        ax.text(x + 0.02, y, f"{int(n)}", va="center", fontsize=6, color="0.35")
            ax.set_xlim(-reach - 0.05, reach + 0.15)  # room for the counts on the right
            ax.set_yticks(range(len(buckets)), buckets, fontsize=8)
            ax.set_ylim(len(buckets) - 0.5, -0.5)
            ax.grid(axis="x", alpha=0.3, lw=0.5)
            ax.set_title(f"{metric}, {split} posts", fontsize=9)
            if i == len(splits) - 1:
                ax.set_xlabel("accuracy on translation - on original", fontsize=8)
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            color=COMPARISON_COLORS.get(c, "0.3"),
            label=_comparison_title(c, v),
        )
        for c, v in series
    ]
    fig.legend(handles=handles, loc="lower center", fontsize=7.5, ncol=1, frameon=False)
    where = "all languages pooled" if lang == "all" else lang
    fig.suptitle(
        title
        or f"what translation changes, by translation quality ({where}; numbers: posts; "
        f"cells under {min_pairs} posts left out)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(series), 1, 0.97))
    return fig


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
