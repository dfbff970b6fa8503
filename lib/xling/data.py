"""The posts table: load it from the demo corpus, the authors' released files or a user's file.

Every loader returns the same validated table (DESIGN.md):

    post_id, text, lang, label, split, evalset, text_en, translation_ok, source

``split`` is train / test / extra; ``evalset`` names the set a post is evaluated in (``de``,
``ko-extra``). Bad input is refused with a :class:`PostsError` naming the file, the row and the
field, before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xling import paths

LABELS = ("unrelated", "neutral", "pro-immigration", "anti-immigration")
#: The number each label has in the authors' prompt and ``catCode`` column.
CAT_CODES = {1: "pro-immigration", 2: "anti-immigration", 3: "neutral", 4: "unrelated"}
#: The paper's 13 languages, in the order its tables use (Korean only ever as an extra test set).
PAPER_LANGS = ("en", "es", "ar", "de", "fr", "hi", "hu", "id", "it", "pl", "pt", "tr", "ko")
SPLITS = ("train", "test", "extra")
POSTS_COLUMNS = (
    "post_id",
    "text",
    "lang",
    "label",
    "split",
    "evalset",
    "text_en",
    "translation_ok",
    "source",
    "split_multi",
)
REQUIRED_USER_COLUMNS = ("text", "lang", "label")
#: Language codes the authors' files write differently from ISO 639-1.
LANG_ALIASES = {"in": "id"}

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


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def normalize_labels(
    labels: pd.Series, file: str | os.PathLike[str], rows: pd.Series | None = None
) -> pd.Series:
    """Map labels to the four canonical names; trim and lower-case with a warning; refuse others.

    ``rows`` gives each label's row number in its file (defaults to 1-based data rows).
    """
    rows = rows if rows is not None else pd.Series(np.arange(2, len(labels) + 2), labels.index)
    raw = labels.astype("string")
    fixed = raw.str.strip().str.lower().str.replace(r"\s+", "-", regex=True)
    bad = fixed.isna() | ~fixed.isin(LABELS)
    if bad.any():
        i = bad.idxmax()
        what = "empty label" if pd.isna(fixed[i]) or not fixed[i] else f"unknown label {raw[i]!r}"
        raise PostsError(
            file, int(rows[i]), "label", f"{what}; expected one of {', '.join(LABELS)}"
        )
    changed = fixed != raw
    if changed.any():
        seen = Counter(zip(raw[changed], fixed[changed], strict=True))
        detail = ", ".join(f"{a!r} -> {b!r} ({n}x)" for (a, b), n in seen.most_common())
        warnings.warn(f"{file}: normalized {int(changed.sum())} labels: {detail}", stacklevel=2)
    return fixed.astype(object)


def validate_posts(posts: pd.DataFrame, file: str | os.PathLike[str]) -> pd.DataFrame:
    """Check a posts table in the canonical schema; return it with canonical dtypes and order.

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
    fail(~posts["label"].isin(LABELS), "label", "unknown label {value!r}")
    fail(
        ~posts["split"].isin(SPLITS), "split", "unknown split {value!r}; expected train/test/extra"
    )
    fail(posts["evalset"].isna() | (posts["evalset"].astype(str) == ""), "evalset", "empty evalset")
    sm = posts["split_multi"]
    fail(
        ~(sm.isna() | sm.isin(SPLITS)),
        "split_multi",
        "unknown split {value!r}; expected train/test/extra or empty",
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


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file as strings; undecodable bytes name their line.

    A ``_row`` column keeps each record's line number in the file (header = line 1), so later
    errors point at the line a user sees in an editor.
    """
    path = Path(path)
    if not path.exists():
        raise PostsError(path, None, None, "file not found")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        df = df.astype({c: "string" for c in df.columns if df[c].dtype == object})
        df.insert(0, "_row", np.arange(2, len(df) + 2))
        return df
    if suffix not in (".csv", ".tsv", ".txt"):
        raise PostsError(path, None, None, f"unsupported file type {suffix!r} (csv, tsv, parquet)")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise PostsError(
            path, line, None, f"bytes that are not UTF-8 at byte {err.start}: {err.reason}"
        ) from err
    if not raw.strip():
        raise PostsError(path, None, None, "empty file (no header, no posts)")
    sep = "\t" if suffix == ".tsv" else ","
    lines, widths = _records(raw, sep)
    for line, width in zip(lines[1:], widths[1:], strict=True):
        # pandas would read one field too many on every line as an index column, silently
        if width > widths[0]:
            raise PostsError(
                path,
                line,
                None,
                f"{width} fields but the header has {widths[0]} (an unquoted separator?)",
            )
    try:
        df = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
    except pd.errors.ParserError as err:
        raise PostsError(path, None, None, f"cannot parse: {err}") from err
    df.columns = [str(c).strip() for c in df.columns]
    starts = lines[1 : len(df) + 1] + [0] * (len(df) + 1 - len(lines))
    df.insert(0, "_row", np.asarray(starts, dtype=int))
    return df


def _records(raw: bytes, sep: str = ",") -> tuple[list[int], list[int]]:
    """First line number and number of fields of each record, the header first. Quoted fields
    may span lines; blank lines are skipped, as pandas skips them."""
    import csv
    import io

    reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=sep)
    starts, widths, line = [], [], 1
    for record in reader:
        if record:
            starts.append(line)
            widths.append(len(record))
        line += sum(field.count("\n") for field in record) + 1
    return starts, widths


# --------------------------------------------------------------------------------------------
# The demo corpus and user files
# --------------------------------------------------------------------------------------------


def _canonical_lang(values: pd.Series, file: str | os.PathLike[str], rows: pd.Series) -> pd.Series:
    lang = values.astype("string").str.strip().str.lower().replace(LANG_ALIASES)
    bad = lang.isna() | ~lang.isin(ISO_639_1)
    if bad.any():
        i = bad.idxmax()
        empty = pd.isna(lang[i]) or not lang[i]
        what = "empty language code" if empty else f"unknown language code {values[i]!r}"
        raise PostsError(file, int(rows[i]), "lang", f"{what} (ISO 639-1)")
    return lang.astype(object)


def _from_user_table(
    df: pd.DataFrame, file: Path, seed: int, test_size: float, source: str
) -> pd.DataFrame:
    for col in REQUIRED_USER_COLUMNS:
        if col not in df.columns:
            raise PostsError(file, None, col, f"missing column (have: {', '.join(df.columns[1:])})")
    rows = df["_row"]
    out = pd.DataFrame({"_row": rows})
    out["text"] = df["text"]
    out["lang"] = _canonical_lang(df["lang"], file, rows)
    out["label"] = normalize_labels(df["label"], file, rows)
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
    return validate_posts(out, file)


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
    path: str | os.PathLike[str], seed: int = 0, test_size: float = 0.25, source: str | None = None
) -> pd.DataFrame:
    """A user's CSV, TSV or Parquet with at least ``text, lang, label``.

    ``post_id`` and ``split`` are optional: missing ids are numbered, a missing split is drawn
    stratified by language and label with ``seed``.
    """
    path = Path(path)
    return _from_user_table(read_table(path), path, seed, test_size, source or path.name)


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


# --------------------------------------------------------------------------------------------
# The authors' released files
# --------------------------------------------------------------------------------------------

_PAPER_NAME = re.compile(
    r"^(?:llama-32-3B-(?P<variant>en-es|en|es|multi)(?P<q>-Q4_K_M)?"
    r"|llama32-3B-mig-(?P<variant2>en-es-full)(?P<q2>-Q4_K_M)?)"
    r"_andreanasuto_mig-(?P<dataset>[a-z]+)-L3(?P<extra>-extra)?_(?P<split>train|test)"
    r"(?P<checked>_checked)?\.(?P<ext>csv|xlsx)$"
)


@dataclass(frozen=True)
class PaperFile:
    """What a released file's name says: the model variant and the data set it holds."""

    path: Path
    variant: str
    quantized: bool
    dataset: str  # language code as written by the authors, or "multi" for the pooled set
    extra: bool
    split: str
    checked: bool

    @property
    def lang(self) -> str:
        return LANG_ALIASES.get(self.dataset, self.dataset)

    @property
    def posts_split(self) -> str:
        return "extra" if self.extra else self.split

    @property
    def evalset(self) -> str:
        return f"{self.lang}-extra" if self.extra else self.lang


def parse_paper_name(path: Path) -> PaperFile | None:
    """Parse a released file's name; None for files that are not per-tweet predictions."""
    m = _PAPER_NAME.match(path.name)
    if not m:
        return None
    return PaperFile(
        path=path,
        variant=m["variant"] or m["variant2"],
        quantized=bool(m["q"] or m["q2"]),
        dataset=m["dataset"],
        extra=bool(m["extra"]),
        split=m["split"],
        checked=bool(m["checked"]),
    )


def paper_files(folder: str | os.PathLike[str]) -> list[PaperFile]:
    """Every per-tweet file of the authors' ``model_performance/data`` folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PostsError(
            folder,
            None,
            None,
            "paper data folder not found; fetch it with data/fetch_paper_data.sh or pass "
            "--paper-data DIR",
        )
    found = [parse_paper_name(p) for p in sorted(folder.rglob("*")) if p.is_file()]
    found = [f for f in found if f is not None]
    if not found:
        raise PostsError(folder, None, None, "no per-tweet files of the authors found here")
    return found


def _read_paper_file(pf: PaperFile) -> pd.DataFrame:
    if pf.path.suffix == ".xlsx":
        df = pd.read_excel(pf.path, dtype=str, keep_default_na=False, na_values=[""])
        df.insert(0, "_row", np.arange(2, len(df) + 2))
        # The training-set workbooks run on below the data: rows with neither text nor label (only
        # a stray label_llama value) are spreadsheet padding, not posts.
        padding = df["plaintext"].isna() & df["label"].isna() if "label" in df else None
        if padding is not None and padding.any():
            df = df[~padding]
    else:
        df = read_table(pf.path)
    for col in ("plaintext", "label"):
        if col not in df.columns:
            raise PostsError(pf.path, None, col, "missing column")
    empty = df["plaintext"].isna() | (df["plaintext"].str.strip() == "")
    if empty.any():
        raise PostsError(pf.path, int(df["_row"][empty.idxmax()]), "plaintext", "empty text")
    # The same tweet can occur twice in one data set (ko-extra has one such pair), so a post is
    # keyed by its text and its occurrence number within the file, never by the mangled id.
    df["_occ"] = df.groupby("plaintext").cumcount()
    return df


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
        df = _read_paper_file(pf)
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
        df = _read_paper_file(pf)
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
        df = _read_paper_file(pf)
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


# --------------------------------------------------------------------------------------------
# One entry point for notebooks, writing, fingerprints, summaries
# --------------------------------------------------------------------------------------------


def load_posts(
    source: str,
    path: str | os.PathLike[str] | None = None,
    seed: int = 0,
    test_size: float = 0.25,
) -> pd.DataFrame:
    """The posts table of a profile: ``source`` is ``demo``, ``paper`` or ``file``.

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
    posts = load_user_posts(path, seed=seed, test_size=test_size)
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


def subsample(posts: pd.DataFrame, per_group: int, seed: int = 0) -> pd.DataFrame:
    """At most ``per_group`` posts per (evalset, split), labels taken in turn so each appears.

    Used by the smoke profile to run every notebook on a handful of posts.
    """
    shuffled = posts.sample(frac=1.0, random_state=seed)
    rank = shuffled.groupby(["evalset", "split", "label"]).cumcount()
    label_order = shuffled["label"].map({lab: i for i, lab in enumerate(LABELS)})
    ordered = shuffled.assign(_rank=rank, _lab=label_order).sort_values(["_rank", "_lab"])
    kept = ordered.groupby(["evalset", "split"], sort=False).head(per_group)
    return posts.loc[sorted(kept.index)].reset_index(drop=True)


#: Published sizes of the authors' data sets (../shared/FACTS.md): (evalset, split) -> posts.
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


def write_posts(posts: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write the posts table atomically (a partial file never replaces a good one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    posts.loc[:, list(POSTS_COLUMNS)].to_csv(tmp, index=False, encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_posts(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a posts table written by :func:`write_posts` (validated again)."""
    df = read_table(path)
    if "translation_ok" in df:
        df["translation_ok"] = pd.to_numeric(df["translation_ok"])
    return validate_posts(df, path)


def fingerprint_files(files: Iterable[str | os.PathLike[str]]) -> str:
    """sha256 over the names and bytes of files (sorted), to key caches and skip finished work."""
    h = hashlib.sha256()
    for f in sorted(Path(f) for f in files):
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def posts_fingerprint(posts: pd.DataFrame) -> str:
    """sha256 of a posts table's content (stable across row order of equal tables)."""
    canon = posts.loc[:, list(POSTS_COLUMNS)].astype(str).sort_values("post_id")
    return hashlib.sha256(canon.to_csv(index=False).encode()).hexdigest()


def count_posts(posts: pd.DataFrame) -> pd.DataFrame:
    """Posts per language × split × label, with totals, languages in the paper's order."""
    table = posts.pivot_table(
        index=["lang", "split"], columns="label", values="post_id", aggfunc="count", fill_value=0
    )
    table = table.reindex(columns=list(LABELS), fill_value=0)
    table["total"] = table.sum(axis=1)
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    keys = sorted(table.index, key=lambda k: (order.get(k[0], 99), k[0], split_order[k[1]]))
    return table.loc[keys]


def unrelated_share(
    posts: pd.DataFrame, splits: tuple[str, ...] = ("test", "extra")
) -> pd.DataFrame:
    """Share of unrelated posts per evaluation set (its test or extra posts): a classifier that
    always says 'unrelated' scores this accuracy, the floor every accuracy is read against."""
    g = posts[posts["split"].isin(splits)].groupby("evalset")
    out = pd.DataFrame(
        {
            "n": g.size(),
            "unrelated": g["label"].apply(lambda s: int((s == "unrelated").sum())),
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


# --------------------------------------------------------------------------------------------
# Split audit: which evaluation posts could a variant have seen in training?
# --------------------------------------------------------------------------------------------
#: Which column defines a variant's training set: the per-language split or the pooled one.
TRAIN_SPLITS = {"per_language": "split", "pooled": "split_multi"}


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
    """Every evaluation post (test or extra) that a variant's training set holds: ``exact`` when a
    training post of the same language has the same normalized text, ``near`` when the cosine
    similarity of their character 3-5-gram TF-IDF vectors reaches ``near``. Columns: variant,
    train_split, post_id, evalset, exact, near (near includes the exact ones)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    evaluated = posts[posts["split"].isin(["test", "extra"])]
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
    n_eval = posts[posts["split"].isin(["test", "extra"])].groupby("evalset").size()
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
