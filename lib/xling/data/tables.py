"""The two tables on disk: the posts table (00) and the predictions table (03 and 04).

Writers are atomic; readers validate again; :func:`read_predictions` joins 03's rows and 04's
translated rows, the one way later notebooks read predictions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from xling import paths
from xling.artifacts import atomic_write
from xling.data.readers import read_table
from xling.data.validate import validate_posts
from xling.schema import FAILED, INPUTS, POSTS_COLUMNS, PREDICTION_COLUMNS
from xling.tasks import load_task


def write_posts(posts: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the posts table atomically (a partial file never replaces a good one)."""
    table = posts.loc[:, list(POSTS_COLUMNS)]
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, encoding="utf-8"))


def read_posts(path: str | os.PathLike[str], task=None) -> pd.DataFrame:
    """Read a posts table written by :func:`write_posts` (validated again, its labels those of
    ``task``: a task, its name, or None for the paper's)."""
    df = read_table(path)
    if "translation_ok" in df:
        df["translation_ok"] = pd.to_numeric(df["translation_ok"])
    return validate_posts(df, path, task=task)


def fingerprint_files(files: Iterable[str | os.PathLike[str]], root: Path | None = None) -> str:
    """sha256 over the names (paths relative to ``root`` when given) and bytes of files, in path
    order, to key caches and skip finished work."""
    h = hashlib.sha256()
    for f in sorted(Path(f) for f in files):
        name = f.relative_to(root).as_posix() if root and f.is_relative_to(root) else f.name
        h.update(name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def posts_fingerprint(posts: pd.DataFrame) -> str:
    """sha256 of a posts table's content (stable across row order of equal tables)."""
    canon = posts.loc[:, list(POSTS_COLUMNS)].astype(str).sort_values("post_id")
    return hashlib.sha256(canon.to_csv(index=False).encode()).hexdigest()


def check_predictions(predictions: pd.DataFrame, source: str = "predictions", task=None) -> None:
    """Refuse a predictions table with missing columns or labels not of ``task`` (default the
    paper's), naming the first bad row, and an empty one (the evaluated splits held no posts):
    every metric would be empty."""
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    if predictions.empty:
        raise ValueError(
            f"{source}: no predictions (no posts in the evaluated splits, or no variant or backend "
            "chosen); check the posts table's split column and the profile"
        )
    labels = set(load_task(task).labels)
    for col, allowed in (("label", labels), ("prediction", labels | {FAILED})):
        bad = ~predictions[col].isin(allowed)
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            raise ValueError(
                f"{source}: row {i}, field {col}: {predictions[col].iloc[i]!r} is not one of "
                f"{sorted(allowed)}"
            )


def replace_translated(
    predictions: pd.DataFrame, translated: pd.DataFrame, keys=("variant", "backend", "method")
) -> pd.DataFrame:
    """``predictions`` with its input-``translated`` rows for the (variant, backend, method)
    combinations in ``translated`` replaced by ``translated``; every other row (notebook 03's
    originals above all) is kept as it was."""
    keys = list(keys)
    combos = translated[keys].drop_duplicates()
    hit = predictions[keys].merge(combos.assign(_hit=True), on=keys, how="left")["_hit"]
    stale = (predictions["input"] == "translated").to_numpy() & hit.fillna(False).to_numpy(bool)
    return pd.concat([predictions[~stale], translated], ignore_index=True)


def read_predictions(
    profile: str,
    inputs: tuple[str, ...] = INPUTS,
    keep_default_na: bool = True,
    with_translated: bool = True,
    with_eval_files: bool = False,
) -> pd.DataFrame:
    """The predictions table of a run: 03's rows (``predictions.csv``) with 04's translated rows
    (``translation/predictions.csv``, when 04 ran and ``with_translated``) in place of any
    translated rows 03 had for the same variant, backend and method (the authors' released ones,
    in ``paper``). Every reader of predictions goes through here; ``inputs`` keeps only those.
    The evaluation files' posts (split ``eval``) are 03's own report: they are left out unless
    ``with_eval_files``, so that the paper's analyses (04-08) read the paper's sets only."""
    first = paths.predictions_csv(profile)
    if not first.exists():
        raise FileNotFoundError(f"{first} missing (run 03_crosslingual_eval first)")
    kw = dict(dtype={c: object for c in PREDICTION_COLUMNS}, keep_default_na=keep_default_na)
    predictions = pd.read_csv(first, low_memory=False, **kw)
    check_predictions(predictions, str(first))
    second = paths.translated_predictions_csv(profile)
    if with_translated and second.exists():
        translated = pd.read_csv(second, low_memory=False, **kw)
        if not translated.empty:
            check_predictions(translated, str(second))
            predictions = replace_translated(predictions, translated)
    keep = predictions["input"].isin(list(inputs))
    if not with_eval_files:
        keep &= predictions["split"] != "eval"
    return predictions if keep.all() else predictions[keep].reset_index(drop=True)
