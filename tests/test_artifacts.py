"""One writer per artifact: the save helpers write atomically and record each file in the run's
manifest; a notebook writing another's file is refused; readers and the runner read the
manifest; 03's and 04's predictions are read together through one function; the fingerprint
covers the science code a notebook uses and nothing else."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from xling import artifacts, data, paths
from xling.run import fingerprint, requirements

RUN = "artifacts-test"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "FIGURES", tmp_path / "figures")
    monkeypatch.delenv(artifacts.NOTEBOOK_ENV, raising=False)
    return tmp_path / "runs" / RUN


def test_save_table_writes_records_and_prints(run, capsys):
    table = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    path = artifacts.save_table(table, paths.artifact(RUN, "metrics/by_evalset.csv"))
    assert path == run / "metrics" / "by_evalset.csv"
    text = path.read_bytes()
    assert text == table.to_csv(index=False).encode()  # the same bytes as to_csv
    entry = artifacts.read_manifest(RUN)[f"runs/{RUN}/metrics/by_evalset.csv"]
    assert entry["writer"] == "03_crosslingual_eval" and entry["rows"] == 3
    assert entry["sha256"] == hashlib.sha256(text).hexdigest() and entry["bytes"] == len(text)
    assert "saved" in capsys.readouterr().out and not list(run.rglob("*.tmp"))


def test_a_failed_write_keeps_the_old_file(run):
    path = artifacts.save_table(pd.DataFrame({"a": [1]}), paths.artifact(RUN, "posts_counts.csv"))
    before = path.read_bytes()

    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):  # half a file, then the write dies
            open(args[0], "w").write("a\n")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        artifacts.save_table(Broken({"a": [1, 2]}), path)
    assert path.read_bytes() == before and not list(run.rglob("*.tmp"))
    assert artifacts.read_manifest(RUN)[f"runs/{RUN}/posts_counts.csv"]["rows"] == 1


def test_only_the_writer_may_write(run, monkeypatch):
    monkeypatch.setenv(artifacts.NOTEBOOK_ENV, "04_translation_ablation")
    # 04 writes its own predictions file, never 03's
    with pytest.raises(paths.ContractError, match="its one writer is 03_crosslingual_eval"):
        artifacts.save_table(pd.DataFrame({"a": [1]}), paths.predictions_csv(RUN))
    assert not paths.predictions_csv(RUN).exists()
    artifacts.save_table(pd.DataFrame({"a": [1]}), paths.translated_predictions_csv(RUN))
    with pytest.raises(paths.ContractError, match="not a contract file"):
        paths.artifact(RUN, "metrics/typo.csv")
    with pytest.raises(paths.ContractError, match="not in xling.paths.FIGURES_BY"):
        artifacts.save_figure(None, RUN, "a_figure_nobody_registered")


def test_save_figure_writes_png_and_pdf_and_records_them(run):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    written = artifacts.save_figure(fig, RUN, "finetune_loss_curves")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert written[0].read_bytes()[:4] == b"\x89PNG" and written[1].read_bytes()[:4] == b"%PDF"
    by_writer = artifacts.files_by_writer(RUN)
    assert [k for k, _ in by_writer["01_finetune"]] == [
        f"figures/{RUN}/finetune_loss_curves.png",
        f"figures/{RUN}/finetune_loss_curves.pdf",
    ]
    assert not plt.get_fignums()  # closed
    # a cell ending with save_figure(...) shows the figure, not the list of its paths
    from IPython.core.interactiveshell import InteractiveShell

    data, _ = InteractiveShell.instance().display_formatter.format(written)
    assert data == {}  # a plain list would give {'text/plain': '[PosixPath(...), ...]'}
    assert InteractiveShell.instance().display_formatter.format([1])[0]  # the control


def _predictions(variant, inp, preds):
    n = len(preds)
    return pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(n)],
            "lang": "de",
            "label": "neutral",
            "split": "test",
            "evalset": "de",
            "variant": variant,
            "backend": "llamacpp-q4_k_m",
            "input": inp,
            "method": "generate",
            "prediction": preds,
            "raw_output": "",
        }
    )


def test_read_predictions_takes_03_and_04_together(run):
    # 03: originals of en and multi, and (as the paper profile imports them) the authors'
    # translated rows of en; 04: its own translated rows of en, which replace those
    original = pd.concat(
        [
            _predictions("en", "original", ["neutral", "unrelated"]),
            _predictions("multi", "original", ["neutral", "neutral"]),
            _predictions("en", "translated", ["unrelated", "unrelated"]),
        ]
    )
    artifacts.save_table(original, paths.predictions_csv(RUN), quiet=True)
    with pytest.raises(FileNotFoundError):
        data.read_predictions("no-such-run")
    assert len(data.read_predictions(RUN)) == 6  # no 04 file yet: 03's rows as they are
    translated = _predictions("en", "translated", ["neutral", "neutral"])
    artifacts.save_table(translated, paths.translated_predictions_csv(RUN), quiet=True)
    both = data.read_predictions(RUN)
    # 4 originals + 04's 2 translated rows (03's 2 translated rows of en replaced)
    assert len(both) == 6
    got = both[both["input"] == "translated"]["prediction"].tolist()
    assert got == ["neutral", "neutral"]
    assert len(data.read_predictions(RUN, with_translated=False)) == 6  # 03's own, unreplaced
    assert set(data.read_predictions(RUN, inputs=("original",))["input"]) == {"original"}


def test_requirements_read_the_manifest(run):
    assert "missing (run 00_data first)" in requirements.recorded(RUN, "posts.csv")
    path = paths.posts_csv(RUN)
    path.write_text("post_id\n1\n")  # written by hand: not in the manifest
    assert "not in the run's manifest" in requirements.recorded(RUN, "posts.csv")
    artifacts.record(path, rows=1)
    assert requirements.recorded(RUN, "posts.csv") is None
    path.write_text("post_id\n2\n")  # same size, other bytes
    assert "changed since 00_data wrote it" in requirements.recorded(RUN, "posts.csv")


def test_the_manifest_names_its_file_in_the_message_when_broken(run):
    run.mkdir(parents=True)
    (run / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: not valid JSON"):
        artifacts.read_manifest(RUN)


def test_fingerprint_covers_the_code_a_notebook_uses_and_no_plumbing():
    mods = {
        p.relative_to(paths.LIB).as_posix()
        for p in fingerprint.library_modules(
            "from xling import data, paths, plots\n"
            "posts = data.read_posts(paths.posts_csv('demo'))\n"
            "fig = plots.plot_label_counts(posts)\n"
        )
    }
    # read_posts is in data/tables.py (which reads and validates through readers, validate);
    # plot_label_counts in plots/data.py, with the shared helpers of plots/common.py
    assert {"data/tables.py", "data/readers.py", "data/validate.py", "paths.py"} <= mods
    assert {"plots/data.py", "plots/common.py"} <= mods
    # other notebooks' figures, other stages, the run plumbing and the benchmarks are not in it
    assert not {"plots/regression.py", "plots/translation.py", "analysis/regression.py"} & mods
    assert not any(m.startswith(("run/", "bench")) for m in mods)
    assert "data/sources.py" not in mods  # loaders this code never calls


def test_every_notebooks_fingerprint_leaves_out_the_plumbing():
    for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        mods = fingerprint.library_modules(fingerprint.notebook_code(nb))
        rel = {p.relative_to(paths.LIB).as_posix() for p in mods}
        assert "__init__.py" in rel  # set_seed
        assert not any(m.startswith(("run/", "bench")) for m in rel), (nb.name, rel)
    code_05 = fingerprint.notebook_code(paths.NOTEBOOKS / "05_pretraining_bias.ipynb")
    rel = {p.relative_to(paths.LIB).as_posix() for p in fingerprint.library_modules(code_05)}
    assert "analysis/regression.py" in rel and "plots/regression.py" in rel
    assert "plots/datasize.py" not in rel and "models/finetune.py" not in rel


def test_the_manifest_is_json_keyed_by_path(run):
    artifacts.save_text("x\n", paths.artifact(RUN, "regression/summary.txt"), quiet=True)
    raw = json.loads((run / "manifest.json").read_text())
    assert list(raw) == [f"runs/{RUN}/regression/summary.txt"]
    assert raw[f"runs/{RUN}/regression/summary.txt"]["writer"] == "05_pretraining_bias"
