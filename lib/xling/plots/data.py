"""Figures of notebook 00_data: posts per language, split and label; the unrelated floor (the
task's off-topic label)."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xling.plots.common import _lang_order
from xling.schema import SPLITS  # noqa: E402
from xling.tasks import load_task


def plot_label_counts(posts: pd.DataFrame, title: str = "", task=None) -> Figure:
    """Posts per language, stacked by label (``task``'s labels and colours, default the
    paper's), one panel per split (train / test / extra)."""
    task = load_task(task)
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
            .reindex(columns=list(task.labels), fill_value=0)
        )
        bottom = pd.Series(0, index=counts.index)
        for label in task.labels:
            ax.bar(
                counts.index,
                counts[label],
                bottom=bottom,
                color=task.colors[label],
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


def plot_unrelated_share(share: pd.DataFrame, title: str = "", task=None) -> Figure:
    """Share of unrelated posts per evaluation set: the accuracy of always answering 'unrelated'
    (``task``'s off-topic label, default the paper's ``unrelated``; ``share`` as
    :func:`xling.data.unrelated_share` gives it)."""
    task = load_task(task)
    off = task.off_topic
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(share) + 1.5), 3.6))
    ax.bar(share.index, share["share_unrelated"], color=task.colors[off])
    for x, (v, n) in enumerate(zip(share["share_unrelated"], share["n"], strict=True)):
        ax.text(x, v, f"{v:.0%}\nn={n}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel(f"share of {off} posts")
    ax.set_xlabel("evaluation set")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    ax.set_title(title or f"Majority-class floor: accuracy of always answering '{off}'")
    fig.tight_layout()
    return fig


#: The form features of :func:`xling.data.summaries.form_gap`, as a figure names them.
FORM_FEATURES = {
    "mention": "holds an @mention",
    "link": "holds a link",
    "hashtag": "holds a hashtag",
    "topic_word": "holds a topic word",
}


def plot_form_gap(gap: pd.DataFrame, title: str = "", task=None) -> Figure:
    """This corpus's posts beside real ones (``gap`` as :func:`xling.data.form_gap` gives it): one
    panel per feature (share of posts with an @mention, a link, a hashtag, a topic word), a pair
    of bars per label (this corpus, hatched real posts), and the mean length in characters."""
    task = load_task(task)
    sources = list(dict.fromkeys(gap["source"]))
    panels = [*FORM_FEATURES, "chars"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.6), sharey=False)
    width = 0.8 / max(len(sources), 1)
    for ax, feature in zip(axes, panels, strict=True):
        for k, source in enumerate(sources):
            part = gap[gap["source"] == source].set_index("label")
            labels = [x for x in task.labels if x in part.index]
            xs = [task.labels.index(x) + (k - (len(sources) - 1) / 2) * width for x in labels]
            ax.bar(
                xs,
                part.loc[labels, feature],
                width=width,
                color=[task.colors[x] for x in labels],
                edgecolor="black",
                linewidth=0.5,
                hatch="//" if k else None,
                label=source,
            )
        ax.set_xticks(range(len(task.labels)), [task.short[x] for x in task.labels], fontsize=8)
        if feature == "chars":
            ax.set_title("mean length (characters)", fontsize=9)
        else:
            ax.set_ylim(0, 1.05)
            ax.set_title(f"share that {FORM_FEATURES[feature]}", fontsize=9)
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//" if k else None)
        for k in range(len(sources))
    ]
    axes[0].legend(handles, sources, fontsize=8, loc="upper left")
    fig.suptitle(title or "This corpus's posts beside real ones, per label", fontsize=10)
    fig.tight_layout()
    return fig
