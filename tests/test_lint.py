"""ruff (lint and format) is clean on the library, the tests, the benchmarks and the notebooks."""

from __future__ import annotations

import subprocess
import sys

from xling import paths


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=paths.ROOT, capture_output=True, text=True
    )


def test_ruff_lint():
    res = _ruff("check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format():
    res = _ruff("format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr
