"""JupyterLab in a real browser: ./run_all.sh --lab's server, notebook 00 opened in headless
Chromium (Debian's package, driven by Playwright; no browser is downloaded), Run > Run All Cells
through the menus, and then no cell has failed and a figure is on the page."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import scratch_env
from xling import paths

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "notebooks/00_data.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(scratch_root, tmp_path):
    """./run_all.sh --lab's server (python -m xling.run.lab) on a free localhost port, serving a
    scratch copy of the project, every output of the notebooks in scratch folders; yields
    (url of notebook 00, the served root). Skips, saying why, without Chromium or Playwright."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run does)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    jupyter = tmp_path / "jupyter"  # no user settings, workspaces or runtime files of ours
    env = scratch_env(
        scratch_root,
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
    )
    env.pop("XLING_NOTEBOOK", None)
    settings = jupyter / "settings" / "@jupyterlab"
    # every cell in the page (JupyterLab 4 renders only those in view by default), and no
    # "get Jupyter news?" prompt over the screenshot
    for plugin, values in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        f = settings / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xling.run.lab", "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        url = None
        for line in proc.stdout:  # the URL the user is told to open, with its token
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+\?token=\w+", line)
            if found:
                url = found[0]
                break
        assert url, f"no URL printed; the server's log: {(tmp_path / 'lab.log').read_text()}"
        token = url.rsplit("token=", 1)[1]
        api = f"http://127.0.0.1:{port}/api/status?token={token}"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(api, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        f"JupyterLab did not answer: {(tmp_path / 'lab.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}", scratch_root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _kernel_ready(page, timeout: float = 180) -> None:
    """Wait until the notebook's kernel is idle and no dialog is open. On a busy machine
    JupyterLab may ask which kernel to start (its "Select Kernel" dialog, the notebook's own
    kernel, Python (xling), preselected): accept it, as a person would."""
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    deadline, quiet_since = time.time() + timeout, None
    while time.time() < deadline:
        if accept.count() and accept.first.is_visible():
            accept.first.click()
            quiet_since = None
        elif idle.count():
            quiet_since = quiet_since or time.time()
            if time.time() - quiet_since > 3:  # idle, and no dialog came up for 3 s
                return
        else:
            quiet_since = None
        time.sleep(0.25)
    raise AssertionError("the notebook's kernel never became idle without a dialog")


@pytest.mark.browser
def test_notebook_00_runs_in_jupyterlab_and_shows_its_figures(lab):
    from playwright import sync_api as playwright

    url, root = lab
    shot = paths.RUNS / "browser" / "jupyterlab-00_data.png"  # the scratch runs folder
    shot.parent.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            # the notebook is open and its kernel (xling) has started
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            _kernel_ready(page)
            n_code = page.locator(".jp-Notebook .jp-CodeCell").count()
            # Run > Run All Cells, through the menus as a person would
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
            # every code cell has an execution count, and the kernel is idle again
            page.wait_for_function(
                """n => {
                    const prompts = [...document.querySelectorAll(
                        '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
                    return prompts.length === n
                        && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                }""",
                arg=n_code,
                timeout=180_000,
            )
            page.wait_for_selector(
                ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000
            )
            images = page.locator(".jp-OutputArea-output img")
            n_images = images.count()
            assert n_images >= 1, "no figure is shown in the notebook"
            images.first.scroll_into_view_if_needed()
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=images.first.element_handle()
            )
            page.screenshot(path=str(shot))
            # save from the UI, and read what the browser ran: no cell output is an error
            page.keyboard.press("Control+s")
            saved = root / NOTEBOOK
            deadline = time.time() + 60
            while time.time() < deadline:
                cells = json.loads(saved.read_text(encoding="utf-8"))["cells"]
                code = [c for c in cells if c["cell_type"] == "code"]
                if all(c.get("execution_count") for c in code):
                    break
                time.sleep(0.5)
        except BaseException:
            page.screenshot(path=str(shot.with_name("jupyterlab-00_data-failed.png")))
            print(f"the page when it failed: {shot.with_name('jupyterlab-00_data-failed.png')}")
            raise
        finally:
            browser.close()
    assert all(c.get("execution_count") for c in code), "the saved notebook did not run whole"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    shown = [o for c in code for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert len(shown) >= 1 and n_images >= len(shown)
    # the run wrote into the scratch folders, not the project's runs/ or figures/
    assert (root / "runs" / "demo" / "posts.csv").exists()
    assert (root / "figures" / "demo" / "posts_by_language_split_label.png").exists()
    print(f"{n_code} cells ran in JupyterLab, {n_images} figures shown; screenshot: {shot}")


def test_lab_command_serves_the_root_on_localhost_with_the_token_and_the_xling_kernel():
    from xling.run import lab

    cmd = lab.lab_command(8899, "abc", open_browser=False, extra=["--debug"])
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    for flag in (
        f"--ServerApp.root_dir={paths.ROOT}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=8899",
        "--ServerApp.port_retries=0",  # the printed URL is the one it serves
        "--IdentityProvider.token=abc",
        "--ServerApp.open_browser=False",
        "--MappingKernelManager.default_kernel_name=xling",
    ):
        assert flag in cmd
    assert cmd[-1] == "--debug"
    assert lab.lab_url(8899, "abc", "lab/tree/notebooks") == (
        "http://127.0.0.1:8899/lab/tree/notebooks?token=abc"
    )
    # papermill's Agg backend is not the lab's: the kernel's inline backend shows plots
    assert "MPLBACKEND" not in lab.lab_environment({"MPLBACKEND": "Agg", "PATH": "/bin"})


def test_lab_prints_the_url_before_it_starts_jupyterlab(monkeypatch, capsys):
    from xling.run import lab

    started = {}
    monkeypatch.setattr(lab.os, "execve", lambda exe, argv, env: started.update(argv=argv))
    lab.main(["--port", "8901", "--no-browser"])
    out = capsys.readouterr().out
    token = next(a for a in started["argv"] if a.startswith("--IdentityProvider.token="))
    url = f"http://127.0.0.1:8901/lab/tree/notebooks?token={token.split('=', 1)[1]}"
    assert url in out and len(token.split("=", 1)[1]) == 48  # 24 random bytes, hex
    script = (paths.ROOT / "run_all.sh").read_text()
    assert 'exec "$PY" -m xling.run.lab "$@"' in script
