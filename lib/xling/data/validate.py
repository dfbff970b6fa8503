"""Validation of the posts table: labels, language codes, required fields, duplicates.

Bad input is refused with a :class:`PostsError` naming the file, the row and the field.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from xling.schema import LANG_ALIASES, POSTS_COLUMNS, SPLITS
from xling.tasks import Task, load_task

# ISO 639-1: every two-letter code, so a typo such as "sp" or "gr" is caught.
ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy
    hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li
    ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa
    pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th
    ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()
)


class PostsError(ValueError):
    """Bad input in a posts file; the message names the file, the row and the field."""

    def __init__(self, file: str | os.PathLike[str], row: int | None, field: str | None, msg: str):
        self.file, self.row, self.field = str(file), row, field
        where = str(file)
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {msg}")


def normalize_labels(
    labels: pd.Series,
    file: str | os.PathLike[str],
    rows: pd.Series | None = None,
    task: Task | str | None = None,
) -> pd.Series:
    """Map labels to the task's canonical names (default the paper's four); trim and lower-case
    with a warning; refuse others.

    ``rows`` gives each label's row number in its file (defaults to 1-based data rows).
    """
    known = load_task(task).labels
    rows = rows if rows is not None else pd.Series(np.arange(2, len(labels) + 2), labels.index)
    raw = labels.astype("string")
    fixed = raw.str.strip().str.lower().str.replace(r"\s+", "-", regex=True)
    bad = fixed.isna() | ~fixed.isin(known)
    if bad.any():
        i = bad.idxmax()
        what = "empty label" if pd.isna(fixed[i]) or not fixed[i] else f"unknown label {raw[i]!r}"
        raise PostsError(file, int(rows[i]), "label", f"{what}; expected one of {', '.join(known)}")
    changed = fixed != raw
    if changed.any():
        seen = Counter(zip(raw[changed], fixed[changed], strict=True))
        detail = ", ".join(f"{a!r} -> {b!r} ({n}x)" for (a, b), n in seen.most_common())
        warnings.warn(f"{file}: normalized {int(changed.sum())} labels: {detail}", stacklevel=2)
    return fixed.astype(object)


def validate_posts(
    posts: pd.DataFrame, file: str | os.PathLike[str], task: Task | str | None = None
) -> pd.DataFrame:
    """Check a posts table in the canonical schema, its labels those of ``task`` (default the
    paper's); return it with canonical dtypes and order.

    Row numbers in errors come from the ``_row`` column when present (the row in the source file),
    otherwise the 1-based position plus one for the header.
    """
    rows = (
        posts["_row"] if "_row" in posts else pd.Series(np.arange(2, len(posts) + 2), posts.index)
    )
    if "split_multi" not in posts:
        # one split only (demo corpus, user data, tables written before the column existed)
        posts = posts.assign(split_multi=posts["split"] if "split" in posts else None)
    for col in POSTS_COLUMNS:
        if col not in posts:
            raise PostsError(file, None, col, "missing column")
    if posts.empty:
        raise PostsError(file, None, None, "no posts")

    def fail(mask: pd.Series, field: str, msg: str) -> None:
        if mask.any():
            i = mask.idxmax()
            raise PostsError(file, int(rows[i]), field, msg.format(value=posts.at[i, field]))

    text = posts["text"]
    fail(text.isna() | (text.astype(str).str.strip() == ""), "text", "empty text")
    fail(posts["post_id"].isna() | (posts["post_id"].astype(str) == ""), "post_id", "empty post_id")
    dup = posts["post_id"].astype(str).duplicated(keep="first")
    if dup.any():
        i = dup.idxmax()
        first = posts.index[posts["post_id"].astype(str) == str(posts.at[i, "post_id"])][0]
        raise PostsError(
            file,
            int(rows[i]),
            "post_id",
            f"duplicate post_id {posts.at[i, 'post_id']!r} (first at row {int(rows[first])})",
        )
    fail(~posts["lang"].isin(ISO_639_1), "lang", "unknown language code {value!r} (ISO 639-1)")
    fail(~posts["label"].isin(load_task(task).labels), "label", "unknown label {value!r}")
    fail(
        ~posts["split"].isin(SPLITS),
        "split",
        "unknown split {value!r}; expected " + "/".join(SPLITS),
    )
    fail(posts["evalset"].isna() | (posts["evalset"].astype(str) == ""), "evalset", "empty evalset")
    sm = posts["split_multi"]
    fail(
        ~(sm.isna() | sm.isin(SPLITS)),
        "split_multi",
        "unknown split {value!r}; expected " + "/".join(SPLITS) + " or empty",
    )
    ok = posts["translation_ok"]
    fail(~(ok.isna() | ok.isin([0, 1])), "translation_ok", "must be 0, 1 or empty, got {value!r}")

    out = posts.loc[:, list(POSTS_COLUMNS)].copy()
    for col in ("post_id", "text", "lang", "label", "split", "evalset", "source"):
        out[col] = out[col].astype(str)
    out["text_en"] = out["text_en"].astype(object).where(out["text_en"].notna(), None)
    out["split_multi"] = out["split_multi"].astype(object).where(out["split_multi"].notna(), None)
    out["translation_ok"] = out["translation_ok"].astype("Int64")
    return out.reset_index(drop=True)


def canonical_lang(values: pd.Series, file: str | os.PathLike[str], rows: pd.Series) -> pd.Series:
    lang = values.astype("string").str.strip().str.lower().replace(LANG_ALIASES)
    bad = lang.isna() | ~lang.isin(ISO_639_1)
    if bad.any():
        i = bad.idxmax()
        empty = pd.isna(lang[i]) or not lang[i]
        what = "empty language code" if empty else f"unknown language code {values[i]!r}"
        raise PostsError(file, int(rows[i]), "lang", f"{what} (ISO 639-1)")
    return lang.astype(object)
