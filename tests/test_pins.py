"""The fast-moving packages are pinned exactly in pyproject.toml, and environment.yml agrees."""

from __future__ import annotations

import re
import tomllib

import yaml

from xling import paths

MUST_PIN = {
    "torch",
    "transformers",
    "peft",
    "llama-cpp-python",
    "gguf",
    "papermill",
    "jupyterlab",
    "seaborn",
    "statsmodels",
    "scikit-learn",
    "pandas",
    "sacrebleu",
    "tqdm",
    "pyyaml",
}


def _pyproject_pins(extras: tuple[str, ...] = ("dev", "gpu")) -> dict[str, str]:
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [
        r for name in extras for r in project["optional-dependencies"][name]
    ]
    pins = {}
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", req)
        assert m, f"pyproject.toml: '{req}' is not an exact pin (name==version)"
        pins[m[1].lower()] = m[2]
    return pins


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r.split("==")[0].lower(): r.split("==")[1] for r in pip if not r.startswith("-")}


def test_every_fast_moving_package_is_pinned_exactly():
    assert MUST_PIN <= set(_pyproject_pins())


def test_environment_yml_mirrors_pyproject():
    # environment.yml is the CPU environment: everything but the GPU-only extra
    assert _environment_pins() == _pyproject_pins(extras=("dev",))


def test_run_all_installs_the_pinned_torch_first():
    script = (paths.ROOT / "run_all.sh").read_text()
    assert f'TORCH_PIN="torch=={_pyproject_pins()["torch"]}"' in script
