"""xling.config: parameters cells are the schema; profiles are checked against them."""

from __future__ import annotations

import json

import pytest

from xling import config, paths


def _nb(tmp_path, source: str):
    nb = {
        "cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    p = tmp_path / "99_x.ipynb"
    p.write_text(json.dumps(nb))
    return p


def test_parameters_cell_parsed_with_types_defaults_and_comments(tmp_path):
    p = _nb(tmp_path, 'seed: int = 3  # the seed\nlangs: list[str] = ["en", "es"]  # languages\n')
    params = config.notebook_parameters(p)
    assert params["seed"] == config.Param("seed", "int", 3, "the seed")
    assert params["langs"].default == ["en", "es"]
    assert params["langs"].annotation == "list[str]"


def test_parameters_cell_rejects_untyped_lines(tmp_path):
    with pytest.raises(config.ConfigError, match="name: type = literal"):
        config.notebook_parameters(_nb(tmp_path, "seed = 3\n"))


@pytest.mark.parametrize(
    ("value", "annotation", "ok"),
    [
        (3, "int", True),
        (True, "int", False),  # a bool is not an int here, though Python says so
        ("3", "int", False),
        (3, "float", True),  # an int is a fine float
        (0.5, "float", True),
        (None, "str | None", True),
        ("x", "str | None", True),
        (3, "str | None", False),
        (["a", "b"], "list[str]", True),
        (["a", 1], "list[str]", False),
        ({"en": ["en"]}, "dict[str, list[str]]", True),
        ({"en": "en"}, "dict[str, list[str]]", False),
        (None, "Optional[int]", True),
    ],
)
def test_check_type(value, annotation, ok):
    assert config.check_type(value, annotation) is ok


@pytest.mark.parametrize("profile", ["demo", "paper", "full", "smoke"])
def test_every_profile_loads(profile):
    prof = config.load_profile(profile)
    params = prof.params_for("00_data")
    assert params["profile"] == profile
    assert set(params) <= set(prof.schema["00_data"])


def test_unknown_key_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  seed: 1\n00_data:\n  n_exampels: 3\n")
    with pytest.raises(config.ConfigError) as err:
        config.load_profile("bad", file=bad)
    assert "00_data.n_exampels" in str(err.value) and str(bad) in str(err.value)


def test_unknown_common_key_and_block(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  sed: 1\n")
    with pytest.raises(config.ConfigError, match=r"common\.sed"):
        config.load_profile("bad", file=bad)
    bad.write_text("07_nothing:\n  x: 1\n")
    with pytest.raises(config.ConfigError, match="unknown key '07_nothing'"):
        config.load_profile("bad", file=bad)


def test_wrong_type_names_key_file_and_expected_type(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  seed: 'abc'\n")
    with pytest.raises(config.ConfigError) as err:
        config.load_profile("bad", file=bad)
    msg = str(err.value)
    assert "common.seed" in msg and "int" in msg and str(bad) in msg


def test_overrides_are_checked_and_applied():
    prof = config.load_profile("demo", [("seed", "7"), ("00_data.n_examples", "5")])
    params = prof.params_for("00_data")
    assert (params["seed"], params["n_examples"]) == (7, 5)
    with pytest.raises(config.ConfigError, match="common.seed"):
        config.load_profile("demo", [("seed", "many")])
    with pytest.raises(config.ConfigError, match="unknown notebook"):
        config.load_profile("demo", [("42_x.seed", "1")])


def test_unknown_profile_lists_known_ones():
    with pytest.raises(config.ConfigError, match="demo"):
        config.load_profile("nope")


def test_profile_key_is_reserved(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  profile: other\n")
    with pytest.raises(config.ConfigError, match="profile"):
        config.load_profile("bad", file=bad)


def test_every_notebook_parameter_is_typed_and_commented():
    for nb, path in config.notebook_paths().items():
        params = config.notebook_parameters(path)
        assert "profile" in params and "seed" in params, nb
        for p in params.values():
            assert p.comment, f"{nb}: parameter '{p.name}' has no trailing comment"
            assert config.check_type(p.default, p.annotation), f"{nb}: default of {p.name}"


def test_paths_come_from_the_root():
    assert paths.profile_file("demo").relative_to(paths.ROOT).parts == ("params", "demo.yaml")
    assert paths.resolve("data/paper") == paths.ROOT / "data" / "paper"


def test_papermill_reads_every_parameter_the_schema_has():
    """papermill's own inspector must see every parameter of each notebook's parameters cell: one
    it misses (a declaration ruff wrapped over several lines) is injected with a warning."""
    import papermill as pm

    for name, path in config.notebook_paths().items():
        seen = set(pm.inspect_notebook(str(path)))
        assert seen == set(config.notebook_parameters(path)), name


def test_every_shipped_profile_names_only_its_own_variants():
    for name in ("demo", "smoke", "paper", "full"):
        prof = config.load_profile(name)
        for nb in config.notebook_paths():
            assert prof.variant_problem(nb) is None, (name, nb)


def test_a_list_naming_a_variant_the_run_lacks_is_refused_before_anything_runs():
    # variants {es: [es]}: 04's default translated_variants [en] and native_variants
    # [multi, en-es] name variants this run never trains; 07's read_variants may name "base"
    prof = config.load_profile("demo", [("variants", "{es: [es]}")])
    why = prof.variant_problem("04_translation_ablation")
    assert "04_translation_ablation.translated_variants names 'en'" in why
    assert "variants: es" in why and "-p 04_translation_ablation.translated_variants" in why
    assert "04_translation_ablation.native_variants names 'multi', 'en-es'" in why
    assert prof.variant_problem("03_crosslingual_eval") is None
    fixed = config.load_profile(
        "demo",
        [
            ("variants", "{es: [es]}"),
            ("04_translation_ablation.translated_variants", "[es]"),
            ("04_translation_ablation.native_variants", "[es]"),
            ("07_representations.read_variants", "[base, es]"),
        ],
    )
    assert fixed.variant_problem("04_translation_ablation") is None
    assert fixed.variant_problem("07_representations") is None
