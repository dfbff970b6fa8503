"""Classify a whole archive on Dask: one task per chunk of rows of one file, one Parquet part each.

The authors ran their models over the Harvard Geotweet Archive with one SLURM job per compressed
CSV file and a Python loop calling the model once per tweet. Here the same step runs on Dask
distributed, whose three set-ups take the same code: a ``LocalCluster`` of processes on a laptop
(the default, sized to the machine), any running scheduler by address, or dask-jobqueue's
``SLURMCluster`` on an HPC system (:func:`slurm_settings` reads the site's YAML).

- **Plan**: :func:`plan_tasks` counts each file's records (nothing is kept: memory does not grow
  with the archive) and cuts them into chunks of ``chunk_rows``; a file that cannot be read, or
  lacks a column the run needs, is an error record and the rest goes on.
- **Work**: :func:`classify_chunk` runs on a worker: it reads its rows, refuses the bad ones (empty
  or undecodable text, an over-long post, a malformed record), scores the others with the batched
  llama.cpp scorer, and writes ``OUTPUT/parts/<file>-<chunk>.parquet`` in one rename (a temporary
  file first), its refused rows in the part's metadata. Each worker process opens the model once
  and keeps it (:func:`worker_scorer`: a module-level cache keyed by the model files' sha256);
  tasks on one worker take turns on its model, which uses the worker's threads.
- **Resume**: a part on disk is finished work; a re-run skips it. A run killed anywhere (the client
  or a worker, kill -9) loses at most the parts in flight: the parts are written whole or not at
  all, and the settings of the run (``OUTPUT/run.json``) must match for a re-run to add to them.
- **Results do not depend on the workers or the chunking**: posts are scored in blocks of
  ``batch_size`` consecutive records of a file (block ``k`` is records ``k*B .. k*B+B-1``, less
  the refused ones), each block on a freshly reset cache (:meth:`LlamaCppBatchScorer.reset`), and
  ``chunk_rows`` must be a multiple of ``batch_size``: so a post is always scored beside the same
  posts, at the same cache cells, and its log-probabilities are the same bits on one worker or
  many, with any chunk size. (Against one-post-at-a-time scoring they differ by the batched
  scorer's rounding: :data:`UNBATCHED_TOLERANCE`.)
- **Progress**: a bar over posts with posts/s (workers report each block through Dask's event
  log), and the dashboard's address printed.
- **End**: ``OUTPUT/errors.parquet`` (file, row, reason: every refused row and file),
  ``OUTPUT/summary.csv`` (label shares per language, per day where a date column is kept).

Layer 4 (beside :mod:`xling.infer`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xling.artifacts import atomic_write
from xling.data.archive import (
    ArchiveError,
    errors_table,
    expand_inputs,
    read_chunk,
    scan_file,
)
from xling.data.archive import error as error_record
from xling.models.prompts import Prompt
from xling.schema import LABELS

#: Columns of every part, around the kept ones (which follow ``row``).
LOGP_COLUMNS = tuple(f"logp_{label}" for label in LABELS)
PROGRESS_TOPIC = "xling-archive-progress"
#: How far the archive's log-probabilities may lie from one-post-at-a-time scoring
#: (LlamaCppScorer.score_one), in nats: the batched scorer's rounding. Measured here with the
#: embedded Q4_K_M model: at most 0.26 over 160 demo posts (640 log-probabilities; 99th
#: percentile 0.15), the same label for all 160. Between worker counts and chunk sizes there is
#: no tolerance: the bits are the same (see the module docstring).
UNBATCHED_TOLERANCE = 0.35
#: Candidate names of the kept column read as the language / the date in the summary.
LANG_COLUMNS = ("lang", "language")
DATE_COLUMNS = ("date", "created_at", "timestamp", "time", "day")
#: Keys a SLURM site YAML may hold (dask-jobqueue SLURMCluster arguments, and ``jobs``).
SLURM_KEYS = {
    "queue": str,
    "account": str,
    "walltime": str,
    "cores": int,
    "memory": str,
    "processes": int,
    "jobs": int,
    "job_extra_directives": list,
    "job_script_prologue": list,
    "local_directory": str,
    "log_directory": str,
    "interface": str,
    "python": str,
    "death_timeout": int,
}
SLURM_REQUIRED = ("cores", "memory", "walltime")


# --------------------------------------------------------------------------------------------
# The model a worker opens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveModel:
    """What every worker opens: a GGUF file (+ LoRA GGUF) through the batched llama.cpp scorer,
    with the prompt, the batch size and the longest post accepted. The sha256 of the files name
    the model in every part and in the workers' cache."""

    gguf: str
    prompt: Prompt
    lora: str | None = None
    gguf_sha256: str = ""
    lora_sha256: str | None = None
    batch_size: int = 16
    max_post_tokens: int = 512

    @classmethod
    def from_files(cls, files, prompt: Prompt, **kw) -> ArchiveModel:
        """From a :class:`~xling.models.layout.ModelFiles` (a llama.cpp backend)."""
        from xling.models.base import sha256_file

        if files.engine != "llamacpp":
            raise ArchiveError(
                f"backend {files.backend}: xling classify runs llama.cpp files (GGUF); choose a "
                "llamacpp-* backend"
            )
        for path, what in ((files.model, "model"), (files.lora, "LoRA")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{what} GGUF file not found: {path}")
        return cls(
            gguf=str(files.model),
            prompt=prompt,
            lora=str(files.lora) if files.lora else None,
            gguf_sha256=sha256_file(files.model),
            lora_sha256=sha256_file(files.lora) if files.lora else None,
            **kw,
        )

    @property
    def key(self) -> str:
        spec = [self.gguf_sha256, self.lora_sha256, self.prompt.prefix, self.prompt.body_template]
        spec += [self.batch_size, self.max_post_tokens]
        return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]

    def open(self, n_threads: int):
        from xling.models.scorers import LlamaCppBatchScorer

        scorer = LlamaCppBatchScorer(
            self.gguf,
            self.prompt,
            lora=self.lora,
            batch_size=self.batch_size,
            max_batch_tokens=max(2048, self.max_post_tokens),
            n_threads=n_threads,
        )
        return BlockScorer(scorer)


