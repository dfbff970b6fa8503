"""Hidden states of every layer, and the logit lens, for posts read through the classification
prompt (notebook 07_representations).

For each text the prompt is built as the scorers build it (prompt, post, answer stem) and run
once through the unquantized model (transformers, plus a variant's LoRA adapter through peft).
Every layer's output is captured by a forward hook on the decoder layers (and the embedding:
layer 0), at two positions:

- ``mean``: the mean over the post's own tokens (those whose characters lie inside the post's
  text in the rendered prompt);
- ``last``: the last prompt token, where the answer is read (after the answer's stem).

The **logit lens** reads each layer's hidden state at the answer position as if it were the last:
through the model's final norm and output embedding (and Gemma's logit soft-capping, where the
config has one), keeping the logits of the four labels' answer tokens. At the last layer these are
exactly the logits the scorers read, so their softmax is the model's own answer distribution.

Each text's arrays are cached under ``runs/cache/hidden/`` in one ``.npz`` file, keyed by the
model's files (sha256 of the base weights and the adapter), the prompt and the text, so a re-run
reads them back in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xling.models.prompts import Prompt, answer_tokens
from xling.schema import LABELS, POSITIONS

#: Changes whenever what is cached changes (positions, lens, layout of the arrays).
CACHE_VERSION = "hidden-v1"


@dataclass
class HiddenStates:
    """Per text: ``mean`` and ``last`` (n_texts, n_layers + 1, hidden size) — index 0 is the
    embedding, index l the output of decoder layer l — and ``lens`` (n_texts, n_layers + 1, 4):
    the four labels' logits (order ``schema.LABELS``) when each layer's state at the answer
    position goes through the final norm and the output embedding. ``n_post_tokens`` counts the
    tokens the mean is over."""

    mean: np.ndarray
    last: np.ndarray
    lens: np.ndarray
    n_post_tokens: np.ndarray

    @property
    def n_layers(self) -> int:
        """Decoder layers (the arrays hold one more: the embedding)."""
        return self.mean.shape[1] - 1

    def at(self, position: str) -> np.ndarray:
        if position not in POSITIONS:
            raise ValueError(f"position {position!r}: one of {', '.join(POSITIONS)}")
        return self.mean if position == "mean" else self.last

    def take(self, index) -> HiddenStates:
        index = np.asarray(index)
        return HiddenStates(
            self.mean[index], self.last[index], self.lens[index], self.n_post_tokens[index]
        )


@dataclass(frozen=True)
class ModelSource:
    """What one representation model is: a base model folder (with its sha256) and, for a
    fine-tuned variant, its LoRA adapter folder."""

    name: str
    base_folder: Path
    base_sha256: str
    adapter: Path | None = None

    def fingerprint(self) -> str:
        from xling.models.base import sha256_file

        parts = [self.base_sha256]
        if self.adapter is not None:
            weights = Path(self.adapter) / "adapter_model.safetensors"
            if not weights.exists():
                raise FileNotFoundError(
                    f"variant {self.name}: no adapter weights at {weights} (run 01_finetune)"
                )
            parts.append(sha256_file(weights))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


def model_source(name: str, base, adapters_dir: Path | None = None) -> ModelSource:
    """The :class:`ModelSource` of ``base`` (the untuned model: ``name == "base"``) or of a
    variant 01_finetune trained (``adapters_dir/<name>/adapter``)."""
    if name == "base":
        return ModelSource("base", Path(base.folder), base.sha256)
    if adapters_dir is None:
        raise ValueError(f"variant {name}: no adapters folder given")
    adapter = Path(adapters_dir) / name / "adapter"
    if not (adapter / "adapter_model.safetensors").exists():
        raise FileNotFoundError(
            f"variant {name}: no adapter at {adapter} (run 01_finetune for it, or leave it out)"
        )
    return ModelSource(name, Path(base.folder), base.sha256, adapter)


def open_model(source: ModelSource, device: str = "cpu", dtype: str = "float32"):
    """(model, tokenizer) for a source: the base model, with the adapter applied through peft when
    there is one (not merged, so the weights stay the files' own); safetensors only, no remote
    code."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"dtype {dtype!r}: use float32, bfloat16 or float16")
    tok = AutoTokenizer.from_pretrained(source.base_folder)
    model = AutoModelForCausalLM.from_pretrained(
        source.base_folder, dtype=torch_dtype, use_safetensors=True, trust_remote_code=False
    ).to(device)
    if source.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.adapter, is_trainable=False).to(device)
    return model.eval(), tok


