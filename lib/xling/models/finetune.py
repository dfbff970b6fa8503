"""LoRA fine-tuning with the loss on the answer tokens only.

The model reads the prompt and the post and is trained to continue with the label's number; the
loss covers only those answer tokens. The language-model head is applied only at the positions
that predict them, not at every position: with Gemma's 262k-token vocabulary the full logits tensor
dominates time and memory (measured here: a step 3.6x faster, peak memory 5.8 -> 3.6 GB).

Training checkpoints every ``save_every`` steps (adapter, optimizer, random states), and the order
of the training posts is fixed by the seed, so a killed run resumes where it stopped and ends with
the same adapter as an uninterrupted one. A finished variant is reused when its data, settings and
base model are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import resource
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from xling.models.prompts import Prompt
from xling.schema import LR_SCHEDULES


@dataclass(frozen=True)
class TrainSettings:
    """Every knob of a fine-tuning run. No defaults here: the values come from a notebook's
    parameters (01 and 06 declare the same knobs, their defaults are the demo profile's, and
    the paper's values are in params/full.yaml), so there is one source of defaults."""

    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: tuple[str, ...]
    lr: float
    steps: int | None  # optimizer steps; None: epochs over the training posts
    epochs: float
    batch_size: int
    max_length: int
    weight_decay: float
    max_grad_norm: float
    warmup_ratio: float
    save_every: int
    seed: int
    dtype: str  # float32 on a CPU (bf16 was 25x slower there); bfloat16 on a GPU
    base_quant: str | None  # "nf4": QLoRA, the frozen base in 4-bit NF4 (bitsandbytes, GPU)
    #: the learning rate after warm-up: "constant" (the paper's) or "linear" (down to zero at the
    #: last step); optional in a notebook's parameters (default constant)
    lr_schedule: str = "constant"

    @classmethod
    def from_params(cls, params: dict) -> TrainSettings:
        """The settings a notebook's parameters name (pass ``globals()``); every knob must be
        there. Notebooks 01 and 06 train through this one reading of their parameters."""
        optional = {"lr_schedule"}
        missing = [f.name for f in fields(cls) if f.name not in params and f.name not in optional]
        if missing:
            raise ValueError(f"training parameters missing: {', '.join(missing)}")
        values = {f.name: params[f.name] for f in fields(cls) if f.name in params}
        values["target_modules"] = tuple(values["target_modules"])
        if values.get("lr_schedule", "constant") not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule {values['lr_schedule']!r}: expected one of {', '.join(LR_SCHEDULES)}"
            )
        return cls(**values)

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based) of ``steps``: linear warm-up
        over ``warmup_ratio`` of the steps (at least one), then constant, or (``linear``) down
        in a straight line to zero after the last step."""
        warmup = max(1, round(self.warmup_ratio * steps))
        rate = self.lr * min(1.0, (step + 1) / warmup)
        if self.lr_schedule == "linear" and step + 1 > warmup:
            rate *= (steps - step) / max(1, steps - warmup + 1)
        return rate

    def total_steps(self, n_examples: int) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, math.ceil(self.epochs * n_examples / self.batch_size))


@dataclass
class Example:
    """A tokenized training post: the prompt, then ``n_answer`` answer tokens at the end."""

    post_id: str
    input_ids: list[int]
    n_answer: int
    label: str = ""


def encode_examples(
    posts: pd.DataFrame, prompt: Prompt, tokenizer, max_length: int
) -> list[Example]:
    """Tokenize each post as prompt + answer; the answer tokens are those the prompt alone lacks,
    less any stem all four answers share (Gemma writes " 3" as a space token, then "3"): the loss
    falls on the tokens that name the label.

    A post too long for ``max_length`` is shortened (its end cut) so the answer stem survives.
    """
    from xling.models.prompts import answer_tokens

    stem = len(answer_tokens(lambda s: tokenizer(s).input_ids, prompt).stem)
    examples = []
    for pid, text, label in zip(posts["post_id"], posts["text"], posts["label"], strict=True):
        answer = prompt.answer(label)
        text = str(text)
        while True:
            full = tokenizer(prompt.render(text) + answer).input_ids
            head = tokenizer(prompt.render(text)).input_ids
            if len(full) <= max_length or len(text) < 8:
                break
            text = text[: int(len(text) * 0.8)]
        if full[: len(head)] != head:  # the answer merged with the stem: tokenize it alone
            full = head + tokenizer(answer, add_special_tokens=False).input_ids
        examples.append(Example(str(pid), full, len(full) - len(head) - stem, label))
    return examples


def has_reference(posts: pd.DataFrame) -> pd.Series:
    """Per post, whether it can make a translation pair: not English, with a non-empty English
    reference (``text_en``)."""
    ref = posts["text_en"] if "text_en" in posts.columns else pd.Series(None, index=posts.index)
    return (posts["lang"] != "en") & ref.notna() & (ref.astype(str).str.strip() != "")


def label_mentions(text: str, task=None) -> list[str]:
    """The task's label names (whole words, any case) and numbered categories (``2 =``) and the
    classification prompt's answer stem (``Answer =``) that ``text`` contains: what a
    translation-pair prompt must never show."""
    import re

    from xling.tasks import load_task

    task = load_task(task)
    found = [n for n in task.labels if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text, re.I)]
    found += [f"{n} =" for n in sorted(task.label_of_number) if re.search(rf"\b{n}\s*=", text)]
    return found + (["Answer ="] if "Answer =" in text else [])


def encode_pairs(
    posts: pd.DataFrame,
    tokenizer,
    max_length: int,
    prompt_format: str = "plain",
    task=None,
) -> list[Example]:
    """Tokenize each post as a translation pair: an instruction naming the post's language
    (:func:`~xling.models.prompts.pair_prompt`), the post, then its English reference
    (``text_en``). ``n_answer`` is the reference's token count, so the loss falls on the
    translation alone, and no label of the task appears: the label is not read, the prompt has
    no category list (checked: :func:`label_mentions`), and ``Example.label`` is empty.

    The reference is tokenized on its own and appended to the prompt's tokens, so the answer
    tokens are exactly ``tokenizer(lead + reference)`` (no EOS: the model is taught to
    translate, not to stop). An example longer than ``max_length`` has both the post and the
    reference cut at their ends by the same share of characters (a fifth at a time) until it
    fits: the instruction and the starts of both survive, and the target stays a translation of
    (about) what is left of the post.

    English posts and posts without a reference are refused, naming them (select with
    :func:`has_reference` to skip them)."""
    from xling.models.prompts import pair_prompt

    bad = posts[~has_reference(posts)]
    if len(bad):
        english = bad[bad["lang"] == "en"]
        detail = []
        if len(english):
            detail.append(f"{len(english)} English (nothing to translate)")
        if len(bad) > len(english):
            detail.append(f"{len(bad) - len(english)} without an English reference (text_en)")
        ids = ", ".join(bad["post_id"].astype(str).head(5))
        raise ValueError(
            f"translation pairs: {' and '.join(detail)} of {len(posts)} posts, e.g. {ids}; "
            "keep only posts with has_reference(posts)"
        )
    prompts: dict[str, object] = {}
    examples = []
    for pid, text, lang, ref in zip(
        posts["post_id"], posts["text"], posts["lang"], posts["text_en"], strict=True
    ):
        if lang not in prompts:
            pp = pair_prompt(prompt_format, lang, tokenizer)
            leaks = label_mentions(pp.render("") + pp.lead, task)
            if leaks:
                raise ValueError(f"pair prompt for {lang} shows labels: {', '.join(leaks)}")
            prompts[lang] = pp
        pp = prompts[lang]
        text, ref = str(text), str(ref)
        while True:
            head = tokenizer(pp.render(text)).input_ids
            answer = tokenizer(pp.target(ref), add_special_tokens=False).input_ids
            if len(head) + len(answer) <= max_length or min(len(text), len(ref)) < 8:
                break
            text, ref = text[: int(len(text) * 0.8)], ref[: int(len(ref) * 0.8)]
        examples.append(Example(str(pid), head + answer, len(answer), ""))
    return examples


def batch_tokens(examples: list[Example], settings: TrainSettings) -> dict[str, int]:
    """What a run of ``settings`` on ``examples`` reads, counted before training from the batch
    order it will use: examples, tokens (padding not counted, as :func:`finetune_lora` counts
    them) and the answer tokens the loss falls on."""
    steps = settings.total_steps(len(examples))
    batches = batch_order(len(examples), settings.batch_size, steps, settings.seed)
    seen = [examples[i] for b in batches for i in b]
    return {
        "steps": steps,
        "examples_seen": len(seen),
        "tokens_seen": sum(len(e.input_ids) for e in seen),
        "loss_tokens_seen": sum(e.n_answer for e in seen),
    }


def collate(batch: list[Example], pad_id: int):
    """Right-padded tensors plus the (row, position) pairs whose hidden states predict the
    answer tokens, and those tokens."""
    import torch

    longest = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    rows, cols, targets = [], [], []
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        mask[i, :n] = 1
        for t in range(n - e.n_answer, n):
            rows.append(i)
            cols.append(t - 1)  # the hidden state at t-1 predicts token t
            targets.append(e.input_ids[t])
    return ids, mask, torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)


def answer_logits(model, ids, mask, rows, cols):
    """Logits at the answer positions only: the decoder once, the LM head on a few rows."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = core.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = core.get_output_embeddings()(hidden[rows, cols])
    cap = getattr(core.config, "final_logit_softcapping", None)
    if cap:
        logits = cap * (logits / cap).tanh()
    return logits


