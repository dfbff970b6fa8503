"""./run_all.sh --params: every parameter of the real notebooks, listed like a CLI's --help."""

from __future__ import annotations

import re

from xling import config
from xling.run import params


def test_every_declared_parameter_is_listed_with_type_default_and_comment(capsys):
    assert params.main([]) == 0
    out = capsys.readouterr().out
    for stem, path in config.notebook_paths().items():
        section = out.split(f"\n{stem} (", 1)[1].split("\n\n", 1)[0]
        declared = config.notebook_parameters(path)
        # the section's header counts them, and each has a "  name: type" line
        assert section.split("\n", 1)[0].endswith(f"{len(declared)} parameters"), stem
        listed = re.findall(r"^  (\w+): ", section, flags=re.M)
        assert listed == list(declared), stem
        for p in declared.values():
            if p.comment:  # the comment's first words, on the lines under the name
                assert " ".join(p.comment.split()[:3]) in " ".join(section.split()), (stem, p.name)


def test_known_values_of_the_demo_defaults(capsys):
    # params/demo.yaml: 01_finetune lr 0.001, steps 60; the defaults are the demo's values
    assert params.main(["01"]) == 0
    out = capsys.readouterr().out
    assert "\n  lr: float = 0.001\n" in out
    assert "\n  steps: Optional[int] = 60\n" in out
    assert "00_data (" not in out  # only the notebook asked for
    # a string knob with fixed values lists them (xling.config.CHOICES)
    assert params.main(["data"]) == 0
    assert "[choices: demo, paper, file]" in capsys.readouterr().out


def test_long_defaults_wrap_and_no_line_runs_past_the_width(capsys):
    params.main([])
    out = capsys.readouterr().out
    # 00_data's variants (a dict of four lists) is too long for one line: its default follows
    assert "\n  variants: dict[str, list[str]]\n      default {'en': ['en']," in out
    too_long = [ln for ln in out.splitlines() if len(ln) > params.WIDTH]
    assert not too_long, too_long


def test_an_unknown_notebook_is_named(capsys):
    assert params.main(["99_nothing"]) == 2
    err = capsys.readouterr().err
    assert "--params 99_nothing: no such notebook" in err and "00_data" in err


def test_run_all_passes_params_to_the_lister():
    from xling import paths

    script = (paths.ROOT / "run_all.sh").read_text()
    assert 'exec "$PY" -m xling.run.params "$@"' in script
