"""Where posts come from: the demo corpus, a user's file, the authors' released files.

Every loader returns the same validated posts table (DESIGN.md). :func:`load_posts` is the one
entry point the notebooks call.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from xling import paths
from xling.data.readers import PaperFile, paper_files, read_paper_file, read_table
from xling.data.validate import PostsError, canonical_lang, normalize_labels, validate_posts
from xling.schema import (
    CONFLICTS,
    LABELS,
    LANG_ALIASES,
    PAPER_LANGS,
    REQUIRED_USER_COLUMNS,
    SPLITS,
)
from xling.tasks import load_task


def _from_user_table(
    df: pd.DataFrame,
    file: Path,
    seed: int,
    test_size: float,
    source: str,
    conflicts: str = "refuse",
    evalset: str | None = None,
    task=None,
) -> pd.DataFrame:
    """A user's table in the posts schema. With ``evalset``, every row is an evaluation post of
    that set (split ``eval``, never trained on) and a split column is ignored."""
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
        out["post_id"] = [f"{evalset or file.stem}-{i:05d}" for i in range(1, len(df) + 1)]
    if evalset is not None:
        if "split" in df.columns and (df["split"].astype("string").str.strip() == "train").any():
            warnings.warn(
                f"{file}: the split column is ignored: an evaluation file's posts are never "
                "trained on",
                stacklevel=3,
            )
        out["split"] = "eval"
    elif "split" in df.columns and df["split"].notna().any():
        split = df["split"].astype("string").str.strip().str.lower()
        bad = split.isna() | ~split.isin(SPLITS)
        if bad.any():
            i = bad.idxmax()
            what = "empty split" if pd.isna(split[i]) else f"unknown split {df['split'][i]!r}"
            raise PostsError(file, int(rows[i]), "split", f"{what}; expected {', '.join(SPLITS)}")
        out["split"] = split.astype(object)
    else:
        out["split"] = stratified_split(out, test_size=test_size, seed=seed)
    if evalset is not None:
        out["evalset"] = evalset
    elif "evalset" in df.columns and df["evalset"].notna().all():
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
    return validate_posts(resolve_conflicts(out, file, conflicts), file, task=task)


def same_text_key(posts: pd.DataFrame) -> pd.Series:
    """What makes two posts the same text: their language and their text, trimmed (NA where the
    text is missing, so that groupby leaves those rows to the empty-text check)."""
    return posts["lang"].astype(str) + "\x00" + posts["text"].astype("string").str.strip()


def _file_rows(posts: pd.DataFrame) -> pd.Series:
    """Each post's row in its file (``_row``; else its position, after a header line)."""
    return posts["_row"] if "_row" in posts.columns else pd.Series(posts.index + 2, posts.index)


def label_conflicts(posts: pd.DataFrame) -> list[tuple[str, list[int], list[str]]]:
    """Texts labelled differently in two or more rows (:func:`same_text_key`): ``(text, rows,
    labels)`` for each, rows as the file numbers them (``_row``)."""
    rows = _file_rows(posts)
    found = []
    for _, group in posts.groupby(same_text_key(posts), sort=False):
        if len(group) > 1 and group["label"].nunique() > 1:
            found.append(
                (
                    str(group["text"].iloc[0]).strip(),
                    [int(r) for r in rows[group.index]],
                    [str(x) for x in group["label"]],
                )
            )
    return found


def resolve_conflicts(posts: pd.DataFrame, file, how: str = "refuse") -> pd.DataFrame:
    """The same text labelled differently in two rows: ``refuse`` (an error naming the file,
    the rows and the labels), ``drop`` (every row of that text) or ``first`` (the first row
    kept, the later ones dropped); each but ``refuse`` warns with the count and an example."""
    if how not in CONFLICTS:
        raise ValueError(f"conflicts={how!r}: one of {', '.join(CONFLICTS)}")
    found = label_conflicts(posts)
    if not found:
        return posts
    text, rows, labels = found[0]
    example = f"rows {', '.join(map(str, rows))} label {text[:60]!r} as " + ", ".join(
        f"{lab!r}" for lab in labels
    )
    if how == "refuse":
        raise PostsError(
            file,
            rows[1],
            "label",
            f"the same text is labelled differently in {len(found)} case(s), e.g. {example}; "
            "fix the labels, or set conflicting_labels to drop (every such row) or first "
            "(keep the first row)",
        )
    rows_of = _file_rows(posts)
    drop = set()
    for _, bad_rows, _ in found:
        drop.update(bad_rows if how == "drop" else bad_rows[1:])
    kept = posts[~rows_of.isin(drop)]
    warnings.warn(
        f"{file}: {len(found)} text(s) labelled differently in two or more rows, e.g. {example}; "
        f"{'dropped every such row' if how == 'drop' else 'kept the first row of each'} "
        f"({len(posts) - len(kept)} rows dropped)",
        stacklevel=3,
    )
    return kept


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
    conflicts: str = "refuse",
    task=None,
) -> pd.DataFrame:
    """A user's CSV, TSV, Excel sheet (.xlsx) or Parquet with at least ``text, lang, label``
    (labels of ``task``, default the paper's).

    ``post_id`` and ``split`` are optional: missing ids are numbered, a missing split is drawn
    stratified by language and label with ``seed``. ``conflicts``: what to do with a text
    labelled differently in two rows (:func:`resolve_conflicts`).
    """
    path = Path(path)
    return _from_user_table(
        read_table(path),
        path,
        seed,
        test_size,
        source or path.name,
        conflicts=conflicts,
        task=task,
    )