def post_token_ids(tokenizer, prompt: Prompt, text: str, stem: list[int]):
    """The token ids a scorer reads for ``text`` (prompt + answer stem) and a boolean mask of the
    tokens that belong to the post's own text."""
    rendered = prompt.render(text)
    own = " ".join(str(text).split())  # as Prompt.body writes it
    start = len(prompt.prefix) + prompt.body_template.index("{text}")
    end = start + len(own)
    if rendered[start:end] != own:
        raise ValueError(f"prompt {prompt.name!r}: the post is not where its template puts it")
    try:
        enc = tokenizer(rendered, return_offsets_mapping=True)
    except (NotImplementedError, TypeError) as err:
        raise ValueError(
            "the tokenizer gives no character offsets (a fast tokenizer is needed to find the "
            "post's tokens)"
        ) from err
    ids = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    in_post = [e > s and e > start and s < end for s, e in offsets]
    if not any(in_post):
        raise ValueError(f"no token of the post {text[:40]!r} found in the prompt")
    return ids + list(stem), np.array(in_post + [False] * len(stem))


def _decoder_parts(model):
    """The decoder stack, its final norm, the output embedding and the soft-cap of a causal LM
    (a peft model's base model, unwrapped)."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = core.get_decoder()
    for attr in ("layers", "norm", "embed_tokens"):
        if not hasattr(decoder, attr):
            raise ValueError(f"{type(decoder).__name__} has no {attr!r}: not a decoder-only stack")
    cap = getattr(core.config, "final_logit_softcapping", None)
    return decoder, core.get_output_embeddings(), cap


def forward_hidden(
    model, tokenizer, prompt: Prompt, texts: list[str], batch_size: int = 8
) -> HiddenStates:
    """Hidden states of every layer, at both positions, and the logit lens, for ``texts`` (no
    cache: see :func:`read_hidden`). Batches are right-padded with an attention mask, as the
    scorers run them."""
    import torch

    answers = answer_tokens(lambda s: tokenizer(s).input_ids, prompt)
    label_ids = torch.tensor([answers.label_token[label] for label in LABELS])
    decoder, head, cap = _decoder_parts(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    captured: list = []

    def keep(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    hooks = [decoder.embed_tokens.register_forward_hook(keep)]
    hooks += [layer.register_forward_hook(keep) for layer in decoder.layers]
    means, lasts, lens, counts = [], [], [], []
    dev = next(model.parameters()).device
    w = head.weight[label_ids.to(head.weight.device)]  # (4, d): only the labels' rows
    bias = head.bias[label_ids] if getattr(head, "bias", None) is not None else None
    try:
        for i in range(0, len(texts), batch_size):
            encoded = [
                post_token_ids(tokenizer, prompt, t, answers.stem)
                for t in texts[i : i + batch_size]
            ]
            longest = max(len(ids) for ids, _ in encoded)
            ids = torch.full((len(encoded), longest), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            post = torch.zeros((len(encoded), longest), dtype=torch.bool)
            for j, (s, m) in enumerate(encoded):
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
                post[j, : len(s)] = torch.from_numpy(m)
            last = torch.tensor([len(s) - 1 for s, _ in encoded])
            rows = torch.arange(len(encoded))
            captured.clear()
            with torch.no_grad():
                decoder(input_ids=ids.to(dev), attention_mask=mask.to(dev))
                if len(captured) != len(decoder.layers) + 1:
                    raise RuntimeError(
                        f"captured {len(captured)} hidden states for {len(decoder.layers)} layers"
                    )
                states = torch.stack([h.float().cpu() for h in captured], dim=1)  # (b, L+1, t, d)
                weights = post.float() / post.sum(dim=1, keepdim=True).float()
                means.append(torch.einsum("bltd,bt->bld", states, weights))
                at_answer = torch.stack(
                    [h[rows.to(h.device), last.to(h.device)] for h in captured], 1
                )
                normed = decoder.norm(at_answer)  # (b, L+1, d), in the model's dtype
                logits = normed @ w.T.to(normed.dtype)
                if bias is not None:
                    logits = logits + bias
                logits = logits.float()
                if cap:
                    logits = cap * (logits / cap).tanh()
                lasts.append(states[rows, :, last])
                lens.append(logits.cpu())
                counts.append(post.sum(dim=1))
    finally:
        for h in hooks:
            h.remove()
    if not means:
        raise ValueError("no texts to read")
    return HiddenStates(
        torch.cat(means).numpy().astype(np.float32),
        torch.cat(lasts).numpy().astype(np.float32),
        torch.cat(lens).numpy().astype(np.float32),
        torch.cat(counts).numpy().astype(np.int32),
    )


def cache_path(model_key: str, prompt: Prompt, text: str, cache_dir: Path | None = None) -> Path:
    """The cache file of one text's arrays for one model (its fingerprint) and prompt."""
    from xling import paths

    spec = json.dumps([CACHE_VERSION, model_key, prompt.prefix, prompt.body_template, str(text)])
    key = hashlib.sha256(spec.encode()).hexdigest()[:24]
    root = Path(cache_dir) if cache_dir is not None else paths.RUNS / "cache" / "hidden"
    return root / model_key[:16] / f"{key}.npz"