def run_model(
    profile: str,
    variant: str,
    backend: str = "llamacpp-q4_k_m+lora",
    base_model: str | None = "embedded",
    prompt_format: str = "plain",
    **kw,
) -> ArchiveModel:
    """The model files a finished profile run made for ``variant`` (02_quantize's GGUF files;
    ``base`` is the untuned base model), as an :class:`ArchiveModel`. A missing file is a
    FileNotFoundError naming the command that makes it. The embedded base model is found without
    its dequantized copy when the prompt needs no tokenizer (``plain``)."""
    from xling import paths
    from xling.models.base import EMBEDDED, BaseModel, embedded_gguf, resolve_base
    from xling.models.layout import model_files
    from xling.models.prompts import make_prompt

    if base_model is None:
        raise ArchiveError(
            f"profile {profile} has no model (base_model: null): classify with --gguf FILE, or a "
            "profile with a model (demo, full)"
        )
    run = paths.RUNS / profile
    make = (
        f"./run_all.sh{'' if profile == 'demo' else f' --profile {profile}'} "
        "--only 00_data 01_finetune 02_quantize"
    )
    if variant != "base" and backend.startswith("llamacpp-"):
        # the variant's own file, checked before the base model is looked for (which may cost)
        kind = "lora" if backend.endswith("+lora") else backend.removeprefix("llamacpp-")
        own = run / "gguf" / f"{variant}-{kind}.gguf"
        if not own.exists():
            raise FileNotFoundError(
                f"variant {variant!r}, backend {backend}: {paths.display(own)} not found; make "
                f"it with: {make}"
            )
    if prompt_format == "plain" and base_model == EMBEDDED:
        gguf = embedded_gguf()
        base = BaseModel(EMBEDDED, gguf.parent, gguf, "")
        tokenizer = None
    else:
        base = resolve_base(base_model)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base.folder)
    try:
        files = model_files(run, base, variant, backend)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"variant {variant!r}, backend {backend}: {err}; make the files with: {make}"
        ) from err
    if not Path(files.model).exists():
        raise FileNotFoundError(
            f"variant {variant!r}, backend {backend}: {files.model} not found; make it with: {make}"
        )
    return ArchiveModel.from_files(files, make_prompt(prompt_format, tokenizer), **kw)


