"""A run's state on disk (runs/RUN/notebooks/state.json) and what happened to each notebook
(:class:`Outcome`); read by the runner and the report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from xling import paths
from xling.config import ConfigError


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


def run_info_file(run: str) -> Path:
    return paths.executed_notebooks(run) / "run.json"


def run_profile_name(run: str) -> str:
    """The profile a run was made with (runs/<run>/notebooks/run.json; the run's own name for a
    run made before runs were named apart)."""
    f = run_info_file(run)
    if f.is_file():
        try:
            return str(json.loads(f.read_text(encoding="utf-8")).get("profile") or run)
        except (OSError, ValueError):
            return run
    return run


def claim_run(run: str, profile: str, force: bool = False) -> None:
    """Record which profile runs/<run>/ belongs to; refuse (ConfigError) to mix another profile's
    results into it unless ``force``."""
    f = run_info_file(run)
    if f.is_file() and not force:
        made_by = run_profile_name(run)
        if made_by != profile:
            raise ConfigError(
                f"runs/{run}/ holds a run of profile '{made_by}', not '{profile}': choose another "
                f"--run NAME, or --force to re-run every notebook into it with profile '{profile}'"
            )
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run": run, "profile": profile}) + "\n", encoding="utf-8")
    os.replace(tmp, f)
