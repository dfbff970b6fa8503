"""Classify posts: score each label's answer, or generate as the paper did.

The scorers themselves are in :mod:`xling.models.scorers`; this module runs them over
posts, caches each finished post, and builds the predictions table. Two backends, one
interface: ``llamacpp`` (a GGUF file through llama-cpp-python, optionally with a
LoRA GGUF) and ``transformers`` (the unquantized model). Method ``score`` evaluates the prompt once
per post and reads the log-probability of each label's answer tokens: no output can fail to parse,
and the per-label distribution lets quantized and unquantized models be compared (agreement, KL).
Method ``generate`` is the paper's way: greedy decoding of a few tokens after ``Answer =``, the
label parsed from the text; output that names no category is kept as ``failed``. Method
``calibrated`` is ``score`` divided by the model's own prior, read from content-free inputs
(:mod:`xling.models.calibration`, Zhao et al. 2021).
With llama.cpp the instruction prefix shared by all posts is evaluated once and its KV cache kept,
so a post costs only its own tokens. :func:`classify` caches every finished post on disk, so a
re-run or an interrupted run never classifies a post twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from xling.models.calibration import CONTENT_FREE, calibrate, content_free_prior
from xling.models.prompts import Prompt, parse_answer
from xling.models.scorers import ModelFiles, TransformersScorer, open_scorer
from xling.schema import METHODS
from xling.tasks import load_task


def _post_key(post_id: str, text: str) -> str:
    return f"{post_id}|{hashlib.sha256(str(text).encode()).hexdigest()[:16]}"


def cache_file(files: ModelFiles, method: str, prompt: Prompt, max_new_tokens: int) -> Path:
    """The on-disk cache of one (model files, method, prompt) combination: a JSON-lines file,
    one finished post per line, appended as posts finish."""
    from xling import paths

    spec = [files.fingerprint(), method, prompt.prefix, prompt.body_template, max_new_tokens]
    if prompt.task != load_task():
        # another task's labels (their order is the order of each cached score vector); the
        # paper's task adds nothing, so the caches made before tasks existed stay valid
        spec.append(prompt.task.digest)
    spec = json.dumps(spec)
    key = hashlib.sha256(spec.encode()).hexdigest()[:20]
    return paths.RUNS / "cache" / "predictions" / f"{method}-{key}.jsonl"


def read_jsonl_cache(path: Path) -> dict[str, dict]:
    """The finished records of a JSON-lines cache (one per line, by ``key``); a line cut short by a
    kill is skipped, so that post is done again. Shared with :mod:`xling.translate`."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[rec["key"]] = rec
    return done


def end_cut_line(path: Path) -> None:
    """After a kill mid-line, end that line so the next record appended stands alone."""
    if path.exists() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            cut_short = f.read(1) != b"\n"
        if cut_short:
            with path.open("a", encoding="utf-8") as f:
                f.write("\n")


def classify(
    posts: pd.DataFrame,
    files: ModelFiles,
    prompt: Prompt,
    method: str = "score",
    max_new_tokens: int = 3,
    progress: bool = True,
    desc: str = "",
    device: str = "cpu",
    scorer=None,
    n_gpu_layers: int = 0,
) -> pd.DataFrame:
    """Classify ``posts`` (columns post_id, text) with one model; returns post_id, prediction,
    raw_output and, for ``score``, each label's log-probability (the prompt's task's labels).

    Finished posts are read from and appended to the cache (see :func:`cache_file`), one line
    per post as it finishes, so an interrupted run resumes where it stopped. ``scorer`` may be
    passed to reuse an open model.
    """
    from tqdm import tqdm

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if method == "calibrated":
        return _classify_calibrated(
            posts, files, prompt, max_new_tokens, progress, desc, device, scorer, n_gpu_layers
        )
    path = cache_file(files, method, prompt, max_new_tokens)
    labels = prompt.labels
    done = read_jsonl_cache(path)
    keys = [_post_key(p, t) for p, t in zip(posts["post_id"], posts["text"], strict=True)]
    todo = [i for i, k in enumerate(keys) if k not in done]
    if todo:
        own = scorer is None
        scorer = scorer or open_scorer(files, prompt, device, n_gpu_layers)
        path.parent.mkdir(parents=True, exist_ok=True)
        end_cut_line(path)
        texts = posts["text"].tolist()
        try:
            with path.open("a", encoding="utf-8") as f:
                for i in tqdm(todo, desc=desc or method, disable=not progress):
                    if method == "score":
                        if isinstance(scorer, TransformersScorer):
                            logp = scorer.score_many([texts[i]])[0]
                        else:
                            logp = scorer.score_one(texts[i])
                        rec = {
                            "key": keys[i],
                            "raw_output": None,
                            "prediction": labels[int(np.argmax(logp))],
                            "logp": [float(x) for x in logp],
                        }
                    else:
                        raw = scorer.generate_one(texts[i], max_new_tokens)
                        rec = {
                            "key": keys[i],
                            "raw_output": raw,
                            "prediction": parse_answer(raw, prompt.task),
                        }
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    f.flush()
                    done[keys[i]] = rec
        finally:
            if own and hasattr(scorer, "close"):
                scorer.close()
    out = pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "prediction": [done[k]["prediction"] for k in keys],
            "raw_output": [done[k].get("raw_output") for k in keys],
        },
        index=posts.index,
    )
    if method == "generate":  # parsed again, so a change to the parser needs no re-run
        out["prediction"] = out["raw_output"].map(lambda raw: parse_answer(raw, prompt.task))
    if method == "score":
        logp = np.array([done[k]["logp"] for k in keys]).reshape(-1, len(labels))
        for j, label in enumerate(labels):
            out[f"logp_{label}"] = logp[:, j]
    return out


