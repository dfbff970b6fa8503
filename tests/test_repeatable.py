"""Repeatability (issue 11): the same seed gives the same adapter, predictions and metrics, bit
for bit; another seed gives another adapter. Run on the smoke profile's own settings, cheaply:
one variant fine-tuned three times, a post per evaluation set classified twice."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import train_settings
from xling import config, data, infer, paths
from xling.analysis import metrics
from xling.models import finetune, prompts


def _smoke(notebook: str) -> dict:
    """A notebook's parameters under the smoke profile: its declared defaults, then the profile's
    values (what papermill gives the notebook)."""
    prof = config.load_profile("smoke")
    defaults = {name: p.default for name, p in prof.schema[notebook].items()}
    return {**defaults, **prof.params_for(notebook)}


def _smoke_posts() -> pd.DataFrame:
    """The smoke profile's posts table, as 00_data makes it."""
    p = _smoke("00_data")
    posts = data.load_posts(p["posts_source"], p["posts_path"], seed=p["seed"])
    return data.subsample(posts, p["posts_per_group"], seed=p["seed"])


@pytest.mark.slow
def test_same_seed_same_adapter_another_seed_another_adapter(tmp_path, embedded_base):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    p = _smoke("01_finetune")
    posts = _smoke_posts()
    train = finetune.training_sets(posts, {"en": ["en"]}, p["max_train_posts"], seed=p["seed"])
    tok = AutoTokenizer.from_pretrained(embedded_base.folder)
    prompt = prompts.make_prompt(p["prompt_format"], tok)
    examples = finetune.encode_examples(train["en"], prompt, tok, p["max_length"])
    keys = [
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lr",
        "steps",
        "epochs",
        "batch_size",
        "max_length",
        "weight_decay",
        "max_grad_norm",
        "warmup_ratio",
        "save_every",
        "dtype",
        "base_quant",
    ]
    base = {k: p[k] for k in keys} | {"target_modules": tuple(p["target_modules"])}
    assert (base["steps"], base["batch_size"], base["lora_r"]) == (3, 2, 4)  # smoke's values

    def train_once(name: str, seed: int):
        return finetune.finetune_lora(
            embedded_base.folder,
            examples,
            tmp_path / name,
            train_settings(**base, seed=seed),
            base_sha=embedded_base.sha256,
            pad_id=tok.pad_token_id or 0,
            progress=False,
        )

    seed = p["seed"]
    runs = {"a": train_once("a", seed), "b": train_once("b", seed), "c": train_once("c", seed + 1)}
    assert not any(r.reused for r in runs.values())
    weights = {n: load_file(r.adapter / "adapter_model.safetensors") for n, r in runs.items()}
    assert weights["a"].keys() == weights["b"].keys() and weights["a"]
    for k in weights["a"]:
        assert torch.equal(weights["a"][k], weights["b"][k]), k
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])
    pd.testing.assert_frame_equal(runs["a"].losses, runs["b"].losses, check_exact=True)
    # the seed is recorded with the adapter
    for name, expected in (("a", seed), ("c", seed + 1)):
        meta = json.loads((tmp_path / name / "meta.json").read_text())
        assert meta["settings"]["seed"] == expected


@pytest.mark.slow
def test_same_posts_same_predictions_and_metrics(tmp_path, monkeypatch, embedded_base):
    from transformers import AutoTokenizer

    p = _smoke("03_crosslingual_eval")
    posts = _smoke_posts()
    evaluated = posts[posts["split"].isin(p["eval_splits"])].groupby("evalset").head(1)
    assert evaluated["evalset"].nunique() == len(evaluated) >= 10
    tok = AutoTokenizer.from_pretrained(embedded_base.folder)
    prompt = prompts.make_prompt(p["prompt_format"], tok)
    files = infer.ModelFiles("llamacpp-q4_k_m", embedded_base.gguf)
    tables, scores = [], []
    for name in ("first", "second"):
        monkeypatch.setattr(paths, "RUNS", tmp_path / name)  # a cache of its own: no reuse
        table = infer.predict(
            evaluated,
            lambda v, b: files,
            ["base"],
            ["llamacpp-q4_k_m"],
            ("score", "generate"),
            prompt,
            max_new_tokens=p["max_new_tokens"],
            progress=False,
        )
        tables.append(table)
        cache = sorted((tmp_path / name / "cache" / "predictions").glob("score-*.jsonl"))
        assert len(cache) == 1
        scores.append([json.loads(line) for line in cache[0].read_text().splitlines()])
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert scores[0] == scores[1]  # the label log-probabilities, to the last bit
    assert len(scores[0]) == len(evaluated)

    def metric_tables(predictions: pd.DataFrame, seed: int):
        scored = metrics.with_pooled_multi(predictions, ["en", "es", "de"])
        return (
            metrics.by_evalset(scored, n_boot=p["n_boot"], seed=seed),
            metrics.per_class(scored),
            metrics.topic_stance(scored, n_boot=p["n_boot"], seed=seed),
        )

    for a, b in zip(
        metric_tables(tables[0], p["seed"]), metric_tables(tables[1], p["seed"]), strict=True
    ):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