def answer_loss(model, ids, mask, rows, cols, targets, weights=None):
    """Cross-entropy over the answer tokens alone: their mean, or with ``weights`` (one per
    answer token, :func:`example_weights`) their weighted sum."""
    import torch.nn.functional as F

    logits = answer_logits(model, ids, mask, rows, cols).float()
    if weights is None:
        return F.cross_entropy(logits, targets)
    return (F.cross_entropy(logits, targets, reduction="none") * weights).sum()


def example_weights(batch: list[Example], rows):
    """Each answer token's weight when a batch mixes examples with different numbers of answer
    tokens (labelled posts, one token; translation pairs, a whole reference): 1 / (the example's
    answer tokens x the batch's examples), so every example weighs the same in the loss, as a
    labelled post does in a batch of labelled posts. A plain token mean would give a 30-token
    reference thirty times a label's weight, and the labels of a pairs run a few percent of the
    gradient. None when every example has as many answer tokens (the mean is then the same)."""
    import torch

    counts = [e.n_answer for e in batch]
    if len(set(counts)) == 1:
        return None
    per_example = torch.tensor(counts, dtype=torch.float32, device=rows.device)
    return 1.0 / (per_example[rows] * len(batch))


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """The example indices of every step, fixed by the seed: epoch after epoch of permutations."""
    order: list[int] = []
    epoch = 0
    while len(order) < steps * batch_size:
        order += np.random.default_rng([seed, epoch]).permutation(n).tolist()
        epoch += 1
    return [order[s * batch_size : (s + 1) * batch_size] for s in range(steps)]


