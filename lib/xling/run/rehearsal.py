"""A rehearsal profile (``rehearses: full``) against the profile it rehearses: what it runs
otherwise, and why.

The rehearsal runs ``full``'s code path on a CPU with a tiny model. Every setting it changes is one
of three kinds: a GPU setting (the GPU's device, bf16, NF4, llama.cpp layers on the GPU) that stays
at its CPU value, with the reason it cannot run here; the model (the tiny Llama 3 in place of the
3B weights); or the scale (fewer posts, steps, replicates). :func:`differences` sorts them, and a
setting that changed for none of those reasons is reported as such, so the rehearsal cannot drift
from ``full`` unnoticed (a test holds it to that).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from xling import config

#: Settings that need a GPU in full, and the value a CPU runs with instead.
GPU_SETTINGS = ("device", "dtype", "base_quant", "n_gpu_layers")
#: The model itself.
MODEL_SETTINGS = ("base_model",)
#: Settings the tiny model's noise forces: its greedy answers never parse, so a notebook that
#: models them reads its scores instead.
NOISE_SETTINGS = {
    ("05_pretraining_bias", "method"): (
        "the tiny model's generations never parse ('failed' for every post): 05 reads its scores"
    ),
}
#: Scale: how many posts, steps and replicates (the code path is the same at any size).
SCALE_SETTINGS = (
    "posts_per_group",
    "max_train_posts",
    "max_pairs_per_lang",
    "epochs",
    "batch_size",
    "save_every",
    "compare_posts",
    "check_posts",
    "n_boot",
    "posts_per_set",
    "n_shots",
    "translation_max_tokens",
    "methods",  # the rehearsal scores as well as generates: more of the path, not less
)


def _cuda() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if torch.cuda.is_available():
        return True, f"CUDA GPU {torch.cuda.get_device_name(0)}"
    build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return False, f"no CUDA GPU here (torch {torch.__version__}, {build})"


def gpu_reason(key: str, value: Any) -> str:
    """Why ``key: value`` (full's GPU setting) is not run on this machine."""
    has_gpu, gpu = _cuda()
    where = gpu if not has_gpu else f"{gpu} is here, but the rehearsal runs on the CPU"
    if key == "device":
        return f"device {value} needs a CUDA GPU: {where}"
    if key == "dtype":
        return (
            f"dtype {value} is the GPU's training precision (on a CPU bf16 ran 25x slower than "
            f"float32 here): {where}"
        )
    if key == "base_quant":
        bnb = importlib.util.find_spec("bitsandbytes") is not None
        lib = "bitsandbytes is installed" if bnb else "bitsandbytes is not installed"
        return (
            f"base_quant {value} (QLoRA) needs bitsandbytes (pip install -e '.[gpu]') and a CUDA "
            f"GPU: {lib}; {where}"
        )
    if key == "n_gpu_layers":
        return f"n_gpu_layers {value} puts llama.cpp's layers on a GPU: {where}"
    return f"{key} {value}: {where}"


def differences(profile: str | config.Profile) -> list[dict[str, Any]]:
    """Every parameter the rehearsal profile gives a notebook otherwise than the profile it
    rehearses: ``notebook, key, kind (gpu | model | scale | unexplained), rehearsed (its value
    there), here (the rehearsal's), reason``, for the notebooks the rehearsal has a block for."""
    prof = profile if isinstance(profile, config.Profile) else config.load_profile(profile)
    if not prof.rehearses:
        raise config.ConfigError(f"{prof.file}: not a rehearsal (no 'rehearses:' key)")
    ref = config.load_profile(prof.rehearses)
    rows = []
    # the notebooks it rehearses: those it has a block for (06-09 are not rehearsed)
    for nb in [nb for nb in config.notebook_paths() if nb in prof.blocks]:
        defaults = config.notebook_defaults(nb)
        here = {**defaults, **prof.params_for(nb)}
        there = {**defaults, **ref.params_for(nb)}
        for key in here:
            if key == "profile" or here[key] == there.get(key):
                continue
            if key in GPU_SETTINGS:
                kind, reason = "gpu", gpu_reason(key, there[key])
            elif key in MODEL_SETTINGS:
                kind, reason = "model", "the tiny Llama 3 made here stands in for the weights"
            elif (nb, key) in NOISE_SETTINGS:
                kind, reason = "model", NOISE_SETTINGS[(nb, key)]
            elif key in SCALE_SETTINGS:
                kind, reason = "scale", "fewer posts, steps or replicates: the same code path"
            else:
                kind, reason = (
                    "unexplained",
                    "differs from the rehearsed profile for no stated reason",
                )
            rows.append(
                {
                    "notebook": nb,
                    "key": key,
                    "kind": kind,
                    "rehearsed": there.get(key),
                    "here": here[key],
                    "reason": reason,
                }
            )
    return rows


def skipped_lines(profile: str | config.Profile) -> list[str]:
    """One line per GPU setting the rehearsal leaves out (the notebooks that take it named
    once), for the runner to print at the start of a rehearsal."""
    rows = [r for r in differences(profile) if r["kind"] == "gpu"]
    by_key: dict[str, list[dict]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    lines = []
    for key, group in by_key.items():
        nbs = ", ".join(r["notebook"][:2] for r in group)
        r = group[0]
        lines.append(
            f"skipped: {key} {r['rehearsed']} (here {r['here']}; notebooks {nbs}): {r['reason']}"
        )
    return lines
