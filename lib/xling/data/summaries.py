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


#: Stems of the immigration topic's words per language (lower case; English stems are looked
#: for in every language too, as posts mix them in). A diagnostic of how a corpus's posts use
#: the topic's words, not a classifier: a post can hold one and be unrelated.
TOPIC_STEMS = {
    "en": ("immigra", "migra", "refugee", "asylum", "border", "deport"),
    "es": ("inmigra", "migra", "refugiad", "asilo", "frontera", "deport"),
    "fr": ("immigr", "migra", "réfugi", "asile", "frontière", "expuls"),
    "de": ("einwander", "zuwander", "migra", "flüchtling", "asyl", "grenze", "abschieb"),
    "it": ("immigra", "migra", "rifugiat", "asilo", "confin", "frontier", "rimpatri", "sbarc"),
    "pt": ("imigra", "migra", "refugiad", "asilo", "fronteira", "deport"),
    "pl": ("imigra", "migra", "uchodź", "azyl", "granic", "deport"),
    "hu": ("bevándorl", "migrá", "menekült", "határ", "kitoloncol"),
    "tr": ("göç", "mülteci", "sığınmacı", "sınır", "suriyeli"),
    "id": ("imigra", "migra", "pengungsi", "suaka", "perbatasan", "deport"),
    "hi": ("प्रवास", "शरणार्थी", "घुसपैठ", "सीमा"),
    "ar": ("مهاجر", "هجرة", "لاجئ", "لجوء", "حدود", "ترحيل"),
    "ko": ("이민", "난민", "이주", "국경", "추방"),
}


def post_form(posts: pd.DataFrame, stems: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """Per post, its form as a social-media post: characters, whether it holds an @mention, a
    link, a hashtag, and a word of the topic (:data:`TOPIC_STEMS` of its language and English's;
    a language without stems counts English's only)."""
    import re

    stems = TOPIC_STEMS if stems is None else stems
    pattern = {
        lang: re.compile("|".join(map(re.escape, {*words, *stems.get("en", ())})), re.I)
        for lang, words in stems.items()
    }
    fallback = re.compile("|".join(map(re.escape, stems.get("en", ("immigra",)))), re.I)
    text = posts["text"].astype(str)
    topic = [
        bool(pattern.get(lang, fallback).search(t))
        for t, lang in zip(text, posts["lang"], strict=True)
    ]
    return pd.DataFrame(
        {
            "chars": text.str.len(),
            "mention": text.str.contains(r"@\w", regex=True),
            "link": text.str.contains(r"https?://", regex=True),
            "hashtag": text.str.contains(r"#\w", regex=True),
            "topic_word": topic,
        },
        index=posts.index,
    )


def form_gap(posts: pd.DataFrame, real: str = "authors_test", task=None) -> pd.DataFrame:
    """The demo corpus beside real posts (issue 25, part 4): for this run's own posts (every
    split but evaluation files', ``eval``) and the evaluation set ``real`` (the authors' tweets),
    per label, the posts' mean length and the share holding an @mention, a link, a hashtag and a
    topic word (:func:`post_form`). Empty when the run has no posts of ``real``."""
    labels = load_task(task).labels
    own = posts[posts["split"] != "eval"]
    theirs = posts[posts["evalset"] == real]
    if theirs.empty:
        return pd.DataFrame()
    rows = []
    for source, table in (("this corpus", own), (real, theirs)):
        form = post_form(table)
        for label in labels:
            part = form[table["label"] == label]
            if part.empty:
                continue
            rows.append(
                {"source": source, "label": label, "posts": len(part),
                 "chars": float(part["chars"].mean()),
                 **{k: float(part[k].mean()) for k in ("mention", "link", "hashtag", "topic_word")}}
            )  # fmt: skip
    return pd.DataFrame(rows)


def describe_form_gap(gap: pd.DataFrame, task=None) -> list[str]:
    """One sentence per feature of :func:`form_gap`: the share of this corpus's posts and of the
    real posts that hold it (all labels pooled, weighted by posts), and the off-topic label's
    share of posts with a topic word in each (what a model that reads topic words as the topic
    meets). Empty without real posts."""
    if gap.empty:
        return []
    task = load_task(task)
    own, real = list(dict.fromkeys(gap["source"]))[:2]

    def pooled(source: str, feature: str, labels=None) -> float:
        """``feature``'s share in ``source`` over ``labels`` (all when None), weighted by posts."""
        part = gap[gap["source"] == source]
        if labels is not None:
            part = part[part["label"].isin(labels)]
        return float((part[feature] * part["posts"]).sum() / part["posts"].sum())

    names = {"mention": "an @mention", "link": "a link", "hashtag": "a hashtag"}
    lines = [
        f"mean length: {pooled(own, 'chars'):.0f} characters in {own}, "
        f"{pooled(real, 'chars'):.0f} in {real}"
    ]
    for feature, name in names.items():
        lines.append(
            f"posts with {name}: {pooled(own, feature):.0%} in {own}, "
            f"{pooled(real, feature):.0%} in {real}"
        )
    off = [task.off_topic]
    lines.append(
        f"a topic word in {off[0]} posts: {pooled(own, 'topic_word', off):.0%} in {own}, "
        f"{pooled(real, 'topic_word', off):.0%} in {real} (on-topic posts: "
        f"{pooled(own, 'topic_word', task.on_topic):.0%} and "
        f"{pooled(real, 'topic_word', task.on_topic):.0%})"
    )
    return lines
