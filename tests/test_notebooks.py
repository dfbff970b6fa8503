"""Notebooks: stored without outputs, run end to end through run_all.sh with the smoke profile."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import scratch_env, write
from xling import config, paths


def test_notebooks_are_stored_without_outputs():
    for nb, path in config.notebook_paths().items():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [], f"{nb} cell {i} has outputs"
                assert cell.get("execution_count") is None, f"{nb} cell {i} has an execution count"


def test_parameters_cell_comes_right_after_the_title():
    for nb, path in config.notebook_paths().items():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
        assert "parameters" in cells[1]["metadata"].get("tags", []), nb


def _runner(root, *args, env_extra=None):
    env = scratch_env(root, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "xling.run.runner", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )


@pytest.mark.slow
def test_smoke_profile_runs_00_data_and_then_skips_it():
    # the README's own command, in the repository itself
    cmd = [str(paths.ROOT / "run_all.sh"), "--profile", "smoke", "--only", "00_data", "--force"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "00_data: done in" in first.stdout
    posts = pd.read_csv(paths.posts_csv("smoke"))
    assert posts.groupby(["evalset", "split"]).size().max() <= 8  # smoke: posts_per_group 8
    assert set(posts["lang"]) >= {"en", "es", "ko"}
    for name in ("posts_by_language_split_label", "unrelated_share_by_evalset"):
        for ext in ("png", "pdf"):
            assert (paths.FIGURES / "smoke" / f"{name}.{ext}").stat().st_size > 1000
    executed = paths.RUNS / "smoke" / "notebooks" / "00_data.ipynb"
    assert '"output_type"' in executed.read_text()
    again = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "00_data: up to date" in again.stdout


@pytest.mark.slow
def test_smoke_profile_runs_every_notebook():
    cmd = [str(paths.ROOT / "run_all.sh"), "--profile", "smoke", "--force"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, res.stdout + res.stderr
    run = paths.RUNS / "smoke"
    variants = config.load_profile("smoke").common["variants"]
    for v in variants:
        assert (run / "adapters" / v / "adapter" / "adapter_model.safetensors").exists()
        for kind in ("f16", "q8_0", "q4_k_m", "lora"):
            assert (run / "gguf" / f"{v}-{kind}.gguf").stat().st_size > 1_000_000 or kind == "lora"
    comparison = pd.read_csv(run / "quantize" / "comparison.csv")
    assert set(comparison["variant"]) == set(variants)
    assert comparison["agreement"].between(0, 1).all()
    f16 = comparison[comparison["backend"] == "llamacpp-f16"]
    assert (f16["kl"] < 0.01).all()  # the 16-bit file is the unquantized model, give or take
    gains = pd.read_csv(run / "quantize" / "finetune_gains.csv")
    assert set(gains["variant"]) == set(variants)
    for name in ("finetune_loss_curves", "quantization_agreement_kl_size"):
        assert (paths.FIGURES / "smoke" / f"{name}.png").exists()
    # 06: the curve (k = 0 and 4 posts of German, one seed) and diversity vs volume
    curve = pd.read_csv(run / "data_size" / "curve.csv")
    assert sorted(set(curve["k"])) == [0, 4] and set(curve["eval_lang"]) == {"de", "es"}
    assert curve["accuracy"].between(0, 1).all() and (curve["n"] == 4).all()
    diversity = pd.read_csv(run / "data_size" / "diversity.csv").set_index("eval_lang")
    assert diversity.loc["all", "posts_multi"] == diversity.loc["all", "posts_control"]
    for name in ("data_size_learning_curve", "data_size_diversity_vs_volume"):
        assert (paths.FIGURES / "smoke" / f"{name}.png").exists()
    # 06: 4 German translation pairs against 4 labelled posts, on the same posts and steps
    pairs = pd.read_csv(run / "data_size" / "pairs.csv")
    assert set(pairs["axis"]) == {"labels", "pairs"} and sorted(set(pairs["n"])) == [0, 4]
    four = pairs[pairs["n"] == 4].set_index(["eval_lang", "axis"])
    assert (
        four.xs("pairs", level="axis")["steps"] == four.xs("labels", level="axis")["steps"]
    ).all()
    assert four.xs("pairs", level="axis")["diff_vs_labels"].notna().all()
    assert (paths.FIGURES / "smoke" / "data_size_pairs_vs_labels.png").exists()
    # 07: every layer of base, en and multi; the lens, ABX, probes and PCA tables and figures
    reps = run / "representations"
    lens = pd.read_csv(reps / "lens.csv")
    assert set(lens["model"]) == {"base", "en", "multi"} and lens["p_gold"].between(0, 1).all()
    assert lens["layer"].max() == 18  # Gemma 3 270M: the embedding and 18 layers
    abx = pd.read_csv(reps / "abx.csv")
    assert set(abx["task"]) == {"language", "label", "meaning"}
    assert abx["error"].between(0, 1).all() and (abx["low"] <= abx["high"]).all()
    probes = pd.read_csv(reps / "probes.csv")
    assert set(probes["probe"]) == {"label", "topic", "language"}
    assert len(pd.read_csv(reps / "pca.csv")) > 0
    for name in paths.FIGURES_BY["07_representations"]:
        assert (paths.FIGURES / "smoke" / f"{name}.png").exists()
    assert "% of the run" in res.stdout
    # the run report: every notebook's figures embedded, every notebook named with its timing
    report = (run / "report.html").read_text()
    assert f"report: {paths.display(run / 'report.html')}" in res.stdout
    # every contract file the run wrote is in the manifest with its writer, and in the report
    from xling import artifacts

    manifest = artifacts.read_manifest("smoke")
    for rel, writer in (
        ("posts.csv", "00_data"),
        ("adapters/en/adapter", "01_finetune"),
        ("gguf/en-lora.gguf", "02_quantize"),
        ("predictions.csv", "03_crosslingual_eval"),
        ("translation/predictions.csv", "04_translation_ablation"),
        ("translation/translations.csv", "04_translation_ablation"),
        ("regression/summary.txt", "05_pretraining_bias"),
        ("regression/authors_models.csv", "05_pretraining_bias"),
        ("regression/identification.csv", "05_pretraining_bias"),
        ("data_size/curve.csv", "06_data_size"),
    ):
        assert manifest[f"runs/smoke/{rel}"]["writer"] == writer, rel
        assert rel.rsplit("/", 1)[-1] in report, rel
    # 05: the authors' Models 1-6 on the run's own table (one split in smoke, so no split term)
    models = pd.read_csv(run / "regression" / "authors_models.csv")
    assert {"M1", "M2", "M3", "M5", "M6", "M5-OLS"} <= set(models["model"])
    assert "ModelMultilanguage" in set(models.loc[models["model"] == "M1", "term"])
    assert not models["term"].str.startswith("Train_Test").any()
    assert (paths.FIGURES / "smoke" / "authors_m1_coefficients.png").exists()
    # 03's table was never rewritten by 04: its rows are all original posts
    assert set(pd.read_csv(run / "predictions.csv")["input"]) == {"original"}
    # the evaluation file (speeches, 24 rows cut to posts_per_group = 8): classified by the base
    # model and both variants, read against its floor, in the heatmap, the data card and the
    # split audit; 05's language table never counts it
    files = pd.read_csv(run / "metrics" / "eval_files.csv")
    assert set(files["evalset"]) == {"speeches"} and (files["n"] == 8).all()
    assert set(files["variant"]) == {"base", *variants}
    assert files["floor"].between(0.25, 1).all()  # 4 labels: the commonest holds a quarter at least
    by_set = pd.read_csv(run / "metrics" / "by_evalset.csv")
    assert (by_set.loc[by_set["evalset"] == "speeches", "split"] == "eval").all()
    card = (run / "data_card.md").read_text()
    assert "- `speeches`: data/examples/speeches.csv (8 posts)" in card
    audit = pd.read_csv(run / "split_audit.csv")
    assert "speeches" in set(audit["evalset"])
    lang_acc = pd.read_csv(run / "regression" / "language_accuracy.csv")
    assert "speeches" not in set(lang_acc.astype(str).stack())
    for nb in config.notebook_paths():
        assert nb in report
    for name in ("finetune_loss_curves", "accuracy_heatmap_variant_by_language"):
        assert f'alt="{name}.png"' in report
    # 03's last cell, the playground, showed its static table (papermill: nobody types)
    executed = json.loads((run / "notebooks" / "03_crosslingual_eval.ipynb").read_text())
    shown = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for o in executed["cells"][-1]["outputs"]
    )
    assert "p_unrelated" in shown and "base" in shown, executed["cells"][-1]["outputs"]


@pytest.mark.slow
def test_failing_notebook_stops_names_the_cell_and_keeps_earlier_results(scratch_root, tmp_path):
    bad = write(tmp_path / "bad.csv", "text,lang,label\nfine,en,neutral\nhola,es,maybe\n")
    good_table = write(scratch_root / "runs" / "smoke" / "posts.csv", "earlier results\n")
    res = _runner(
        scratch_root,
        "--profile",
        "smoke",
        "--only",
        "00",
        "-p",
        "posts_source",
        "file",
        "-p",
        "posts_path",
        str(bad),
    )
    assert res.returncode == 1
    out = res.stdout
    assert "00_data: FAILED" in out and "code cell" in out
    assert "PostsError" in out and "bad.csv, row 3, field 'label'" in out
    assert (scratch_root / "runs" / "smoke" / "notebooks" / "00_data.ipynb").exists()
    assert good_table.read_text() == "earlier results\n"  # nothing already computed is lost
    state = json.loads((scratch_root / "runs" / "smoke" / "notebooks" / "state.json").read_text())
    assert state["00_data"]["status"] == "failed"


@pytest.mark.slow
def test_missing_inputs_are_reported_as_skipped(scratch_root):
    res = _runner(scratch_root, "--profile", "paper", "-p", "paper_data", "/nonexistent/folder")
    assert res.returncode == 0, res.stderr
    assert "00_data: skipped: posts source 'paper' not found at /nonexistent/folder" in res.stdout
    assert "fetch_paper_data.sh" in res.stdout
    assert "01_finetune: skipped" in res.stdout and "02_quantize: skipped" in res.stdout
    assert not (scratch_root / "runs" / "paper" / "notebooks" / "00_data.ipynb").exists()


def test_bad_config_is_refused_before_anything_runs(scratch_root):
    res = _runner(scratch_root, "--profile", "smoke", "-p", "seed", "many")
    assert res.returncode == 2
    assert "common.seed" in res.stderr and "int" in res.stderr
    res = _runner(scratch_root, "--only", "99_nothing")
    assert res.returncode == 2 and "no such notebook" in res.stderr
    res = _runner(scratch_root, "--paper-data", "/nonexistent/folder")
    assert res.returncode == 2 and "no such folder" in res.stderr
    assert not (scratch_root / "runs" / "smoke" / "notebooks").exists()


def test_qlora_without_bitsandbytes_is_skipped_with_the_reason():
    import importlib.util

    from xling.run import runner

    params = {"base_model": "embedded", "device": "cpu", "base_quant": "nf4"}
    reason = runner.missing_requirement(["model"], params, "demo")
    if importlib.util.find_spec("bitsandbytes") is None:
        assert "bitsandbytes" in reason and "base_quant: null" in reason
    assert runner.missing_requirement(["model"], {**params, "base_quant": None}, "demo") is None


@pytest.mark.slow
def test_example_task_runs_00_to_03_on_the_smoke_profile():
    # the README's command for the example task (tasks/climate.yaml and its posts), through the
    # runner itself; its own run name, so the smoke run's files are never touched
    labels = ["unrelated", "neutral", "supports-climate-action", "opposes-climate-action"]
    cmd = [sys.executable, "-m", "xling.run.runner", "--profile", "smoke", "--run", "smoke-climate"]
    cmd += ["-p", "task", "climate", "-p", "posts_source", "file"]
    cmd += ["-p", "posts_path", "data/tasks/climate_posts.csv", "--force"]
    # the smoke profile's evaluation file is labelled for the paper's task: none here
    cmd += ["-p", "00_data.eval_files", "{}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=paths.ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    # smoke's en+pairs draws its pairs from the demo posts' English references: left out here
    assert "pair variant en+pairs left out: its translation pairs are the profile's" in res.stdout
    for nb in ("00_data", "01_finetune", "02_quantize", "03_crosslingual_eval"):
        assert f"{nb}: done in" in res.stdout, res.stdout
    # the later notebooks read the paper's labels only: skipped, saying why
    for nb in list(config.notebook_paths())[4:]:
        assert f"- {nb}: skipped: reads the paper's task only" in res.stdout, res.stdout
    run = paths.RUNS / "smoke-climate"
    posts = pd.read_csv(run / "posts.csv")
    # 60 posts, 1 test post per language and label; smoke keeps 8 training posts per language
    assert set(posts["label"]) == set(labels) and set(posts["lang"]) == {"en", "es", "de"}
    assert (posts[posts["split"] == "test"].groupby("lang").size() == 4).all()
    assert (posts[posts["split"] == "train"].groupby("lang").size() == 8).all()
    meta = json.loads((run / "adapters" / "en" / "meta.json").read_text())
    assert meta["task"] == "climate"
    gains = pd.read_csv(run / "quantize" / "finetune_gains.csv")
    assert set(gains["variant"]) == {"en", "multi"}
    predictions = pd.read_csv(run / "predictions.csv")
    assert set(predictions["variant"]) == {"base", "en", "multi"}
    assert set(predictions["method"]) == {"score", "generate"}
    assert set(predictions["label"]) == set(labels)
    assert set(predictions["prediction"]) <= set(labels) | {"failed"}
    # every variant and method classified the 12 test posts
    assert (predictions.groupby(["variant", "method"]).size() == 12).all()
    per_class = pd.read_csv(run / "metrics" / "per_class.csv")
    first = per_class.groupby(["variant", "method", "evalset"], sort=False).head(4)
    assert first["class"].tolist()[:4] == labels
    ts = pd.read_csv(run / "metrics" / "topic_stance.csv").set_index(
        ["variant", "method", "evalset"]
    )
    # topic versus stance on the task's off-topic label: 3 of each language's 4 test posts are
    # on topic; the pooled set 'multi' holds the 12 test posts of en, es, de (multi's languages)
    assert (ts.xs("en", level="evalset")["stance_n"] == 3).all()
    assert (ts.xs("multi", level="evalset")["stance_n"] == 9).all()
    assert ts["topic_accuracy"].between(0, 1).all()
    for name in (
        "posts_by_language_split_label",
        "unrelated_share_by_evalset",
        "accuracy_heatmap_variant_by_language",
        "confusion_matrices_by_variant",
        "topic_vs_stance_by_language",
    ):
        assert (paths.FIGURES / "smoke-climate" / f"{name}.png").stat().st_size > 1000, name
    # 03's playground scored the task's labels with this run's models (a named run)
    executed = json.loads((run / "notebooks" / "03_crosslingual_eval.ipynb").read_text())
    shown = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for o in executed["cells"][-1]["outputs"]
    )
    assert "p_supports-climate-action" in shown and "p_pro-immigration" not in shown