def fingerprint(settings: TrainSettings, examples: list[Example], base_sha: str) -> str:
    knobs = asdict(settings)
    if knobs["lr_schedule"] == "constant":  # runs made before schedules existed keep theirs
        del knobs["lr_schedule"]
    h = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode())
    h.update(base_sha.encode())
    if len({e.n_answer for e in examples}) > 1:
        # examples weigh the same in the loss (example_weights); runs made before, with a plain
        # token mean, are not reused
        h.update(b"loss: every example weighs the same")
    for e in examples:
        h.update(json.dumps([e.post_id, e.input_ids, e.n_answer]).encode())
    return h.hexdigest()


@dataclass
class RunResult:
    """What a fine-tuning run left: the adapter folder and its metadata."""

    adapter: Path
    meta: dict
    losses: pd.DataFrame = field(repr=False)
    reused: bool = False


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _peak_gpu_gb() -> float | None:
    """The most GPU memory torch held at once in this process (None where CUDA was never used)."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 1e9, 2)


def load_for_training(model_folder, settings: TrainSettings, device: str = "cpu"):
    """The frozen base model for LoRA training: in ``settings.dtype``, or with
    ``base_quant="nf4"`` in 4-bit NF4 (QLoRA, as the paper trained; needs bitsandbytes and a
    CUDA GPU). Safetensors only, no remote code."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, settings.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype {settings.dtype!r}: use float32, bfloat16 or float16")
    kwargs = dict(dtype=dtype, use_safetensors=True, trust_remote_code=False)
    if settings.base_quant is None:
        return AutoModelForCausalLM.from_pretrained(model_folder, **kwargs).to(device)
    if settings.base_quant != "nf4":
        raise ValueError(f"base_quant {settings.base_quant!r}: only 'nf4' (QLoRA) or null")
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise RuntimeError("base_quant nf4 (QLoRA) needs a CUDA GPU; set base_quant: null here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise RuntimeError(
            "base_quant nf4 (QLoRA) needs bitsandbytes: pip install -e '.[gpu]'"
        ) from err
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=False,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_folder, quantization_config=quant, device_map={"": device}, **kwargs
    )
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def finetune_lora(
    model_folder: str | os.PathLike[str],
    examples: list[Example],
    out_dir: str | os.PathLike[str],
    settings: TrainSettings,
    base_sha: str = "",
    pad_id: int = 0,
    progress: bool = True,
    desc: str = "",
    extra_meta: dict | None = None,
    device: str = "cpu",
    on_step=None,
) -> RunResult:
    """Train a LoRA adapter on ``examples``; resume from ``out_dir/checkpoint`` if one exists.

    Writes ``out_dir/adapter/`` (safetensors), ``meta.json`` (data hash, settings, seed, steps,
    wall time, tokens/s, peak RSS) and ``loss.csv``. Returns at once when a finished run with the
    same fingerprint is already there. ``on_step(step)`` is called after every step.
    """
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from tqdm import tqdm

    out = Path(out_dir)
    fp = fingerprint(settings, examples, base_sha)
    meta_file = out / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("fingerprint") == fp and (out / "adapter").exists():
            return RunResult(out / "adapter", meta, pd.read_csv(out / "loss.csv"), reused=True)
    if not examples:
        raise ValueError(f"{desc or out}: no training posts")

    torch.manual_seed(settings.seed)
    random.seed(settings.seed)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    model = load_for_training(model_folder, settings, device)
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.total_steps(len(examples))
    batches = batch_order(len(examples), settings.batch_size, steps, settings.seed)

    ckpt = out / "checkpoint"
    start, history, seconds_before, tokens_before = 0, [], 0.0, 0
    if (ckpt / "state.pt").exists() and (ckpt / "adapter_model.safetensors").exists():
        # plain tensors and numbers only: no pickled code is run from a checkpoint
        state = torch.load(ckpt / "state.pt", weights_only=True)
        if state.get("fingerprint") == fp:
            set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
            optim.load_state_dict(state["optimizer"])
            # the random state lives on the CPU; restore it there
            torch.set_rng_state(state["torch_rng"])
            start, history = state["step"], state["history"]
            seconds_before, tokens_before = state["seconds"], state["tokens"]
    model.train()
    t0, tokens = time.perf_counter(), tokens_before
    bar = tqdm(total=steps, initial=start, desc=desc or "fine-tune", disable=not progress)
    for step in range(start, steps):
        batch = [examples[i] for i in batches[step]]
        ids, mask, rows, cols, targets = (t.to(device) for t in collate(batch, pad_id))
        for group in optim.param_groups:
            group["lr"] = settings.lr_at(step, steps)
        loss = answer_loss(model, ids, mask, rows, cols, targets, example_weights(batch, rows))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optim.step()
        tokens += int(mask.sum())
        history.append({"step": step + 1, "loss": float(loss.detach()), "tokens": tokens})
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        done = step + 1
        if on_step is not None:
            on_step(done)
        if done % settings.save_every == 0 and done < steps:
            _save_checkpoint(
                model,
                optim,
                ckpt,
                done,
                history,
                fp,
                seconds_before + time.perf_counter() - t0,
                tokens,
            )
    bar.close()
    seconds = seconds_before + time.perf_counter() - t0

    tmp = out / "adapter.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(out / "adapter", ignore_errors=True)
    os.replace(tmp, out / "adapter")
    losses = pd.DataFrame(history)
    losses.to_csv(out / "loss.csv", index=False)
    meta = {
        "fingerprint": fp,
        "settings": asdict(settings),
        "base_sha256": base_sha,
        "n_examples": len(examples),
        "steps": steps,
        "resumed_from_step": start,
        "wall_seconds": round(seconds, 2),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "peak_rss_gb": round(_peak_rss_gb(), 2),
        "peak_gpu_gb": _peak_gpu_gb(),
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": float(np.mean([h["loss"] for h in history[-5:]])) if history else None,
        **(extra_meta or {}),
    }
    meta_file.write_text(json.dumps(meta, indent=2))
    shutil.rmtree(ckpt, ignore_errors=True)
    return RunResult(out / "adapter", meta, losses)


