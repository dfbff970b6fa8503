"""Which torch set-up installs: the CPU build from PyTorch's CPU index when it answers, else the
pinned version from the default index; the CUDA build when asked (run_all.sh --gpu)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xling import paths
from xling.run import setup

PIN = "torch==2.13.0"
CPU = setup.PYTORCH_CPU_INDEX


def reachable(answer: bool):
    asked = []

    def check(url):
        asked.append(url)
        return answer

    return check, asked


def test_cpu_from_the_cpu_index_when_it_answers():
    check, asked = reachable(True)
    plan = setup.torch_plan(PIN, "cpu", None, check)
    assert plan.pip_args == (PIN, "--index-url", CPU)
    assert asked == [CPU] and "CPU build" in plan.reason


def test_cpu_falls_back_to_the_default_index_when_the_cpu_index_is_unreachable():
    check, _ = reachable(False)
    plan = setup.torch_plan(PIN, "cpu", None, check)
    assert plan.pip_args == (PIN,)  # pip's own index and find-links, as on this machine
    assert "not reachable" in plan.reason


def test_cuda_keeps_the_default_index_and_never_asks_the_cpu_index():
    check, asked = reachable(True)
    assert setup.torch_plan(PIN, "cuda", None, check).pip_args == (PIN,)
    assert asked == []


@pytest.mark.parametrize(
    "installed, build, args",
    [
        # the pinned CPU build is there (this machine: 2.13.0+cpu): nothing to install
        (setup.Installed("2.13.0+cpu", None), "cpu", ()),
        (setup.Installed("2.13.0+cu128", "12.8"), "cuda", ()),
        # the other build at the same version: pip counts 2.13.0+cpu as torch==2.13.0, so only
        # --force-reinstall replaces it
        (setup.Installed("2.13.0+cpu", None), "cuda", (PIN, "--force-reinstall")),
        (setup.Installed("2.13.0", "12.8"), "cpu", (PIN, "--force-reinstall", "--index-url", CPU)),
        # another version: an ordinary install replaces it
        (setup.Installed("2.12.1+cpu", None), "cpu", (PIN, "--index-url", CPU)),
    ],
)
def test_what_is_installed_decides_what_is_left_to_do(installed, build, args):
    assert setup.torch_plan(PIN, build, installed, lambda url: True).pip_args == args


def test_the_wanted_build_comes_from_xling_torch():
    assert setup.wanted_torch_build({}) == "cpu"
    assert setup.wanted_torch_build({"XLING_TORCH": "CUDA"}) == "cuda"
    with pytest.raises(ValueError, match="XLING_TORCH='rocm': expected one of cpu, cuda"):
        setup.wanted_torch_build({"XLING_TORCH": "rocm"})
    with pytest.raises(ValueError, match="torch==VERSION"):
        setup.torch_plan("torch", "cpu", None, lambda url: True)


def test_an_unreachable_address_is_false_quickly():
    # a port on this machine where nothing listens refuses at once: no wait for the timeout
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    assert setup.index_reachable(f"http://127.0.0.1:{port}/whl/cpu", timeout=2) is False


def test_the_command_run_all_calls_prints_the_pip_arguments():
    # run_all.sh: torch-args PIN (before anything is installed: PYTHONPATH=lib, standard library)
    env = {"PYTHONPATH": str(paths.ROOT / "lib"), "XLING_TORCH": "cpu", "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-m", "xling.run.setup", "torch-args", PIN],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    # this environment has the pinned CPU build: nothing to do, and it says so
    installed = setup.installed_torch()
    if installed is not None and installed.version.split("+")[0] == "2.13.0" and not installed.cuda:
        assert res.stdout.strip() == ""
        assert "already installed" in res.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "xling.run.setup", "torch-args", PIN],
        capture_output=True,
        text=True,
        env={**env, "XLING_TORCH": "rocm"},
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "XLING_TORCH='rocm'" in bad.stderr
    script = (paths.ROOT / "run_all.sh").read_text()
    assert 'xling.run.setup torch-args "$TORCH_PIN"' in script
    assert "export XLING_TORCH=cuda" in script  # --gpu
