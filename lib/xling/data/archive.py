"""Reading an archive of posts to classify, chunk by chunk, and a synthetic demo archive.

An archive is many files of posts without labels (the authors' Harvard Geotweet Archive is one
gzipped CSV per day): ``.csv``, ``.tsv``, ``.jsonl`` (each optionally gzipped) and ``.parquet``.
:func:`scan_file` counts a file's records without keeping them, so a plan of chunks (rows
``start .. stop`` of one file) costs no memory; :func:`read_chunk` reads one chunk. Bad input never
stops the reading: an empty or undecodable text, a record with the wrong number of fields, a
missing column or a gzip stream cut short becomes an error record (file, row, reason) and the rest
is read. Row numbers are what a user sees in an editor: the line a CSV/TSV record starts on (the
header is line 1), the line of a JSON-lines record, the 1-based row of a Parquet file.

:func:`demo_archive` writes gzipped CSV shards drawn from the demo corpus, marked synthetic in
their ``source`` column, with bad rows and a truncated shard on request: the archive feature runs
offline and its tests have known faults to find.

Layer 2 (data).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: What demo_archive writes in the ``source`` column: these posts are not an archive's.
SYNTHETIC_SOURCE = "synthetic (xling demo corpus, resampled)"
#: The columns of an errors table.
ERROR_COLUMNS = ("file", "row", "reason")
#: File types an archive may hold (each but parquet may end in .gz as well).
KINDS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


class ArchiveError(ValueError):
    """Input that cannot be read at all (no file matches a pattern, an unsupported file type):
    refused before any work starts, with the pattern or file named."""


def archive_kind(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """(kind, gzipped) of an archive file from its name: ``x.csv.gz`` is ("csv", True)."""
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    stem = name[:-3] if gz else name
    suffix = Path(stem).suffix
    kind = KINDS.get(suffix)
    if kind is None or (gz and kind == "parquet"):
        raise ArchiveError(
            f"{path}: unsupported file type (expected .csv, .tsv, .jsonl, each optionally .gz, "
            "or .parquet)"
        )
    return kind, gz


def expand_inputs(patterns) -> list[Path]:
    """Files named by paths or glob patterns (``**`` recursive), sorted within each pattern,
    each once. A pattern that matches nothing, or a file of another type, is an ArchiveError."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    files: list[Path] = []
    seen: set[Path] = set()
    for pattern in patterns:
        pattern = os.path.expanduser(str(pattern))
        hits = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        hits = [h for h in hits if Path(h).is_file()]
        if not hits:
            what = "no files match" if glob.has_magic(pattern) else "no such file"
            raise ArchiveError(f"{what}: {pattern}")
        for hit in hits:
            path = Path(hit).resolve()
            archive_kind(path)
            if path not in seen:
                seen.add(path)
                files.append(path)
    return files


def error(file, row, reason: str) -> dict:
    """One error record (the name of the file, its row or None for the whole file, why)."""
    return {"file": str(file), "row": None if row is None else int(row), "reason": reason}


def errors_table(records: list[dict]) -> pd.DataFrame:
    """Error records as a table sorted by file and row (file-level errors first)."""
    table = pd.DataFrame(records, columns=list(ERROR_COLUMNS))
    table["row"] = table["row"].astype("Int64")
    return table.sort_values(["file", "row"], na_position="first", kind="stable").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------------------------
# Records: one iterator per kind, yielding (row, fields or None, problem or None)
# --------------------------------------------------------------------------------------------


@dataclass
class Truncated(Exception):
    """The file's compressed stream ends early (or is corrupt) after ``rows`` good records."""

    rows: int
    reason: str


def _open_text(path: Path, gz: bool):
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (closed by wrapper)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")


def _stream_errors():
    return (EOFError, gzip.BadGzipFile, zlib.error)


