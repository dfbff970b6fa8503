"""Every path of the project, built from the repository root in one place.

Notebooks and library code ask this module for paths instead of writing them, so a layout change
happens here only (showyourwork's ``paths.py`` does the same).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root: lib/xling/paths.py -> three levels up. ``XLING_ROOT`` overrides it, which
#: lets tests run the library against a scratch copy of the tree.
ROOT = Path(os.environ.get("XLING_ROOT", Path(__file__).resolve().parents[2])).resolve()

LIB = ROOT / "lib" / "xling"
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
DEMO_DATA = DATA / "demo"
DEMO_POSTS = DEMO_DATA / "posts"
PAPER_DATA_DEFAULT = DATA / "paper"
PAPER_MANIFEST = DATA / "paper_manifest.sha256"
RUNS = ROOT / "runs"
#: Models shared by every profile: the assembled embedded GGUF and its dequantized copy.
MODEL_CACHE = RUNS / "cache" / "models"
FIGURES = ROOT / "figures"


def profile_file(profile: str) -> Path:
    """The YAML file holding a profile's parameters."""
    return PARAMS / f"{profile}.yaml"


def run_dir(profile: str) -> Path:
    """Artifacts of one profile: runs/<profile>/ (created on demand)."""
    path = RUNS / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(profile: str) -> Path:
    """Figures of one profile: figures/<profile>/ (created on demand)."""
    path = FIGURES / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def posts_csv(profile: str) -> Path:
    """The posts table written by notebook 00_data (a contract other notebooks read)."""
    return run_dir(profile) / "posts.csv"


def executed_notebooks(profile: str) -> Path:
    """Executed copies of the notebooks, one per notebook, written by run_all.sh."""
    path = run_dir(profile) / "notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(path: str | os.PathLike[str]) -> Path:
    """A user-given path: absolute as given, relative paths taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()