class BlockScorer:
    """The batched scorer as the archive uses it: a block of posts on a freshly reset cache."""

    def __init__(self, scorer):
        self.scorer = scorer

    def post_tokens(self, text: str) -> int:
        return self.scorer.post_tokens(text)

    def score_block(self, texts: list[str]) -> np.ndarray:
        self.scorer.reset()
        return self.scorer.score_many(texts)

    def close(self) -> None:
        self.scorer.close()


_OPEN: dict[str, tuple[object, threading.Lock]] = {}
_OPEN_LOCK = threading.Lock()


def worker_scorer(model, n_threads: int):
    """(scorer, lock) for ``model`` in this process: opened on first use and kept, so a worker
    loads its model once; a model with another key closes the one before (a long-lived worker
    does not pile models up)."""
    with _OPEN_LOCK:
        if model.key not in _OPEN:
            for key in list(_OPEN):
                old, lock = _OPEN.pop(key)
                with lock:
                    old.close()
            _OPEN[model.key] = (model.open(n_threads), threading.Lock())
        return _OPEN[model.key]


def _worker_threads() -> int:
    """This worker's thread count (Dask's), else the machine's cores."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return os.cpu_count() or 1


def _report(n: int) -> None:
    """Tell the client that ``n`` more rows are done (nothing outside a Dask worker)."""
    try:
        from distributed import get_worker

        get_worker().log_event(PROGRESS_TOPIC, {"rows": n})
    except (ImportError, ValueError):
        pass


# --------------------------------------------------------------------------------------------
# Planning and the task
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What makes a part's content: the same settings give the same parts."""

    text_column: str = "text"
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    chunk_rows: int = 512


@dataclass(frozen=True)
class ChunkTask:
    """Records ``start .. stop - 1`` of one file, written as ``parts/<part>``."""

    file: str
    name: str  # the file's name in part names (unique within the run)
    chunk: int
    start: int
    stop: int

    @property
    def part(self) -> str:
        return f"{self.name}-{self.chunk:05d}.parquet"


