"""Summaries of a posts table: counts, the unrelated floor, examples, the paper's sizes,
subsampling.
"""

from __future__ import annotations

import pandas as pd

from xling.schema import EVAL_SPLITS, PAPER_LANGS, SPLITS
from xling.tasks import load_task


def subsample(posts: pd.DataFrame, per_group: int, seed: int = 0, task=None) -> pd.DataFrame:
    """At most ``per_group`` posts per (evalset, split), labels taken in turn (in ``task``'s
    order, default the paper's) so each appears.

    Used by the smoke profile to run every notebook on a handful of posts.
    """
    shuffled = posts.sample(frac=1.0, random_state=seed)
    rank = shuffled.groupby(["evalset", "split", "label"]).cumcount()
    label_order = shuffled["label"].map({lab: i for i, lab in enumerate(load_task(task).labels)})
    ordered = shuffled.assign(_rank=rank, _lab=label_order).sort_values(["_rank", "_lab"])
    kept = ordered.groupby(["evalset", "split"], sort=False).head(per_group)
    return posts.loc[sorted(kept.index)].reset_index(drop=True)


#: Published sizes of the authors' data sets (docs/FACTS.md): (evalset, split) -> posts.
PAPER_SIZES = {
    **{(lang, "train"): 75 for lang in PAPER_LANGS if lang not in ("en", "es", "ko")},
    **{(lang, "test"): 25 for lang in PAPER_LANGS if lang not in ("en", "es", "ko")},
    ("en", "train"): 1125,
    ("en", "test"): 375,
    ("es", "train"): 750,
    ("es", "test"): 250,
    ("ko-extra", "extra"): 70,
    ("tr-extra", "extra"): 400,
    ("ar-extra", "extra"): 200,
    ("pt-extra", "extra"): 100,
    ("fr-extra", "extra"): 100,
    ("it-extra", "extra"): 100,
}


def compare_sizes(posts: pd.DataFrame, expected: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Posts per (evalset, split) against expected sizes: one row each, with ``ok``."""
    got = posts.groupby(["evalset", "split"]).size()
    keys = sorted(set(expected) | set(got.index))
    table = pd.DataFrame(
        [
            {
                "evalset": e,
                "split": s,
                "expected": expected.get((e, s), 0),
                "found": int(got.get((e, s), 0)),
            }
            for e, s in keys
        ]
    )
    table["ok"] = table["expected"] == table["found"]
    return table


def count_posts(posts: pd.DataFrame, task=None) -> pd.DataFrame:
    """Posts per language × split × label (``task``'s labels, default the paper's), with totals,
    languages in the paper's order."""
    table = posts.pivot_table(
        index=["lang", "split"], columns="label", values="post_id", aggfunc="count", fill_value=0
    )
    table = table.reindex(columns=list(load_task(task).labels), fill_value=0)
    table["total"] = table.sum(axis=1)
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    keys = sorted(table.index, key=lambda k: (order.get(k[0], 99), k[0], split_order[k[1]]))
    return table.loc[keys]


def unrelated_share(
    posts: pd.DataFrame, splits: tuple[str, ...] = EVAL_SPLITS, task=None
) -> pd.DataFrame:
    """Share of unrelated posts per evaluation set (its test, extra or evaluation-file posts): a
    classifier that always says 'unrelated' scores this accuracy, the floor every accuracy is
    read against.
    'Unrelated' is ``task``'s off-topic label (the paper's: ``unrelated``); the columns keep
    their names (``unrelated``, ``share_unrelated``) whatever the task calls it."""
    off = load_task(task).off_topic
    g = posts[posts["split"].isin(splits)].groupby("evalset")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "unrelated": g["label"].apply(lambda s: int((s == off).sum())),
        }
    )
    out["share_unrelated"] = out["unrelated"] / out["n"]
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    return out.sort_index(key=lambda idx: [(order.get(e.split("-")[0], 99), e) for e in idx])


def example_posts(posts: pd.DataFrame, n: int = 2, seed: int = 0) -> pd.DataFrame:
    """``n`` random posts per label (the same for the same seed), for a first look at the data."""
    picked = [
        group.sample(min(n, len(group)), random_state=seed)
        for _, group in posts.groupby("label", sort=False)
    ]
    cols = ["post_id", "lang", "label", "text", "text_en"]
    return pd.concat(picked).loc[:, cols].reset_index(drop=True)


def commonest_label(labels: pd.Series) -> tuple[str, float]:
    """The commonest label and its share: the accuracy of always answering it, the floor a
    classifier's accuracy is read against. Ties go to the label first by name."""
    counts = labels.value_counts()
    top = sorted(counts.index[counts == counts.max()])[0]
    return top, float(counts.max() / len(labels))


def label_floor(posts: pd.DataFrame, splits: tuple[str, ...] = EVAL_SPLITS) -> pd.DataFrame:
    """Per evaluation set: its posts, the commonest label and its share, the accuracy of always
    answering that label (the floor for that set; :func:`commonest_label`)."""
    rows = []
    for evalset, g in posts[posts["split"].isin(splits)].groupby("evalset"):
        top, share = commonest_label(g["label"])
        rows.append({"evalset": evalset, "n": len(g), "floor_label": top, "floor": share})
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    table = pd.DataFrame(rows, columns=["evalset", "n", "floor_label", "floor"])
    # language sets in the paper's order, then the evaluation files' sets (never two letters)
    lang = table["evalset"].str.split("-").str[0]
    table["_o"] = [
        (len(x) != 2, order.get(x, 99), e) for x, e in zip(lang, table["evalset"], strict=True)
    ]
    return table.sort_values("_o").drop(columns="_o").reset_index(drop=True)
