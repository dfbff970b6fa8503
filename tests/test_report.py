"""The run report (runs/NAME/report.html): what it holds, built from a fake run in a scratch tree,
and a headless-Chromium check that every embedded figure loads."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import write
from xling import paths
from xling.run import report, runner

PROFILE = "toy"
#: A CSV cell with every HTML special character; it must come out escaped.
NASTY = '<b>&"x"</b>'


def point_paths_at(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every path of xling.paths under the repository root at the same place under root."""
    old = paths.ROOT
    for name, value in list(vars(paths).items()):
        if isinstance(value, Path) and value.is_relative_to(old):
            monkeypatch.setattr(paths, name, root / value.relative_to(old))
    for name, rel in (
        ("RUNS", "runs"),
        ("FIGURES", "figures"),
        ("MODEL_CACHE", "runs/cache/models"),
    ):
        monkeypatch.setattr(paths, name, root / rel)


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text.splitlines(keepends=True)}


def executed_notebook(*outputs: dict) -> str:
    """An executed notebook (nbformat 4 JSON) with one code cell per output."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": i + 1,
            "metadata": {},
            "source": ["print('...')"],
            "outputs": [out],
        }
        for i, out in enumerate(outputs)
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def save_png(path: Path, color: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.bar([0, 1], [1, 2], color=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path.read_bytes()


@pytest.fixture
def fake_run(tmp_path, monkeypatch) -> Path:
    """A profile's run in a scratch tree: 00_data ok (two figures, a table, a text, a figure
    deleted since), 01_train failed (its partial output must not show), 02_eval never run."""
    real_pyproject = paths.ROOT / "pyproject.toml"
    root = tmp_path / "xling"
    point_paths_at(root, monkeypatch)
    shutil.copy(real_pyproject, write(root / "pyproject.toml", ""))
    run, figs = paths.RUNS / PROFILE, paths.FIGURES / PROFILE
    save_png(figs / "x.png", "tab:blue")
    save_png(figs / "y.png", "tab:red")
    write(figs / "x.pdf", b"%PDF-1.4 not really")
    # 35 rows: the report shows 30 and says how many there are
    quoted = '"' + NASTY.replace('"', '""') + '"'  # CSV quoting
    rows = ["lang,accuracy,p_value,note", f"en,0.123456,0.00001234,{quoted}"]
    rows += [f"ko,1,0.5,{'long ' * 100}"] + [f"l{i},{i / 7},0.5,plain" for i in range(33)]
    write(run / "metrics" / "t.csv", "\n".join(rows) + "\n")
    write(run / "summary.txt", "slope is positive & small\n")
    write(run / "partial.csv", "a\n1\n")
    for name in ("00_data", "01_train", "02_eval"):  # the project's notebooks (sources)
        write(paths.NOTEBOOKS / f"{name}.ipynb", executed_notebook())
    nb_dir = run / "notebooks"
    write(nb_dir / "00_data.ipynb", executed_notebook(stream("loaded 35 posts\n")))
    write(nb_dir / "01_train.ipynb", executed_notebook(stream("training\n")))
    # what the save helpers recorded, in the order written: summary.txt was never printed, and
    # gone.png was deleted since
    written = [
        ("00_data", f"figures/{PROFILE}/x.png"),
        ("00_data", f"figures/{PROFILE}/x.pdf"),
        ("00_data", f"runs/{PROFILE}/metrics/t.csv"),
        ("00_data", f"figures/{PROFILE}/gone.png"),
        ("00_data", f"figures/{PROFILE}/y.png"),
        ("00_data", f"runs/{PROFILE}/summary.txt"),
        ("01_train", f"runs/{PROFILE}/partial.csv"),
    ]
    manifest = {
        key: {
            "writer": writer,
            "written": f"2026-11-22 20:00:{i:02d} UTC",
            "sha256": "",
            "bytes": 0,
        }
        for i, (writer, key) in enumerate(written)
    }
    write(run / "manifest.json", json.dumps(manifest))
    state = {
        "00_data": {
            "status": "ok",
            "seconds": 12.0,
            "finished": "2026-11-22 20:00:00 UTC",
            "params": {"profile": PROFILE, "seed": 7, "n_examples": 3},
            "fingerprint": "a",
        },
        "01_train": {
            "status": "failed",
            "seconds": 3.0,
            "error": "PostsError: bad <row> & co",
            "params": {"profile": PROFILE, "seed": 7, "lora_rank": 16},
            "fingerprint": "b",
        },
    }
    write(nb_dir / "state.json", json.dumps(state))
    return run


def test_outputs_come_from_the_manifest_in_the_order_written(fake_run):
    items = report.notebook_outputs(PROFILE, "00_data", fake_run)
    # x.pdf is left out (its PNG twin is shown); summary.txt is there though never printed
    assert [i["path"] for i in items] == [
        f"figures/{PROFILE}/x.png",
        f"runs/{PROFILE}/metrics/t.csv",
        f"figures/{PROFILE}/gone.png",
        f"figures/{PROFILE}/y.png",
        f"runs/{PROFILE}/summary.txt",
    ]
    kinds = [i["kind"] for i in items]
    assert kinds == ["figure", "table", "missing", "figure", "text"]
    assert report.notebook_outputs(PROFILE, "02_eval", fake_run) == []


def test_cells_round_to_three_decimals():
    assert report.format_cell("0.123456") == "0.123"
    assert report.format_cell("0.5") == "0.5"
    assert report.format_cell("2.0") == "2"
    assert report.format_cell("-0.0001") == "-0.0001"  # would read 0: 3 significant digits
    assert report.format_cell("1.234e-12") == "1.23e-12"
    assert report.format_cell("-0.0000") == "0"
    assert report.format_cell("1234") == "1234"  # integers (ids, counts) as they are
    assert report.format_cell("en-es") == "en-es"
    assert report.format_cell("nan") == "nan"
    assert report.format_cell("") == ""


def test_common_parameters_are_those_every_notebook_shares():
    blocks = [{"seed": 7, "profile": "p", "a": 1}, {"seed": 7, "profile": "p", "a": 2}]
    assert report.common_params(blocks) == {"seed": 7, "profile": "p"}
    assert report.common_params(blocks[:1]) == {}


def test_collect_reads_state_outcomes_and_outputs(fake_run):
    skipped = runner.Outcome("02_eval", "skipped", reason="needs a GPU (CUDA); none is here")
    data = report.collect(PROFILE, [skipped])
    nbs = {nb["name"]: nb for nb in data["notebooks"]}
    assert list(nbs) == ["00_data", "01_train", "02_eval"]
    assert nbs["00_data"]["status"] == "ok" and nbs["00_data"]["share"] == pytest.approx(0.8)
    assert nbs["01_train"]["status"] == "failed" and nbs["01_train"]["outputs"] == []
    assert nbs["02_eval"]["status"] == "skipped" and "GPU" in nbs["02_eval"]["note"]
    assert nbs["02_eval"]["href"] == ""  # no executed copy to link
    kinds = [(o["kind"], o["name"]) for o in nbs["00_data"]["outputs"]]
    assert kinds == [
        ("figure", "x.png"),  # x.pdf left out: its PNG twin is shown
        ("table", "t.csv"),
        ("missing", "gone.png"),
        ("figure", "y.png"),
        ("text", "summary.txt"),
    ]
    assert data["total_seconds"] == 15.0
    assert data["common_params"] == {"profile": PROFILE, "seed": 7}
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["torch"]["pinned"] and packages["pandas"]["installed"]
    assert packages["bitsandbytes"]["extra"] == "gpu" and packages["torch"]["extra"] == ""
    assert {"llama-cpp-python", "scikit-learn", "statsmodels", "papermill"} <= set(packages)
    assert {"CPU", "cores", "memory", "Python", "platform", "GPU"} <= set(data["hardware"])


def test_report_holds_tables_figures_timings_parameters_and_failures(fake_run):
    skipped = runner.Outcome("02_eval", "skipped", reason="needs <a GPU>")
    out = report.write_report(PROFILE, [skipped])
    assert out == fake_run / "report.html"
    assert [p.name for p in fake_run.iterdir() if p.name.endswith(".tmp")] == []  # atomic
    page = out.read_text(encoding="utf-8")
    # the table: rounded numbers, escaped text, row count, link to the full file
    assert '<td class="num">0.123</td>' in page and "0.123456" not in page
    assert "1.23e-05" in page
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in page and NASTY not in page
    assert "35 rows, the first 30 shown" in page
    assert "long " * 39 + "long\u2026" in page and "long " * 41 not in page  # a long cell, cut
    assert len(re.findall(r"<tr><td>l\d+</td>", page)) == 28  # 30 rows: en, ko, l0 ... l27
    assert 'href="metrics/t.csv"' in page
    # the figures, embedded, their PDF twin left out, the deleted one listed as missing
    for name in ("x.png", "y.png"):
        png = base64.b64encode((paths.FIGURES / PROFILE / name).read_bytes()).decode()
        assert f'<img src="data:image/png;base64,{png}" alt="{name}">' in page
    assert page.count("<img ") == 2 and "x.pdf" not in page
    assert f"missing: figures/{PROFILE}/gone.png" in page
    assert "slope is positive &amp; small" in page
    # timings with shares, parameters, links to the executed notebooks
    assert "12.0 s" in page and "80%" in page and "3.0 s" in page and "20%" in page
    assert '<td>n_examples</td><td class="num">3</td>' in page
    assert "<td>lora_rank</td>" in page and "<td>seed</td>" in page
    assert 'href="notebooks/00_data.ipynb"' in page and 'href="notebooks/01_train.ipynb"' in page
    # the failure and the skip, escaped, and nothing the failed notebook saved
    assert "PostsError: bad &lt;row&gt; &amp; co" in page
    assert "needs &lt;a GPU&gt;" in page
    assert "partial.csv" not in page
    # environment
    assert "llama-cpp-python" in page and "scikit-learn" in page and "GPU" in page
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page


def test_rebuild_by_hand(fake_run, capsys):
    (fake_run / "notebooks" / "01_train.ipynb").unlink()
    assert report.main(["--profile", PROFILE]) == 0
    assert f"report: runs/{PROFILE}/report.html" in capsys.readouterr().out
    page = (fake_run / "report.html").read_text(encoding="utf-8")
    assert "not run" in page  # 02_eval: no outcome given, no record in state.json
    assert 'href="notebooks/01_train.ipynb"' not in page
    assert report.main(["--profile", "nothing"]) == 2
    assert "no run of profile 'nothing'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# In a browser: every figure loads
# --------------------------------------------------------------------------------------------


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "Chromium is not installed; the report's browser test needs it "
            "(Debian: apt-get install -y chromium; .ci/run installs it)"
        )
    return exe


def image_counts(page: Path, profile_dir: Path) -> tuple[int, int]:
    """(images loaded, images broken) as the page's own script counts them in headless Chromium."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        # no background connections: the machine's network is closed and refuses them
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile_dir}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    body = re.search(r"<body[^>]*>", res.stdout)
    assert body, f"chromium dumped no page (rc {res.returncode}): {res.stderr[-2000:]}"
    counts = dict(re.findall(r'data-images-(ok|broken)="(\d+)"', body[0]))
    assert set(counts) == {"ok", "broken"}, f"the page's image check did not run: {body[0]}"
    return int(counts["ok"]), int(counts["broken"])