def content_free_posts() -> pd.DataFrame:
    """Zhao et al.'s content-free inputs as posts (``content-free-0`` ...), scored like any post."""
    return pd.DataFrame(
        {
            "post_id": [f"content-free-{i}" for i in range(len(CONTENT_FREE))],
            "text": list(CONTENT_FREE),
        }
    )


def model_prior(
    files: ModelFiles,
    prompt: Prompt,
    device: str = "cpu",
    scorer=None,
    n_gpu_layers: int = 0,
    max_new_tokens: int = 3,
) -> np.ndarray:
    """One model's prior over the task's labels (:func:`calibration.content_free_prior`): its
    label distribution on the content-free inputs, through the prompt and the score cache
    (whose key holds ``max_new_tokens``: pass the one the posts were scored with)."""
    cf = classify(
        content_free_posts(),
        files,
        prompt,
        "score",
        max_new_tokens,
        progress=False,
        device=device,
        scorer=scorer,
        n_gpu_layers=n_gpu_layers,
    )
    return content_free_prior(cf[[f"logp_{label}" for label in prompt.labels]].to_numpy())


def model_priors(
    files_for,
    variants,
    backend: str,
    prompt: Prompt,
    device: str = "cpu",
    n_gpu_layers: int = 0,
    max_new_tokens: int = 3,
) -> pd.DataFrame:
    """Each model's content-free prior (:func:`model_prior`) on one backend: one row per variant,
    one column per label, each row summing to 1."""
    rows = {}
    for variant in variants:
        files = files_for(variant, backend)
        rows[variant] = model_prior(
            files, prompt, device, n_gpu_layers=n_gpu_layers, max_new_tokens=max_new_tokens
        )
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(prompt.labels))
    table.index.name = "variant"
    return table.reset_index().assign(backend=backend)


def _classify_calibrated(
    posts, files, prompt, max_new_tokens, progress, desc, device, scorer, n_gpu_layers
):
    """Method ``calibrated``: method ``score``'s log-probabilities divided by the model's
    content-free prior (:mod:`xling.models.calibration`); one model opened for both, if any."""
    own = scorer is None and _needs_model(files, "calibrated", posts, prompt, max_new_tokens)
    if own:
        scorer = open_scorer(files, prompt, device, n_gpu_layers)
    try:
        scored = classify(
            posts,
            files,
            prompt,
            "score",
            max_new_tokens,
            progress,
            desc or "calibrated",
            device=device,
            scorer=scorer,
            n_gpu_layers=n_gpu_layers,
        )
        prior = model_prior(files, prompt, device, scorer, n_gpu_layers, max_new_tokens)
    finally:
        if own and hasattr(scorer, "close"):
            scorer.close()
    columns = [f"logp_{label}" for label in prompt.labels]
    cal = calibrate(scored[columns].to_numpy(), prior)
    out = scored.copy()
    out[columns] = cal
    out["prediction"] = [prompt.labels[k] for k in cal.argmax(axis=1)] if len(cal) else []
    return out


