"""The split audit: which evaluation posts could a variant have seen in training?"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from xling.schema import EVAL_SPLITS, PAPER_LANGS, TRAIN_SPLITS


def normalize_text(text: str) -> str:
    """Lower-case; drop URLs, @mentions, '#', punctuation, symbols and emoji; collapse spaces.
    Two posts equal after this are the same post for leakage purposes."""
    import unicodedata

    text = re.sub(r"https?://\S+|@\w+", " ", str(text).lower()).replace("#", " ")
    text = "".join(
        ch if unicodedata.category(ch)[0] in "LNM" or ch.isspace() else " " for ch in text
    )
    return " ".join(text.split())


def training_posts(posts: pd.DataFrame, langs, train_split: str = "per_language") -> pd.DataFrame:
    """The posts a variant trained on ``langs`` learns from, under ``train_split``."""
    if train_split not in TRAIN_SPLITS:
        raise ValueError(f"train split {train_split!r}: one of {', '.join(TRAIN_SPLITS)}")
    col = TRAIN_SPLITS[train_split]
    return posts[(posts[col] == "train") & posts["lang"].isin(list(langs))]


def seen_in_training(
    posts: pd.DataFrame,
    variants: dict[str, list[str]],
    train_splits=("per_language", "pooled"),
    near: float = 0.9,
) -> pd.DataFrame:
    """Every evaluation post (test, extra or of an evaluation file) that a variant's training set
    holds: ``exact`` when a training post of the same language has the same normalized text,
    ``near`` when the cosine similarity of their character 3-5-gram TF-IDF vectors reaches
    ``near``. Columns: variant,
    train_split, post_id, evalset, exact, near (near includes the exact ones)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    evaluated = posts[posts["split"].isin(EVAL_SPLITS)]
    norm = posts["text"].map(normalize_text)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit(norm)
    rows = []
    for variant, langs in variants.items():
        for train_split in train_splits:
            train = training_posts(posts, langs, train_split)
            if train.empty or evaluated.empty:
                continue
            keys = set(zip(train["lang"], norm[train.index], strict=True))
            pairs = zip(evaluated["lang"], norm[evaluated.index], strict=True)
            exact = np.array([pair in keys for pair in pairs], dtype=bool)
            sim = vec.transform(norm[evaluated.index]) @ vec.transform(norm[train.index]).T
            best = np.asarray(sim.max(axis=1).todense()).ravel()
            close = exact | (best >= near)
            hit = evaluated[close]
            rows.append(
                pd.DataFrame(
                    {
                        "variant": variant,
                        "train_split": train_split,
                        "post_id": hit["post_id"].to_numpy(),
                        "evalset": hit["evalset"].to_numpy(),
                        "exact": exact[close],
                        "near": True,
                    }
                )
            )
    cols = ["variant", "train_split", "post_id", "evalset", "exact", "near"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def seen_allowed(
    posts: pd.DataFrame,
    variants: dict[str, list[str]],
    train_splits: dict[str, list[str]],
    near: float = 0.9,
) -> pd.DataFrame:
    """:func:`seen_in_training` restricted to the training splits each variant may have used
    (``train_splits``: variant -> list of ``per_language``/``pooled``; absent means
    ``per_language``), one row per (variant, post_id). Columns: variant, post_id, evalset, exact."""
    allowed = {v: list(train_splits.get(v, ["per_language"])) for v in variants}
    splits = sorted({s for v in allowed.values() for s in v})
    seen = seen_in_training(posts, variants, splits, near)
    keep = np.array(
        [s in allowed[v] for v, s in zip(seen["variant"], seen["train_split"], strict=True)],
        dtype=bool,
    )  # a boolean array: a plain empty list would select no columns
    seen = seen[keep].sort_values("exact", ascending=False, kind="stable")
    seen = seen.drop_duplicates(["variant", "post_id"])
    return seen[["variant", "post_id", "evalset", "exact"]].reset_index(drop=True)


def audit_splits(
    posts: pd.DataFrame,
    variants: dict[str, list[str]],
    train_splits=("per_language", "pooled"),
    near: float = 0.9,
) -> pd.DataFrame:
    """Per variant, training split and evaluation set: how many evaluation posts the variant's
    training set holds. Columns: variant, train_split, evalset, n_eval, n_seen_exact,
    n_seen_near (near-duplicates, exact ones included)."""
    seen = seen_in_training(posts, variants, train_splits, near)
    n_eval = posts[posts["split"].isin(EVAL_SPLITS)].groupby("evalset").size()
    rows = []
    for variant in variants:
        for train_split in train_splits:
            mine = seen[(seen["variant"] == variant) & (seen["train_split"] == train_split)]
            for evalset, n in n_eval.items():
                hit = mine[mine["evalset"] == evalset]
                rows.append(
                    {
                        "variant": variant,
                        "train_split": train_split,
                        "evalset": evalset,
                        "n_eval": int(n),
                        "n_seen_exact": int(hit["exact"].sum()),
                        "n_seen_near": int(hit["near"].sum()),
                    }
                )
    table = pd.DataFrame(rows)
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    table["_o"] = table["evalset"].map(lambda e: (order.get(e.split("-")[0], 99), e))
    return table.sort_values(["variant", "train_split", "_o"], kind="stable").drop(columns="_o")


def describe_audit(audit: pd.DataFrame) -> list[str]:
    """Sentences computed from the audit: every (variant, split, evalset) with an overlap."""
    hits = audit[audit["n_seen_near"] > 0]
    if hits.empty:
        return ["no evaluation post is in, or nearly in, any variant's training set"]
    lines = []
    for r in hits.itertuples():
        lines.append(
            f"WARNING: {r.variant} trained on the {r.train_split} split holds "
            f"{r.n_seen_exact} of the {r.n_eval} {r.evalset} evaluation posts "
            f"({r.n_seen_exact / r.n_eval:.0%}; {r.n_seen_near} with near-duplicates)"
        )
    return lines