@pytest.mark.browser
def test_every_figure_loads_in_headless_chromium(fake_run, tmp_path):
    started = time.perf_counter()
    page = report.write_report(PROFILE)
    assert image_counts(page, tmp_path / "chromium") == (2, 0)
    # the check can fail: a second rendering with one image that is not a PNG
    data = report.collect(PROFILE)
    bad = base64.b64encode(b"\x89PNG\r\n\x1a\n but then nothing").decode()
    data["notebooks"][0]["outputs"].append(
        {"kind": "figure", "path": "bad.png", "name": "bad.png", "href": "bad.png", "data": bad}
    )
    broken = write(tmp_path / "broken.html", report.render(data))
    assert image_counts(broken, tmp_path / "chromium") == (2, 1)
    print(f"two renderings checked in headless Chromium in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------------------------
# The runner writes it, a failed run included
# --------------------------------------------------------------------------------------------


def test_run_profile_writes_the_report_when_a_notebook_fails(scratch_root, monkeypatch):
    import papermill

    point_paths_at(scratch_root, monkeypatch)

    def kernel_dies(*args, **kwargs):
        raise RuntimeError("Kernel died before replying")

    monkeypatch.setattr(papermill, "execute_notebook", kernel_dies)
    earlier = {"03_crosslingual_eval": {"status": "ok", "seconds": 5.0, "params": {"seed": 1}}}
    write(scratch_root / "runs" / "smoke" / "notebooks" / "state.json", json.dumps(earlier))
    lines: list[str] = []
    outcomes = runner.run_profile("smoke", only=["00"], log=lines.append)
    assert [(o.notebook, o.status) for o in outcomes] == [("00_data", "failed")]
    assert "report: runs/smoke/report.html" in lines
    page = (scratch_root / "runs" / "smoke" / "report.html").read_text(encoding="utf-8")
    assert "RuntimeError: Kernel died before replying" in page
    assert '<td class="failed">failed</td>' in page
    # a later notebook's earlier result is shown as such
    assert "not reached: this run stopped at 00_data; this is an earlier run&#x27;s result" in page


def test_a_broken_report_does_not_hide_the_run(scratch_root, monkeypatch):
    import papermill

    point_paths_at(scratch_root, monkeypatch)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: None)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    lines: list[str] = []
    outcomes = runner.run_profile("smoke", only=["00"], log=lines.append)
    assert [(o.notebook, o.status) for o in outcomes] == [("00_data", "ran")]
    warning = [line for line in lines if line.startswith("warning: the run report")]
    assert warning and "OSError: disk full" in warning[0]
    assert "python -m xling.run.report --profile smoke" in warning[0]
