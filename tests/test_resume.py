"""Interruptions (issue 11): a run killed with SIGKILL, or stopped by a failing notebook, resumes
where it stopped. Fine-tuning killed and resumed from its last checkpoint is
test_finetune.py::test_killed_training_resumes_and_ends_where_an_uninterrupted_run_ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pandas as pd
import pytest

from conftest import scratch_env, write
from xling import paths
from xling.run import runner

# --------------------------------------------------------------------------------------------
# A scratch project of three tiny notebooks, run by the real runner with papermill faked
# --------------------------------------------------------------------------------------------

NOTEBOOKS = ("00_first", "01_second", "02_third")


def _notebook(title: str) -> dict:
    params = 'profile: str = "x"  # the profile\nseed: int = 0  # the seed\n'
    return {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": f"# {title}"},
            {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": params},
            {"cell_type": "code", "metadata": {}, "source": "print(seed)"},
        ],
        "metadata": {"xling": {"requires": []}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _scratch_project(root: Path) -> Path:
    for name in NOTEBOOKS:
        write(root / "notebooks" / f"{name}.ipynb", json.dumps(_notebook(name)))
    write(root / "params" / "tiny.yaml", "common:\n  seed: 7\n")
    return root


class FakePapermill(types.ModuleType):
    """papermill.execute_notebook that records each call, copies the notebook and writes an
    artifact under runs/<profile>/; notebooks named in ``fail`` raise as a failing cell does."""

    class PapermillExecutionError(Exception):
        def __init__(self, ename: str, evalue: str):
            super().__init__(f"{ename}: {evalue}")
            self.ename, self.evalue = ename, evalue

    def __init__(self):
        super().__init__("papermill")
        self.executed: list[str] = []
        self.fail: set[str] = set()

    def execute_notebook(self, input_path, output_path, parameters=None, **_kwargs):
        stem = Path(input_path).stem
        self.executed.append(stem)
        nb = json.loads(Path(input_path).read_text())
        if stem in self.fail:
            nb["cells"][2]["outputs"] = [{"output_type": "error", "ename": "RuntimeError"}]
            Path(output_path).write_text(json.dumps(nb))
            raise self.PapermillExecutionError("RuntimeError", f"{stem} broke")
        Path(output_path).write_text(json.dumps(nb))
        artifact = paths.run_dir(parameters["profile"]) / f"{stem}.out"
        artifact.write_text(json.dumps(parameters))


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, FakePapermill]:
    root = _scratch_project(tmp_path / "xling")
    for name, value in {
        "ROOT": root,
        "PARAMS": root / "params",
        "NOTEBOOKS": root / "notebooks",
        "RUNS": root / "runs",
        "FIGURES": root / "figures",
    }.items():
        monkeypatch.setattr(paths, name, value)
    fake = FakePapermill()
    monkeypatch.setitem(sys.modules, "papermill", fake)
    return root, fake


def test_after_a_failure_only_the_failed_and_later_notebooks_run(project):
    root, pm = project
    run = root / "runs" / "tiny"
    pm.fail = {"01_second"}
    log: list[str] = []
    outcomes = runner.run_profile("tiny", log=log.append)
    assert [(o.notebook, o.status) for o in outcomes] == [
        ("00_first", "ran"),
        ("01_second", "failed"),
    ]
    assert pm.executed == ["00_first", "01_second"]  # the run stopped at the failure
    assert "x 01_second: FAILED" in "\n".join(log) and "code cell 2 (print(seed))" in "\n".join(log)
    first_output = (run / "00_first.out").read_bytes()
    assert (run / "notebooks" / "01_second.ipynb").exists()  # the failing copy, kept

    pm.fail, pm.executed = set(), []
    outcomes = runner.run_profile("tiny", log=log.append)
    assert [(o.notebook, o.status) for o in outcomes] == [
        ("00_first", "up-to-date"),
        ("01_second", "ran"),
        ("02_third", "ran"),
    ]
    assert pm.executed == ["01_second", "02_third"]
    assert (run / "00_first.out").read_bytes() == first_output  # not run again, not rewritten
    # the seed each notebook ran with is recorded with its state (and in its artifact here)
    state = runner.read_state("tiny")
    assert {nb: s["params"]["seed"] for nb, s in state.items()} == dict.fromkeys(NOTEBOOKS, 7)
    assert all(s["status"] == "ok" for s in state.values())

    pm.executed = []
    runner.run_profile("tiny", log=log.append)
    assert pm.executed == []  # everything up to date


KILLABLE_RUNNER = textwrap.dedent(
    """
    import os, sys, time, types
    from pathlib import Path

    class PapermillExecutionError(Exception):
        ename = evalue = ""

    def execute_notebook(input_path, output_path, parameters=None, **kwargs):
        stem = Path(input_path).stem
        with open(os.environ["FAKE_LOG"], "a") as f:
            f.write(stem + "\\n")
        if stem == os.environ.get("FAKE_HANG"):
            Path(os.environ["FAKE_LOG"] + ".hanging").write_text(stem)
            time.sleep(600)  # killed here
        Path(output_path).write_text(Path(input_path).read_text())

    pm = types.ModuleType("papermill")
    pm.execute_notebook, pm.PapermillExecutionError = execute_notebook, PapermillExecutionError
    sys.modules["papermill"] = pm
    from xling.run import runner
    sys.exit(runner.main(sys.argv[1:]))
    """
)


def test_run_killed_mid_notebook_resumes_at_that_notebook(tmp_path):
    """run_all.sh's runner killed (SIGKILL) inside the second notebook: the next run skips the
    first, which had finished, and runs the killed one and the rest."""
    root = _scratch_project(tmp_path / "xling")
    script = write(tmp_path / "run.py", KILLABLE_RUNNER)
    log = tmp_path / "executed.log"
    env = scratch_env(root, FAKE_LOG=str(log))
    cmd = [sys.executable, str(script), "--profile", "tiny"]
    proc = subprocess.Popen(
        cmd, env={**env, "FAKE_HANG": "01_second"}, stdout=subprocess.PIPE, text=True
    )
    hanging = Path(f"{log}.hanging")
    deadline = time.time() + 120
    while not hanging.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert hanging.exists(), "the runner never reached the second notebook"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    state = json.loads((root / "runs" / "tiny" / "notebooks" / "state.json").read_text())
    assert state["00_first"]["status"] == "ok" and state["01_second"]["status"] == "running"
    assert log.read_text().split() == ["00_first", "01_second"]

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "00_first: up to date" in again.stdout
    assert log.read_text().split() == ["00_first", "01_second", "01_second", "02_third"]
    state = json.loads((root / "runs" / "tiny" / "notebooks" / "state.json").read_text())
    assert all(s["status"] == "ok" for s in state.values())


# --------------------------------------------------------------------------------------------
# Classification killed mid-way
# --------------------------------------------------------------------------------------------

CLASSIFY_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, time
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from xling import infer, paths, prompts

    runs, model, out, delay = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    paths.RUNS, paths.MODEL_CACHE = runs, runs / "cache" / "models"
    posts = pd.DataFrame(
        {"post_id": [f"p{i:02d}" for i in range(20)], "text": [f"post {i}" for i in range(20)]}
    )

    class SlowScorer:
        calls = 0

        def score_one(self, text):
            time.sleep(delay)
            self.calls += 1
            digest = hashlib.sha256(text.encode()).digest()
            return -np.log1p(np.frombuffer(digest[:4], dtype=np.uint8).astype(float))

    scorer = SlowScorer()
    files = infer.ModelFiles("llamacpp-q4_k_m", model)
    table = infer.classify(posts, files, prompts.plain_prompt(), "score", scorer=scorer,
                           progress=False)
    table.to_csv(out, index=False)
    print("calls", scorer.calls)
    """
)


