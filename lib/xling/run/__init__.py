"""Run plumbing: the runner behind ``./run_all.sh`` (``runner``), what a notebook needs before it
runs (``requirements``), what makes it stale (``fingerprint``), the run's state (``state``), the
HTML report (``report``), the machine (``machine``) and set-up helpers (``setup``). None of it is
science: editing it re-runs no notebook.

Layer 7. May import: every layer below; only :mod:`xling.bench` imports it.
"""

from __future__ import annotations
