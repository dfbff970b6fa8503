"""A tiny Llama 3 made here, for rehearsing the ``full`` profile's code path on a CPU.

A randomly initialised two-layer ``LlamaForCausalLM`` with a byte-level BPE tokenizer trained with
``tokenizers`` on text of this repository (the demo corpus and the prompt's own words), Llama 3's
pre-tokenizer (the same split pattern and byte-level mapping), Llama 3's special tokens (the header
and end-of-turn tokens of the paper's prompt) and Llama 3's chat template. Nothing is downloaded and
the same seed gives the same bytes, so the folder's sha256 (and every cache keyed on it) is stable.

It knows nothing: its answers are noise. What it rehearses is the machinery: the chat prompt, a
Llama LoRA on q/v, merging, GGUF conversion of a Llama with a BPE vocabulary, quantization and
llama.cpp scoring and generation, which the demo's Gemma 3 never takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from xling import paths

#: The base_model spec that names this model in a profile.
TINY_LLAMA = "tiny-llama3"
#: Bumped whenever the recipe changes, so a cached folder of an older recipe is never reused.
RECIPE = 1

#: Llama 3's pre-tokenizer split pattern (its tokenizer.json), byte for byte.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)

BOS, EOS, EOT = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
START_HEADER, END_HEADER = "<|start_header_id|>", "<|end_header_id|>"
PAD = "<|finetune_right_pad_id|>"
#: Llama 3's special tokens (in its order), after the learned vocabulary as in Llama 3.
SPECIAL_TOKENS = [
    BOS,
    EOS,
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    PAD,
    "<|reserved_special_token_2|>",
    START_HEADER,
    END_HEADER,
    "<|eom_id|>",
    EOT,
]

#: Llama 3 (8B-Instruct)'s chat template: each turn is a header, two newlines, the content and
#: the end-of-turn token; the generation prompt opens the assistant's header.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '" + START_HEADER + "' + message['role'] + '" + END_HEADER + "\\n\\n' "
    "+ message['content'] | trim + '" + EOT + "' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '" + START_HEADER + "assistant" + END_HEADER + "\\n\\n' }}"
    "{%- endif %}"
)

#: The model's shape: small, but every matrix row a multiple of 256 so that llama.cpp's K-quants
#: (Q4_K_M) apply as they do to the 3B model instead of falling back to other types.
SHAPE = dict(
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
)
VOCAB = 1024  # learned tokens (bytes and merges), before the special tokens


def _corpus() -> list[str]:
    """The tokenizer's training text: the demo corpus and the classification prompt's words, read
    in a fixed order (the same text gives the same merges)."""
    import pandas as pd

    from xling.tasks import load_task

    task = load_task()  # the paper's: its chat prompt's system message, instruction, categories
    texts = [task.instruction("chat", "system"), task.instruction("chat"), task.categories()]
    texts += ["Post: Answer = 1 2 3 4 [1] [2] [3] [4]"]
    for path in sorted(paths.DEMO_POSTS.glob("*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        texts += df["text"].tolist() + (df["text_en"].tolist() if "text_en" in df else [])
    if len(texts) < 100:
        raise FileNotFoundError(f"{paths.DEMO_POSTS}: the demo corpus the tokenizer learns from")
    return texts


def build_tokenizer():
    """The tiny model's tokenizer (a ``tokenizers.Tokenizer``): byte-level BPE with Llama 3's
    pre-tokenizer, post-processor (BOS first) and special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single=f"{BOS}:0 $A:0",
                pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
                special_tokens=[(BOS, bos_id)],
            ),
        ]
    )
    return tok


def build_tiny_llama(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the tiny Llama 3 (safetensors, tokenizer, chat template) to ``folder``."""
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    folder = Path(folder)
    raw = build_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=BOS,
        eos_token=EOT,  # Llama 3.2-Instruct's tokenizer ends a turn, and generation, at <|eot_id|>
        pad_token=PAD,
        model_max_length=2048,
        clean_up_tokenization_spaces=True,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: raw.token_to_id(t) for t in (BOS, EOS, EOT, PAD)}
    cfg = LlamaConfig(
        vocab_size=raw.get_vocab_size(),
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=True,  # as Llama 3.2-3B
        bos_token_id=ids[BOS],
        eos_token_id=[ids[EOS], ids[EOT]],
        pad_token_id=ids[PAD],
        **SHAPE,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS], eos_token_id=[ids[EOS], ids[EOT]], pad_token_id=ids[PAD]
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "xling-tiny.json").write_text(
        json.dumps({"model": TINY_LLAMA, "recipe": RECIPE, "seed": seed}, indent=1) + "\n"
    )
    return folder


def tiny_llama_folder(seed: int = 0) -> Path:
    """The tiny Llama 3's folder in the shared model cache, built once (a few seconds)."""
    folder = paths.MODEL_CACHE / f"{TINY_LLAMA}-r{RECIPE}-s{seed}"
    if (folder / "xling-tiny.json").exists():
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny_llama(tmp, seed)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def folder_digest(folder: str | os.PathLike[str]) -> str:
    """sha256 over the folder's files (names and bytes, sorted): equal for equal builds."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).iterdir()):
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()
