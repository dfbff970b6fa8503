"""Reading files: CSV / TSV / Parquet posts files with row-level errors, and the authors' files by
name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xling.data.validate import PostsError
from xling.schema import LANG_ALIASES

#: The csv module's default field limit: a longer field is nearly always an unclosed quote that
#: swallowed the rest of the file (a post that long would be cut at the model's length anyway).
FIELD_LIMIT = 131072


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV, Excel (.xlsx, first sheet) or Parquet file as strings; bad input names
    its line.

    A ``_row`` column keeps each record's line number in the file (header = line 1; a sheet's
    row number in a workbook), so later errors point at the line a user sees in an editor. A
    ``.csv`` whose header is separated by ``;`` or tabs rather than commas is read with that
    separator, with a warning. A field longer than :data:`FIELD_LIMIT` characters is refused
    naming the line it starts on.
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
    if suffix == ".xlsx":
        return _read_sheet(path)
    if suffix not in (".csv", ".tsv", ".txt"):
        raise PostsError(
            path, None, None, f"unsupported file type {suffix!r} (csv, tsv, xlsx, parquet)"
        )
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
    sep = _separator(path, raw, "\t" if suffix == ".tsv" else ",")
    lines, widths = _records(raw, sep, path)
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


def _read_sheet(path: Path) -> pd.DataFrame:
    """The first sheet of a workbook as strings; ``_row`` is the sheet's row number. Rows with
    every cell empty (spreadsheet padding) are dropped; another sheet is named in a warning."""
    import warnings

    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as err:  # zipfile.BadZipFile, openpyxl's own errors, ...
        raise PostsError(path, None, None, f"cannot read as an .xlsx workbook: {err}") from err
    with book:
        sheets = book.sheet_names
        df = pd.read_excel(
            book, sheet_name=sheets[0], dtype=str, keep_default_na=False, na_values=[""]
        )
    if len(sheets) > 1:
        warnings.warn(
            f"{path}: read the first sheet {sheets[0]!r}; the workbook also has "
            + ", ".join(repr(s) for s in sheets[1:]),
            stacklevel=3,
        )
    df.columns = [str(c).strip() for c in df.columns]
    df.insert(0, "_row", np.arange(2, len(df) + 2))
    if df.empty and not len(df.columns) > 1:
        raise PostsError(path, None, None, "empty sheet (no header, no posts)")
    blank = df.drop(columns="_row").isna().all(axis=1)
    return df[~blank].reset_index(drop=True)


def _separator(path: Path, raw: bytes, sep: str) -> str:
    """``sep``, unless the header line holds none of it and splits on ``;`` or a tab instead:
    then that one, with a warning (a spreadsheet saved in a locale where ``,`` is the decimal
    mark writes ``;``)."""
    import warnings

    header = raw.decode("utf-8").lstrip("\ufeff").splitlines()[0]
    if sep in header:
        return sep
    for other, name in ((";", "';'"), ("\t", "a tab"), (",", "','")):
        if other != sep and len(header.split(other)) >= 2:
            warnings.warn(
                f"{path}: the header has no {sep!r} but splits on {name}: read with {name} as "
                "the separator",
                stacklevel=3,
            )
            return other
    return sep


def _records(raw: bytes, sep: str = ",", path: Path | None = None) -> tuple[list[int], list[int]]:
    """First line number and number of fields of each record, the header first. Quoted fields
    may span lines; blank lines are skipped, as pandas skips them."""
    import csv
    import io

    reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=sep)
    starts, widths, line = [], [], 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            if "field larger than field limit" not in str(err):
                raise PostsError(path, line, None, f"cannot parse: {err}") from err
            raise PostsError(
                path,
                line,
                None,
                f"a field of more than {FIELD_LIMIT:,} characters starts in the record on this "
                'line: usually a quote (") that is never closed, so the rest of the file became '
                "one field; no post is that long",
            ) from err
        if record:
            starts.append(line)
            widths.append(len(record))
        line += sum(field.count("\n") for field in record) + 1
    return starts, widths


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


def read_paper_file(pf: PaperFile) -> pd.DataFrame:
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
