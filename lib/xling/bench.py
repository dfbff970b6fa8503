"""Benchmarks: speed, memory and cost of every way to classify, measured side by side in one run.

Absolute times on a shared machine are noisy, so every configuration runs in the same run on the
same posts and the tables give ratios. Each configuration runs in a child process of its own
(multiprocessing, spawn), so its peak resident memory is the child's own ``ru_maxrss`` (Python, the
libraries and the model included; the resident memory before the model is loaded is reported beside
it).

The physical limit is measured too: this machine's dense matrix-product throughput (fp32 with
torch's GEMM, int8 with ``torch._int_mm``) and the model's FLOPs per token from its config give the
tokens per second the machine could reach, and each configuration's share of it.

Cost (:mod:`xling.analysis.cost`, which notebook 02 uses too): dollars per million posts from the
measured posts per second and a machine price per hour (a parameter, not a measurement), beside the
published API prices (docs/FACTS.md) applied to the measured prompt and answer tokens per post.

Layer: the top (may import every other layer; nothing imports it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from xling import paths
from xling.analysis.cost import PAPER_CLAIMS, cost_rows
from xling.run.machine import machine_info, peak_rss_mb, rss_mb

RESULTS = paths.ROOT / "bench" / "results"


def matmul_limit(kind: str = "fp32", n: int = 2048, seconds: float = 2.0) -> float:
    """Dense matrix-product throughput of this machine in GFLOP/s (int8: GOP/s), the best of
    repeated ``n x n x n`` products over about ``seconds``, on all cores.

    fp32 is torch's GEMM; int8 is ``torch._int_mm`` (int8 inputs, int32 sums: the kind of product
    llama.cpp's quantized kernels do, with 8-bit activations against 4- or 8-bit weights)."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    gen = torch.Generator().manual_seed(0)
    if kind == "fp32":
        a = torch.randn(n, n, generator=gen)
        b = torch.randn(n, n, generator=gen)

        def op():
            return a @ b
    elif kind == "int8":
        a = torch.randint(-127, 127, (n, n), dtype=torch.int8, generator=gen)
        b = torch.randint(-127, 127, (n, n), dtype=torch.int8, generator=gen)

        def op():
            return torch._int_mm(a, b)
    else:
        raise ValueError(f"kind {kind!r}: fp32 or int8")
    op()  # warm-up (and the error, if this build has no such kernel)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        op()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


@dataclass(frozen=True)
class ModelFlops:
    """FLOPs of a decoder from its config: the linear layers per token, the attention per token
    and attended position, and the language-model head per token whose logits are computed."""

    linear_params: int  # weights of the layers' linear maps (no embeddings, no head)
    n_layers: int
    n_heads: int
    head_dim: int
    head_params: int  # hidden x vocab

    @classmethod
    def from_config(cls, config: dict) -> ModelFlops:
        h = config["hidden_size"]
        ff = config["intermediate_size"]
        n_layers = config["num_hidden_layers"]
        nh = config["num_attention_heads"]
        nkv = config.get("num_key_value_heads", nh)
        hd = config.get("head_dim") or h // nh
        per_layer = h * nh * hd + 2 * h * nkv * hd + nh * hd * h + 3 * h * ff  # q k v o, gated MLP
        return cls(per_layer * n_layers, n_layers, nh, hd, h * config["vocab_size"])

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> ModelFlops:
        cfg = json.loads((Path(folder) / "config.json").read_text())
        return cls.from_config(cfg.get("text_config", cfg))

    @property
    def per_token(self) -> float:
        """Forward FLOPs of one token through the linear layers (2 per weight)."""
        return 2.0 * self.linear_params

    def attention(self, positions: int) -> float:
        """Forward FLOPs of the attention (scores and weighted sum) of one token that attends to
        ``positions`` positions."""
        return 4.0 * self.n_layers * self.n_heads * self.head_dim * positions

    def forward(self, first: int, n: int, n_outputs: int = 1) -> float:
        """Forward FLOPs of ``n`` tokens at positions ``first .. first + n - 1`` (each attends to
        every position up to its own), with logits at ``n_outputs`` of them."""
        attended = n * first + n * (n + 1) / 2
        return (
            n * self.per_token + self.attention(1) * attended + 2.0 * self.head_params * n_outputs
        )


@dataclass(frozen=True)
class Config:
    """One way to classify: ``engine`` transformers or llamacpp; ``method`` score, score-nocache
    (llama.cpp: the whole prompt evaluated every post), score-batched (many posts per
    llama_decode) or generate; ``batch_size`` for transformers and score-batched."""

    name: str
    engine: str
    backend: str
    method: str
    model: str
    lora: str | None = None
    batch_size: int = 1
    precision: str = "fp32"  # the matmul limit it is read against: fp32 or int8


