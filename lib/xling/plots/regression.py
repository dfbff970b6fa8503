"""Figures of notebook 05_pretraining_bias: accuracy against pretraining share, share slopes by
coding.
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import _variant_order


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
    from xling.analysis.regression import CODINGS, unit_phrase

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


def plot_distance_regression(
    lang_acc: pd.DataFrame, distances: pd.DataFrame, best: pd.DataFrame, title: str = ""
) -> Figure:
    """Language-level accuracy against the distance to the nearest training language, one panel
    per variant, under the distance type that fits that variant best alone (``best``: variant,
    type, adj_r2_distance, adj_r2_share, n). A point per language, labelled; the OLS line of
    accuracy on distance. The type is chosen on the same points: the panel says so."""
    import numpy as np

    variants = [v for v in _variant_order(best["variant"]) if v in set(lang_acc["variant"])]
    if not variants:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no variant with a distance fit", ha="center", va="center")
        return fig
    ncols = min(3, len(variants))
    nrows = int(np.ceil(len(variants) / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.3 * ncols, 3.5 * nrows + 0.6), squeeze=False, sharey=True
    )
    for k, variant in enumerate(variants):
        ax = axes[k // ncols][k % ncols]
        b = best[best["variant"] == variant].iloc[0]
        dist = distances[(distances["variant"] == variant) & (distances["type"] == b["type"])]
        sub = lang_acc[lang_acc["variant"] == variant].merge(dist, on=["lang", "variant"])
        sub = sub.dropna(subset=["distance"])
        x, y = sub["distance"].to_numpy(float), sub["accuracy"].to_numpy(float)
        ax.scatter(x, y, color="C2", edgecolor="black", linewidth=0.5, zorder=3)
        _label_points(ax, x, y, sub["lang"].tolist())
        if len(sub) >= 3 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            grid = np.linspace(x.min(), x.max(), 20)
            ax.plot(grid, intercept + slope * grid, color="C2", linewidth=1.5)
        ax.set_title(
            f"{variant}: {b['type']} (adj. R² {b['adj_r2_distance']:.2f}; "
            f"share {b['adj_r2_share']:.2f}; n={int(b['n'])})",
            fontsize=9,
        )
        ax.set_xlabel(f"URIEL+ {b['type']} distance to the nearest training language")
        if k % ncols == 0:
            ax.set_ylabel("accuracy (posts about immigration)")
        ax.grid(alpha=0.3)
    for k in range(len(variants), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    fig.suptitle(
        (title + "\n" if title else "")
        + "distance type chosen per variant on these same languages (best of the types)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
