"""A quiet run log: the kernel papermill starts prints neither "running over TCP without
encryption" nor "KeyboardInterrupt caught in kernel" into run_all.sh's output."""

from __future__ import annotations

import asyncio

import nbformat
import papermill as pm
import pytest
from jupyter_client import AsyncKernelManager

from xling.run import runner

NOISE = ("without encryption", "KeyboardInterrupt caught in kernel")


def _run(tmp_path, manager, capfd) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7")]
    src = tmp_path / "tiny.ipynb"
    nbformat.write(nb, src)
    capfd.readouterr()
    out = pm.execute_notebook(
        str(src),
        str(tmp_path / "out.ipynb"),
        kernel_name=runner.KERNEL,
        progress_bar=False,
        log_output=False,
        kernel_manager_class=manager,
    )
    assert out.cells[0].execution_count == 1  # it ran
    captured = capfd.readouterr()
    return captured.out + captured.err  # the kernel's own stderr is the terminal's: fd 2


def test_the_runners_kernel_prints_none_of_the_noise(tmp_path, capfd):
    log = _run(tmp_path, runner.quiet_kernel_manager(), capfd)
    assert not [n for n in NOISE if n in log], log


def test_jupyter_clients_own_manager_does_print_it(tmp_path, capfd):
    # the control: without the runner's manager the warning is there, so the test above can fail
    log = _run(tmp_path, AsyncKernelManager, capfd)
    assert "without encryption" in log, log


def test_the_channels_are_encrypted_not_just_quiet():
    zmq = pytest.importorskip("zmq")
    if not zmq.has("curve"):
        pytest.skip("this pyzmq has no CurveZMQ: the kernel runs unencrypted and says so")

    async def started():
        km = runner.quiet_kernel_manager()(kernel_name=runner.KERNEL)
        await km.start_kernel()
        try:
            info = km.get_connection_info()
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute_interactive("1 + 1", timeout=60)  # works over curve
            kc.stop_channels()
            return info, reply["content"]["status"]
        finally:
            await km.shutdown_kernel()

    info, status = asyncio.run(started())
    # the connection info carries the CurveZMQ keys jupyter_client provisioned, and code runs
    assert info.get("curve_publickey") and info.get("curve_secretkey")
    assert status == "ok"