#: An evaluation file's name: its evaluation set's name in every table and figure. Three
#: characters at least, so that it is never a language code (those sets are named by language).
_EVAL_NAME = re.compile(r"[a-z0-9][a-z0-9_]{2,39}")


def load_eval_files(
    files: dict[str, str | os.PathLike[str]],
    posts: pd.DataFrame,
    conflicts: str = "refuse",
    task=None,
) -> pd.DataFrame:
    """``posts`` with each labelled file of ``files`` (name -> path) added as an evaluation set.

    Each file is read and validated by the same loader as a posts file (row-level errors); all
    its posts get split ``eval`` (never trained on, classified by 03) and evaluation set
    ``name``; missing ids are numbered ``name-00001`` .... A name that is not lower-case letters,
    digits and ``_`` (3 to 40), or names a set the posts already have, is refused, and so is an
    id the posts already use. Relative paths are taken from the repository root.
    """
    if not files:
        return posts
    parts = [posts]
    taken = set(posts["evalset"])
    ids = dict(zip(posts["post_id"].astype(str), posts["source"].astype(str), strict=True))
    for name, path in files.items():
        if not isinstance(name, str) or not _EVAL_NAME.fullmatch(name) or name == "multi":
            raise PostsError(
                "<profile>",
                None,
                "eval_files",
                f"evaluation set name {name!r}: lower-case letters, digits and _, 3 to 40 "
                "characters, starting with a letter or digit (not 'multi')",
            )
        if name in taken:
            raise PostsError(
                "<profile>", None, "eval_files", f"evaluation set {name!r} exists already"
            )
        file = paths.resolve(path)
        part = _from_user_table(
            read_table(file),
            file,
            0,
            0.25,
            f"eval:{name}",
            conflicts=conflicts,
            evalset=name,
            task=task,
        )
        clash = part["post_id"].astype(str).isin(ids)
        if clash.any():
            pid = str(part["post_id"][clash].iloc[0])
            raise PostsError(
                file,
                None,
                "post_id",
                f"post_id {pid!r} is used already (by a post of {ids[pid]}); give the file's "
                "posts ids of their own, or drop its post_id column to have them numbered",
            )
        ids.update(zip(part["post_id"].astype(str), part["source"].astype(str), strict=True))
        taken.add(name)
        parts.append(part)
    return validate_posts(pd.concat(parts, ignore_index=True), "<posts with eval_files>", task=task)


def load_demo_posts(
    folder: str | os.PathLike[str] | None = None, conflicts: str = "refuse"
) -> pd.DataFrame:
    """The demo corpus: one CSV per language under data/demo/posts/."""
    folder = Path(folder) if folder else paths.DEMO_POSTS
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise PostsError(folder, None, None, "no demo corpus files (*.csv)")
    parts = [
        _from_user_table(read_table(f), f, 0, 0.25, "xling-demo", conflicts=conflicts)
        for f in files
    ]
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
    conflicts: str = "refuse",
    task=None,
) -> pd.DataFrame:
    """The posts table of a profile: ``source`` is ``demo``, ``paper`` or ``file``. The demo
    corpus and the authors' files hold the paper's task; a file's labels are ``task``'s.

    ``path`` is the demo folder (default data/demo/posts), the authors' data folder (default
    data/paper) or the user's file; relative paths are taken from the repository root.
    ``conflicts``: a text labelled differently in two rows of a demo or user file (refuse, drop
    or first; :func:`resolve_conflicts`).
    """
    path = paths.resolve(path) if path else None
    if source == "demo":
        return load_demo_posts(path, conflicts=conflicts)
    if source == "paper":
        return load_paper_posts(path or paths.PAPER_DATA_DEFAULT)
    if source != "file":
        raise ValueError(f"unknown posts source {source!r}; expected demo, paper or file")
    if not path:
        raise PostsError("<profile>", None, "posts_path", "posts_source 'file' needs posts_path")
    posts = load_user_posts(path, seed=seed, test_size=test_size, conflicts=conflicts, task=task)
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


