"""A user's own data, end to end: a file of Spanish posts only, a run named apart, one variant,
and an evaluation file, through 00-03 on the smoke profile's settings."""

from __future__ import annotations

import hashlib
import subprocess

import pandas as pd
import pytest

from xling import paths


def _snapshot(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_a_spanish_only_file_runs_under_its_own_name_with_an_eval_file(tmp_path):
    demo_es = pd.read_csv(paths.ROOT / "data" / "demo" / "posts" / "es.csv")
    mine = tmp_path / "mis_posts.csv"
    demo_es[["text", "lang", "label"]].to_csv(mine, index=False)  # no split: one is drawn
    # a run of the profile itself, to be left alone
    sentinel = paths.RUNS / "smoke" / "sentinel.txt"
    sentinel.parent.mkdir(parents=True, exist_ok=True)
    sentinel.write_text("the smoke run's own results\n")
    before = _snapshot(paths.RUNS / "smoke")
    cmd = [
        str(paths.ROOT / "run_all.sh"),
        "--profile",
        "smoke",
        "--run",
        "mis_es",
        "-p",
        "posts_source",
        "file",
        "-p",
        "posts_path",
        str(mine),
        "-p",
        "variants",
        "{es: [es]}",
        "--only",
        "00_data",
        "01_finetune",
        "02_quantize",
        "03_crosslingual_eval",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr
    # smoke's en+pairs is not among -p variants: left out, and the runner says so
    assert "pair variant en+pairs left out: -p variants does not name it" in res.stdout
    assert _snapshot(paths.RUNS / "smoke") == before
    run = paths.RUNS / "mis_es"
    posts = pd.read_csv(run / "posts.csv")
    # the Spanish posts (cut to 8 per evalset and split by the smoke profile) and the speeches
    assert set(posts["evalset"]) == {"es", "speeches"}
    assert set(posts.loc[posts["evalset"] == "es", "split"]) == {"train", "test"}
    by_set = pd.read_csv(run / "metrics" / "by_evalset.csv")
    assert set(by_set["variant"]) == {"base", "es"}
    assert {"es", "speeches"} <= set(by_set["evalset"])
    assert (run / "data_card.md").read_text().startswith("# Data card: run mis_es (profile smoke)")
    assert (paths.FIGURES / "mis_es" / "accuracy_heatmap_variant_by_language.png").exists()
