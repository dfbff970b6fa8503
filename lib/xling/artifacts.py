"""Saving a run's tables and figures: atomically, by their one writer, recorded in a manifest.

Every table, text and figure a notebook keeps goes through :func:`save_table`, :func:`save_text`
or :func:`save_figure` (model folders and GGUF files through :func:`record`). Each write goes to a
temporary file first and replaces the target in one step, so a kill never leaves half a file;
then it is recorded in ``runs/RUN/manifest.json`` (writer notebook, time, rows, bytes, sha256).
The runner's requirements and the run report read the manifest, not the notebooks' printed lines.

The writer of a file is the one :data:`xling.paths.CONTRACT` (or :data:`~xling.paths.FIGURES_BY`)
names; under ``run_all.sh`` the runner tells the kernel which notebook it runs
(``XLING_NOTEBOOK``), and a notebook that writes another's file is refused.

Layer: foundation (imports only :mod:`xling.paths`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xling import paths

#: Set by the runner for the kernel of each notebook it executes.
NOTEBOOK_ENV = "XLING_NOTEBOOK"
FIGURE_FORMATS = ("png", "pdf")


def _owner(path: Path) -> tuple[str, str, str, str]:
    """(run, kind, relpath, writer) of a path under runs/RUN/ or figures/RUN/; refuses a path
    outside them, one no contract names, and one the running notebook may not write."""
    path = Path(path).resolve()
    found = [
        (kind, path.relative_to(root).parts)
        for kind, root in (("runs", paths.RUNS), ("figures", paths.FIGURES))
        if path.is_relative_to(root) and len(path.relative_to(root).parts) >= 2
    ]
    if not found:
        raise paths.ContractError(
            f"{path}: outside {paths.RUNS} and {paths.FIGURES}; the save helpers write run "
            "outputs only"
        )
    kind, parts = found[0]
    run, rel = parts[0], "/".join(parts[1:])
    if kind == "runs":
        writer = paths.writer_of(rel)
        if writer is None:
            raise paths.ContractError(
                f"runs/{run}/{rel} is not a contract file: add it to xling.paths.CONTRACT with "
                "its writer"
            )
    else:
        name = rel.rsplit(".", 1)[0]
        writer = paths.figure_writer(name)
        if writer is None:
            raise paths.ContractError(
                f"figure {name!r} is not in xling.paths.FIGURES_BY: add it under the notebook "
                "that draws it"
            )
    running = os.environ.get(NOTEBOOK_ENV)
    if running and running != writer:
        raise paths.ContractError(
            f"{running} may not write {kind}/{run}/{rel}: its one writer is {writer} (xling.paths)"
        )
    return run, kind, rel, writer


def atomic_write(path: str | os.PathLike[str], write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then replace ``path`` with it in
    one step (a kill leaves the old file or the new one, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def sha256_of(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(profile: str) -> dict[str, dict[str, Any]]:
    """runs/<run>/manifest.json: {path from the repo root: entry}; empty when none was written."""
    f = paths.RUNS / profile / "manifest.json"
    if not f.exists():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        msg = f"{f}: not valid JSON ({err}); delete it and re-run the notebooks"
        raise ValueError(msg) from err


def _write_manifest(run: str, manifest: dict[str, dict[str, Any]]) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True)
    atomic_write(paths.run_dir(run) / "manifest.json", lambda t: t.write_text(text, "utf-8"))


def record(
    path: str | os.PathLike[str], rows: int | None = None, sha256: str | None = None
) -> dict[str, Any]:
    """Record a file (or a folder: its files' bytes and names hashed together) as written now by
    its contract writer; returns the manifest entry. ``sha256``, when the caller already knows
    it (a large model file), saves hashing the file again."""
    path = Path(path)
    return _record(path, _owner(path), rows, sha256)


def _record(path: Path, owner, rows: int | None, sha256: str | None) -> dict[str, Any]:
    run, kind, rel, writer = owner
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for p in files:
            h.update(p.relative_to(path).as_posix().encode())
            h.update(bytes.fromhex(sha256_of(p)))
        sha, size = h.hexdigest(), sum(p.stat().st_size for p in files)
    else:
        sha, size = sha256 or sha256_of(path), path.stat().st_size
    entry = {
        "writer": writer,
        "kind": "figure" if kind == "figures" else ("folder" if path.is_dir() else "file"),
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "bytes": size,
        "sha256": sha,
    }
    if rows is not None:
        entry["rows"] = int(rows)
    manifest = read_manifest(run)
    # the order of writing (the times have one-second steps)
    entry["seq"] = 1 + max((e.get("seq", 0) for e in manifest.values()), default=0)
    manifest[f"{kind}/{run}/{rel}"] = entry
    _write_manifest(run, manifest)
    return entry


def save_table(table, path: str | os.PathLike[str], index: bool = False, quiet: bool = False):
    """Write a DataFrame as CSV atomically and record it; prints ``saved PATH (N rows)``."""
    path = Path(path)
    owner = _owner(path)  # refuse before writing anything
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=index))
    _record(path, owner, len(table), None)
    if not quiet:
        print(f"saved {paths.display(path)} ({len(table)} rows)")
    return path


def save_text(text: str, path: str | os.PathLike[str], quiet: bool = False) -> Path:
    """Write a text file atomically and record it."""
    path = Path(path)
    owner = _owner(path)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    _record(path, owner, None, None)
    if not quiet:
        print(f"saved {paths.display(path)}")
    return path


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (papermill's included)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and ip.__class__.__name__ == "ZMQInteractiveShell"


class SavedFiles(list):
    """The paths a save wrote; shows nothing when it is a notebook cell's last value (the
    figure itself and the "saved" lines are the cell's output)."""

    def _ipython_display_(self) -> None:
        pass


def save_figure(fig, profile: str, name: str, show: bool = True, quiet: bool = False) -> list[Path]:
    """Save ``fig`` as figures/<run>/<name>.png and .pdf (atomically, recorded), show it in the
    notebook's output (PNG) and close it; return the two paths (a list that a notebook cell
    does not print)."""
    out = paths.figure_dir(profile)
    written = []
    for ext in FIGURE_FORMATS:
        path = out / f"{name}.{ext}"
        owner = _owner(path)
        atomic_write(
            path, lambda tmp, ext=ext: fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext)
        )
        _record(path, owner, None, None)
        written.append(path)
        if not quiet:
            print(f"saved {paths.display(path)}")
    if show and in_notebook():
        from IPython.display import Image, display

        display(Image(filename=str(written[0])))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return SavedFiles(written)


def files_by_writer(profile: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The manifest grouped by writer, each writer's files in the order they were written."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rel, entry in sorted(
        read_manifest(profile).items(), key=lambda kv: (kv[1].get("seq", 0), kv[1]["written"])
    ):
        out.setdefault(entry["writer"], []).append((rel, entry))
    return out