def _save_checkpoint(model, optim, ckpt: Path, step, history, fp, seconds, tokens) -> None:
    """Write the checkpoint beside the old one, then swap, so a kill never leaves half of one."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    tmp = ckpt.with_name("checkpoint.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(state, tmp / "adapter_model.safetensors")
    torch.save(
        {
            "optimizer": optim.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "history": history,
            "fingerprint": fp,
            "seconds": seconds,
            "tokens": tokens,
        },
        tmp / "state.pt",
    )
    shutil.rmtree(ckpt, ignore_errors=True)
    os.replace(tmp, ckpt)


def training_sets(
    posts: pd.DataFrame,
    variants: dict[str, list[str]],
    max_posts: int | None = None,
    seed: int = 0,
    train_splits: dict[str, list[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """The training posts of each variant: the train split of its languages.

    ``train_splits`` names, per variant, the split that defines its training set (the first of
    its list): ``per_language`` (default) or ``pooled`` (the authors' ``split_multi``). A language
    without training posts is an error naming the variant (Korean, say, has only an extra test
    set). ``max_posts`` caps a variant, drawn at random but stratified by language.
    """
    from xling.schema import TRAIN_SPLITS

    out = {}
    for variant, langs in variants.items():
        chosen = ((train_splits or {}).get(variant) or ["per_language"])[0]
        if chosen not in TRAIN_SPLITS:
            raise ValueError(
                f"variant '{variant}': train split {chosen!r}; one of {', '.join(TRAIN_SPLITS)}"
            )
        train = posts[posts[TRAIN_SPLITS[chosen]] == "train"]
        if not langs:
            raise ValueError(f"variant '{variant}' names no training languages")
        have = set(train["lang"])
        missing = [lang for lang in langs if lang not in have]
        if missing:
            raise ValueError(
                f"variant '{variant}': no training posts in {', '.join(missing)} "
                f"(languages with training posts: {', '.join(sorted(have))})"
            )
        sub = train[train["lang"].isin(langs)]
        if max_posts is not None and len(sub) > max_posts:
            share = max_posts / len(sub)
            sub = pd.concat(
                g.sample(max(1, round(len(g) * share)), random_state=seed)
                for _, g in sub.groupby("lang")
            )
        out[variant] = sub.sort_values("post_id").reset_index(drop=True)
    return out


def pair_training_sets(
    posts: pd.DataFrame,
    variants: dict[str, list[str]],
    pair_variants: dict[str, list[str]],
    max_pairs_per_lang: int | None = None,
    seed: int = 0,
    train_splits: dict[str, list[str]] | None = None,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The translation-pair posts of each pairs variant (``pair_variants``: a variant of
    ``variants``, whose languages give its labelled posts, -> the languages whose training posts
    it adds as translation pairs, :func:`encode_pairs`), and one note per language where posts
    without an English reference were skipped.

    Refused, naming the key: a pairs variant not in ``variants``, no pair languages, English or
    one of the variant's labelled languages among them, a language without training posts or
    without a single reference. ``max_pairs_per_lang`` caps each language, drawn at random but
    stratified by label (the label only balances the draw; it is never trained on)."""
    from xling.schema import TRAIN_SPLITS

    out, notes = {}, []
    for variant, langs in pair_variants.items():
        key = f"pair_variants.{variant}"
        if variant not in variants:
            raise ValueError(
                f"{key}: '{variant}' is not one of the variants ({', '.join(variants)}); "
                "declare it in variants with its labelled languages, e.g. "
                f"{variant}: [en]"
            )
        if not langs:
            raise ValueError(f"{key} names no languages to add as translation pairs")
        wrong = [lang for lang in langs if lang == "en" or lang in variants[variant]]
        if wrong:
            raise ValueError(
                f"{key}: {', '.join(wrong)} cannot be translation pairs (English has nothing to "
                f"translate; a labelled language of '{variant}' is trained on with its labels)"
            )
        chosen = ((train_splits or {}).get(variant) or ["per_language"])[0]
        train = posts[posts[TRAIN_SPLITS[chosen]] == "train"]
        parts = []
        for lang in langs:
            pool = train[train["lang"] == lang]
            if pool.empty:
                raise ValueError(f"{key}: no training posts in {lang}")
            usable = pool[has_reference(pool)]
            if usable.empty:
                raise ValueError(
                    f"{key}: none of the {len(pool)} {lang} training posts has an English "
                    "reference (text_en)"
                )
            if len(usable) < len(pool):
                notes.append(
                    f"{variant}: {len(pool) - len(usable)} of {len(pool)} {lang} training posts "
                    "skipped: no English reference (text_en)"
                )
            if max_pairs_per_lang is not None and len(usable) > max_pairs_per_lang:
                share = max_pairs_per_lang / len(usable)
                picked = [
                    g.sample(max(1, round(len(g) * share)), random_state=seed)
                    for _, g in usable.groupby("label")
                ]
                usable = pd.concat(picked).sort_values("post_id").head(max_pairs_per_lang)
            parts.append(usable)
        out[variant] = pd.concat(parts).sort_values("post_id").reset_index(drop=True)
    return out, notes


def describe_training_sets(
    training: dict[str, pd.DataFrame], pairs: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Training posts per variant and language; with ``pairs``, a pairs variant's translation
    pairs in rows of their own (``VARIANT (pairs)``, no label trained on)."""
    rows = {v: t.groupby("lang").size() for v, t in training.items()}
    for v, t in (pairs or {}).items():
        rows[f"{v} (pairs)"] = t.groupby("lang").size()
    table = pd.DataFrame(rows).T.fillna(0).astype(int)
    table["total"] = table.sum(axis=1)
    return table


def summarize_runs(results: dict[str, RunResult]) -> pd.DataFrame:
    """One row per variant: posts, steps, wall time, tokens/s, peak RSS, first and final loss."""
    rows = []
    for variant, r in results.items():
        m = r.meta
        rows.append(
            {
                "variant": variant,
                "posts": m["n_examples"],
                "steps": m["steps"],
                "wall_seconds": m["wall_seconds"],
                "tokens_per_second": m["tokens_per_second"],
                "peak_rss_gb": m["peak_rss_gb"],
                "peak_gpu_gb": m.get("peak_gpu_gb"),
                "first_loss": round(m["first_loss"], 3),
                "final_loss": round(m["final_loss"], 3),
                "reused": r.reused,
            }
        )
    return pd.DataFrame(rows)


def pair_languages(adapters_dir: Path, variants) -> dict[str, list[str]]:
    """Each variant's translation-pair languages as its finished adapter recorded them
    (``meta.json``'s ``pair_languages``, written by 01): what was trained, not what a profile
    says now. Variants without an adapter here, or trained on no pairs, are left out."""
    out = {}
    for variant in variants:
        meta = Path(adapters_dir) / variant / "meta.json"
        if meta.exists():
            langs = json.loads(meta.read_text(encoding="utf-8")).get("pair_languages") or []
            if langs:
                out[variant] = list(langs)
    return out


def balance_labels(posts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The training posts with every label as common as the commonest: each label's posts all
    kept once, then drawn again at random (with replacement) up to the commonest label's count.
    A recipe to try against a model that collapses onto the commonest labels (issue 25); a post
    drawn twice is the same example twice, so the steps see the rare labels more often."""
    if posts.empty:
        return posts
    counts = posts["label"].value_counts()
    rng = np.random.default_rng(seed)
    parts = []
    for label in sorted(counts.index):
        group = posts[posts["label"] == label]
        extra = int(counts.max() - len(group))
        parts.append(group)
        if extra:
            parts.append(group.iloc[rng.integers(0, len(group), size=extra)])
    return pd.concat(parts).sort_values("post_id", kind="stable").reset_index(drop=True)


def examples_seen(meta: dict) -> dict[str, int]:
    """What a finished run's steps read, from its ``meta.json``: examples in all, and of them
    labelled posts and translation pairs (01 puts the pairs after the labelled posts, so an
    index at or past ``n_examples - pairs`` is a pair), by the run's own batch order."""
    settings = meta["settings"]
    n, pairs = int(meta["n_examples"]), int(meta.get("pairs") or 0)
    batches = batch_order(n, settings["batch_size"], int(meta["steps"]), settings["seed"])
    read = [i for batch in batches for i in batch]
    labelled = sum(1 for i in read if i < n - pairs)
    return {"examples": len(read), "labelled": labelled, "pairs": len(read) - labelled}


def describe_examples_seen(adapters_dir: Path, variants) -> list[str]:
    """One line per variant with a finished adapter: what its steps read (:func:`examples_seen`),
    so a pairs variant is read knowing how many labelled posts it gave up for its pairs."""
    lines = []
    for variant in variants:
        meta_file = Path(adapters_dir) / variant / "meta.json"
        if not meta_file.exists():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        seen = examples_seen(meta)
        lines.append(
            f"{variant}: its {meta['steps']} steps read {seen['examples']} examples, "
            f"{seen['labelled']} labelled posts and {seen['pairs']} translation pairs"
        )
    return lines


#: How often the authors' released test tweets (the 310 sampled as ``authors_test``, 2026-12-06)
#: carry a reply's @mentions and a link: about half start with or hold an @mention (0.35-0.53 by
#: label) and a third hold a link (0.24-0.43); the demo corpus's posts 4 % and 8 %. Used by
#: :func:`like_tweets` (issue 25's "tweet-like" recipe).
TWEET_MENTION_RATE = 0.5
TWEET_LINK_RATE = 0.35

_HANDLE_PARTS = (
    "ana", "ben", "cruz", "dev", "eli", "fox", "gio", "hana", "ivo", "jay", "kai", "lou", "mia",
    "nico", "oli", "pat", "rai", "sam", "tom", "uma", "vic", "wen", "yas", "zoe", "news", "daily",
    "real", "the", "official", "tv", "info", "radio", "post", "_", "_", "",
)  # fmt: skip


def like_tweets(
    posts: pd.DataFrame,
    seed: int = 0,
    mention_rate: float = TWEET_MENTION_RATE,
    link_rate: float = TWEET_LINK_RATE,
) -> pd.DataFrame:
    """The training posts dressed as the real tweets they will meet: at ``mention_rate`` a reply's
    one to three @handles put in front (made-up handles), at ``link_rate`` a shortened link put at
    the end (``https://t.co/`` and ten random characters), both drawn per post with ``seed``;
    labels and every other column unchanged. The demo corpus's posts almost never have either,
    the authors' tweets half of the time (:data:`TWEET_MENTION_RATE`), so a model trained on the
    demo's posts meets a form it never saw: a recipe against that (issue 25)."""
    if not 0 <= mention_rate <= 1 or not 0 <= link_rate <= 1:
        raise ValueError(f"rates are shares, 0 to 1; got {mention_rate}, {link_rate}")
    rng = np.random.default_rng(seed)
    chars = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))

    def handle() -> str:
        parts = rng.choice(_HANDLE_PARTS, size=int(rng.integers(2, 4)))
        name = "".join(parts).strip("_") or "user"
        return "@" + name + (str(int(rng.integers(1, 99))) if rng.random() < 0.4 else "")

    texts = []
    for text in posts["text"].astype(str):
        if rng.random() < mention_rate:
            text = " ".join(handle() for _ in range(int(rng.integers(1, 4)))) + " " + text
        if rng.random() < link_rate:
            text = text + " https://t.co/" + "".join(rng.choice(chars, size=10))
        texts.append(text)
    return posts.assign(text=texts)
