"""Scorers: the task's labels' log-probabilities (and greedy answers) for posts, through llama.cpp
(one post at a time, or many per decode) or transformers.

:class:`ModelFiles` names the files a (variant, backend) classifies with; :func:`open_scorer` opens
them.

"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from xling.models.calibration import label_probabilities
from xling.models.layout import ModelFiles
from xling.models.prompts import Prompt, answer_tokens
from xling.tasks import load_task


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


def llama_gpu_offload() -> bool:
    """Whether the installed llama-cpp-python was built with a GPU backend (CUDA, Metal, ...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def check_gpu_layers(n_gpu_layers: int) -> None:
    """Refuse ``n_gpu_layers`` other than 0 where llama.cpp cannot offload (a CPU-only wheel)."""
    if not isinstance(n_gpu_layers, int) or n_gpu_layers < -1:
        raise ValueError(f"n_gpu_layers {n_gpu_layers!r}: 0 (CPU), -1 (all layers) or a count")
    if n_gpu_layers and not llama_gpu_offload():
        raise RuntimeError(
            f"n_gpu_layers {n_gpu_layers}: this llama-cpp-python has no GPU backend (a CPU "
            "build); set n_gpu_layers: 0, or install a CUDA build (CMAKE_ARGS=-DGGML_CUDA=on)"
        )


def _log_softmax_at(logits: np.ndarray, ids: list[int]) -> np.ndarray:
    m = logits.max()
    lse = m + np.log(np.exp(logits - m).sum())
    return logits[ids] - lse


def amx_cpu() -> bool:
    """Whether this CPU has Intel AMX (``amx_int8`` in /proc/cpuinfo's flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(line.startswith("flags") and " amx_int8" in line for line in f)
    except OSError:
        return False


@contextlib.contextmanager
def _without_amx_buffers():
    """Open llama.cpp models without its extra (repacked / AMX) weight buffers on a CPU with
    AMX: the pinned llama.cpp's AMX matrix kernel crashes the process there (a segmentation
    fault in ggml_backend_amx_mul_mat at the first decode, seen on an Intel Xeon with AMX).
    ``XLING_LLAMA_EXTRA_BUFFERS=1`` keeps them; on other CPUs nothing changes."""
    if not amx_cpu() or os.environ.get("XLING_LLAMA_EXTRA_BUFFERS") == "1":
        yield
        return
    import llama_cpp.llama as llama_module

    low = llama_module.llama_cpp
    original = low.llama_model_default_params

    def params():
        p = original()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = original


def open_llama(
    gguf: str | os.PathLike[str],
    lora: str | os.PathLike[str] | None = None,
    *,
    n_ctx: int,
    n_threads: int | None,
    seed: int,
    what: str = "model",
    n_gpu_layers: int = 0,
):
    """A GGUF model (and LoRA GGUF) opened in llama.cpp, quietly, after checking the files: a
    missing one is a FileNotFoundError and a truncated one a ModelError naming it, not
    llama.cpp's "failed to load". Shared by the scorer and :mod:`xling.translate`.
    ``n_gpu_layers``: layers offloaded to a GPU (0 none, -1 all); a llama-cpp-python built
    without GPU support is refused for anything but 0, rather than silently running on the CPU."""
    import llama_cpp

    check_gpu_layers(n_gpu_layers)

    from xling.models.gguf import check_gguf

    for path, kind in ((gguf, what), (lora, "LoRA")):
        if path is None:
            continue
        if not Path(path).is_file():
            raise FileNotFoundError(f"{kind} GGUF file not found: {path}")
        check_gguf(path)
    with quiet_stderr(), _without_amx_buffers():
        return llama_cpp.Llama(
            model_path=str(gguf),
            lora_path=str(lora) if lora else None,
            n_ctx=n_ctx,
            n_batch=min(n_ctx, 512),
            n_threads=n_threads or os.cpu_count(),
            # llama-cpp-python's own default for prompts (several tokens per decode) is every
            # core, whatever n_threads says: a scorer given one thread would use them all
            n_threads_batch=n_threads or os.cpu_count(),
            n_gpu_layers=n_gpu_layers,
            logits_all=False,
            seed=seed,
            verbose=False,
        )


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
        n_gpu_layers: int = 0,
    ):
        self.prompt = prompt
        self.llm = open_llama(
            gguf, lora, n_ctx=n_ctx, n_threads=n_threads, seed=seed, n_gpu_layers=n_gpu_layers
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
        """Log-probabilities of the labels' answer tokens (order: the prompt's task labels)."""
        self._eval_prompt(self.tokenize(self.prompt.render(text)) + self.answers.stem)
        ids = [self.answers.label_token[label] for label in self.prompt.labels]
        return _log_softmax_at(self._last_logits(), ids)

    def _eval_prompt(self, toks: list[int]) -> None:
        n = len(self.prefix)
        with quiet_stderr():
            if self._prefix_ready and toks[:n] == self.prefix:
                self.llm.n_tokens = n  # eval() drops the KV cells after the shared prefix
                self.llm.eval(toks[n:])
            else:
                self.llm.reset()
                self.llm.eval(toks)
                self._prefix_ready = toks[:n] == self.prefix

    def generate_one(self, text: str, max_new_tokens: int = 3) -> str:
        """Greedy decoding of up to ``max_new_tokens`` tokens after the prompt and the answer's
        stem (the paper read 3 tokens at temperature 0.01, which is greedy in effect)."""
        # the answer's stem (the space before the number) belongs to the prompt: training put
        # its loss on the label token alone, so the model's first own token is the answer
        self._eval_prompt(self.tokenize(self.prompt.render(text)) + self.answers.stem)
        out: list[int] = []
        eos = self.llm.token_eos()
        for _ in range(max_new_tokens):
            tok = int(np.argmax(self._last_logits()))
            if tok == eos:
                break
            out.append(tok)
            with quiet_stderr():
                self.llm.eval([tok])
        self.generated_tokens = out  # read by xling.bench (generated tokens per second)
        return self.llm.detokenize(out).decode("utf-8", errors="replace")

    def close(self) -> None:
        with quiet_stderr():
            self.llm.close()


class LlamaCppBatchScorer:
    """Label log-probabilities for many posts per ``llama_decode`` call.

    :class:`LlamaCppScorer` evaluates one post at a time, so every matrix product sees a few dozen
    rows (one post's tokens). Here the instruction prefix is evaluated once into sequence 0 and its
    KV cells are shared with sequences 1..``batch_size`` (``llama_memory_seq_cp`` in a unified KV
    cache only tags the cells, nothing is copied); then up to ``batch_size`` posts go into one
    batch, each as its own sequence after the prefix, and each sequence's last token gives its
    logits (``llama_get_logits_ith``). After the batch the posts' cells are dropped and the prefix
    stays. A post whose tokens do not start with the prefix's is evaluated whole in its sequence.

    The log-probabilities equal score_one's bit for bit for the first post of each batch and
    differ slightly for the others (here up to 0.16 nats on 32 posts with the embedded Q4_K_M
    model, the same label for all 32): the attention sums run over KV cells whose place in the SIMD
    lanes depends on where the post's cells lie (a post whose cells start 32 cells later gives
    the same bits), and Q4_K_M's 8-bit quantization of the activations amplifies the rounding.
    Flash attention (on by default; score_one runs without it) changes the rounding too, and is
    faster here: in the unified cache every post's attention spans the other posts' cells too,
    masked (one contended run, 48 posts, 16 per decode: 22.6 posts/s with it, 20.4 without; a
    cache per sequence, ``kv_unified`` off, gave 17.2 and 14.7).
    """

    def __init__(
        self,
        gguf: str | os.PathLike[str],
        prompt: Prompt,
        lora: str | os.PathLike[str] | None = None,
        batch_size: int = 16,
        max_batch_tokens: int = 2048,
        n_ubatch: int = 512,
        n_threads: int | None = None,
        seed: int = 0,
        flash_attn: bool = True,
        n_gpu_layers: int = 0,
    ):
        import ctypes

        import llama_cpp

        if batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("batch_size and max_batch_tokens must be positive")
        self.prompt, self.batch_size, self.max_batch_tokens = prompt, batch_size, max_batch_tokens
        # the Llama object holds the model (and LoRA adapter); its own small context is unused
        self.llm = open_llama(
            gguf, lora, n_ctx=32, n_threads=n_threads, seed=seed, n_gpu_layers=n_gpu_layers
        )
        self.n_vocab = self.llm.n_vocab()
        self.answers = answer_tokens(self.tokenize, prompt)
        self.label_ids = [self.answers.label_token[label] for label in prompt.labels]
        self.prefix = self.tokenize(prompt.prefix)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = len(self.prefix) + max_batch_tokens + 256
        params.n_batch = max_batch_tokens
        params.n_ubatch = min(n_ubatch, max_batch_tokens)
        params.n_seq_max = batch_size + 1
        params.n_outputs_max = batch_size + 1  # logits rows: one per post (n_vocab floats each)
        params.kv_unified = True  # one cache for all sequences: the prefix's cells are shared
        params.n_threads = params.n_threads_batch = n_threads or os.cpu_count()
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        with quiet_stderr():
            self.ctx = llama_cpp.llama_init_from_model(self.llm._model.model, params)
        if self.ctx is None:
            raise RuntimeError("llama.cpp could not create the batched context")
        adapter = getattr(self.llm, "_lora_adapter", None)
        if adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(self.llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, scales):
                raise RuntimeError(f"could not apply the LoRA adapter {lora}")
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(max_batch_tokens, 0, 1)
        self.n_evaluated = 0  # tokens run through the model, prefix included
        self.n_decode_calls = 0
        self._decode([(0, self.prefix, 0)])
        # the prefix's KV state, kept so that reset() restores it without evaluating it again
        size = llama_cpp.llama_state_seq_get_size(self.ctx, 0)
        self._prefix_state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(self.ctx, self._prefix_state, size, 0) != size:
            self._prefix_state = None
        for seq in range(1, batch_size + 1):
            llama_cpp.llama_memory_seq_cp(self.mem, 0, seq, -1, -1)

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def _decode(self, items: list[tuple[int, list[int], int]]) -> list[int]:
        """One llama_decode of (sequence, tokens, first position) items; logits at each item's
        last token. Returns those tokens' indices in the batch."""
        import llama_cpp

        b, last = self.batch, []
        b.n_tokens = 0
        for seq, toks, pos0 in items:
            for j, tok in enumerate(toks):
                i = b.n_tokens
                b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos0 + j, 1
                b.seq_id[i][0] = seq
                b.logits[i] = j == len(toks) - 1
                b.n_tokens += 1
            last.append(b.n_tokens - 1)
        with quiet_stderr():
            rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} for a batch of {b.n_tokens} tokens")
        self.n_evaluated += b.n_tokens
        self.n_decode_calls += 1
        return last

    def _groups(self, toks: list[list[int]]) -> list[list[int]]:
        """Post indices packed into batches of at most batch_size posts and max_batch_tokens."""
        n = len(self.prefix)
        groups: list[list[int]] = []
        used = 0
        for i, t in enumerate(toks):
            size = len(t) - n if t[:n] == self.prefix else len(t)
            if size > self.max_batch_tokens:
                raise ValueError(
                    f"post {i}: {size} tokens, more than max_batch_tokens {self.max_batch_tokens}"
                )
            if (
                not groups
                or len(groups[-1]) == self.batch_size
                or used + size > self.max_batch_tokens
            ):
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += size
        return groups

    def score_many(self, texts: list[str]) -> np.ndarray:
        """Log-probabilities of the labels' answer tokens per post (order: the prompt's task
        labels)."""
        import llama_cpp

        n = len(self.prefix)
        toks = [self.tokenize(self.prompt.render(t)) + self.answers.stem for t in texts]
        out = np.zeros((len(texts), len(self.label_ids)))
        for group in self._groups(toks):
            items, whole = [], []
            for seq, i in enumerate(group, start=1):
                if toks[i][:n] == self.prefix:
                    items.append((seq, toks[i][n:], n))
                else:  # the post's tokens merge with the prefix's: evaluate it whole
                    llama_cpp.llama_memory_seq_rm(self.mem, seq, -1, -1)
                    items.append((seq, toks[i], 0))
                    whole.append(seq)
            last = self._decode(items)
            for i, idx in zip(group, last, strict=True):
                ptr = llama_cpp.llama_get_logits_ith(self.ctx, idx)
                logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
                out[i] = _log_softmax_at(logits, self.label_ids)
            for seq in range(1, len(group) + 1):
                if seq in whole:
                    llama_cpp.llama_memory_seq_rm(self.mem, seq, -1, -1)
                    llama_cpp.llama_memory_seq_cp(self.mem, 0, seq, -1, -1)
                else:
                    llama_cpp.llama_memory_seq_rm(self.mem, seq, n, -1)
        return out

    def score_one(self, text: str) -> np.ndarray:
        return self.score_many([text])[0]

    def reset(self) -> None:
        """Empty the KV cache and evaluate the prefix again, as after opening: the next
        :meth:`score_many` then gives the bits a fresh scorer gives for the same posts, whatever
        this one scored before (where a post's cells lie in the cache depends on what came
        before it, and the rounding on where its cells lie). The prefix's KV state saved at
        opening is copied back into the emptied cache (the cells it held, the same bytes), so a
        reset costs a copy, not a prefix evaluation; where llama.cpp cannot restore it, the
        prefix is evaluated again."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self.mem, True)
        state = self._prefix_state
        if state is None or not llama_cpp.llama_state_seq_set_data(self.ctx, state, len(state), 0):
            llama_cpp.llama_memory_clear(self.mem, True)
            self._decode([(0, self.prefix, 0)])
        for seq in range(1, self.batch_size + 1):
            llama_cpp.llama_memory_seq_cp(self.mem, 0, seq, -1, -1)

    def post_tokens(self, text: str) -> int:
        """The tokens a post adds after the shared prefix (what max_batch_tokens counts)."""
        toks = self.tokenize(self.prompt.render(text)) + self.answers.stem
        n = len(self.prefix)
        return len(toks) - n if toks[:n] == self.prefix else len(toks)

    def close(self) -> None:
        import llama_cpp

        with quiet_stderr():
            if self.batch is not None:
                llama_cpp.llama_batch_free(self.batch)
                self.batch = None
            if self.ctx is not None:
                llama_cpp.llama_free(self.ctx)
                self.ctx = None
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
        ids_lab = [self.answers.label_token[label] for label in self.prompt.labels]
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
                from xling.models.finetune import answer_logits

                dev = self.model.device
                rows = torch.arange(len(seqs))
                logits = answer_logits(self.model, ids.to(dev), mask.to(dev), rows, last)
                logp = torch.log_softmax(logits.float(), dim=-1)[:, ids_lab]
            out.append(logp.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(ids_lab)))

    def generate_one(self, text: str, max_new_tokens: int = 3) -> str:
        """Greedy decoding of up to ``max_new_tokens`` tokens after the prompt and answer stem."""
        import torch

        ids = torch.tensor([self.tok(self.prompt.render(text)).input_ids + self.answers.stem])
        with torch.no_grad():
            out = self.model.generate(
                ids.to(self.model.device),
                attention_mask=torch.ones_like(ids).to(self.model.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tok.pad_token_id,
            )
        return self.tok.decode(out[0, ids.shape[1] :].cpu(), skip_special_tokens=True)


def score_posts(scorer, posts: pd.DataFrame, progress: bool = True, desc: str = "") -> pd.DataFrame:
    """Score every post; one row per post with each label's log-probability (``logp_<label>``,
    the scorer's prompt's task labels in order) and the prediction."""
    from tqdm import tqdm

    labels = scorer.prompt.labels if hasattr(scorer, "prompt") else load_task().labels
    texts = posts["text"].tolist()
    if isinstance(scorer, TransformersScorer):
        chunks = [texts[i : i + 64] for i in range(0, len(texts), 64)]
        parts = []
        for chunk in tqdm(chunks, desc=desc or "score", disable=not progress):
            parts.append(scorer.score_many(chunk))
        logp = np.concatenate(parts) if parts else np.zeros((0, len(labels)))
    else:
        logp = np.array(
            [scorer.score_one(t) for t in tqdm(texts, desc=desc or "score", disable=not progress)]
        ).reshape(-1, len(labels))
    table = pd.DataFrame(logp, columns=[f"logp_{label}" for label in labels], index=posts.index)
    table.insert(0, "post_id", posts["post_id"].to_numpy())
    table["prediction"] = [labels[k] for k in logp.argmax(axis=1)] if len(logp) else []
    return table


def label_distribution(scores: pd.DataFrame) -> np.ndarray:
    """The label probabilities per post (its ``logp_<label>`` columns, in their order),
    renormalized over the labels."""
    return label_probabilities(
        scores[[c for c in scores.columns if str(c).startswith("logp_")]].to_numpy()
    )


def agreement_and_kl(reference: pd.DataFrame, other: pd.DataFrame) -> tuple[float, float]:
    """Share of posts with the same predicted label, and mean KL(reference || other) over the
    renormalized label distributions."""
    p, q = label_distribution(reference), label_distribution(other)
    agree = float((p.argmax(1) == q.argmax(1)).mean())
    kl = float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1)))
    return agree, kl


def gguf_size_mb(path: str | os.PathLike[str]) -> float:
    return Path(path).stat().st_size / 1e6


def open_scorer(files: ModelFiles, prompt: Prompt, device: str = "cpu", n_gpu_layers: int = 0):
    """A scorer for ``files``: LlamaCppScorer (``n_gpu_layers`` on a GPU) or TransformersScorer
    (on ``device``)."""
    if files.engine == "llamacpp":
        return LlamaCppScorer(files.model, prompt, lora=files.lora, n_gpu_layers=n_gpu_layers)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(files.model)
    model = AutoModelForCausalLM.from_pretrained(
        files.model, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
    ).to(device)
    return TransformersScorer(model.eval(), tok, prompt)