def _csv_records(path: Path, gz: bool, sep: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """The header's columns first (row 1, as a dict of name -> index), then each record."""
    n = 0
    with _open_text(path, gz) as f:
        reader = csv.reader(f, delimiter=sep)
        line_before = 0
        header = None
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                row = line_before + 1
                line_before = reader.line_num
                if header is None:
                    raise Truncated(0, f"cannot parse the header: {err}") from err
                n += 1
                yield row, None, f"cannot parse the record: {err}"
                continue
            except _stream_errors() as err:
                raise Truncated(n, _stream_reason(path, err)) from err
            row = line_before + 1
            line_before = reader.line_num
            if not record:  # a blank line, skipped as pandas skips it
                continue
            if header is None:
                header = [c.strip() for c in record]
                yield row, {"__header__": header}, None
                continue
            n += 1
            if len(record) != len(header):
                yield row, None, f"{len(record)} fields but the header has {len(header)}"
                continue
            yield row, dict(zip(header, record, strict=True)), None


def _jsonl_records(path: Path, gz: bool) -> Iterator[tuple[int, dict | None, str | None]]:
    n = 0
    with _open_text(path, gz) as f:
        row = 0
        while True:
            try:
                line = f.readline()
            except _stream_errors() as err:
                raise Truncated(n, _stream_reason(path, err)) from err
            if not line:
                return
            row += 1
            if not line.strip():
                continue
            n += 1
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                yield row, None, f"not valid JSON: {err.msg} at column {err.colno}"
                continue
            if not isinstance(rec, dict):
                yield row, None, f"a JSON {type(rec).__name__}, not an object"
                continue
            yield row, {k: v for k, v in rec.items()}, None


def _stream_reason(path: Path, err: Exception) -> str:
    if isinstance(err, EOFError):
        return "truncated gzip: the compressed stream ends early; the rows after it are lost"
    return f"corrupt compressed stream ({err}); the rows after it are lost"


def _records(path: Path):
    kind, gz = archive_kind(path)
    if kind == "jsonl":
        return _jsonl_records(path, gz)
    return _csv_records(path, gz, "\t" if kind == "tsv" else ",")


# --------------------------------------------------------------------------------------------
# Scanning (counting) a file and reading one chunk of it
# --------------------------------------------------------------------------------------------


@dataclass
class FileScan:
    """What a first pass over a file found: its kind, its record count, file-level errors."""

    path: Path
    kind: str
    n_rows: int = 0  # records (good or bad) that can be read
    errors: list[dict] = field(default_factory=list)  # file-level: missing column, truncation

    @property
    def usable(self) -> bool:
        return self.n_rows > 0


def _needed(text_column: str, id_column: str | None, keep) -> list[tuple[str, str]]:
    out = [(text_column, "--text-column")]
    if id_column:
        out.append((id_column, "--id-column"))
    out += [(k, "--keep") for k in keep]
    return out


def scan_file(path, text_column: str = "text", id_column: str | None = None, keep=()) -> FileScan:
    """Count a file's records (none is kept) and find what stops it being read whole: a column
    the run needs missing from the header (the file is refused: nothing of it is classified), a
    gzip stream cut short (the records before the cut are read), an unreadable file."""
    path = Path(path)
    kind, _ = archive_kind(path)
    scan = FileScan(path, kind)
    needed = _needed(text_column, id_column, keep)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            names = meta.schema_arrow.names
            missing = [(c, opt) for c, opt in needed if c not in names]
            if missing:
                scan.errors.append(_missing(path, missing, names))
                return scan
            scan.n_rows = meta.metadata.num_rows
            return scan
        if kind == "jsonl":  # columns are per record: a missing field is a row error
            for _row, _rec, _problem in _records(path):
                scan.n_rows += 1
            return scan
        records = _records(path)
        for row, rec, _problem in records:
            if rec is not None and "__header__" in rec:
                header = rec["__header__"]
                missing = [(c, opt) for c, opt in needed if c not in header]
                if missing:
                    scan.errors.append(_missing(path, missing, header, row))
                    records.close()
                    return scan
                continue
            scan.n_rows += 1
        if scan.n_rows == 0:
            scan.errors.append(error(path, None, "no records (an empty file, or a header only)"))
    except Truncated as cut:
        scan.n_rows = cut.rows
        scan.errors.append(error(path, None, f"{cut.reason} (after {cut.rows} records)"))
    except OSError as err:
        scan.n_rows = 0
        scan.errors.append(error(path, None, f"cannot read the file: {err}"))
    except Exception as err:  # noqa: BLE001 - e.g. a corrupt Parquet footer: refuse the file
        scan.n_rows = 0
        scan.errors.append(error(path, None, f"cannot read the file: {type(err).__name__}: {err}"))
    return scan


def _missing(path, missing, have, row=None) -> dict:
    what = ", ".join(f"{c!r} ({opt})" for c, opt in missing)
    shown = ", ".join(map(str, have[:12])) + (", ..." if len(have) > 12 else "")
    return error(path, row, f"missing column {what}; the file has: {shown}")


def _clean(value) -> str | None:
    """A field as text for the output tables: bytes that were not UTF-8 become U+FFFD."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    if _UNDECODABLE.search(text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def read_chunk(
    path,
    start: int,
    stop: int,
    text_column: str = "text",
    id_column: str | None = None,
    keep=(),
    id_prefix: str | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Records ``start .. stop - 1`` (0-based, counting bad records) of a file: a table with
    ``_index`` (the record's number in the file), ``row``, ``id``, ``text`` and the kept
    columns, and the error records of the rows refused (empty text, bytes that are not UTF-8 in
    the text, a missing field, a malformed record). The default id is ``<file name>:<row>``."""
    path = Path(path)
    kind, _ = archive_kind(path)
    prefix = id_prefix or path.name
    rows: list[dict] = []
    errors: list[dict] = []

    def take(index: int, row: int, rec: dict | None, problem: str | None) -> None:
        if problem is not None:
            errors.append(error(path, row, problem))
            return
        for col, opt in _needed(text_column, id_column, keep):
            if col not in rec:
                errors.append(error(path, row, f"no field {col!r} ({opt})"))
                return
        text = rec[text_column]
        text = None if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
        if text is None or not text.strip():
            errors.append(error(path, row, f"empty text (column {text_column!r})"))
            return
        if _UNDECODABLE.search(text):
            errors.append(
                error(path, row, f"bytes that are not UTF-8 in the text (column {text_column!r})")
            )
            return
        out = {"_index": index, "row": row, "text": text}
        out["id"] = _clean(rec[id_column]) if id_column else f"{prefix}:{row}"
        if id_column and not out["id"]:
            errors.append(error(path, row, f"empty id (column {id_column!r})"))
            return
        for col in keep:
            out[col] = _clean(rec[col])
        rows.append(out)

    if kind == "parquet":
        import pyarrow.parquet as pq

        columns = list(dict.fromkeys(c for c, _ in _needed(text_column, id_column, keep)))
        pf = pq.ParquetFile(path)
        index = 0
        for batch in pf.iter_batches(batch_size=4096, columns=columns):
            n = batch.num_rows
            if index + n <= start:
                index += n
                continue
            part = batch.to_pydict()
            for j in range(n):
                i = index + j
                if start <= i < stop:
                    take(i, i + 1, {c: part[c][j] for c in columns}, None)
            index += n
            if index >= stop:
                break
    else:
        index = 0
        records = _records(path)
        try:
            for row, rec, problem in records:
                if rec is not None and "__header__" in rec:
                    continue
                if index >= stop:
                    break
                if index >= start:
                    take(index, row, rec, problem)
                index += 1
        except Truncated:
            pass  # the scan reported it; the chunks stop before the cut
        finally:
            records.close()
    table = pd.DataFrame(rows, columns=["_index", "row", "id", "text", *keep])
    return table, errors


# --------------------------------------------------------------------------------------------
# The demo archive
# --------------------------------------------------------------------------------------------

#: A country per demo language, for the synthetic ``place`` column.
_PLACES = {
    "en": "GB",
    "es": "ES",
    "ar": "EG",
    "de": "DE",
    "fr": "FR",
    "hi": "IN",
    "hu": "HU",
    "id": "ID",
    "it": "IT",
    "pl": "PL",
    "pt": "BR",
    "tr": "TR",
    "ko": "KR",
}
#: The kinds of bad row demo_archive plants, in turn.
BAD_KINDS = ("empty", "undecodable", "over-long")
_MARK = "\x00UNDECODABLE\x00"


def demo_archive(
    n: int,
    shards: int,
    folder: str | os.PathLike[str],
    seed: int = 1234,
    bad_rows: int = 0,
    truncated: bool = False,
    days: int = 14,
    long_words: int = 1500,
) -> list[Path]:
    """Write ``n`` posts drawn from the demo corpus (with replacement when ``n`` exceeds it) as
    ``shards`` gzipped CSV files ``archive-000.csv.gz`` ... under ``folder``: columns ``id``,
    ``text``, ``lang``, ``date`` (a time in ``days`` days from 2026-01-01), ``place`` (a country
    per language) and ``source`` (:data:`SYNTHETIC_SOURCE`). The same seed writes the same bytes.

    ``bad_rows`` of the ``n`` rows get a bad text, the kinds of :data:`BAD_KINDS` in turn (an
    empty text; bytes that are not UTF-8; ``long_words`` words, longer than any tweet), spread
    over the shards. ``truncated`` cuts the last shard's compressed bytes at two thirds: its
    later rows cannot be read, and the reader reports the cut. A shard already there with the
    same bytes is left untouched (a classification of it resumes)."""
    from xling.data.sources import load_demo_posts

    if n < 1 or shards < 1 or shards > n:
        raise ValueError(f"need 1 <= shards <= n, got n={n}, shards={shards}")
    if not 0 <= bad_rows <= n:
        raise ValueError(f"bad_rows must be between 0 and n ({n}), got {bad_rows}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = {f"archive-{s:03d}.csv.gz" for s in range(shards)}
    for old in folder.glob("archive-*.csv.gz"):
        if old.name not in names:
            old.unlink()  # a smaller archive must not keep the shards of a larger one
    rng = np.random.default_rng(seed)
    corpus = load_demo_posts()
    pick = rng.choice(len(corpus), size=n, replace=n > len(corpus))
    posts = corpus.iloc[pick].reset_index(drop=True)
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    seconds = np.sort(rng.integers(0, days * 86400, size=n))
    table = pd.DataFrame(
        {
            "id": [f"demo-{i:06d}" for i in range(n)],
            "text": posts["text"].to_numpy(),
            "lang": posts["lang"].to_numpy(),
            "date": [(start + pd.Timedelta(seconds=int(s))).isoformat() for s in seconds],
            "place": posts["lang"].map(_PLACES).fillna("").to_numpy(),
            "source": SYNTHETIC_SOURCE,
        }
    )
    bounds = np.linspace(0, n, shards + 1).astype(int)
    # bad rows: evenly spread over the archive (so over the shards), the kinds in turn
    where = np.linspace(0, n - 1, bad_rows + 2).astype(int)[1:-1] if bad_rows else []
    for k, i in enumerate(where):
        kind = BAD_KINDS[k % len(BAD_KINDS)]
        if kind == "empty":
            table.at[i, "text"] = ""
        elif kind == "undecodable":
            table.at[i, "text"] = f"{table.at[i, 'text']} {_MARK}"
        else:
            table.at[i, "text"] = " ".join(["immigration"] * long_words)
    written = []
    for s in range(shards):
        part = table.iloc[bounds[s] : bounds[s + 1]]
        buf = io.StringIO()
        part.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        raw = buf.getvalue().encode("utf-8").replace(_MARK.encode(), b"\xff\xfe caf\xe9")
        data = gzip.compress(raw, mtime=0)  # mtime 0: the same bytes every time
        if truncated and s == shards - 1:
            data = data[: len(data) * 2 // 3]
        path = folder / f"archive-{s:03d}.csv.gz"
        written.append(path)
        if path.exists() and path.read_bytes() == data:
            continue  # the same shard: left as it is (its time too, so a run resumes on it)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return written
