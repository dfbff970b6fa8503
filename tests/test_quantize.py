"""GGUF files: complete-file checks, and the round trip model -> GGUF -> llama.cpp."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_gemma, train_settings
from xling import models
from xling.models import finetune, prompts, quantize, scorers


def test_missing_truncated_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(models.ModelError, match="GGUF file not found"):
        models.check_gguf(tmp_path / "nope.gguf")
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(models.ModelError, match="not a GGUF file"):
        models.check_gguf(foreign)
    whole = models.embedded_gguf()
    assert models.check_gguf(whole)["architecture"] == "gemma3"
    cut = tmp_path / "cut.gguf"
    with whole.open("rb") as f:
        cut.write_bytes(f.read(5_000_000))  # the header and tensor table, then far too few bytes
    with pytest.raises(models.ModelError, match="truncated"):
        models.check_gguf(cut)
    with pytest.raises(quantize.QuantizeError, match="deleted"):
        quantize.verify_gguf(cut, prompts.plain_prompt())
    assert not cut.exists()  # never left for the next step


def test_model_folder_without_safetensors_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"0")
    with pytest.raises(models.ModelError, match="only safetensors"):
        models.resolve_base(str(tmp_path))
    with pytest.raises(models.ModelError, match="no such file or folder"):
        models.resolve_base(str(tmp_path / "elsewhere"))


POSTS = pd.DataFrame(
    {
        "post_id": list("abcdef"),
        "text": [
            "Welcome, neighbours!",
            "Close the border now.",
            "Visa office opens at 9.",
            "Great match tonight",
            "Hola a todos",
            "Die Störche sind zurück",
        ],
        "label": ["pro-immigration", "anti-immigration", "neutral", "unrelated"]
        + ["unrelated"] * 2,
    }
)


def lora_free_other(tmp_path):
    """A GGUF file of a different (one-layer) model, to splice with by mistake."""
    from transformers import Gemma3ForCausalLM

    model = tiny_gemma(vocab_size=262144)
    model.config.num_hidden_layers = 1
    model.config.layer_types = ["sliding_attention"]
    folder = tmp_path / "other"
    Gemma3ForCausalLM(model.config).save_pretrained(folder, safe_serialization=True)
    for f in (tmp_path / "tiny").glob("tokenizer*"):
        shutil.copy(f, folder / f.name)
    return quantize.convert_to_gguf(folder, tmp_path / "other-f16.gguf")


@pytest.mark.slow
def test_round_trip_to_gguf_keeps_the_model(tmp_path, embedded_base):
    """A (tiny, random) Gemma 3 model and a LoRA adapter on it go through llama.cpp's converters
    and quantizer; llama.cpp then scores posts as transformers does."""
    import torch
    from transformers import AutoTokenizer

    folder = tmp_path / "tiny"
    tiny_gemma(vocab_size=262144).save_pretrained(folder, safe_serialization=True)
    for f in embedded_base.folder.glob("tokenizer*"):
        shutil.copy(f, folder / f.name)
    tok = AutoTokenizer.from_pretrained(folder)
    prompt = prompts.plain_prompt()

    f16 = quantize.convert_to_gguf(folder, tmp_path / "tiny-f16.gguf")
    quantize.verify_gguf(f16, prompt)
    q8 = tmp_path / "tiny-q8_0.gguf"
    assert quantize.quantize_gguf(f16, q8, "q8_0") > 0
    assert q8.stat().st_size < f16.stat().st_size

    ref = scorers.score_posts(
        scorers.TransformersScorer(tiny_gemma(vocab_size=262144), tok, prompt), POSTS, False
    )
    got = {}
    for path in (f16, q8):
        scorer = scorers.LlamaCppScorer(path, prompt, n_ctx=512)
        got[path.name] = scorers.score_posts(scorer, POSTS, False)
        scorer.close()
    cols = [c for c in ref.columns if c.startswith("logp_")]
    np.testing.assert_allclose(got[f16.name][cols], ref[cols], atol=2e-3)
    assert scorers.agreement_and_kl(ref, got[q8.name])[1] < 1e-3

    # a mixed file: the attention weights from the Q8_0 file, the rest from the Q4_K_M file
    import gguf

    q4 = tmp_path / "tiny-q4_k_m.gguf"
    quantize.quantize_gguf(f16, q4, "q4_k_m")
    mixed = tmp_path / "tiny-mixed.gguf"
    assert quantize.splice_gguf(q4, q8, mixed, ["attn_q.", "attn_v."]) > 0
    types = {
        f.name: {t.name: t.tensor_type for t in gguf.GGUFReader(f).tensors} for f in (q4, q8, mixed)
    }
    assert types[mixed.name].keys() == types[q4.name].keys()
    for name, kind in types[mixed.name].items():
        src = q8 if ("attn_q." in name or "attn_v." in name) else q4
        assert kind == types[src.name][name], name
    assert types[mixed.name] != types[q4.name]  # something was taken from the Q8_0 file
    quantize.verify_gguf(mixed, prompt)
    with pytest.raises(quantize.QuantizeError, match="same tensors"):
        quantize.splice_gguf(q4, lora_free_other(tmp_path), tmp_path / "bad.gguf", ["attn_q."])
    assert not (tmp_path / "bad.gguf").exists()

    # a LoRA adapter: merged in transformers vs applied at run time in llama.cpp
    examples = finetune.encode_examples(POSTS, prompt, tok, 64)
    settings = train_settings(
        lora_r=4, lora_alpha=32, lr=0.05, steps=4, batch_size=3, lora_dropout=0.0, save_every=100
    )
    run = finetune.finetune_lora(folder, examples, tmp_path / "run", settings, progress=False)
    merged = quantize.merge_adapter(folder, run.adapter, tmp_path / "merged")
    lora = quantize.export_lora_gguf(run.adapter, folder, tmp_path / "tiny-lora.gguf")
    assert lora.stat().st_size < f16.stat().st_size / 10
    from transformers import AutoModelForCausalLM

    merged_model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    ref_lora = scorers.score_posts(
        scorers.TransformersScorer(merged_model, tok, prompt), POSTS, False
    )
    assert not np.allclose(ref_lora[cols], ref[cols], atol=1e-3)  # the adapter changed the model
    scorer = scorers.LlamaCppScorer(f16, prompt, lora=lora, n_ctx=512)
    with_lora = scorers.score_posts(scorer, POSTS, False)
    scorer.close()
    np.testing.assert_allclose(with_lora[cols], ref_lora[cols], atol=5e-3)


def test_files_of_a_retrained_variant_are_dropped_and_other_variants_kept(tmp_path):
    run = tmp_path / "run"
    for variant, weights in (("en", b"one"), ("en-es", b"two")):
        (run / "adapters" / variant / "adapter").mkdir(parents=True)
        (run / "adapters" / variant / "adapter" / "adapter_model.safetensors").write_bytes(weights)
        (run / "merged" / variant).mkdir(parents=True)
    (run / "gguf").mkdir()
    names = ["en-f16.gguf", "en-q4_k_m.gguf", "en-lora.gguf", "en-q4_k_m+attn-q8_0.gguf"]
    others = ["en-es-f16.gguf", "en-es-lora.gguf"]
    for name in names + others:
        (run / "gguf" / name).write_bytes(b"x")
    for variant in ("en", "en-es"):
        quantize._drop_stale_files(run / "adapters" / variant / "adapter", run, variant)
    # first sight of an adapter: no stamp, so its files cannot be trusted and go
    assert not any((run / "gguf" / n).exists() for n in names + others)
    for name in names + others:
        (run / "gguf" / name).write_bytes(b"x")
    (run / "merged" / "en").mkdir()
    quantize._drop_stale_files(run / "adapters" / "en" / "adapter", run, "en")
    assert all((run / "gguf" / n).exists() for n in names)  # same adapter: kept
    (run / "adapters" / "en" / "adapter" / "adapter_model.safetensors").write_bytes(b"retrained")
    quantize._drop_stale_files(run / "adapters" / "en" / "adapter", run, "en")
    assert not any((run / "gguf" / n).exists() for n in names)
    assert not (run / "merged" / "en").exists()
    assert all((run / "gguf" / n).exists() for n in others)  # en-es is another variant


def test_a_lora_gguf_is_made_again_when_its_adapter_changed(tmp_path, monkeypatch):
    # Recipe search (issue 25) trains adapters into a cache folder beside their LoRA GGUF; a
    # retrained adapter scored through its predecessor's file gave the old run's numbers.
    made = []

    def fake_converter(script, args, out):
        made.append(args[0])
        out.write_bytes((tmp_path / "a" / "adapter_model.safetensors").read_bytes() + b" as gguf")

    monkeypatch.setattr(quantize, "_run_converter", fake_converter)
    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"first")
    out = tmp_path / "lora.gguf"
    out.write_bytes(b"a file from before stamps: not trusted")
    quantize.export_lora_gguf(adapter, tmp_path, out)
    assert out.read_bytes() == b"first as gguf" and len(made) == 1
    quantize.export_lora_gguf(adapter, tmp_path, out)  # same adapter: the file is kept
    assert len(made) == 1
    (adapter / "adapter_model.safetensors").write_bytes(b"retrained")
    quantize.export_lora_gguf(adapter, tmp_path, out)
    assert out.read_bytes() == b"retrained as gguf" and len(made) == 2
    with pytest.raises(quantize.QuantizeError, match="no adapter_model.safetensors"):
        quantize.export_lora_gguf(tmp_path / "missing", tmp_path, out)
