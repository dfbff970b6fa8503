"""Shared fixtures: the authors' data when present, a scratch copy of the project for runs.

Tests never write into the real runs/ or figures/: before xling is imported, ``XLING_RUNS`` and
``XLING_FIGURES`` point every output of this test session (in-process and in the runs the tests
start as subprocesses) at one scratch folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

OUTPUTS = Path(tempfile.mkdtemp(prefix="xling-tests-"))
os.environ["XLING_RUNS"] = str(OUTPUTS / "runs")
os.environ["XLING_FIGURES"] = str(OUTPUTS / "figures")

from xling import paths  # noqa: E402  (after the redirect above)

assert paths.RUNS == (OUTPUTS / "runs").resolve(), "xling was imported before conftest"


def pytest_sessionfinish(session, exitstatus):
    """The scratch folder goes when the session ends (the whole suite leaves up to 14 GB there:
    models, GGUF files, runs), unless ``XLING_KEEP_TEST_OUTPUTS`` is set, to look at what a test
    wrote (the JupyterLab test's screenshot, a smoke run's notebooks)."""
    if os.environ.get("XLING_KEEP_TEST_OUTPUTS"):
        print(f"\ntest outputs kept in {OUTPUTS}")
        return
    shutil.rmtree(OUTPUTS, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The fast tier (-m "not slow") loads no model, opens no llama.cpp and starts no browser
# --------------------------------------------------------------------------------------------

#: Marks that make a test slow as well: the fast tier leaves them out.
SLOW_KINDS = ("model", "browser")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


class FastTierError(BaseException):
    """A test outside the slow tier loaded a model. A BaseException, so that no
    ``pytest.raises(Exception)`` in the test takes it for the error it expects."""


def _refuse(item, what: str):
    def opened(*args, **kwargs):
        raise FastTierError(
            f"{item.nodeid} {what} but is not marked slow: mark it @pytest.mark.model "
            "(which implies slow)"
        )

    return opened


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures (session fixtures too) are set up
def pytest_runtest_setup(item):
    """Outside the slow tier, opening llama.cpp or the embedded model fails the test, naming the
    mark it needs: so every test that does is marked, and -m "not slow" stays fast. (Models a
    test's subprocess loads are out of sight here: the notebook runs are marked slow.)"""
    if item.get_closest_marker("slow"):
        return
    from xling.models import base

    mp = pytest.MonkeyPatch()
    item.stash[_GUARD] = mp
    # every way to the embedded model's weights (resolve_base, the embedded_base fixture) goes
    # through its dequantized folder
    mp.setattr(base, "_dequantized_folder", _refuse(item, "loads the embedded model"))
    try:
        import llama_cpp
    except ImportError:  # no llama.cpp here: nothing can open it
        return
    # the names the library calls through (llama_cpp.Llama(...), its quantizer); replaced, not
    # patched inside, so no half-made Llama is left for the garbage collector to close
    mp.setattr(llama_cpp, "Llama", _refuse(item, "opens llama.cpp"))
    mp.setattr(llama_cpp, "llama_model_quantize", _refuse(item, "runs llama.cpp's quantizer"))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    mp = item.stash.get(_GUARD, None)
    if mp is not None:
        mp.undo()


_GUARD = pytest.StashKey[pytest.MonkeyPatch]()


def scratch_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment for a subprocess that runs the library against a scratch tree: its
    sources, runs and figures all under ``root``."""
    return dict(
        os.environ,
        XLING_ROOT=str(root),
        XLING_RUNS=str(root / "runs"),
        XLING_FIGURES=str(root / "figures"),
        **extra,
    )


#: The authors' released files (never committed): ``XLING_PAPER_DATA`` when set, otherwise where
#: data/fetch_paper_data.sh puts them, data/paper/.
PAPER_DATA = Path(os.environ.get("XLING_PAPER_DATA") or paths.PAPER_DATA_DEFAULT)


@pytest.fixture(scope="session")
def paper_data() -> Path:
    if not PAPER_DATA.is_dir():
        pytest.skip(
            f"the authors' data is not at {PAPER_DATA} (fetch it with data/fetch_paper_data.sh, "
            "or set XLING_PAPER_DATA to a copy)"
        )
    return PAPER_DATA


@pytest.fixture(scope="session")
def paper_posts(paper_data):
    from xling.data.sources import load_paper_posts

    with pytest.warns(UserWarning, match="normalized"):
        return load_paper_posts(paper_data)


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    """A copy of the project's sources (params, notebooks, lib, demo and example data, task
    files) for isolated runs; the library finds it through XLING_ROOT."""
    root = tmp_path / "xling"
    for part in ("params", "notebooks", "lib", "data/demo", "data/examples", "tasks"):
        shutil.copytree(
            paths.ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(paths.ROOT / "run_all.sh", root / "run_all.sh")
    return root


def train_settings(**values):
    """TrainSettings as notebook 01 declares its defaults (the one source of them), with
    ``values`` changed."""
    from xling import config
    from xling.models import finetune

    return finetune.TrainSettings.from_params({**config.notebook_defaults("01_finetune"), **values})


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def tiny_gemma(vocab_size: int = 96, seed: int = 0):
    """A randomly initialised two-layer Gemma 3 text model: the real architecture, tiny."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,  # llama.cpp scales attention by head_dim, as Gemma 3 270M does
        max_position_embeddings=512,
        sliding_window=64,
        layer_types=["sliding_attention"] * 2,  # as llama.cpp reads Gemma 3: 5 sliding, then 1 full
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
    )
    return Gemma3ForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def embedded_base():
    """The embedded model (assembled and dequantized once: about a minute the first time)."""
    from xling import models

    return models.resolve_base(models.EMBEDDED)


@pytest.fixture
def model_files(tmp_path, monkeypatch):
    """A fake GGUF file as a model's files (for scorers faked in the test), with the runs folder
    and the model cache in tmp_path."""
    from xling import infer, paths

    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "MODEL_CACHE", tmp_path / "runs" / "cache" / "models")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not really a model")
    return infer.ModelFiles("llamacpp-q4_k_m", gguf)