def predict(
    posts: pd.DataFrame,
    files_for,
    variants,
    backends,
    methods=("score",),
    prompt: Prompt | None = None,
    inputs=("original",),
    max_new_tokens: int = 3,
    progress: bool = True,
    device: str = "cpu",
    translated_column: str = "text_en",
    n_gpu_layers: int = 0,
) -> pd.DataFrame:
    """The predictions table for every (variant, backend, method, input) over ``posts``.

    ``files_for(variant, backend)`` gives the :class:`ModelFiles`; input ``translated``
    classifies the English text in ``translated_column`` (a machine translation; posts without
    one, and English posts, are left out). Columns as in
    ``xling.metrics.PREDICTION_COLUMNS``. Every post is cached as it finishes (see
    :func:`classify`); a model is opened only when some post is not cached yet.
    ``n_gpu_layers``: llama.cpp's layers on a GPU (0: none).
    """
    from xling.schema import PREDICTION_COLUMNS

    if prompt is None:
        raise ValueError("predict needs a prompt")
    texts = {}
    for inp in inputs:
        if inp == "original":
            texts[inp] = posts
        elif inp == "translated":
            if translated_column not in posts.columns:
                raise ValueError(f"input translated: posts have no column {translated_column!r}")
            col = posts[translated_column]
            sub = posts[col.notna() & (col.astype(str).str.strip() != "") & (posts["lang"] != "en")]
            texts[inp] = sub.assign(text=sub[translated_column])
        else:
            raise ValueError(f"unknown input {inp!r}; original or translated")
    parts = []
    for variant in variants:
        for backend in backends:
            files = files_for(variant, backend)
            scorer = None
            try:
                for inp, sub in texts.items():
                    for method in methods:
                        if scorer is None and _needs_model(
                            files, method, sub, prompt, max_new_tokens
                        ):
                            scorer = open_scorer(files, prompt, device, n_gpu_layers)
                        out = classify(
                            sub,
                            files,
                            prompt,
                            method,
                            max_new_tokens,
                            progress,
                            desc=f"{variant} {backend} {method} {inp}",
                            device=device,
                            scorer=scorer,
                        )
                        parts.append(
                            sub[["post_id", "lang", "label", "split", "evalset"]].assign(
                                variant=variant,
                                backend=backend,
                                input=inp,
                                method=method,
                                prediction=out["prediction"].to_numpy(),
                                raw_output=out["raw_output"].to_numpy(),
                            )
                        )
            finally:
                if scorer is not None and hasattr(scorer, "close"):
                    scorer.close()
    if not parts:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(PREDICTION_COLUMNS)]


def score_and_calibrated(
    predictions: pd.DataFrame,
    posts: pd.DataFrame,
    files_for,
    variants,
    backend: str,
    prompt: Prompt,
    max_new_tokens: int = 3,
    device: str = "cpu",
    n_gpu_layers: int = 0,
) -> pd.DataFrame:
    """Methods ``score`` and ``calibrated`` of ``variants`` on ``backend`` (input original):
    the rows ``predictions`` has, and the method it lacks classified over ``posts`` through
    :func:`predict` (``calibrated`` after ``score`` costs only the content-free prompts; ``score``
    after ``calibrated`` reads the cache). What raw against calibrated is read from (03)."""
    have = predictions[
        (predictions["backend"] == backend)
        & (predictions["input"] == "original")
        & predictions["method"].isin(["score", "calibrated"])
    ]
    missing = [m for m in ("score", "calibrated") if m not in set(have["method"])]
    parts = [have]
    if missing:
        parts.append(
            predict(
                posts,
                files_for,
                variants,
                [backend],
                missing,
                prompt,
                max_new_tokens=max_new_tokens,
                device=device,
                n_gpu_layers=n_gpu_layers,
            )
        )
    return pd.concat(parts, ignore_index=True)


def _needs_model(
    files: ModelFiles, method: str, posts: pd.DataFrame, prompt: Prompt, max_new_tokens: int
) -> bool:
    """Whether some post is not in the cache yet (then the model must be opened); for
    ``calibrated``, the score cache of the posts and of the content-free inputs."""
    if method == "calibrated":
        return _needs_model(files, "score", posts, prompt, max_new_tokens) or _needs_model(
            files, "score", content_free_posts(), prompt, max_new_tokens
        )
    done = read_jsonl_cache(cache_file(files, method, prompt, max_new_tokens))
    return any(
        _post_key(p, t) not in done for p, t in zip(posts["post_id"], posts["text"], strict=True)
    )
