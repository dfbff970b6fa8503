"""Where posts come from: the demo corpus, a user's file, the authors' released files.

Every loader returns the same validated posts table (DESIGN.md). :func:`load_posts` is the one
entry point the notebooks call.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from xling import paths
from xling.data.readers import PaperFile, paper_files, read_paper_file, read_table
from xling.data.validate import PostsError, canonical_lang, normalize_labels, validate_posts
from xling.schema import LANG_ALIASES, PAPER_LANGS, REQUIRED_USER_COLUMNS, SPLITS


def _from_user_table(
    df: pd.DataFrame, file: Path, seed: int, test_size: float, source: str, task=None
) -> pd.DataFrame:
    for col in REQUIRED_USER_COLUMNS:
        if col not in df.columns:
            raise PostsError(file, None, col, f"missing column (have: {', '.join(df.columns[1:])})")
    rows = df["_row"]
    out = pd.DataFrame({"_row": rows})
    out["text"] = df["text"]
    out["lang"] = canonical_lang(df["lang"], file, rows)
    out["label"] = normalize_labels(df["label"], file, rows, task=task)
    if "post_id" in df.columns:
        out["post_id"] = df["post_id"]
    else:
        out["post_id"] = [f"{file.stem}-{i:05d}" for i in range(1, len(df) + 1)]
    if "split" in df.columns and df["split"].notna().any():
        split = df["split"].astype("string").str.strip().str.lower()
        bad = split.isna() | ~split.isin(SPLITS)
        if bad.any():
            i = bad.idxmax()
            what = "empty split" if pd.isna(split[i]) else f"unknown split {df['split'][i]!r}"
            raise PostsError(file, int(rows[i]), "split", f"{what}; expected {', '.join(SPLITS)}")
        out["split"] = split.astype(object)
    else:
        out["split"] = stratified_split(out, test_size=test_size, seed=seed)
    if "evalset" in df.columns and df["evalset"].notna().all():
        out["evalset"] = df["evalset"]
    else:
        extra = out["split"] == "extra"
        out["evalset"] = out["lang"].where(~extra, out["lang"] + "-extra")
    out["text_en"] = df["text_en"] if "text_en" in df.columns else None
    if "translation_ok" in df.columns:
        ok = pd.to_numeric(df["translation_ok"], errors="coerce")
        bad = df["translation_ok"].notna() & ~ok.isin([0, 1])
        if bad.any():
            i = bad.idxmax()
            raise PostsError(
                file,
                int(rows[i]),
                "translation_ok",
                f"must be 0, 1 or empty, got {df['translation_ok'][i]!r}",
            )
        out["translation_ok"] = ok
    else:
        out["translation_ok"] = pd.NA
    out["source"] = df["source"] if "source" in df.columns else source
    out["source"] = out["source"].fillna(source)
    return validate_posts(out, file, task=task)


def stratified_split(posts: pd.DataFrame, test_size: float = 0.25, seed: int = 0) -> pd.Series:
    """A train/test split stratified by language and label, the same for the same seed.

    In each (lang, label) group, ``round(n * test_size)`` posts go to test, chosen at random.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=posts.index, dtype=object)
    for _, group in posts.groupby(["lang", "label"], sort=True):
        n_test = int(round(len(group) * test_size))
        if n_test:
            split[rng.choice(group.index.to_numpy(), size=n_test, replace=False)] = "test"
    return split


def load_user_posts(
    path: str | os.PathLike[str],
    seed: int = 0,
    test_size: float = 0.25,
    source: str | None = None,
    task=None,
) -> pd.DataFrame:
    """A user's CSV, TSV or Parquet with at least ``text, lang, label`` (labels of ``task``,
    default the paper's).

    ``post_id`` and ``split`` are optional: missing ids are numbered, a missing split is drawn
    stratified by language and label with ``seed``.
    """
    path = Path(path)
    return _from_user_table(read_table(path), path, seed, test_size, source or path.name, task)


