"""Runs named apart from profiles (issue 23, part 1): ``./run_all.sh --profile P --run NAME``
writes runs/NAME/ and figures/NAME/ with P's parameters, and never mixes two profiles in one run."""

from __future__ import annotations

import json

import pytest
from test_resume import project  # noqa: F401 - the scratch project and faked papermill

from xling import config, paths
from xling.run import report, runner
from xling.run.state import run_profile_name


def test_a_named_run_writes_its_own_folder_and_leaves_the_profiles_alone(project):  # noqa: F811
    root, pm = project
    runner.run_profile("tiny", log=lambda _m: None)
    demo_out = (root / "runs" / "tiny" / "00_first.out").read_bytes()

    pm.executed = []
    outcomes = runner.run_profile("tiny", run="mine", log=lambda _m: None)
    assert [o.status for o in outcomes] == ["ran"] * 3  # its own state: nothing is up to date
    mine = root / "runs" / "mine"
    # every notebook got the run's name as `profile` (the one key notebooks build paths from)
    # and the profile's own parameters (tiny.yaml's seed 7)
    got = json.loads((mine / "00_first.out").read_text())
    assert got == {"profile": "mine", "seed": 7}
    assert (root / "runs" / "tiny" / "00_first.out").read_bytes() == demo_out  # untouched
    assert run_profile_name("mine") == "tiny" and run_profile_name("tiny") == "tiny"
    # the report names both
    page = (mine / "report.html").read_text()
    assert "run <code>mine</code>, profile <code>tiny</code>" in page
    assert report.collect("mine")["profile"] == "tiny"


def test_a_run_of_another_profile_is_not_mixed_in(project):  # noqa: F811
    root, pm = project
    (root / "params" / "other.yaml").write_text("common:\n  seed: 9\n")
    runner.run_profile("tiny", run="mine", log=lambda _m: None)
    with pytest.raises(config.ConfigError, match="holds a run of profile 'tiny', not 'other'"):
        runner.run_profile("other", run="mine", log=lambda _m: None)
    # --force says: re-run it all into that folder with the other profile
    pm.executed = []
    runner.run_profile("other", run="mine", force=True, log=lambda _m: None)
    assert pm.executed == ["00_first", "01_second", "02_third"]
    assert run_profile_name("mine") == "other"


@pytest.mark.parametrize("bad", ["", "../up", "a/b", "cache", "-x", "x" * 65])
def test_run_names_that_are_not_a_plain_folder_are_refused(bad):
    with pytest.raises(config.ConfigError, match="--run"):
        config.check_run_name(bad)


def test_the_command_line_refuses_a_bad_run_name(project, capsys):  # noqa: F811
    assert runner.main(["--profile", "tiny", "--run", "cache"]) == 2
    assert "shared caches" in capsys.readouterr().err


def test_xling_classify_reads_a_named_run_with_the_profile_it_was_made_with(tmp_path, monkeypatch):
    from xling import classify, paths
    from xling.run.state import claim_run

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    claim_run("mine", "demo")  # as ./run_all.sh --profile demo --run mine records it
    args = classify.parser().parse_args(["--run", "mine", "--variant", "en", "--output", "o"])
    # demo's variants are known (a variant it lacks is refused naming the profile) ...
    bad = classify.parser().parse_args(["--run", "mine", "--variant", "xx", "--output", "o"])
    with pytest.raises(Exception, match="profile demo has en"):
        classify.resolve_model(bad)
    # ... and the files are looked for in runs/mine/, where 02_quantize has not run
    with pytest.raises(FileNotFoundError, match="mine"):
        classify.resolve_model(args)


def test_a_run_whose_lists_name_missing_variants_stops_before_anything_runs():
    from xling import paths

    with pytest.raises(config.ConfigError, match="translated_variants names 'en'"):
        runner.run_profile(
            "demo",
            only=["04_translation_ablation"],
            overrides=[("variants", "{es: [es]}")],
            run="only_es",
            log=lambda _m: None,
        )
    assert not (paths.RUNS / "only_es").exists()  # not even claimed (run.json)


def test_files_named_on_the_command_line_are_taken_from_where_the_user_stands(tmp_path):
    (tmp_path / "mine.csv").write_text("text,lang,label\n")
    # a file that exists from the caller's folder becomes absolute from there ...
    key, raw = runner.caller_paths("posts_path", "mine.csv", tmp_path)
    assert (key, json.loads(raw)) == ("posts_path", str(tmp_path / "mine.csv"))
    key, raw = runner.caller_paths(
        "00_data.eval_files", "{a_set: mine.csv, b_set: data/examples/speeches.csv}", tmp_path
    )
    # ... one that does not (the repository's own example) stays, taken from the root later
    assert json.loads(raw) == {
        "a_set": str(tmp_path / "mine.csv"),
        "b_set": "data/examples/speeches.csv",
    }
    assert runner.caller_paths("seed", "7", tmp_path) == ("seed", "7")  # not a file key


def test_05_is_skipped_with_its_reason_when_the_predictions_cover_one_language(
    tmp_path, monkeypatch
):
    """A Spanish-only run: 05's regressions need three languages; the runner says why it skips."""
    import pandas as pd

    from xling.run.requirements import missing_requirement

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    pred = paths.predictions_csv("mine")
    pred.parent.mkdir(parents=True, exist_ok=True)
    rows = {"lang": ["es", "es", "en", "xx"], "split": ["test", "extra", "eval", "eval"]}
    pd.DataFrame(rows).to_csv(pred, index=False)
    why = missing_requirement(["regression_languages"], {"exclude_langs": ["en"]}, "mine")
    # en and xx come only from evaluation files (split eval): one language left, es
    assert why is not None and "1 evaluation language(s) (es)" in why and "at least 3" in why
    rows = {"lang": ["es", "de", "en", "fr"], "split": ["test"] * 4}
    pd.DataFrame(rows).to_csv(pred, index=False)
    # four test languages, en excluded by the profile: three left, enough
    assert missing_requirement(["regression_languages"], {"exclude_langs": ["en"]}, "mine") is None
    assert missing_requirement(["regression_languages"], {"exclude_langs": ["en", "fr"]}, "mine")