def _write_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _read_npz(path: Path):
    try:
        with np.load(path) as f:
            return f["mean"], f["last"], f["lens"], int(f["n_post_tokens"])
    except (OSError, ValueError, KeyError, EOFError):  # a damaged file: read the text again
        return None


def read_hidden(
    texts: list[str],
    prompt: Prompt,
    model_key: str,
    load: Callable[[], tuple],
    batch_size: int = 8,
    progress: bool = True,
    desc: str = "",
    cache_dir: Path | None = None,
) -> HiddenStates:
    """:func:`forward_hidden` for ``texts`` through the per-text cache: cached texts are read
    back, the others run through the model ``load()`` returns as (model, tokenizer) — called
    only when some text is missing — and written to the cache as each batch finishes."""
    from tqdm import tqdm

    files = [cache_path(model_key, prompt, t, cache_dir) for t in texts]
    found = {}
    for i, f in enumerate(files):
        if f.exists() and (got := _read_npz(f)) is not None:
            found[i] = got
    todo = [i for i in range(len(texts)) if i not in found]
    if todo:
        model, tok = load()
        step = max(1, batch_size) * 4
        with tqdm(total=len(todo), desc=desc or "hidden states", disable=not progress) as bar:
            for k in range(0, len(todo), step):
                chunk = todo[k : k + step]
                states = forward_hidden(model, tok, prompt, [texts[i] for i in chunk], batch_size)
                for j, i in enumerate(chunk):
                    got = (
                        states.mean[j],
                        states.last[j],
                        states.lens[j],
                        int(states.n_post_tokens[j]),
                    )
                    _write_npz(
                        files[i],
                        mean=got[0],
                        last=got[1],
                        lens=got[2],
                        n_post_tokens=np.int32(got[3]),
                    )
                    found[i] = got
                bar.update(len(chunk))
        del model
    order = [found[i] for i in range(len(texts))]
    if not order:
        raise ValueError("no texts to read")
    return HiddenStates(
        np.stack([o[0] for o in order]),
        np.stack([o[1] for o in order]),
        np.stack([o[2] for o in order]),
        np.array([o[3] for o in order], dtype=np.int32),
    )


def hidden_states(
    source: ModelSource,
    prompt: Prompt,
    texts: list[str],
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = 8,
    progress: bool = True,
) -> HiddenStates:
    """Every layer's hidden states and the logit lens for ``texts`` through one model, cached per
    model files, prompt and text (see :func:`read_hidden`)."""
    return read_hidden(
        texts,
        prompt,
        source.fingerprint(),
        lambda: open_model(source, device, dtype),
        batch_size=batch_size,
        progress=progress,
        desc=f"hidden states: {source.name}",
    )


def lens_probabilities(lens: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From lens logits (n, layers, 4) and gold label indices (n,): the gold label's probability
    among the four labels and its rank among them (1: the label the layer would answer), each
    (n, layers)."""
    lens = np.asarray(lens, dtype=np.float64)
    z = lens - lens.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    gold = np.asarray(gold, dtype=int)
    rows = np.arange(len(gold))
    p_gold = p[rows, :, gold]
    gold_logit = lens[rows, :, gold][..., None]
    rank = 1 + (lens > gold_logit).sum(axis=-1)
    return p_gold, rank
