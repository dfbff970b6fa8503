"""A data card for every run: ``runs/NAME/data_card.md``, written by 00_data from the posts table.

What a reader of a run's results needs to know about its data before any number: where the posts
came from, how many there are per language, split and label, the floor each evaluation set's
accuracy is read against, the duplicates in the table and the evaluation posts a variant's
training set holds. Everything in it is computed from the table and the split audit.
"""

from __future__ import annotations

import pandas as pd

from xling.data.sources import same_text_key
from xling.data.summaries import count_posts, label_floor
from xling.schema import EVAL_SPLITS


def _md(table: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned, floats to 3 decimals)."""
    frame = table.reset_index() if index else table
    cols = [str(c) for c in frame.columns]

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def duplicate_texts(posts: pd.DataFrame) -> pd.DataFrame:
    """Texts that occur more than once within a language (:func:`same_text_key`): one row per
    text with the number of posts, their splits and labels, and whether the labels agree."""
    rows = []
    for _, g in posts.groupby(same_text_key(posts), sort=False):
        if len(g) > 1:
            rows.append(
                {
                    "lang": g["lang"].iloc[0],
                    "posts": len(g),
                    "post_ids": ", ".join(g["post_id"].astype(str)),
                    "splits": ", ".join(sorted(set(g["split"]))),
                    "labels": ", ".join(sorted(set(g["label"]))),
                    "labels_agree": g["label"].nunique() == 1,
                    "text": str(g["text"].iloc[0]).strip()[:80],
                }
            )
    cols = ["lang", "posts", "post_ids", "splits", "labels", "labels_agree", "text"]
    return pd.DataFrame(rows, columns=cols)


def data_card(
    posts: pd.DataFrame,
    audit: pd.DataFrame,
    *,
    run: str,
    profile: str,
    source: str,
    eval_files: dict[str, str] | None = None,
    notes: list[str] | None = None,
    fingerprint: str | None = None,
    task=None,
) -> str:
    """The card's markdown. ``audit`` is 00's split audit restricted to the training splits the
    run's variants use; ``source`` says where the posts table came from (profile keys);
    ``notes`` are what the loaders warned about (labels normalized, conflicting rows dropped)."""
    eval_files = eval_files or {}
    out = [f"# Data card: run {run} (profile {profile})", ""]
    n_eval = int(posts["split"].isin(EVAL_SPLITS).sum())
    out += [
        f"{len(posts)} posts in {posts['lang'].nunique()} languages and "
        f"{posts['evalset'].nunique()} evaluation sets: {int((posts['split'] == 'train').sum())} "
        f"for training, {n_eval} for evaluation only."
        + (f" Posts table sha256 {fingerprint}." if fingerprint else ""),
        "",
        "## Sources",
        "",
        f"Posts: {source}.",
        "",
    ]
    by_source = posts.groupby("source", sort=True).agg(
        posts=("post_id", "size"),
        languages=("lang", lambda s: ", ".join(sorted(set(s)))),
        splits=("split", lambda s: ", ".join(sorted(set(s)))),
    )
    out += [_md(by_source, index=True), ""]
    if eval_files:
        out += ["Evaluation files (never trained on; split `eval`):", ""]
        for name, path in eval_files.items():
            n = int((posts["evalset"] == name).sum())
            out.append(f"- `{name}`: {path} ({n} posts)")
        out.append("")
    if notes:
        out += ["What the loaders changed or warned about:", ""]
        out += [f"- {note}" for note in notes] + [""]
    counts = count_posts(posts, task=task)
    out += ["## Posts per language, split and label", "", _md(counts, index=True), ""]
    floor = label_floor(posts)
    out += [
        "## The floor of each evaluation set",
        "",
        "Always answering the commonest label of a set scores its share: an accuracy is read "
        "against this.",
        "",
        _md(floor) if len(floor) else "(no evaluation posts)",
        "",
    ]
    dups = duplicate_texts(posts)
    out += ["## Duplicates", ""]
    if dups.empty:
        out += ["No text occurs twice within a language.", ""]
    else:
        disagree = int((~dups["labels_agree"]).sum())
        across = int((dups["splits"].str.contains(",")).sum())
        out += [
            f"{len(dups)} texts occur more than once within a language "
            f"({int(dups['posts'].sum())} posts); {disagree} of them with different labels, "
            f"{across} in more than one split.",
            "",
            _md(dups.head(50)),
            "",
        ]
        if len(dups) > 50:
            out += [f"(the first 50 of {len(dups)})", ""]
    out += ["## Evaluation posts a variant's training set holds", ""]
    hits = audit[audit["n_seen_near"] > 0] if len(audit) else audit
    if len(audit) == 0:
        out += ["(no variant: nothing was audited)", ""]
    elif hits.empty:
        out += [
            f"None: no evaluation post is in, or nearly in (character n-gram cosine ≥ 0.9), the "
            f"training set of any of the {audit['variant'].nunique()} variants.",
            "",
        ]
    else:
        out += [_md(hits.reset_index(drop=True)), ""]
    return "\n".join(out)
