"""One source of defaults: the parameters cells equal the demo profile, shared knobs agree, and
string knobs take only their listed choices."""

from __future__ import annotations

import json
import shutil

import pytest

from xling import config, paths


def test_the_notebooks_defaults_are_the_demo_profile():
    assert config.default_drift("demo") == []


def _copy_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    shutil.copytree(paths.NOTEBOOKS, folder)
    return {p.stem: p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))}


def _replace_in_parameters(nb_path, old: str, new: str) -> None:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    src = "".join(cell["source"])
    assert old in src
    cell["source"] = src.replace(old, new)
    nb_path.write_text(json.dumps(nb), encoding="utf-8")


def test_a_planted_drift_is_found(tmp_path):
    notebooks = _copy_notebooks(tmp_path)
    # demo.yaml trains 60 steps in 01; a cell that says 40 would train something else
    _replace_in_parameters(
        notebooks["01_finetune"], "steps: Optional[int] = 60", "steps: Optional[int] = 40"
    )
    drift = config.default_drift("demo", notebooks)
    assert drift == ["01_finetune: 'steps' defaults to 40 but profile demo gives 60"]


def test_a_shared_knob_with_two_meanings_is_found(tmp_path):
    notebooks = _copy_notebooks(tmp_path)
    # weight_decay is declared by 01 and 06 (0.001 in both) and set by no demo block: a
    # different default in 06 is one word meaning two things
    _replace_in_parameters(
        notebooks["06_data_size"], "weight_decay: float = 0.001", "weight_decay: float = 0.01"
    )
    drift = config.default_drift("demo", notebooks)
    assert drift == ["'weight_decay' has different defaults: 01_finetune 0.001, 06_data_size 0.01"]


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("prompt_format", "chatml", "'chatml' is not one of: plain, chat, paper"),
        ("device", "gpu", "'gpu' is not one of"),
        ("methods", ["score", "sample"], "'sample' is not one of: score, generate"),
        ("train_splits", {"multi": ["pooled", "mixed"]}, "'mixed' is not one of"),
        ("backends", ["llamacpp-q3_k"], "'llamacpp-q3_k' is not one of"),
    ],
)
def test_bad_choices_are_refused(key, value, why):
    assert why in config.check_choice(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("device", "cuda:1"),
        ("backends", ["llamacpp-q4_k_m+lora", "llamacpp-q4_k_m+attn-q8_0"]),
        ("base_quant", None),
        ("seed", "anything"),  # no fixed choices
    ],
)
def test_good_choices_pass(key, value):
    assert config.check_choice(key, value) is None


def test_a_bad_choice_in_an_override_names_the_key():
    with pytest.raises(config.ConfigError, match=r"'03_crosslingual_eval.methods': 'sample'"):
        config.load_profile("demo", [("03_crosslingual_eval.methods", "[score, sample]")])
    with pytest.raises(config.ConfigError, match=r"'common.prompt_format': 'chatml'"):
        config.load_profile("demo", [("prompt_format", "chatml")])


def test_every_default_and_profile_value_is_a_valid_choice():
    for profile in ("demo", "paper", "full", "smoke"):
        prof = config.load_profile(profile)  # refuses a bad choice in the file
        for nb, decl in prof.schema.items():
            for key, param in decl.items():
                assert config.check_choice(key, param.default) is None, (nb, key)


def test_the_coding_choices_are_the_regressions():
    from xling.analysis import regression

    assert config.CHOICES["coding"] == regression.CODINGS