def load_demo_posts(folder: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The demo corpus: one CSV per language under data/demo/posts/."""
    folder = Path(folder) if folder else paths.DEMO_POSTS
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise PostsError(folder, None, None, "no demo corpus files (*.csv)")
    parts = [_from_user_table(read_table(f), f, 0, 0.25, "xling-demo") for f in files]
    posts = pd.concat(parts, ignore_index=True)
    dup = posts["post_id"].duplicated()
    if dup.any():
        pid = posts["post_id"][dup].iloc[0]
        where = [
            f.name for f, part in zip(files, parts, strict=True) if (part["post_id"] == pid).any()
        ]
        raise PostsError(
            folder, None, "post_id", f"duplicate post_id {pid!r} across files ({', '.join(where)})"
        )
    return posts


def load_paper_posts(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """One posts table from the authors' per-variant copies of each data set.

    Posts come from the CSV files: each per-language data set (train, test, extra test) is released
    once per model variant, and the copies are merged on (language, split, text, occurrence); labels
    are trimmed and lower-cased with a warning; the English ``translation`` becomes ``text_en``. The
    checked workbooks (``*_checked.xlsx``) add the human ``translation_check`` as
    ``translation_ok``; their texts were altered by the spreadsheet in places (a leading quote
    dropped, ``?`` turned into cell references), so a workbook row is matched to its post by text
    or, failing that, by its translation. The pooled ``mig-multi`` files are another split of the
    same posts and add none.
    """
    folder = Path(folder)
    found = [f for f in paper_files(folder) if f.dataset != "multi"]
    posts: dict[tuple, dict] = {}
    first_seen: dict[tuple, tuple[Path, int]] = {}
    renamed: Counter = Counter()
    renamed_files: set[str] = set()

    for pf in (f for f in found if f.path.suffix == ".csv"):
        df = read_paper_file(pf)
        rel = pf.path.relative_to(folder)
        if "lang" in df.columns:
            file_lang = df["lang"].astype("string").str.strip().replace(LANG_ALIASES)
            wrong = file_lang.notna() & (file_lang != pf.lang)
            if wrong.any():
                i = wrong.idxmax()
                raise PostsError(
                    rel,
                    int(df["_row"][i]),
                    "lang",
                    f"language {df['lang'][i]!r} but the file name says {pf.dataset!r}",
                )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            labels = normalize_labels(df["label"], rel, df["_row"])
        if caught:
            changed = labels != df["label"]
            renamed.update(zip(df["label"][changed], labels[changed], strict=True))
            renamed_files.add(str(rel))
        has_tr = "translation" in df.columns
        for i in df.index:
            key = (pf.lang, pf.posts_split, df.at[i, "plaintext"], int(df.at[i, "_occ"]))
            row = int(df.at[i, "_row"])
            if key in posts:
                if posts[key]["label"] != labels[i]:
                    first_file, first_row = first_seen[key]
                    raise PostsError(
                        rel,
                        row,
                        "label",
                        f"label {labels[i]!r} disagrees with {posts[key]['label']!r} for the same "
                        f"post in {first_file}, row {first_row}",
                    )
            else:
                first_seen[key] = (rel, row)
                posts[key] = {
                    "text": df.at[i, "plaintext"],
                    "lang": pf.lang,
                    "label": labels[i],
                    "split": pf.posts_split,
                    "evalset": pf.evalset,
                    "text_en": None,
                    "translation_ok": pd.NA,
                    "source": f"paper:{pf.evalset}-{pf.split}",
                }
            tr = df.at[i, "translation"] if has_tr else None
            if isinstance(tr, str) and tr.strip() and posts[key]["text_en"] is None:
                posts[key]["text_en"] = tr.strip()
    if renamed:
        detail = ", ".join(f"{a!r} -> {b!r} ({n}x)" for (a, b), n in renamed.most_common())
        warnings.warn(
            f"{folder}: normalized {sum(renamed.values())} labels in {len(renamed_files)} files "
            f"({detail}), e.g. {sorted(renamed_files)[0]}",
            stacklevel=2,
        )
    _add_translation_checks(posts, [f for f in found if f.path.suffix == ".xlsx"], folder)
    pooled = [f for f in paper_files(folder) if f.dataset == "multi" and f.path.suffix == ".csv"]
    _add_pooled_split(posts, pooled, folder)

    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    keys = sorted(posts, key=lambda k: (order.get(k[0], 99), k[0], split_order[k[1]]))
    numbers: dict[tuple[str, str], int] = defaultdict(int)
    records = []
    for key in keys:
        rec = posts[key]
        numbers[(rec["evalset"], rec["split"])] += 1
        n = numbers[(rec["evalset"], rec["split"])]
        # de-train-0001, de-test-0001, ko-extra-0001 (the evalset already says "extra")
        prefix = rec["evalset"] if rec["split"] == "extra" else f"{rec['evalset']}-{rec['split']}"
        rec["post_id"] = f"{prefix}-{n:04d}"
        records.append(rec)
    return validate_posts(pd.DataFrame.from_records(records), folder)


def _add_pooled_split(posts: dict[tuple, dict], pooled: list[PaperFile], folder: Path) -> None:
    """Set ``split_multi`` (in place): each post's split in the authors' pooled multilingual
    dataset (``mig-multi``), which splits the same train and test posts differently. One
    variant's copy of each pooled file is read (the copies hold the same posts); a pooled row is
    matched to its post by language and text. Extra test sets are not in it (left empty)."""
    for rec in posts.values():
        rec["split_multi"] = None
    if not pooled:
        return
    by_lang_text: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for key, rec in posts.items():
        if rec["split"] != "extra":
            by_lang_text[(rec["lang"], rec["text"])].append(key)
    done: set[str] = set()
    for pf in pooled:
        if pf.split in done:
            continue
        done.add(pf.split)
        df = read_paper_file(pf)
        rel = pf.path.relative_to(folder)
        if "lang" not in df.columns:
            raise PostsError(rel, None, "lang", "missing column (needed to place pooled posts)")
        for text, lang, row in zip(df["plaintext"], df["lang"], df["_row"], strict=True):
            code = LANG_ALIASES.get(str(lang).strip(), str(lang).strip())
            free = [k for k in by_lang_text.get((code, text), []) if not posts[k]["split_multi"]]
            if not free:
                raise PostsError(
                    rel, int(row), "plaintext", f"no per-language post in {code!r} with this text"
                )
            posts[free[0]]["split_multi"] = pf.split
    missing = [k for k in posts if posts[k]["split"] != "extra" and not posts[k]["split_multi"]]
    if missing:
        warnings.warn(
            f"{folder}: {len(missing)} train/test posts are not in the pooled mig-multi files "
            f"(e.g. {missing[0][0]} {missing[0][1]})",
            stacklevel=3,
        )


def _add_translation_checks(
    posts: dict[tuple, dict], workbooks: list[PaperFile], folder: Path
) -> None:
    """Set ``translation_ok`` from the checked workbooks (in place); warn about conflicts."""
    conflicts: list[str] = []
    for pf in workbooks:
        df = read_paper_file(pf)
        if "translation_check" not in df.columns:
            continue  # hu, id, pl: translated but not checked
        rel = pf.path.relative_to(folder)
        mine = {k: v for k, v in posts.items() if k[0] == pf.lang and k[1] == pf.posts_split}
        by_text = defaultdict(list)
        by_translation = defaultdict(list)
        for k, v in mine.items():
            by_text[k[2]].append(k)
            if v["text_en"]:
                by_translation[v["text_en"]].append(k)
        checks: dict[tuple, set[int]] = defaultdict(set)
        for i in df.index:
            chk = df.at[i, "translation_check"]
            if pd.isna(chk) or not str(chk).strip():
                continue
            try:
                value = int(float(chk))
            except ValueError as err:
                raise PostsError(
                    rel, int(df.at[i, "_row"]), "translation_check", f"not 0 or 1: {chk!r}"
                ) from err
            if value not in (0, 1):
                raise PostsError(
                    rel, int(df.at[i, "_row"]), "translation_check", f"not 0 or 1: {chk!r}"
                )
            tr = df.at[i, "translation"] if "translation" in df.columns else None
            tr = tr.strip() if isinstance(tr, str) else None
            keys = by_text.get(df.at[i, "plaintext"]) or by_translation.get(tr) or []
            if not keys:
                raise PostsError(
                    rel,
                    int(df.at[i, "_row"]),
                    "plaintext",
                    "no post with this text or translation in the released CSV files",
                )
            for k in keys:
                checks[k].add(value)
        n_conflict = 0
        for k, values in checks.items():
            if len(values) == 1:
                posts[k]["translation_ok"] = values.pop()
            else:
                n_conflict += 1  # the workbook holds the post twice, checked both ways
        if n_conflict:
            conflicts.append(f"{rel} ({n_conflict} posts)")
    if conflicts:
        warnings.warn(
            "translation checks that disagree for the same post are left empty: "
            + ", ".join(conflicts),
            stacklevel=3,
        )


def load_posts(
    source: str,
    path: str | os.PathLike[str] | None = None,
    seed: int = 0,
    test_size: float = 0.25,
    task=None,
) -> pd.DataFrame:
    """The posts table of a profile: ``source`` is ``demo``, ``paper`` or ``file``. The demo
    corpus and the authors' files hold the paper's task; a file's labels are ``task``'s.

    ``path`` is the demo folder (default data/demo/posts), the authors' data folder (default
    data/paper) or the user's file; relative paths are taken from the repository root.
    """
    path = paths.resolve(path) if path else None
    if source == "demo":
        return load_demo_posts(path)
    if source == "paper":
        return load_paper_posts(path or paths.PAPER_DATA_DEFAULT)
    if source != "file":
        raise ValueError(f"unknown posts source {source!r}; expected demo, paper or file")
    if not path:
        raise PostsError("<profile>", None, "posts_path", "posts_source 'file' needs posts_path")
    posts = load_user_posts(path, seed=seed, test_size=test_size, task=task)
    if not posts["split"].isin(["test", "extra"]).any():
        # every later step evaluates test and extra posts: an empty evaluation split is refused
        # here rather than in whichever table or figure first comes out empty
        raise PostsError(
            path,
            None,
            "split",
            f"no test or extra posts to evaluate ({len(posts)} posts, all train); give a split "
            f"column, or more posts: without one, each language and label gets "
            f"round(n * {test_size}) test posts",
        )
    return posts