def check_settings(settings: Settings, batch_size: int) -> None:
    if settings.chunk_rows < 1 or settings.chunk_rows % batch_size:
        lo = max(batch_size, settings.chunk_rows // batch_size * batch_size)
        raise ArchiveError(
            f"--chunk-rows {settings.chunk_rows}: must be a positive multiple of the batch size "
            f"{batch_size} (so that a post's batch does not depend on the chunking); "
            f"e.g. {lo} or {lo + batch_size}"
        )
    if settings.text_column in settings.keep:
        raise ArchiveError(f"--keep {settings.text_column}: the text is not a kept column")
    clash = {"id", "file", "row", "prediction", *LOGP_COLUMNS, "model_sha256", "lora_sha256"}
    bad = sorted(clash & set(settings.keep))
    if bad:
        raise ArchiveError(f"--keep {', '.join(bad)}: the parts have columns of that name")


def part_names(files: list[Path], known: dict[str, str] | None = None) -> dict[str, str]:
    """The name each file has in part names: its file name, with a short hash of its folder
    where two inputs share a name; names a run already gave are kept (``known``)."""
    known = dict(known or {})
    taken = set(known.values())
    for f in files:
        if str(f) in known:
            continue
        name = f.name
        if name in taken:
            name = f"{f.name}-{hashlib.sha256(str(f.parent).encode()).hexdigest()[:8]}"
        known[str(f)] = name
        taken.add(name)
    return known


def plan_tasks(
    files: list[Path], settings: Settings, names: dict[str, str], progress: bool = False
) -> tuple[list[ChunkTask], list[dict], int]:
    """Chunks of every file, the file-level errors, and the rows planned."""
    from tqdm import tqdm

    tasks, errors, rows = [], [], 0
    for f in tqdm(files, desc="plan (count rows)", unit="file", disable=not progress):
        scan = scan_file(f, settings.text_column, settings.id_column, settings.keep)
        errors += scan.errors
        rows += scan.n_rows
        for k, start in enumerate(range(0, scan.n_rows, settings.chunk_rows)):
            stop = min(start + settings.chunk_rows, scan.n_rows)
            tasks.append(ChunkTask(str(f), names[str(f)], k, start, stop))
    return tasks, errors, rows


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classify_chunk(task: ChunkTask, model, settings: Settings, output: str) -> dict:
    """Classify one chunk and write its part (the task every worker runs). Returns what the
    client counts: rows, posts scored, refused rows, seconds, the worker's pid and peak RSS."""
    started = time.perf_counter()
    part = Path(output) / "parts" / task.part
    if part.exists():  # another attempt (a retried task) finished it
        meta = read_part_meta(part)
        return {**meta, "skipped": True, "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}
    table, errors = read_chunk(
        task.file,
        task.start,
        task.stop,
        settings.text_column,
        settings.id_column,
        settings.keep,
        id_prefix=task.name,
    )
    scorer, lock = worker_scorer(model, _worker_threads())
    logp = np.zeros((len(table), len(LABELS)))
    with lock:
        ok = np.ones(len(table), dtype=bool)
        for i, text in enumerate(table["text"]):
            n = scorer.post_tokens(text)
            if n > model.max_post_tokens:
                ok[i] = False
                errors.append(
                    error_record(
                        task.file,
                        table["row"].iat[i],
                        f"over-long post: {n} tokens (more than max_post_tokens "
                        f"{model.max_post_tokens})",
                    )
                )
        refused_before = (task.stop - task.start) - len(table)
        _report(refused_before + int((~ok).sum()))
        blocks = (table["_index"].to_numpy() // model.batch_size) if len(table) else []
        for b in pd.unique(np.asarray(blocks)):
            idx = np.flatnonzero((np.asarray(blocks) == b) & ok)
            if len(idx):
                logp[idx] = scorer.score_block(table["text"].iloc[idx].tolist())
                _report(len(idx))
    table = table[ok].reset_index(drop=True)
    logp = logp[ok]
    out = pd.DataFrame(
        {
            "id": table["id"].astype(str),
            "file": task.name,
            "row": table["row"].astype("int64"),
        }
    )
    for col in settings.keep:
        out[col] = table[col].astype("string")
    out["prediction"] = [LABELS[k] for k in logp.argmax(axis=1)] if len(logp) else []
    for j, col in enumerate(LOGP_COLUMNS):
        out[col] = logp[:, j]
    out["model_sha256"] = model.gguf_sha256
    out["lora_sha256"] = model.lora_sha256
    meta = {
        "part": task.part,
        "file": task.file,
        "chunk": task.chunk,
        "start": task.start,
        "stop": task.stop,
        "rows": task.stop - task.start,
        "scored": len(out),
        "errors": errors,
        "seconds": time.perf_counter() - started,
    }
    write_part(out, part, meta)
    return {**meta, "skipped": False, "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}


def write_part(table: pd.DataFrame, path: Path, meta: dict) -> Path:
    """Write a part in one rename: a temporary file beside it first (a kill leaves no half
    part), its refused rows and counts in the Parquet metadata (key ``xling``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    schema_meta = dict(arrow.schema.metadata or {})
    schema_meta[b"xling"] = json.dumps(meta, default=_plain).encode()
    arrow = arrow.replace_schema_metadata(schema_meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        pq.write_table(arrow, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if x is pd.NA:
        return None
    raise TypeError(f"not JSON: {type(x)}")


def read_part_meta(path: Path) -> dict:
    """The counts and refused rows a part carries (its Parquet metadata)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"xling"])


# --------------------------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------------------------


def slurm_settings(path: str | os.PathLike[str]) -> tuple[dict, int]:
    """(SLURMCluster keyword arguments, jobs) from a site's YAML: ``queue``, ``account``,
    ``walltime`` (HH:MM:SS), ``cores`` and ``memory`` per job (``"16GB"``), optionally
    ``processes`` per job, ``jobs`` (how many to start, default 1) and the other keys of
    :data:`SLURM_KEYS`. An unknown key or a wrong type is an ArchiveError naming the key."""
    import re

    import yaml

    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"--cluster-config {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ArchiveError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise ArchiveError(f"{path}: expected a mapping of SLURM settings (queue, cores, ...)")
    kwargs = {}
    for key, value in raw.items():
        if key not in SLURM_KEYS:
            raise ArchiveError(
                f"{path}: unknown key {key!r}; expected one of {', '.join(sorted(SLURM_KEYS))}"
            )
        want = SLURM_KEYS[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise ArchiveError(
                f"{path}: {key!r} must be a {want.__name__}, got {type(value).__name__} {value!r}"
            )
        if want is int and value < 1:
            raise ArchiveError(f"{path}: {key!r} must be at least 1, got {value}")
        kwargs[key] = value
    missing = [k for k in SLURM_REQUIRED if k not in kwargs]
    if missing:
        raise ArchiveError(f"{path}: missing {', '.join(missing)} (every SLURM job needs them)")
    if not re.fullmatch(r"(\d+-)?\d{1,3}:\d{2}:\d{2}", kwargs["walltime"]):
        raise ArchiveError(f"{path}: walltime {kwargs['walltime']!r} is not HH:MM:SS")
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", kwargs["memory"], flags=re.I):
        raise ArchiveError(f"{path}: memory {kwargs['memory']!r} is not like '16GB'")
    jobs = kwargs.pop("jobs", 1)
    return kwargs, jobs


def default_workers(threads_per_worker: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for a LocalCluster on this machine: one single-threaded
    worker per core by default (llama.cpp's threads wait for each other at every step, so
    separate processes scale better than threads in one)."""
    cores = os.cpu_count() or 1
    threads = threads_per_worker or 1
    return max(1, cores // threads), threads


@contextlib.contextmanager
def dask_client(
    client=None,
    scheduler: str | None = None,
    slurm: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    dashboard_address: str | None = ":8787",
    log=print,
):
    """A Dask client: ``client`` as given; one joined to ``scheduler`` (an address); one on a
    SLURMCluster from the ``slurm`` YAML; or a LocalCluster of processes sized to the machine
    (``workers`` x ``threads_per_worker``). What it started it closes."""
    import logging

    from distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if scheduler:
        try:
            c = Client(scheduler, timeout="20s")
        except OSError as err:
            raise ArchiveError(
                f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({err})"
            ) from err
        try:
            yield c
        finally:
            c.close()
        return
    if slurm:
        kwargs, jobs = slurm_settings(slurm)
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(**kwargs)
        cluster.scale(jobs=jobs)
        log(f"SLURM: {jobs} job(s) of {kwargs['cores']} cores submitted")
    else:
        w, t = default_workers(threads_per_worker)
        cluster = LocalCluster(
            n_workers=workers or w,
            threads_per_worker=t,
            processes=True,
            dashboard_address=dashboard_address,
            silence_logs=logging.ERROR,
        )
    try:
        with Client(cluster) as c:
            yield c
    finally:
        cluster.close()


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


@dataclass
class ArchiveResult:
    """What a run did: its output folder, counts, the errors and summary tables."""

    output: Path
    files: int
    tasks: int
    parts_done_before: int
    rows: int
    scored: int
    refused: int
    seconds: float
    dashboard: str | None
    errors: pd.DataFrame
    summary: pd.DataFrame
    workers: list[dict] = field(default_factory=list)  # per worker pid: tasks, peak RSS

    @property
    def ok(self) -> bool:
        return self.refused == 0

    def describe(self) -> str:
        rate = self.scored_now / self.seconds if self.seconds and self.scored_now else 0.0
        lines = [
            f"{self.rows} rows in {self.files} files, {self.tasks} parts "
            f"({self.parts_done_before} already done): {self.scored} posts classified, "
            f"{self.refused} rows refused",
            f"this run: {self.scored_now} posts in {self.seconds:.1f} s ({rate:.1f} posts/s)",
            f"output: {self.output} (parts/, summary.csv, errors.parquet)",
        ]
        if self.refused:
            reasons = self.errors["reason"].str.replace(r"(?<![\w-])\d+(?![\w-])", "N", regex=True)
            top = reasons.value_counts().head(5)
            lines.append("refused: " + "; ".join(f"{n}x {r}" for r, n in top.items()))
        return "\n".join(lines)

    scored_now: int = 0
    work_seconds: float = 0.0  # from the first task submitted to the last one finished


def _settings_record(settings: Settings, model) -> dict:
    return {
        "settings": asdict(settings),
        "model": {
            "gguf_sha256": model.gguf_sha256,
            "lora_sha256": model.lora_sha256,
            "prompt": [model.prompt.prefix, model.prompt.body_template],
            "batch_size": model.batch_size,
            "max_post_tokens": model.max_post_tokens,
        },
    }


def _load_run(
    output: Path, settings: Settings, model, files: list[Path], restart: bool = False
) -> dict:
    """OUTPUT/run.json: a new one, or the old one when it fits (same settings and model, the
    files it had unchanged); otherwise an ArchiveError naming what differs, or, with
    ``restart``, the old parts deleted and a new start."""
    try:
        return _check_run(output, settings, model, files)
    except ArchiveError:
        if not restart:
            raise
        import shutil

        shutil.rmtree(output / "parts", ignore_errors=True)
        for name in ("run.json", "errors.parquet", "summary.csv"):
            (output / name).unlink(missing_ok=True)
        return _check_run(output, settings, model, files)


def _check_run(output: Path, settings: Settings, model, files: list[Path]) -> dict:
    record = _settings_record(settings, model)
    run_file = output / "run.json"
    state = {"files": {}}
    if run_file.exists():
        state = json.loads(run_file.read_text(encoding="utf-8"))
        old = {k: state.get(k) for k in record}
        new = json.loads(json.dumps(record))
        if old != new:
            diff = [
                f"{k}.{kk}: {old[k].get(kk)!r} then, {new[k].get(kk)!r} now"
                for k in new
                for kk in new[k]
                if (old.get(k) or {}).get(kk) != new[k][kk]
            ]
            raise ArchiveError(
                f"{output} holds parts made with other settings ({'; '.join(diff)}): use the "
                "same settings to resume, or another --output"
            )
    known = state.get("files", {})
    for f in files:
        entry = known.get(str(f))
        if entry is None:
            continue
        st = f.stat()
        if (entry["size"], entry["mtime_ns"]) != (st.st_size, st.st_mtime_ns):
            raise ArchiveError(
                f"{f} changed since its parts in {output} were written: delete "
                f"{output / 'parts'}/{entry['name']}-*.parquet to classify it again"
            )
    names = part_names(files, {k: v["name"] for k, v in known.items()})
    for f in files:
        st = f.stat()
        known[str(f)] = {"name": names[str(f)], "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    state = {**record, "files": known}
    output.mkdir(parents=True, exist_ok=True)
    atomic_write(
        run_file, lambda tmp: tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    )
    return names


def classify_archive(
    inputs,
    output: str | os.PathLike[str],
    model,
    text_column: str = "text",
    id_column: str | None = None,
    keep=(),
    chunk_rows: int = 512,
    client=None,
    scheduler: str | None = None,
    slurm: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    dashboard_address: str | None = ":8787",
    progress: bool = True,
    restart_on_change: bool = False,
    log=print,
) -> ArchiveResult:
    """Classify every post of ``inputs`` (files or globs) with ``model`` (an
    :class:`ArchiveModel`) on Dask, into ``output``: parts/, errors.parquet, summary.csv. Parts
    already written are skipped; bad rows and files are refused into errors.parquet and the rest
    completes. ``restart_on_change``: an output made with other settings (or from files that
    changed since) is cleared and started again, instead of refused (the notebook does this, so
    a changed parameter re-runs). See the module docstring for the engine."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    output = Path(output).resolve()
    keep = tuple(keep)
    settings = Settings(text_column, id_column, keep, chunk_rows)
    check_settings(settings, model.batch_size)
    files = expand_inputs(inputs)
    names = _load_run(output, settings, model, files, restart=restart_on_change)
    parts_dir = output / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    for stale in parts_dir.glob(".*.tmp"):  # a killed run's half-written parts
        stale.unlink(missing_ok=True)
    tasks, file_errors, rows = plan_tasks(files, settings, names, progress=progress)
    todo = [t for t in tasks if not (parts_dir / t.part).exists()]
    done_rows = rows - sum(t.stop - t.start for t in todo)
    log(
        f"{len(files)} files, {rows} rows, {len(tasks)} parts of {chunk_rows} rows: "
        f"{len(tasks) - len(todo)} already written, {len(todo)} to do"
    )
    dashboard, task_errors, per_worker, scored_now, work = None, [], {}, 0, 0.0
    if todo:
        from distributed import as_completed

        with dask_client(
            client, scheduler, slurm, workers, threads_per_worker, dashboard_address, log
        ) as c:
            dashboard = c.dashboard_link
            n_workers = len(c.scheduler_info().get("workers", {}))
            log(f"Dask: {n_workers} workers; dashboard {dashboard}")
            bar = tqdm(
                total=rows, initial=done_rows, desc="classify", unit="post", disable=not progress
            )
            lock = threading.Lock()

            def on_event(event):
                _, msg = event
                with lock:
                    bar.update(min(int(msg.get("rows", 0)), bar.total - bar.n))

            subscribed = False
            with contextlib.suppress(Exception):
                c.subscribe_topic(PROGRESS_TOPIC, on_event)
                subscribed = True
            futures = {
                c.submit(classify_chunk, t, model, settings, str(output), key=f"chunk-{t.part}"): t
                for t in todo
            }
            finished_rows = done_rows
            t_submit = time.perf_counter()
            try:
                for fut in as_completed(futures):
                    t = futures[fut]
                    try:
                        res = fut.result()
                    except Exception as err:  # noqa: BLE001 - a task that failed: report, go on
                        task_errors.append(
                            error_record(
                                t.file,
                                None,
                                f"chunk {t.chunk} (records {t.start}-{t.stop - 1}) failed: "
                                f"{type(err).__name__}: {err}",
                            )
                        )
                        res = None
                    finished_rows += t.stop - t.start
                    if res is not None:
                        if not res.get("skipped"):
                            scored_now += res["scored"]
                        w = per_worker.setdefault(res["pid"], {"tasks": 0, "peak_rss_mb": 0.0})
                        w["tasks"] += 1
                        w["peak_rss_mb"] = max(w["peak_rss_mb"], res["peak_rss_mb"])
                    with lock:  # the events may lag: a finished chunk counts whole
                        if bar.n < finished_rows or not subscribed:
                            bar.update(max(0, finished_rows - bar.n))
                        elapsed = time.perf_counter() - t_submit
                        bar.set_postfix_str(f"{scored_now / max(elapsed, 1e-9):.1f} posts/s")
            finally:
                work = time.perf_counter() - t_submit
                bar.close()
                if subscribed:
                    with contextlib.suppress(Exception):
                        c.unsubscribe_topic(PROGRESS_TOPIC)
    errors, summary, scored = finish(output, tasks, file_errors + task_errors)
    return ArchiveResult(
        output=output,
        files=len(files),
        tasks=len(tasks),
        parts_done_before=len(tasks) - len(todo),
        rows=rows,
        scored=scored,
        refused=len(errors),
        seconds=time.perf_counter() - t0,
        dashboard=dashboard,
        errors=errors,
        summary=summary,
        workers=[{"pid": pid, **w} for pid, w in sorted(per_worker.items())],
        scored_now=scored_now,
        work_seconds=work,
    )


def finish(output: Path, tasks: list[ChunkTask], extra_errors: list[dict]):
    """errors.parquet and summary.csv from the parts on disk (read one at a time: memory does
    not grow with the archive); returns (errors, summary, posts scored)."""
    errors = list(extra_errors)
    counts: dict[tuple, int] = {}
    scored = 0
    for t in tasks:
        path = output / "parts" / t.part
        if not path.exists():
            continue
        meta = read_part_meta(path)
        errors += meta["errors"]
        part = read_part_summary(path)
        scored += len(part)
        for key, n in part.value_counts().items():
            counts[key] = counts.get(key, 0) + int(n)
    table = errors_table(errors)
    atomic_write(output / "errors.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    summary = summary_table(counts)
    atomic_write(output / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    return table, summary, scored


def read_part_summary(path: Path) -> pd.DataFrame:
    """(lang, day, prediction) of a part's posts: the kept language and date columns when
    there are ("all" otherwise), the day in UTC."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    lang = next((c for c in LANG_COLUMNS if c in names), None)
    date = next((c for c in DATE_COLUMNS if c in names), None)
    cols = ["prediction"] + [c for c in (lang, date) if c]
    df = pd.read_parquet(path, columns=cols)
    out = pd.DataFrame({"prediction": df["prediction"].astype(str)})
    out["lang"] = df[lang].fillna("unknown").astype(str) if lang else "all"
    if date:
        when = pd.to_datetime(df[date], utc=True, errors="coerce", format="mixed")
        out["day"] = when.dt.strftime("%Y-%m-%d").fillna("unknown")
    else:
        out["day"] = "all"
    return out[["lang", "day", "prediction"]]


def summary_table(counts: dict[tuple, int]) -> pd.DataFrame:
    """Label shares per language (day "all"), per day (lang "all") and overall (both "all"),
    with the number of posts: from counts of (lang, day, prediction)."""
    rows = pd.DataFrame(
        [(*k, n) for k, n in counts.items()], columns=["lang", "day", "prediction", "n"]
    )
    parts = [rows.assign(lang="all", day="all")]
    if (rows["lang"] != "all").any():
        parts.append(rows.assign(day="all"))
    if (rows["day"] != "all").any():
        parts.append(rows.assign(lang="all"))
    cols = ["lang", "day", "n_posts", *LABELS]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for i, p in enumerate(parts):
        wide = p.pivot_table(
            index=["lang", "day"], columns="prediction", values="n", aggfunc="sum", fill_value=0
        )
        wide = wide.reindex(columns=list(LABELS), fill_value=0)
        n = wide.sum(axis=1)
        shares = wide.div(n, axis=0)
        shares.columns.name = None
        shares.insert(0, "n_posts", n.astype(int))
        shares["_order"] = i
        out.append(shares.reset_index())
    table = pd.concat(out, ignore_index=True).sort_values(["_order", "lang", "day"])
    return table.drop(columns="_order").reset_index(drop=True)[cols]


def read_parts(output: str | os.PathLike[str], columns=None) -> pd.DataFrame:
    """Every part of a run, in file and chunk order (for a look at the predictions: this one
    holds them all in memory)."""
    parts = sorted((Path(output) / "parts").glob("*.parquet"))
    if not parts:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p, columns=columns) for p in parts], ignore_index=True)