def run_config(
    config: Config, texts: list[str], prompt, warmup: int = 2, threads: int | None = None
):
    """Classify ``texts`` with one configuration in this process; the timed part excludes model
    loading and ``warmup`` posts run first. Returns counts, seconds, predictions and memory."""
    from xling.models.prompts import parse_answer
    from xling.schema import LABELS

    rss_before = rss_mb()
    threads = threads or os.cpu_count()
    if config.engine == "transformers":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from xling.models.scorers import TransformersScorer

        torch.set_num_threads(threads)
        tok = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        ).eval()
        scorer = TransformersScorer(model, tok, prompt, batch_size=config.batch_size)

        def tokenize(t):
            return tok(t).input_ids
    elif config.method == "score-batched":
        from xling.models.scorers import LlamaCppBatchScorer

        scorer = LlamaCppBatchScorer(
            config.model, prompt, lora=config.lora, batch_size=config.batch_size, n_threads=threads
        )
        tokenize = scorer.tokenize
    else:
        from xling.models.scorers import LlamaCppScorer

        scorer = LlamaCppScorer(config.model, prompt, lora=config.lora, n_threads=threads)
        tokenize = scorer.tokenize
    stem = scorer.answers.stem
    n_prefix = len(tokenize(prompt.prefix))
    prompt_tokens = [len(tokenize(prompt.render(t))) + len(stem) for t in texts]
    generated = 0

    def classify(batch: list[str]) -> list[str]:
        nonlocal generated
        if config.method == "generate":
            out = []
            for t in batch:
                out.append(parse_answer(scorer.generate_one(t, 3)))
                generated += len(scorer.generated_tokens)
            return out
        if config.engine == "transformers" or config.method == "score-batched":
            logp = scorer.score_many(batch)
        else:
            rows = []
            for t in batch:
                if config.method == "score-nocache":
                    scorer._prefix_ready = False  # evaluate the whole prompt again
                rows.append(scorer.score_one(t))
            logp = np.array(rows).reshape(-1, len(LABELS))
        return [LABELS[k] for k in logp.argmax(axis=1)]

    classify(texts[:warmup])
    generated = 0
    t0 = time.perf_counter()
    predictions = classify(texts)
    seconds = time.perf_counter() - t0
    if hasattr(scorer, "close"):
        scorer.close()
    reuse = config.engine == "llamacpp" and config.method != "score-nocache"
    evaluated = [p - n_prefix if reuse else p for p in prompt_tokens]
    return {
        "name": config.name,
        "seconds": seconds,
        "n_posts": len(texts),
        "prompt_tokens": int(sum(prompt_tokens)),
        "evaluated_tokens": int(sum(evaluated)),
        "n_prefix": n_prefix,
        "generated_tokens": generated,
        "predictions": predictions,
        "rss_before_load_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def _child(args):
    config, texts, prompt, warmup, threads = args
    import xling  # noqa: F401  (offline mode before the Hugging Face libraries load)

    return run_config(config, texts, prompt, warmup, threads)


def run_isolated(config: Config, texts: list[str], prompt, warmup: int = 2, threads=None) -> dict:
    """:func:`run_config` in a fresh child process (spawn), so ``peak_rss_mb`` is this
    configuration's own."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as ex:
        return ex.submit(_child, (config, texts, prompt, warmup, threads)).result()


def setup_command(profile: str) -> str:
    if profile == "demo":
        return "./run_all.sh --only 00_data 01_finetune 02_quantize"
    return f"./run_all.sh --profile {profile} --only 00_data 01_finetune 02_quantize"


def benchmark_files(profile: str, variant: str) -> dict:
    """The model files of a variant the benchmark needs; FileNotFoundError naming the command
    that makes them when one is missing."""
    from xling import config as xconfig
    from xling import models
    from xling.models import layout

    run = paths.RUNS / profile
    posts = run / "posts.csv"
    need = [posts, run / "merged" / variant / "model.safetensors"]
    need += [run / "gguf" / f"{variant}-{k}.gguf" for k in ("f16", "q8_0", "q4_k_m", "lora")]
    missing = [p for p in need if not p.exists()]
    if missing:
        first = missing[0]
        shown = paths.display(first)
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise FileNotFoundError(f"missing {shown}{more}; make them with: {setup_command(profile)}")
    common = xconfig.load_profile(profile).common
    base = models.resolve_base(common.get("base_model") or "embedded")
    files = {"merged": run / "merged" / variant, "posts": posts}
    for backend in ("llamacpp-f16", "llamacpp-q8_0", "llamacpp-q4_k_m", "llamacpp-q4_k_m+lora"):
        files[backend] = layout.model_files(run, base, variant, backend)
    files["prompt_format"] = common.get("prompt_format", "plain")
    return files


def classify_configs(files: dict, tf_batch: int, llama_batch: int) -> list[Config]:
    """Every configuration of the classification benchmark, in the order they run."""
    merged = str(files["merged"])
    out = [
        Config("transformers fp32, one at a time", "transformers", "transformers", "score", merged),
        Config(
            f"transformers fp32, batch {tf_batch}",
            "transformers",
            "transformers",
            "score",
            merged,
            batch_size=tf_batch,
        ),
    ]
    methods = [
        ("score-batched", f"score, {llama_batch} posts per decode"),
        ("score", "score, prefix cache"),
        ("score-nocache", "score, no prefix cache"),
        ("generate", "generate 3 tokens (paper)"),
    ]
    for backend in ("llamacpp-f16", "llamacpp-q8_0", "llamacpp-q4_k_m", "llamacpp-q4_k_m+lora"):
        mf = files[backend]
        label = backend.removeprefix("llamacpp-").upper().replace("+LORA", " + LoRA")
        precision = "fp32" if backend == "llamacpp-f16" else "int8"
        for method, what in methods:
            out.append(
                Config(
                    f"llama.cpp {label}, {what}",
                    "llamacpp",
                    backend,
                    method,
                    str(mf.model),
                    str(mf.lora) if mf.lora else None,
                    batch_size=llama_batch if method == "score-batched" else 1,
                    precision=precision,
                )
            )
    return out


def best_batch_size(config: Config, texts, prompt, sizes, threads=None, log=print) -> tuple:
    """The batch size with the most posts per second on ``texts`` (one child process for the
    sweep); returns (best size, {size: posts/s})."""
    rates = {}
    for size in sizes:
        c = Config(**{**config.__dict__, "batch_size": size})
        r = run_isolated(c, texts, prompt, warmup=min(size, len(texts)), threads=threads)
        rates[size] = r["n_posts"] / r["seconds"]
        log(f"  {config.engine} batch {size}: {rates[size]:.1f} posts/s")
    return max(rates, key=rates.get), rates


def summarize(results: list[dict], configs: list[Config], flops: ModelFlops, limits: dict):
    """One row per configuration: posts/s, prompt tokens/s, generated tokens/s, peak memory,
    agreement with transformers one at a time, ratios, share of the matmul limit."""
    ref = np.array(results[0]["predictions"])
    by_name = {c.name: c for c in configs}
    tf_best = max(
        (r for r in results if by_name[r["name"]].engine == "transformers"),
        key=lambda r: r["n_posts"] / r["seconds"],
    )
    tf_one_rate = results[0]["n_posts"] / results[0]["seconds"]
    tf_best_rate = tf_best["n_posts"] / tf_best["seconds"]
    rows = []
    for r in results:
        c = by_name[r["name"]]
        rate = r["n_posts"] / r["seconds"]
        n = r["n_posts"]
        per_post_prompt = r["prompt_tokens"] / n
        per_post_eval = r["evaluated_tokens"] / n
        first = r["n_prefix"] if per_post_eval < per_post_prompt else 0
        outputs = 1 + (r["generated_tokens"] / n if c.method == "generate" else 0)
        useful = flops.forward(first, per_post_eval + (outputs - 1), outputs)
        limit = limits.get(c.precision)
        rows.append(
            {
                "configuration": c.name,
                "posts_per_s": rate,
                "prompt_tokens_per_s": r["prompt_tokens"] / r["seconds"],
                "evaluated_tokens_per_s": r["evaluated_tokens"] / r["seconds"],
                "generated_tokens_per_s": r["generated_tokens"] / r["seconds"],
                "peak_rss_mb": r["peak_rss_mb"],
                "rss_before_load_mb": r["rss_before_load_mb"],
                "agreement": float((np.array(r["predictions"]) == ref).mean()),
                "x_tf_one": rate / tf_one_rate,
                "x_tf_best": rate / tf_best_rate,
                "gflop_per_post": useful / 1e9,
                "limit": c.precision,
                "share_of_limit": rate * useful / (limit * 1e9) if limit else None,
                "share_of_fp32_limit": rate * useful / (limits["fp32"] * 1e9),
                "posts_per_s_at_limit": limit * 1e9 / useful if limit else None,
            }
        )
    return pd.DataFrame(rows)


def classify_benchmark(
    profile: str = "demo",
    variant: str = "en",
    n_posts: int = 200,
    seed: int = 1234,
    price_per_hour: float = 0.10,
    tf_sizes=(4, 8, 16),
    llama_sizes=(8, 16, 32),
    sweep_posts: int = 48,
    threads: int | None = None,
    log=print,
) -> dict:
    """The whole classification benchmark; returns everything the JSON result holds."""
    from xling import data
    from xling.models import quantize
    from xling.models.prompts import make_prompt

    t_start = time.perf_counter()
    files = benchmark_files(profile, variant)
    posts = data.read_posts(files["posts"])
    sample = quantize.comparison_posts(posts, n_posts, seed=seed)
    texts = sample["text"].tolist()
    from transformers import AutoTokenizer

    prompt = make_prompt(files["prompt_format"], AutoTokenizer.from_pretrained(files["merged"]))
    flops = ModelFlops.from_folder(files["merged"])
    log(
        f"{len(texts)} posts in {sample['lang'].nunique()} languages ({profile}, variant {variant})"
    )
    samples: dict[str, list[float]] = {"fp32": [], "int8": []}

    def sample_limits(seconds: float = 0.5) -> None:
        # the limit is sampled before every configuration and the best kept: a busy machine only
        # ever lowers a sample, so the best is the nearest to the physical limit
        samples["fp32"].append(matmul_limit("fp32", seconds=seconds))
        try:
            samples["int8"].append(matmul_limit("int8", seconds=seconds))
        except (RuntimeError, NotImplementedError):  # no int8 kernel: read against fp32
            samples["int8"].append(samples["fp32"][-1])

    sample_limits(2.0)
    log(f"matmul: fp32 {samples['fp32'][0]:.0f} GFLOP/s, int8 {samples['int8'][0]:.0f} GOP/s")
    sweep = texts[:sweep_posts]
    log(f"best batch sizes (first {len(sweep)} posts):")
    base = classify_configs(files, 1, 1)
    tf_best, tf_rates = best_batch_size(base[1], sweep, prompt, tf_sizes, threads, log)
    q4 = next(c for c in base if c.backend == "llamacpp-q4_k_m" and c.method == "score-batched")
    ll_best, ll_rates = best_batch_size(q4, sweep, prompt, llama_sizes, threads, log)
    configs = classify_configs(files, tf_best, ll_best)
    results = []
    for c in configs:
        sample_limits()
        r = run_isolated(c, texts, prompt, threads=threads)
        results.append(r)
        log(
            f"  {c.name}: {r['n_posts'] / r['seconds']:.1f} posts/s, peak {r['peak_rss_mb']:.0f} MB"
        )
    sample_limits()
    limits = {k: max(v) for k, v in samples.items()}
    log(
        f"matmul limit (best of {len(samples['fp32'])} samples): fp32 {limits['fp32']:.0f} "
        f"GFLOP/s, int8 {limits['int8']:.0f} GOP/s"
    )
    table = summarize(results, configs, flops, limits)
    cost = cost_table(table, results, configs, price_per_hour)
    return {
        "benchmark": "classify",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "profile": profile,
        "variant": variant,
        "n_posts": len(texts),
        "langs": sorted(sample["lang"].unique()),
        "seed": seed,
        "matmul_limit_gflops": limits,
        "matmul_samples_gflops": samples,
        "flops": {
            "per_token_linear": flops.per_token,
            "head_per_output": 2.0 * flops.head_params,
            "tokens_per_s_at_fp32_limit": limits["fp32"] * 1e9 / flops.per_token,
            "tokens_per_s_at_int8_limit": limits["int8"] * 1e9 / flops.per_token,
        },
        "batch_sweep": {"transformers": tf_rates, "llamacpp_q4_k_m": ll_rates},
        "price_per_hour": price_per_hour,
        "table": table.to_dict(orient="records"),
        "cost": cost.to_dict(orient="records"),
        "configs": [c.__dict__ for c in configs],
        "raw": [{k: v for k, v in r.items() if k != "predictions"} for r in results],
        "wall_seconds": time.perf_counter() - t_start,
    }


def cost_table(table: pd.DataFrame, results: list[dict], configs: list[Config], price: float):
    """Cost per 1M posts of every configuration, against the APIs on the measured tokens: the
    prompt tokens per post (this model's tokenizer) and the answer tokens the paper-style
    generation produced per post (3 at most)."""
    r0 = results[0]
    in_tokens = r0["prompt_tokens"] / r0["n_posts"]
    gen = [r for r, c in zip(results, configs, strict=True) if c.method == "generate"]
    out_tokens = np.mean([r["generated_tokens"] / r["n_posts"] for r in gen]) if gen else 3.0
    rates = dict(zip(table["configuration"], table["posts_per_s"], strict=True))
    return cost_rows(rates, in_tokens, float(out_tokens), price)


def finetune_benchmark(
    profile: str = "demo",
    variant: str = "en",
    steps: int = 16,
    threads: int | None = None,
    log=print,
) -> dict:
    """LoRA training tokens/s and peak memory at the profile's 01_finetune settings, a few steps
    (the first, warm-up, not timed), in a child process; and the share of the fp32 limit, with
    6 FLOPs per weight and token on the path the gradient takes (forward 2, backward 4; the
    frozen weights' own gradients are not computed, so this overstates the work a little)."""
    t_start = time.perf_counter()
    limit = matmul_limit("fp32")
    log(f"matmul limit: fp32 {limit:.0f} GFLOP/s")
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as ex:
        r = ex.submit(_finetune_child, (profile, variant, steps, threads)).result()
    limit = max(limit, matmul_limit("fp32"))  # before and after: the best is the nearest limit
    flops = ModelFlops(**r["flops"])
    per_token = 3 * (flops.per_token + 2.0 * r["lora_params"])  # 6 per weight
    attn = 3 * flops.attention(1) * r["mean_length"] / 2  # a token attends to half the post
    head = 3 * 2.0 * flops.head_params / r["mean_length"]  # the head at one answer token a post
    flop_per_token = per_token + attn + head
    rate = r["tokens_per_s"]
    table = pd.DataFrame(
        [
            {
                "configuration": "LoRA r={lora_r}, {n} target modules, batch {batch_size}".format(
                    n=len(r["settings"]["target_modules"]), **r["settings"]
                ),
                "tokens_per_s": rate,
                "seconds_per_step": r["seconds_per_step"],
                "peak_rss_mb": r["peak_rss_mb"],
                "gflop_per_token": flop_per_token / 1e9,
                "tokens_per_s_at_limit": limit * 1e9 / flop_per_token,
                "share_of_limit": rate * flop_per_token / (limit * 1e9),
            }
        ]
    )
    return {
        "benchmark": "finetune",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "profile": profile,
        "variant": variant,
        "matmul_limit_gflops": {"fp32": limit},
        "table": table.to_dict(orient="records"),
        "raw": {k: v for k, v in r.items() if k != "flops"},
        "wall_seconds": time.perf_counter() - t_start,
    }


def _finetune_child(args):
    import dataclasses
    import tempfile

    import xling
    from xling import config as xconfig
    from xling import data, models
    from xling.models.finetune import TrainSettings, encode_examples, finetune_lora, training_sets
    from xling.models.prompts import make_prompt

    profile, variant, steps, threads = args
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(threads or os.cpu_count())
    # the notebook's own defaults, then the profile's values: what 01_finetune trains with
    params = xconfig.effective_params(profile, "01_finetune")
    xling.set_seed(params["seed"])
    settings = TrainSettings.from_params({**params, "steps": steps + 1, "save_every": 10**6})
    base = models.resolve_base(params["base_model"])
    tok = AutoTokenizer.from_pretrained(base.folder)
    prompt = make_prompt(params["prompt_format"], tok)
    posts = data.read_posts(paths.posts_csv(profile))
    if variant not in params["variants"]:
        raise ValueError(f"variant {variant!r} is not in profile {profile}")
    train = training_sets(posts, {variant: params["variants"][variant]})[variant]
    examples = encode_examples(train, prompt, tok, settings.max_length)
    stamps = []
    with tempfile.TemporaryDirectory() as tmp:
        res = finetune_lora(
            base.folder,
            examples,
            Path(tmp) / variant,
            settings,
            pad_id=tok.pad_token_id or 0,
            progress=False,
            on_step=lambda s: stamps.append(time.perf_counter()),
        )
    tokens = res.losses["tokens"].to_numpy()
    timed_tokens = int(tokens[-1] - tokens[0])  # the first step is the warm-up
    seconds = stamps[-1] - stamps[0]
    lora_params = sum(
        settings.lora_r * (m.in_features + m.out_features)
        for name, m in _linear_modules(base.folder, settings.target_modules)
    )
    flops = ModelFlops.from_folder(base.folder)
    return {
        "settings": dataclasses.asdict(settings),
        "steps_timed": len(stamps) - 1,
        "tokens_timed": timed_tokens,
        "seconds": seconds,
        "tokens_per_s": timed_tokens / seconds,
        "seconds_per_step": seconds / (len(stamps) - 1),
        "mean_length": float(np.mean([len(e.input_ids) for e in examples])),
        "lora_params": int(lora_params),
        "peak_rss_mb": peak_rss_mb(),
        "flops": dataclasses.asdict(flops),
    }


def _linear_modules(folder, targets):
    """(name, module) of the base model's linear layers whose name ends in a LoRA target, from
    an empty (meta-device) copy of the model: no weights are loaded."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.split(".")[-1] in set(targets)
    ]


def add_result_args(ap) -> None:
    """The options of a benchmark script that :func:`run_or_show` serves: --out and --show."""
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    ap.add_argument("--show", default=None, help="print a results file; run nothing")


def run_or_show(show: str | None, out: str | None, run, describe) -> int:
    """A benchmark script's main: print the results file ``show`` without running anything, or
    ``run()`` it, write its result (``out``: the folder) and print it; ``describe(result)`` gives
    the lines. A missing input (FileNotFoundError, naming the command that makes it) exits 2."""
    import sys

    if show:
        result = json.loads(Path(show).read_text())
    else:
        try:
            result = run()
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"written {write_result(result, out)}")
    for line in describe(result):
        print(line)
    return 0


def write_result(result: dict, folder: str | os.PathLike[str] | None = None) -> Path:
    """bench/results/<date>-<host>[-<benchmark>].json"""
    folder = Path(folder) if folder else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    day = result["date"][:10]
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in result["machine"]["host"])
    path = folder / f"{day}-{host}-{result['benchmark']}.json"
    path.write_text(json.dumps(result, indent=1, default=_jsonable) + "\n")
    return path


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON: {type(x)}")


def markdown_table(table: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> str:
    """A markdown table of ``columns`` (column -> (header, format)); empty cells for missing
    values."""
    head = "| " + " | ".join(h for h, _ in columns.values()) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    lines = [head, rule]
    for _, row in table.iterrows():
        cells = []
        for col, (_, fmt) in columns.items():
            v = row.get(col)
            cells.append(
                "" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CLASSIFY_COLUMNS = {
    "configuration": ("configuration", "{}"),
    "posts_per_s": ("posts/s", "{:.1f}"),
    "prompt_tokens_per_s": ("prompt tok/s", "{:.0f}"),
    "generated_tokens_per_s": ("gen tok/s", "{:.1f}"),
    "peak_rss_mb": ("peak RSS MB", "{:.0f}"),
    "agreement": ("agreement", "{:.3f}"),
    "x_tf_one": ("× tf (1)", "{:.1f}"),
    "x_tf_best": ("× tf (best)", "{:.1f}"),
    "share_of_fp32_limit": ("share of fp32 limit", "{:.1%}"),
    "share_of_limit": ("share of own limit", "{:.1%}"),
}


COST_COLUMNS = {
    "configuration": ("configuration", "{}"),
    "posts_per_s": ("posts/s", "{:.1f}"),
    "usd_per_1m_posts": ("$ per 1M posts", "{:.3f}"),
    "gpt-4o_cost_ratio": ("GPT-4o costs ×", "{:,.1f}"),
    "gpt-4o-mini_cost_ratio": ("GPT-4o-mini costs ×", "{:,.1f}"),
}


FINETUNE_COLUMNS = {
    "configuration": ("configuration", "{}"),
    "tokens_per_s": ("tokens/s", "{:.0f}"),
    "seconds_per_step": ("s/step", "{:.2f}"),
    "peak_rss_mb": ("peak RSS MB", "{:.0f}"),
    "tokens_per_s_at_limit": ("tokens/s at limit", "{:.0f}"),
    "share_of_limit": ("share of limit", "{:.1%}"),
}


def describe_classify(result: dict) -> list[str]:
    """The headline ratios of a classification result, computed (no number written by hand)."""
    t = pd.DataFrame(result["table"])
    lim = result["matmul_limit_gflops"]
    llama = t[t["configuration"].str.startswith("llama.cpp")]
    best = llama.loc[llama["posts_per_s"].idxmax()]
    gen = llama[llama["configuration"].str.contains("generate")]
    paper = gen[gen["configuration"].str.contains("LoRA")]
    lines = [
        f"matmul limit here: fp32 {lim['fp32']:.0f} GFLOP/s, int8 {lim['int8']:.0f} GOP/s; "
        f"{result['flops']['tokens_per_s_at_int8_limit']:.0f} tokens/s at the int8 limit "
        f"({result['flops']['per_token_linear'] / 1e6:.0f} MFLOP per token in the linear layers)",
        f"fastest llama.cpp: {best['configuration']}, {best['posts_per_s']:.1f} posts/s = "
        f"{best['x_tf_best']:.1f}x transformers fp32 at its best batch size (target >= 4x), "
        f"{best['share_of_limit']:.0%} of its matmul limit (target >= 50%)",
    ]
    if len(paper):
        p = paper.iloc[0]
        lines.append(
            f"against the paper-style path ({p['configuration']}, {p['posts_per_s']:.1f} "
            f"posts/s): {best['posts_per_s'] / p['posts_per_s']:.1f}x (target >= 2x)"
        )
    lines.append(
        "the paper claims "
        + "; ".join(PAPER_CLAIMS.values())
        + ": those compare against commercial APIs, which are not measured here"
    )
    return lines


def print_classify(result: dict, out=print) -> None:
    out(markdown_table(pd.DataFrame(result["table"]), CLASSIFY_COLUMNS))
    out("")
    out(markdown_table(pd.DataFrame(result["cost"]), COST_COLUMNS))
    out("")
    for line in describe_classify(result):
        out(line)


def print_finetune(result: dict, out=print) -> None:
    out(markdown_table(pd.DataFrame(result["table"]), FINETUNE_COLUMNS))
    lim = result["matmul_limit_gflops"]["fp32"]
    r = result["raw"]
    out("")
    out(
        f"{r['tokens_timed']} tokens in {r['steps_timed']} steps after one warm-up step; "
        f"fp32 matmul limit {lim:.0f} GFLOP/s; 6 FLOPs per weight and token on the gradient's "
        f"path ({r['lora_params']:,} LoRA weights)"
    )


# --------------------------------------------------------------------------------------------
# Classifying an archive: the authors' loop against xling classify on Dask
# --------------------------------------------------------------------------------------------


def _authors_child(args):
    """The authors' way, in a child process: one generate call per post (3 tokens, greedy),
    the answer parsed from the text, the whole checkpoint file rewritten after every post."""
    import csv

    import xling  # noqa: F401  (offline mode)
    from xling.models.prompts import parse_answer
    from xling.models.scorers import LlamaCppScorer

    gguf, lora, prompt, texts, checkpoint, threads = args
    scorer = LlamaCppScorer(gguf, prompt, lora=lora, n_threads=threads)
    rss_loaded = rss_mb()
    scorer.generate_one(texts[0], 3)  # warm-up, as the others' model load is not timed either
    done: list[tuple[int, str, str]] = []
    t0 = time.perf_counter()
    for i, text in enumerate(texts):
        raw = scorer.generate_one(text, 3)
        done.append((i, raw, parse_answer(raw)))
        tmp = Path(checkpoint).with_suffix(".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(done)
        os.replace(tmp, checkpoint)
    seconds = time.perf_counter() - t0
    scorer.close()
    return {
        "seconds": seconds,
        "n_posts": len(texts),
        "predictions": [d[2] for d in done],
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
    }


def _read_child(args):
    """Plan and read a whole archive chunk by chunk, as the client and the workers do, without
    the model: the part of the work whose memory could grow with the archive."""
    from xling import archive as engine
    from xling.data.archive import read_chunk

    pattern, chunk_rows = args
    files = engine.expand_inputs([pattern])
    settings = engine.Settings(keep=("lang", "date"), chunk_rows=chunk_rows)
    names = engine.part_names(files)
    rss0 = rss_mb()
    tasks, _, rows = engine.plan_tasks(files, settings, names)
    n = 0
    for t in tasks:
        table, _ = read_chunk(t.file, t.start, t.stop, keep=("lang", "date"))
        n += len(table)
    return {
        "rows": rows,
        "read": n,
        "tasks": len(tasks),
        "rss_start_mb": rss0,
        "peak_rss_mb": peak_rss_mb(),
    }


def _in_child(fn, args):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as ex:
        return ex.submit(fn, args).result()


def _profile_model(profile: str, variant: str):
    """The archive's model for ``variant`` of a finished profile run, as xling classify opens it."""
    from xling import archive as engine
    from xling import config as xconfig

    common = xconfig.load_profile(profile).common
    return engine.run_model(
        profile,
        variant,
        base_model=common.get("base_model"),
        prompt_format=common.get("prompt_format") or "plain",
    )


def archive_benchmark(
    profile: str = "demo",
    variant: str = "en",
    n_posts: int = 2000,
    big_posts: int = 20000,
    chunk_rows: int = 256,
    workers: int | None = None,
    seed: int = 1234,
    authors_posts: int | None = None,
    log=print,
) -> dict:
    """The same ``n_posts`` of the demo archive (8 shards) classified (a) the authors' way (one
    process, one thread), (b) by classify_archive with one worker of one thread, (c) with one
    worker per core; then the reading and planning memory on ``big_posts`` against ``n_posts``.
    Ratios are of this one run. ``authors_posts`` runs (a) on the archive's first posts only
    (its speed does not depend on how many: one call per post), where the whole would take too
    long; the machine's load average is recorded before each configuration."""
    import tempfile

    from xling import archive as engine
    from xling.data.archive import demo_archive
    from xling.schema import LABELS

    t_start = time.perf_counter()
    model = _profile_model(profile, variant)
    cores = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="xling-bench-archive-") as tmp:
        tmp = Path(tmp)
        demo_archive(n_posts, 8, tmp / "small", seed=seed)
        pattern = str(tmp / "small" / "*.csv.gz")
        texts = []
        for f in sorted((tmp / "small").glob("*.csv.gz")):
            texts += pd.read_csv(f, dtype=str, keep_default_na=False)["text"].tolist()
        log(f"{len(texts)} posts of the demo archive; model {paths.display(model.gguf)}")
        log("(a) the authors' way: generate 3 tokens per post, checkpoint rewritten every post")
        loads = {"a": os.getloadavg()}
        a_texts = texts[: authors_posts or len(texts)]
        a_args = (model.gguf, model.lora, model.prompt, a_texts, str(tmp / "checkpoint.csv"), 1)
        a = _in_child(_authors_child, a_args)
        log(f"    {a['n_posts'] / a['seconds']:.2f} posts/s, peak {a['peak_rss_mb']:.0f} MB")
        runs = {}
        for name, w in (("b", 1), ("c", cores)):
            log(f"({name}) xling classify, {w} worker(s) of 1 thread")
            loads[name] = os.getloadavg()
            res = engine.classify_archive(
                [pattern],
                tmp / f"out-{name}",
                model,
                keep=("lang", "date"),
                chunk_rows=chunk_rows,
                workers=w,
                threads_per_worker=1,
                dashboard_address=None,
                progress=False,
                log=lambda *_: None,
            )
            runs[name] = res
            log(
                f"    {res.scored_now / res.work_seconds:.2f} posts/s, peak per worker "
                f"{max(x['peak_rss_mb'] for x in res.workers):.0f} MB"
            )
        # (a) once more after (b) and (c): this machine's speed drifts within an hour (seen up
        # to 1.5x), so (a) is the mean of a run before and one after, and the drift is reported
        log("(a) again, after (b) and (c)")
        a_after = _in_child(_authors_child, a_args)
        log(f"    {a_after['n_posts'] / a_after['seconds']:.2f} posts/s")
        parts = {k: engine.read_parts(r.output).sort_values("id") for k, r in runs.items()}
        same_bits = bool(
            np.array_equal(
                parts["b"][list(engine.LOGP_COLUMNS)].to_numpy(),
                parts["c"][list(engine.LOGP_COLUMNS)].to_numpy(),
            )
        )
        # the authors' generated answers against the scores' argmax, post for post
        order = parts["b"]["id"].str.extract(r"^(archive-\d+)\.csv\.gz:(\d+)$")
        b_pred = parts["b"].assign(shard=order[0], row=order[1].astype(int))
        b_pred = b_pred.sort_values(["shard", "row"])["prediction"].tolist()
        pairs = zip(a["predictions"], b_pred[: len(a["predictions"])], strict=True)
        agree = float(np.mean([x == y for x, y in pairs]))
        log(
            f"memory against the archive's size: {n_posts} and {big_posts} posts "
            "(reading, planning)"
        )
        demo_archive(big_posts, 8, tmp / "big", seed=seed)
        mem_small = _in_child(_read_child, (pattern, chunk_rows))
        mem_big = _in_child(_read_child, (str(tmp / "big" / "*.csv.gz"), chunk_rows))
    rate_a_before = a["n_posts"] / a["seconds"]
    rate_a_after = a_after["n_posts"] / a_after["seconds"]
    rate_a = (rate_a_before + rate_a_after) / 2
    rate = {k: r.scored_now / r.work_seconds for k, r in runs.items()}
    table = pd.DataFrame(
        [
            {
                "configuration": "(a) authors' way: generate 3 tokens, checkpoint every post "
                "(mean of a run before (b) and one after (c))",
                "workers": 1,
                "cores": 1,
                "posts_per_s": rate_a,
                "posts_per_s_per_core": rate_a,
                "x_authors_per_core": 1.0,
                "peak_rss_mb_per_worker": a["peak_rss_mb"],
            },
            *[
                {
                    "configuration": f"({k}) xling classify, {r.files} files, "
                    f"{len(r.workers)} worker(s) x 1 thread",
                    "workers": len(r.workers),
                    "cores": len(r.workers),
                    "posts_per_s": rate[k],
                    "posts_per_s_per_core": rate[k] / len(r.workers),
                    "x_authors_per_core": rate[k] / len(r.workers) / rate_a,
                    "peak_rss_mb_per_worker": max(x["peak_rss_mb"] for x in r.workers),
                }
                for k, r in runs.items()
            ],
        ]
    )
    return {
        "benchmark": "archive",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "profile": profile,
        "variant": variant,
        "model": {"gguf": model.gguf, "lora": model.lora, "batch_size": model.batch_size},
        "n_posts": n_posts,
        "authors_posts": len(a["predictions"]),
        "chunk_rows": chunk_rows,
        "load_average_before": loads,
        "authors_before_after_posts_per_s": [rate_a_before, rate_a_after],
        "drift_after_over_before": rate_a_after / rate_a_before,
        "table": table.to_dict(orient="records"),
        "ratios": {
            "b_over_a_per_core": rate["b"] / rate_a,
            "c_over_b": rate["c"] / rate["b"],
            "scaling_efficiency_c": rate["c"] / (len(runs["c"].workers) * rate["b"]),
            "c_workers": len(runs["c"].workers),
        },
        "same_bits_b_and_c": same_bits,
        "authors_vs_scores_agreement": agree,
        "labels": list(LABELS),
        "memory": {
            "small": {"posts": n_posts, **mem_small},
            "big": {"posts": big_posts, **mem_big},
            "big_over_small_peak": mem_big["peak_rss_mb"] / mem_small["peak_rss_mb"],
        },
        "wall_seconds": time.perf_counter() - t_start,
    }


def _breakdown_child(args):
    """Where a post's time goes, in one process on one thread, the configurations taking turns
    over the same posts (so that the machine's drift falls on all of them alike)."""
    import xling  # noqa: F401  (offline mode)
    from xling.models.scorers import LlamaCppBatchScorer, LlamaCppScorer

    gguf, lora, prompt, texts, batch_size, rounds = args
    one = LlamaCppScorer(gguf, prompt, lora=lora, n_threads=1)
    block = LlamaCppBatchScorer(gguf, prompt, lora=lora, batch_size=batch_size, n_threads=1)
    single = LlamaCppBatchScorer(gguf, prompt, lora=lora, batch_size=1, n_threads=1)

    def blocks(scorer, size):
        for i in range(0, len(texts), size):
            scorer.reset()
            scorer.score_many(texts[i : i + size])

    ways = {
        "generate": lambda: [one.generate_one(t, 3) for t in texts],
        "score_one": lambda: [one.score_one(t) for t in texts],
        "batched_1": lambda: blocks(single, 1),
        f"batched_{batch_size}": lambda: blocks(block, batch_size),
    }
    one.generate_one(texts[0], 3)  # warm-up
    block.score_many(texts[:batch_size])
    single.score_many(texts[:1])
    rates: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            fn()
            rates[name].append(len(texts) / (time.perf_counter() - t0))
    tokens = [block.post_tokens(t) for t in texts]
    prefix = len(block.prefix)
    for s in (one, block, single):
        s.close()
    return {"rates": rates, "prefix_tokens": prefix, "post_tokens_mean": float(np.mean(tokens))}


def archive_scorer_breakdown(
    profile: str = "demo",
    variant: str = "en",
    n_posts: int = 96,
    rounds: int = 3,
    seed: int = 1234,
    log=print,
) -> dict:
    """The archive's scorer against the authors' way without Dask, files or checkpoints: posts/s
    on one thread of (generate) 3 generated tokens per post, (score_one) the labels' scores one
    post per decode, (batched_1) the batched scorer's context one post per decode, its cache
    reset each time, (batched_B) ``B`` posts per decode as the archive runs it. Each rate is the
    median of ``rounds`` turns taken in one process on the demo archive's first ``n_posts``."""
    import tempfile

    from xling.data.archive import demo_archive

    t_start = time.perf_counter()
    model = _profile_model(profile, variant)
    with tempfile.TemporaryDirectory(prefix="xling-bench-breakdown-") as tmp:
        demo_archive(n_posts, 1, tmp, seed=seed)
        texts = []
        for f in sorted(Path(tmp).glob("*.csv.gz")):
            texts += pd.read_csv(f, dtype=str, keep_default_na=False)["text"].tolist()
    texts = texts[:n_posts]
    log(f"{len(texts)} posts, {rounds} rounds, one thread, model {paths.display(model.gguf)}")
    r = _in_child(
        _breakdown_child, (model.gguf, model.lora, model.prompt, texts, model.batch_size, rounds)
    )
    median = {k: float(np.median(v)) for k, v in r["rates"].items()}
    return {
        "benchmark": "archive-breakdown",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "profile": profile,
        "variant": variant,
        "model": {"gguf": model.gguf, "lora": model.lora, "batch_size": model.batch_size},
        "n_posts": len(texts),
        "rounds": rounds,
        "load_average_before": os.getloadavg(),
        "prefix_tokens": r["prefix_tokens"],
        "post_tokens_mean": r["post_tokens_mean"],
        "rates": r["rates"],
        "median_posts_per_s": median,
        "over_generate": {k: v / median["generate"] for k, v in median.items()},
        "wall_seconds": time.perf_counter() - t_start,
    }


def describe_breakdown(result: dict) -> list[str]:
    """One line per configuration: median posts/s and its ratio to generating."""
    names = {
        "generate": "generate 3 tokens per post (the authors' way, no checkpoint file)",
        "score_one": "the labels' scores, one post per decode",
        "batched_1": "the batched scorer's context, one post per decode, reset each post",
    }
    lines = [
        f"{result['n_posts']} posts ({result['post_tokens_mean']:.1f} tokens each after a "
        f"{result['prefix_tokens']}-token prefix), one thread, median of {result['rounds']} turns:"
    ]
    for k, v in result["median_posts_per_s"].items():
        label = names.get(k) or f"{k.removeprefix('batched_')} posts per decode (the archive's)"
        lines.append(f"  {v:6.2f} posts/s  {result['over_generate'][k]:.2f}x  {label}")
    return lines


ARCHIVE_COLUMNS = {
    "configuration": ("configuration", "{}"),
    "posts_per_s": ("posts/s", "{:.2f}"),
    "posts_per_s_per_core": ("posts/s per core", "{:.2f}"),
    "x_authors_per_core": ("× (a) per core", "{:.2f}"),
    "peak_rss_mb_per_worker": ("peak RSS per worker MB", "{:.0f}"),
}


def describe_archive(result: dict) -> list[str]:
    """The headline ratios of an archive result, computed (no number written by hand)."""
    r, m = result["ratios"], result["memory"]
    lines = [
        f"(b) one worker = {r['b_over_a_per_core']:.2f}x the authors' way per core "
        "(target >= 2.5x)",
        f"(c) {r['c_workers']} workers = {r['c_over_b']:.2f}x (b) (target >= 1.8x on 2 cores); "
        f"scaling efficiency {r['scaling_efficiency_c']:.0%}",
        f"(b) and (c) gave the same bits for every post: {result['same_bits_b_and_c']}; the "
        f"authors' generated answers agree with the scores' argmax on "
        f"{result['authors_vs_scores_agreement']:.1%} of posts",
    ]
    if "authors_before_after_posts_per_s" in result:  # results from 2026-12-03 on
        before, after = result["authors_before_after_posts_per_s"]
        lines.append(
            f"(a) ran before (b) and again after (c): {before:.2f} then {after:.2f} posts/s "
            f"(the machine's speed drifted {after / before:.2f}x meanwhile; (a) is their mean)"
        )
    lines.append(
        f"reading and planning {m['big']['posts']} posts peaks at "
        f"{m['big']['peak_rss_mb']:.0f} MB, "
        f"{m['small']['posts']} at {m['small']['peak_rss_mb']:.0f} MB "
        f"({m['big_over_small_peak']:.2f}x)"
    )
    return lines


# --------------------------------------------------------------------------------------------
# The one-shot GPU check (bench/gpu_check.sh): the GPU's numbers against the CPU's, same files
# --------------------------------------------------------------------------------------------


def gpu_agreement(
    run: str, variant: str = "en", n_posts: int = 100, seed: int = 1234, log=print
) -> dict:
    """The same test posts classified by one variant's files on the GPU and on the CPU: llama.cpp
    Q4_K_M with every layer on the GPU (where the wheel can offload) against none, and the merged
    model in transformers, bf16 on CUDA against fp32 on the CPU. Per pair: label agreement, mean
    KL of the label distributions, the largest log-probability difference, posts/s of each side,
    and peak GPU memory of the transformers side."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xling import config as xconfig
    from xling import data, models
    from xling.models import layout, quantize
    from xling.models.prompts import make_prompt
    from xling.models.scorers import (
        LlamaCppScorer,
        TransformersScorer,
        agreement_and_kl,
        llama_gpu_offload,
        score_posts,
    )

    if not torch.cuda.is_available():
        raise RuntimeError("gpu_agreement needs a CUDA GPU; torch sees none")
    run_dir = paths.RUNS / run
    common = xconfig.load_profile(run).common if paths.profile_file(run).exists() else {}
    posts = data.read_posts(run_dir / "posts.csv")
    sample = quantize.comparison_posts(posts, n_posts, seed=seed)
    merged = run_dir / "merged" / variant
    tok = AutoTokenizer.from_pretrained(merged)
    prompt = make_prompt(common.get("prompt_format", "plain"), tok)
    base = models.resolve_base(common.get("base_model") or "embedded")
    q4 = layout.model_files(run_dir, base, variant, "llamacpp-q4_k_m").model
    out: dict = {"variant": variant, "n_posts": len(sample), "llama_gpu_offload": False}

    def timed(scorer, desc):
        t0 = time.perf_counter()
        table = score_posts(scorer, sample, False, desc)
        return table, len(sample) / (time.perf_counter() - t0)

    def pair(name, cpu, cpu_rate, gpu, gpu_rate):
        agree, kl = agreement_and_kl(cpu, gpu)
        cols = [c for c in cpu.columns if c.startswith("logp_")]
        diff = float(np.abs(cpu[cols].to_numpy() - gpu[cols].to_numpy()).max())
        out[name] = {
            "agreement": round(agree, 4),
            "kl": round(kl, 6),
            "max_abs_logp_diff": round(diff, 4),
            "cpu_posts_per_s": round(cpu_rate, 1),
            "gpu_posts_per_s": round(gpu_rate, 1),
        }
        log(
            f"{name}: agreement {agree:.3f}, KL {kl:.5f}, "
            f"posts/s CPU {cpu_rate:.1f} GPU {gpu_rate:.1f}"
        )

    scorer = LlamaCppScorer(q4, prompt, n_gpu_layers=0)
    cpu_ll, cpu_ll_rate = timed(scorer, "llama.cpp CPU")
    scorer.close()
    if llama_gpu_offload():
        out["llama_gpu_offload"] = True
        scorer = LlamaCppScorer(q4, prompt, n_gpu_layers=-1)
        gpu_ll, gpu_ll_rate = timed(scorer, "llama.cpp GPU")
        scorer.close()
        pair("llamacpp_q4_k_m", cpu_ll, cpu_ll_rate, gpu_ll, gpu_ll_rate)
    else:
        log("llama.cpp: this wheel has no GPU backend; its GPU side is skipped")
        out["llamacpp_q4_k_m"] = {"skipped": "llama-cpp-python built without a GPU backend"}
    kw = dict(use_safetensors=True, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32, **kw).eval()
    cpu_tf, cpu_tf_rate = timed(TransformersScorer(model, tok, prompt), "transformers CPU")
    del model
    torch.cuda.reset_peak_memory_stats()
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.bfloat16, **kw).to("cuda")
    gpu_tf, gpu_tf_rate = timed(TransformersScorer(model.eval(), tok, prompt), "transformers GPU")
    pair("transformers_bf16_vs_fp32", cpu_tf, cpu_tf_rate, gpu_tf, gpu_tf_rate)
    out["transformers_bf16_vs_fp32"]["peak_gpu_gb"] = round(
        torch.cuda.max_memory_allocated() / 1e9, 3
    )
    return out


# --------------------------------------------------------------------------------------------
# Recipe search (issue 25): fine-tuning recipes read against the authors' real tweets
# --------------------------------------------------------------------------------------------

#: The immigration task's labels as answer words (a task's ``labels[i].word``): one token each
#: in Gemma 3's vocabulary.
WORDS = {"unrelated": "unrelated", "neutral": "neutral", "pro-immigration": "pro",
         "anti-immigration": "anti"}  # fmt: skip

#: Recipes to compare: a name -> changes to the profile's 01 settings (TrainSettings fields),
#: plus ``balance`` (labels balanced in the training posts, :func:`finetune.balance_labels`) and
#: ``numbers`` (each label's number in the prompt and the answer, instead of the task's),
#: ``words`` (each label's answer word, :data:`WORDS`) and ``tweets`` (the training posts dressed
#: as tweets, :func:`finetune.like_tweets`). ``profile`` is the profile's own recipe: its run's
#: adapters, as 01 trained them.
RECIPES: dict[str, dict] = {
    "profile": {},
    "balanced": {"balance": True},
    # the untuned model answers "1" whatever the post: give 1 to the commonest label, unrelated
    "unrelated-is-1": {
        "numbers": {"unrelated": 1, "neutral": 2, "pro-immigration": 3, "anti-immigration": 4}
    },
    # answers as words the base model reads (one token each in Gemma's vocabulary)
    "words": {"words": WORDS},
    "words-balanced": {"words": WORDS, "balance": True},
    # the training posts dressed as tweets: @mentions and links at the authors' tweets' rates
    "tweet-like": {"tweets": True},
    "words-tweet-like": {"words": WORDS, "tweets": True},
    # the demo's own recipe with another seed (LoRA's initialization and the batch order): how
    # far a variant moves by chance alone, the yardstick for every difference above
    "seed-2": {"seed": 4321},
    "seed-3": {"seed": 777},
    "words-balanced-seed-2": {"words": WORDS, "balance": True, "seed": 4321},
    "lr-3e-4-seed-2": {"lr": 0.0003, "seed": 4321},
    # the rate down in a straight line to zero at the last step (the demo's is constant, as the
    # paper's): the last batches move the weights less, so the seed should move them less
    "linear-decay": {"lr_schedule": "linear"},
    "linear-decay-seed-2": {"lr_schedule": "linear", "seed": 4321},
    "linear-decay-seed-3": {"lr_schedule": "linear", "seed": 777},
    "words-balanced-lr-3e-4-seed-2": {"words": WORDS, "balance": True, "lr": 0.0003, "seed": 4321},
    "words-balanced-lr-3e-4": {"words": WORDS, "balance": True, "lr": 0.0003},
    "words-balanced-tweet-like": {"words": WORDS, "balance": True, "tweets": True},
    "balanced-120-steps": {"balance": True, "steps": 120},
    # twice the demo's steps: multi reads 960 examples (of its 1,581 posts), en 960 of 372 posts
    "steps-120": {"steps": 120},
    "lr-3e-4": {"lr": 0.0003},
}


def _recipe_rows(pred: pd.DataFrame, recipe: str, variant: str, labels, n_boot: int) -> list:
    """Per evaluation group (this run's per-language test posts pooled, and the authors' tweets):
    accuracy with its interval, the floor, each label's recall and answer share."""
    from xling.analysis import metrics
    from xling.data.summaries import commonest_label

    rows = []
    for group, g in pred.groupby("group", sort=False):
        ok = (g["label"] == g["prediction"]).to_numpy(dtype=float)
        acc, lo, hi = metrics.bootstrap_ci(ok, n_boot)
        _, floor = commonest_label(g["label"])
        row = {
            "recipe": recipe, "variant": variant, "group": group, "n": len(g),
            "accuracy": acc, "acc_low": lo, "acc_high": hi, "floor": floor,
        }  # fmt: skip
        for label in labels:
            gold = g[g["label"] == label]
            row[f"recall_{label}"] = (
                float((gold["prediction"] == label).mean()) if len(gold) else float("nan")
            )
            row[f"answers_{label}"] = float((g["prediction"] == label).mean())
        present = [
            row[f"recall_{label}"] for label in labels if not np.isnan(row[f"recall_{label}"])
        ]
        row["min_recall"] = min(present) if present else float("nan")
        rows.append(row)
    return rows


def recipe_search(
    profile: str = "demo",
    recipes: list[str] | None = None,
    variants: list[str] | None = None,
    n_boot: int = 1000,
    log=print,
) -> dict:
    """Train each recipe's variants on the profile's posts (01's settings with the recipe's
    changes; adapters under ``runs/cache/recipes/<profile>/<recipe>/<variant>/``, resumable and
    reused), export each as a LoRA GGUF, and score, with the base Q4_K_M + LoRA as 03 does,
    this run's per-language test posts and the authors' tweets (``authors_test``, when 00 took
    them). Needs the profile's 00 and 01 (and, for the ``profile`` recipe, 02's LoRA files)."""
    import dataclasses

    from transformers import AutoTokenizer

    from xling import config as xconfig
    from xling import infer, models
    from xling.data.tables import read_posts
    from xling.models import finetune, layout, prompts, quantize
    from xling.tasks import load_task

    run = paths.RUNS / profile
    if not paths.posts_csv(profile).exists():
        raise FileNotFoundError(
            f"missing {paths.display(paths.posts_csv(profile))}; make it with: "
            f"{setup_command(profile)}"
        )
    params = xconfig.effective_params(profile, "01_finetune")
    task = load_task(params.get("task"))
    posts = read_posts(paths.posts_csv(profile), task=task)
    base = models.resolve_base(params["base_model"])
    tokenizer = AutoTokenizer.from_pretrained(base.folder)
    prompt = prompts.make_prompt(params["prompt_format"], tokenizer, task=task)
    base_gguf = layout.model_files(run, base, "base", "llamacpp-q4_k_m+lora").model
    chosen = recipes or list(RECIPES)
    unknown = [r for r in chosen if r not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)}")
    variants = variants or [v for v in params["variants"] if "+" not in v]
    test = posts[(posts["split"] == "test") & (posts["evalset"] == posts["lang"])]
    authors = posts[posts["evalset"] == "authors_test"]
    evaluated = pd.concat([test.assign(group="test"), authors.assign(group="authors")])
    if not (evaluated["group"] == "authors").any():
        log("note: no authors_test posts in this run (00 without the authors' data)")
    rows, runs = [], []
    for recipe in chosen:
        change = dict(RECIPES[recipe])
        balance = change.pop("balance", False)
        numbers = change.pop("numbers", None)
        words = change.pop("words", None)
        tweets = change.pop("tweets", False)
        settings = finetune.TrainSettings.from_params({**params, **change})
        recipe_prompt = prompt
        if numbers or words:
            changed = dataclasses.replace(
                task, number=dict(numbers or task.number), word=dict(words or task.word)
            )
            recipe_prompt = prompts.make_prompt(params["prompt_format"], tokenizer, task=changed)
        for variant in variants:
            langs = params["variants"][variant]
            if recipe == "profile":
                lora = run / "gguf" / f"{variant}-lora.gguf"
                if not lora.exists():
                    raise FileNotFoundError(f"missing {paths.display(lora)}: run 02_quantize")
            else:
                train = finetune.training_sets(
                    posts,
                    {variant: langs},
                    params.get("max_train_posts"),
                    seed=params["seed"],
                    train_splits=params.get("train_splits"),
                )[variant]
                if balance:
                    train = finetune.balance_labels(train, seed=params["seed"])
                if tweets:
                    train = finetune.like_tweets(train, seed=params["seed"])
                examples = finetune.encode_examples(
                    train, recipe_prompt, tokenizer, params["max_length"]
                )
                out = paths.RUNS / "cache" / "recipes" / profile / recipe / variant
                res = finetune.finetune_lora(
                    base.folder, examples, out, settings, base_sha=base.sha256,
                    pad_id=tokenizer.pad_token_id or 0, desc=f"{recipe} {variant}",
                )  # fmt: skip
                lora = quantize.export_lora_gguf(res.adapter, base.folder, out / "lora.gguf")
                # The training's own time from its meta.json: an adapter reused from the cache
                # keeps the seconds it took to train, not the moment it took to find it.
                runs.append(
                    {"recipe": recipe, "variant": variant, "examples": len(examples),
                     "labels": train["label"].value_counts().to_dict(),
                     "final_loss": res.meta["final_loss"],
                     "seconds": res.meta["wall_seconds"], "reused": res.reused}
                )  # fmt: skip
            files = layout.ModelFiles("llamacpp-q4_k_m+lora", base_gguf, lora)
            pred = infer.classify(
                evaluated, files, recipe_prompt, "score", desc=f"{recipe} {variant}"
            )
            scored = evaluated.assign(prediction=pred["prediction"].to_numpy())
            rows += _recipe_rows(scored, recipe, variant, task.labels, n_boot)
            for r in rows[-2:]:
                log(
                    f"{recipe:>20} {variant:>6} {r['group']:>8}: accuracy {r['accuracy']:.3f} "
                    f"({r['acc_low']:.3f}-{r['acc_high']:.3f}), floor {r['floor']:.3f}, "
                    f"lowest recall {r['min_recall']:.2f}"
                )
    return {
        "benchmark": "recipes",
        "profile": profile,
        "machine": machine_info(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipes": {r: RECIPES[r] for r in chosen},
        "runs": runs,
        "rows": rows,
    }


def seed_twins(recipes: dict[str, dict]) -> dict[str, list[str]]:
    """Recipes that differ from another only by ``seed``, grouped under the recipe without a
    seed (``{"profile": ["profile", "seed-2"], ...}``); recipes without a twin are left out."""
    groups: dict[str, list[str]] = {}
    for name, change in recipes.items():
        rest = {k: v for k, v in change.items() if k != "seed"}
        base = next((n for n, c in recipes.items() if c == rest), None)
        if base is not None:
            groups.setdefault(base, []).append(name)
    return {base: names for base, names in groups.items() if len(names) > 1}


def describe_recipes(
    result: dict, recall_bar: float = 0.3, recall_variants: tuple[str, ...] = ("en-es", "multi")
) -> list[str]:
    """The recipe table, one line per recipe, variant and group; for each group the recipe whose
    variants all beat the floor with the highest lowest recall (none: said so), and whether any
    recipe meets issue 25's bar (every variant above the floor, and no label's recall below
    ``recall_bar`` for ``recall_variants``); then, for recipes run with several seeds
    (:func:`seed_twins`), how far each variant's accuracy moved by the seed alone."""
    table = pd.DataFrame(result["rows"])
    lines = []
    for r in table.itertuples():
        lines.append(
            f"{r.recipe:>20} {r.variant:>6} {r.group:>8} n={r.n}: accuracy {r.accuracy:.3f} "
            f"({r.acc_low:.3f}-{r.acc_high:.3f}) vs floor {r.floor:.3f}; lowest recall "
            f"{r.min_recall:.2f}"
        )
    for group, g in table.groupby("group", sort=False):
        ok = g.groupby("recipe").apply(
            lambda d: bool((d["accuracy"] > d["floor"]).all()), include_groups=False
        )
        worst = g.groupby("recipe")["min_recall"].min()
        good = [r for r in ok.index if ok[r]]
        if good:
            best = max(good, key=lambda r: worst[r])
            lines.append(
                f"{group}: every variant above the floor with {', '.join(good)}; the highest "
                f"lowest recall among them: {best} ({worst[best]:.2f})"
            )
            bar = [
                r
                for r in good
                if (g[(g["recipe"] == r) & g["variant"].isin(recall_variants)]["min_recall"]
                    >= recall_bar).all()
            ]  # fmt: skip
            lines.append(
                f"{group}: no label's recall below {recall_bar} for {', '.join(recall_variants)} "
                + (f"as well: {', '.join(bar)}" if bar else "as well: none of them")
            )
        else:
            lines.append(f"{group}: no recipe puts every variant above the floor")
    for names in seed_twins(result.get("recipes", {})).values():
        part = table[table["recipe"].isin(names)]
        for group, g in part.groupby("group", sort=False):
            spread = g.groupby("variant", sort=False)["accuracy"].agg(["min", "max"])
            widest = float((spread["max"] - spread["min"]).max())
            each = "; ".join(
                f"{v} {row['min']:.3f}-{row['max']:.3f}" for v, row in spread.iterrows()
            )
            lines.append(f"seed alone ({', '.join(names)}), {group}: {each}; widest {widest:.3f}")
    return lines