def load_run_posts(
    source: str,
    path: str | os.PathLike[str] | None = None,
    eval_files: dict[str, str | os.PathLike[str]] | None = None,
    seed: int = 0,
    test_size: float = 0.25,
    conflicts: str = "refuse",
    paper_sample: int | None = None,
    paper_data: str | os.PathLike[str] | None = None,
    task=None,
) -> tuple[pd.DataFrame, list[str]]:
    """A run's posts table (00_data): :func:`load_posts` with the evaluation files added
    (:func:`load_eval_files`) and, with ``paper_sample``, a sample of the authors' test posts as
    the evaluation set ``authors_test`` (:func:`load_paper_sample`, ``paper_sample`` posts per
    language; skipped, saying so, when ``paper_data`` is not there or the posts are the authors'
    own). Returns the table and what the loaders said along the way (labels normalized,
    conflicting rows dropped, a separator guessed, what was skipped), for the run's data card."""
    skipped = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        posts = load_posts(
            source, path, seed=seed, test_size=test_size, conflicts=conflicts, task=task
        )
        posts = load_eval_files(eval_files or {}, posts, conflicts=conflicts, task=task)
        if paper_sample:
            folder = paths.resolve(paper_data) if paper_data else paths.PAPER_DATA_DEFAULT
            if load_task(task) != load_task():
                skipped.append(
                    f"{AUTHORS_SAMPLE} skipped: the authors' posts are labelled for the "
                    "paper's task"
                )
            elif source == "paper":
                skipped.append(f"{AUTHORS_SAMPLE} skipped: the posts are the authors' own already")
            elif not folder.is_dir():
                skipped.append(
                    f"{AUTHORS_SAMPLE} skipped: the authors' data is not at "
                    f"{paths.display(folder)} (data/fetch_paper_data.sh fetches it; "
                    "--paper-data DIR points at a copy)"
                )
            else:
                sample = load_paper_sample(folder, paper_sample, seed=seed)
                posts = validate_posts(
                    pd.concat([posts, sample], ignore_index=True), "<posts with authors_test>"
                )
    notes = list(dict.fromkeys(str(w.message) for w in caught)) + skipped
    return posts, notes


#: The evaluation set of the authors' posts that a run without their data in training reads.
AUTHORS_SAMPLE = "authors_test"


def stratified_sample(posts: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` posts (all when fewer) with each label's share as in ``posts``: each label gets
    ``floor(n * share)``, the posts left over go to the largest remainders (ties: label order),
    drawn at random with ``seed``."""
    if n >= len(posts):
        return posts
    counts = posts["label"].value_counts().reindex(list(LABELS), fill_value=0)
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    left = n - int(quota.sum())
    order = sorted(range(len(quota)), key=lambda i: (-(exact.iloc[i] - quota.iloc[i]), i))
    for i in order[:left]:
        quota.iloc[i] += 1
    picked = [
        posts[posts["label"] == label].sample(int(k), random_state=seed)
        for label, k in quota.items()
        if k
    ]
    return pd.concat(picked).sort_index()


def load_paper_sample(
    folder: str | os.PathLike[str],
    per_lang: int,
    seed: int = 0,
    splits: tuple[str, ...] = ("test",),
    name: str = AUTHORS_SAMPLE,
) -> pd.DataFrame:
    """A sample of the authors' released posts as one evaluation set (split ``eval``, set
    ``name``): per language, ``per_lang`` posts of ``splits`` (all when fewer) with the labels'
    shares as in that language's set (:func:`stratified_sample`). Ids keep the authors' post's
    (``authors_test-de-test-0001``), the English translation comes along."""
    posts = load_paper_posts(folder)
    pool = posts[posts["split"].isin(list(splits))]
    parts = [stratified_sample(g, per_lang, seed) for _, g in pool.groupby("lang", sort=False)]
    sample = pd.concat(parts).copy()
    sample["post_id"] = name + "-" + sample["post_id"].astype(str)
    sample["split"] = "eval"
    sample["evalset"] = name
    sample["source"] = f"eval:{name} (the authors' {'/'.join(splits)} posts)"
    sample["split_multi"] = None
    return validate_posts(sample.reset_index(drop=True), folder)
