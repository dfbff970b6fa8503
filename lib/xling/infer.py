"""Classify posts: score each label's answer, or generate as the paper did.

Two backends, one interface: ``llamacpp`` (a GGUF file through llama-cpp-python, optionally with a
LoRA GGUF) and ``transformers`` (the unquantized model). Method ``score`` evaluates the prompt once
per post and reads the log-probability of each label's answer tokens: no output can fail to parse,
and the per-label distribution lets quantized and unquantized models be compared (agreement, KL).
With llama.cpp the instruction prefix shared by all posts is evaluated once and its KV cache kept,
so a post costs only its own tokens.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xling.data import LABELS
from xling.prompts import Prompt


@contextlib.contextmanager
def quiet_stderr():
    """Silence stderr for the duration of a block: llama.cpp logs every tensor, both from C (file
    descriptor 2) and through llama-cpp-python's log callback (Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            with contextlib.redirect_stderr(devnull):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@dataclass
class AnswerTokens:
    """The answers' tokens split as: a stem common to all labels, then one distinct token each."""

    stem: list[int]
    label_token: dict[str, int]


def answer_tokens(tokenize, prompt: Prompt) -> AnswerTokens:
    """Tokenize each label's answer after the prompt; check they differ in one token at the end."""
    probe = prompt.render("x")
    head = tokenize(probe)
    tails = {}
    for label in LABELS:
        full = tokenize(probe + prompt.answer(label))
        if full[: len(head)] != head:
            raise ValueError(f"answer for {label!r} changes the prompt's tokens")
        tails[label] = full[len(head) :]
    first = next(iter(tails.values()))
    stem = first[:-1]
    for label, toks in tails.items():
        if toks[:-1] != stem or len(toks) != len(first):
            raise ValueError(
                f"answers must share all tokens but the last; {label!r} gives {toks} vs {first}"
            )
    if len({t[-1] for t in tails.values()}) != len(LABELS):
        raise ValueError("two labels have the same answer token")
    return AnswerTokens(stem, {label: toks[-1] for label, toks in tails.items()})


def _log_softmax_at(logits: np.ndarray, ids: list[int]) -> np.ndarray:
    m = logits.max()
    lse = m + np.log(np.exp(logits - m).sum())
    return logits[ids] - lse


class LlamaCppScorer:
    """Label log-probabilities from a GGUF model (optionally plus a LoRA GGUF) in llama.cpp."""

    def __init__(
        self,
        gguf: str | os.PathLike[str],
        prompt: Prompt,
        lora: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
    ):
        import llama_cpp

        for path, what in ((gguf, "model"), (lora, "LoRA")):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{what} GGUF file not found: {path}")
        self.prompt = prompt
        with quiet_stderr():
            self.llm = llama_cpp.Llama(
                model_path=str(gguf),
                lora_path=str(lora) if lora else None,
                n_ctx=n_ctx,
                n_batch=min(n_ctx, 512),
                n_threads=n_threads or os.cpu_count(),
                logits_all=False,
                seed=seed,
                verbose=False,
            )
        self.n_vocab = self.llm.n_vocab()
        self.answers = answer_tokens(self.tokenize, prompt)
        self.prefix = self.tokenize(prompt.prefix)
        self._prefix_ready = False

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def _last_logits(self) -> np.ndarray:
        ptr = self.llm._ctx.get_logits()
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def score_one(self, text: str) -> np.ndarray:
        """Log-probabilities of the four labels' answer tokens (order: data.LABELS)."""
        toks = self.tokenize(self.prompt.render(text)) + self.answers.stem
        n = len(self.prefix)
        reuse = self._prefix_ready and toks[:n] == self.prefix
        with quiet_stderr():
            if reuse:
                self.llm.n_tokens = n  # eval() drops the KV cells after the shared prefix
                self.llm.eval(toks[n:])
            else:
                self.llm.reset()
                self.llm.eval(toks)
                self._prefix_ready = toks[:n] == self.prefix
        ids = [self.answers.label_token[label] for label in LABELS]
        return _log_softmax_at(self._last_logits(), ids)

    def close(self) -> None:
        with quiet_stderr():
            self.llm.close()


class TransformersScorer:
    """Label log-probabilities from a transformers model (fp32, batched, right-padded)."""

    def __init__(self, model, tokenizer, prompt: Prompt, batch_size: int = 8):
        self.model, self.tok, self.prompt, self.batch_size = model, tokenizer, prompt, batch_size
        self.answers = answer_tokens(lambda s: tokenizer(s).input_ids, prompt)

    def score_many(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        ids_lab = [self.answers.label_token[label] for label in LABELS]
        for i in range(0, len(texts), self.batch_size):
            seqs = [
                self.tok(self.prompt.render(t)).input_ids + self.answers.stem
                for t in texts[i : i + self.batch_size]
            ]
            longest = max(map(len, seqs))
            ids = torch.full((len(seqs), longest), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, s in enumerate(seqs):
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            last = torch.tensor([len(s) - 1 for s in seqs])
            with torch.no_grad():
                from xling.finetune import answer_logits

                logits = answer_logits(self.model, ids, mask, torch.arange(len(seqs)), last)
                logp = torch.log_softmax(logits.float(), dim=-1)[:, ids_lab]
            out.append(logp.numpy())
        return np.concatenate(out) if out else np.zeros((0, len(LABELS)))


def score_posts(scorer, posts: pd.DataFrame, progress: bool = True, desc: str = "") -> pd.DataFrame:
    """Score every post; one row per post with the four log-probabilities and the prediction."""
    from tqdm.auto import tqdm

    texts = posts["text"].tolist()
    if isinstance(scorer, TransformersScorer):
        chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
        parts = []
        for chunk in tqdm(chunks, desc=desc or "score", disable=not progress):
            parts.append(scorer.score_many(chunk))
        logp = np.concatenate(parts) if parts else np.zeros((0, len(LABELS)))
    else:
        logp = np.array(
            [scorer.score_one(t) for t in tqdm(texts, desc=desc or "score", disable=not progress)]
        ).reshape(-1, len(LABELS))
    table = pd.DataFrame(logp, columns=[f"logp_{label}" for label in LABELS], index=posts.index)
    table.insert(0, "post_id", posts["post_id"].to_numpy())
    table["prediction"] = [LABELS[k] for k in logp.argmax(axis=1)] if len(logp) else []
    return table


def label_distribution(scores: pd.DataFrame) -> np.ndarray:
    """The four label probabilities per post, renormalized over the labels."""
    logp = scores[[f"logp_{label}" for label in LABELS]].to_numpy()
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def agreement_and_kl(reference: pd.DataFrame, other: pd.DataFrame) -> tuple[float, float]:
    """Share of posts with the same predicted label, and mean KL(reference || other) over the
    renormalized label distributions."""
    p, q = label_distribution(reference), label_distribution(other)
    agree = float((p.argmax(1) == q.argmax(1)).mean())
    kl = float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1)))
    return agree, kl


def gguf_size_mb(path: str | os.PathLike[str]) -> float:
    return Path(path).stat().st_size / 1e6