def _cached_posts(runs: Path) -> int:
    """Complete records in the prediction cache (a line cut short by the kill does not count)."""
    n = 0
    for f in (runs / "cache" / "predictions").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            try:
                json.loads(line)
                n += 1
            except json.JSONDecodeError:
                pass
    return n


def test_killed_classification_resumes_from_the_cache(tmp_path):
    script = write(tmp_path / "classify.py", CLASSIFY_SCRIPT)
    model = write(tmp_path / "model.gguf", b"stands in for a model file")

    def classify(runs: Path, out: Path, delay: float, **kw):
        cmd = [sys.executable, str(script), str(runs), str(model), str(out), str(delay)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kw)

    straight = classify(tmp_path / "straight", tmp_path / "straight.csv", 0)
    assert straight.wait(timeout=120) == 0 and "calls 20" in straight.stdout.read()
    straight.stdout.close()

    runs = tmp_path / "killed"
    proc = classify(runs, tmp_path / "never.csv", 0.3)
    deadline = time.time() + 120
    while _cached_posts(runs) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    done = _cached_posts(runs)
    assert 4 <= done < 20 and not (tmp_path / "never.csv").exists()

    resumed = classify(runs, tmp_path / "resumed.csv", 0)
    assert resumed.wait(timeout=120) == 0
    assert f"calls {20 - done}" in resumed.stdout.read()  # finished posts are not redone
    resumed.stdout.close()
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "resumed.csv"), pd.read_csv(tmp_path / "straight.csv")
    )
    assert _cached_posts(runs) == 20
