"""A run's state on disk (runs/RUN/notebooks/state.json) and what happened to each notebook
(:class:`Outcome`); read by the runner and the report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from xling import paths


def state_file(profile: str) -> Path:
    return paths.executed_notebooks(profile) / "state.json"


def read_state(profile: str) -> dict[str, dict]:
    f = state_file(profile)
    return json.loads(f.read_text()) if f.exists() else {}


def write_state(profile: str, state: dict[str, dict]) -> None:
    f = state_file(profile)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, f)


@dataclass
class Outcome:
    notebook: str
    status: str  # ran, up-to-date, skipped, failed
    seconds: float = 0.0
    reason: str = ""


def failing_cell(nb_path: Path) -> tuple[int | None, str]:
    """The first cell with an error output in an executed notebook: (index, first source line)."""
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, ""
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            src = "".join(cell.get("source", "")).strip().splitlines()
            return code_index, (src[0] if src else "")
    return None, ""
