"""The rehearsal of the full profile: the tiny Llama 3, the chat prompt against the authors' own
training prompts, its GGUF conversion, the GPU settings it reports skipped, and (slow) notebooks
00-05 end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import scratch_env
from xling import config, paths
from xling.models import prompts, quantize, tiny
from xling.run import rehearsal


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return tiny.build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_folder)


def _workbook(paper_data: Path) -> Path:
    found = sorted(paper_data.rglob("*mig-de-L3_train_checked.xlsx"))
    if not found:
        pytest.skip(f"no checked German training workbook under {paper_data}")
    return found[0]


# ---------------------------------------------------------------------------------------------
# The tiny Llama 3
# ---------------------------------------------------------------------------------------------


def test_tiny_llama_is_made_the_same_twice_and_has_llama3s_parts(tiny_folder, tmp_path):
    again = tiny.build_tiny_llama(tmp_path / "again")
    assert tiny.folder_digest(again) == tiny.folder_digest(tiny_folder)  # same bytes, same caches
    cfg = json.loads((tiny_folder / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["num_hidden_layers"] == 2
    # 1024 learned tokens, then Llama 3's ten special tokens in Llama 3's order
    assert cfg["vocab_size"] == 1024 + 10 and cfg["tie_word_embeddings"] is True
    assert list(tiny_folder.glob("*.safetensors")) and not list(tiny_folder.glob("*.bin"))


def test_tiny_tokenizer_reads_special_tokens_whole_and_adds_one_bos(tiny_tokenizer):
    tok = tiny_tokenizer
    # each special token is one id: <|begin_of_text|> is 1024, the first after the learned ones,
    # <|start_header_id|> 1030, <|end_header_id|> 1031, <|eot_id|> 1033 (tiny.SPECIAL_TOKENS)
    ids = tok("<|start_header_id|>user<|end_header_id|>x<|eot_id|>").input_ids
    assert ids[0] == 1024 and ids[1] == 1030 and 1031 in ids and ids[-1] == 1033
    assert tok.eos_token == "<|eot_id|>" and tok.bos_token_id == 1024
    assert prompts.adds_bos(tok) == "<|begin_of_text|>"


def test_llama3_pre_tokenizer_is_recognised_and_others_are_not(tiny_folder, tmp_path):
    assert quantize.tokenizer_pre_override(tiny_folder) == "llama-bpe"
    # the same tokenizer with one character of the split pattern changed is no longer Llama 3's
    tok = json.loads((tiny_folder / "tokenizer.json").read_text())
    tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = tiny.LLAMA3_SPLIT.replace(
        "{1,3}", "{1,4}"
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_text(json.dumps(tok))
    assert quantize.tokenizer_pre_override(other) is None
    assert quantize.tokenizer_pre_override(tmp_path) is None  # no tokenizer.json at all


# ---------------------------------------------------------------------------------------------
# The chat prompt against the authors' own training prompts
# ---------------------------------------------------------------------------------------------


def test_chat_prompt_has_the_authors_chat_structure(tiny_tokenizer, paper_data):
    post, text = prompts.authors_example(_workbook(paper_data))
    prompt = prompts.make_prompt("chat", tiny_tokenizer)
    assert prompts.check_chat_prompt(prompt, tiny_tokenizer, text, post) == []
    # the authors' sequence, by hand: BOS, system header, end of turn, user header, end of turn,
    # assistant header (then "Answer = [k]. <|eot_id|>", cut off before "Answer =")
    assert prompts.special_skeleton(text[: text.rfind("Answer =")]) == [
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
    ]
    # the tokenizer adds the BOS, so the prompt text must not write it again
    assert not prompt.render(post).startswith("<|begin_of_text|>")
    assert prompt.render(post).endswith("<|start_header_id|>assistant<|end_header_id|>\n\nAnswer =")


def test_paper_prompt_read_from_the_authors_text_column(tiny_tokenizer, paper_data):
    book = _workbook(paper_data)
    post, text = prompts.authors_example(book, row=1)
    prompt = prompts.make_prompt("paper", tiny_tokenizer, workbook=str(book))
    # their prompt for another row, rebuilt from the template of the first: identical up to
    # "Answer =" but for the BOS the tokenizer adds
    assert "<|begin_of_text|>" + prompt.render(post) == text[: text.rfind("Answer =") + 8]
    assert prompts.check_chat_prompt(prompt, tiny_tokenizer, text, post) == []
    # the answers' tokens: a shared stem (the space), then one digit token per label
    answers = prompts.answer_tokens(lambda s: tiny_tokenizer(s).input_ids, prompt)
    assert len(set(answers.label_token.values())) == 4


@pytest.mark.parametrize("wrong", ["<|end_of_turn|>", "<|end_of_text|>", "<|eom_id|>"])
def test_a_wrong_end_of_turn_token_is_caught(tiny_tokenizer, paper_data, wrong, monkeypatch):
    post, text = prompts.authors_example(_workbook(paper_data))
    tok = tiny_tokenizer
    monkeypatch.setattr(tok, "chat_template", tiny.CHAT_TEMPLATE.replace(tiny.EOT, wrong))
    problems = prompts.check_chat_prompt(prompts.make_prompt("chat", tok), tok, text, post)
    assert any("differ from the authors'" in p for p in problems), problems
    if wrong == "<|end_of_turn|>":  # not a token at all: it would be read as ordinary pieces
        assert any(p.startswith("<|end_of_turn|> is not a token") for p in problems)


def test_a_doubled_bos_is_caught(tiny_tokenizer, paper_data):
    post, text = prompts.authors_example(_workbook(paper_data))
    good = prompts.make_prompt("chat", tiny_tokenizer)
    doubled = prompts.Prompt("chat", "<|begin_of_text|>" + good.prefix, good.body_template)
    problems = prompts.check_chat_prompt(doubled, tiny_tokenizer, text, post)
    assert "the tokenized prompt starts with 2 BOS tokens, not 1" in problems


# ---------------------------------------------------------------------------------------------
# The rehearsal profile against full: what it skips, and why
# ---------------------------------------------------------------------------------------------


def test_rehearsal_differs_from_full_only_for_stated_reasons():
    rows = pd.DataFrame(rehearsal.differences("rehearsal"))
    assert config.load_profile("rehearsal").rehearses == "full"
    assert (rows["kind"] != "unexplained").all(), rows[rows["kind"] == "unexplained"]
    gpu = rows[rows["kind"] == "gpu"]
    # full's GPU settings, each kept at its CPU value in 01 (and device in every notebook)
    assert set(gpu["key"]) == {"device", "dtype", "base_quant"}
    one = gpu.drop_duplicates("key").set_index("key")
    assert one.loc["dtype", "rehearsed"] == "bfloat16" and one.loc["dtype", "here"] == "float32"
    assert one.loc["base_quant", "rehearsed"] == "nf4" and one.loc["base_quant", "here"] is None
    model = rows[rows["kind"] == "model"]
    assert set(model.loc[model["key"] == "base_model", "here"]) == {"tiny-llama3"}
    # the one setting the tiny model's noise forces: 05 models scores, not failed generations
    assert model.loc[model["key"] != "base_model", ["notebook", "key", "here"]].values.tolist() == [
        ["05_pretraining_bias", "method", "score"]
    ]
    # what the rehearsal is for: the rest of full's path stays as it is
    same = {k: config.load_profile("full").common[k] for k in ("prompt_format", "target_modules")}
    assert same == {"prompt_format": "chat", "target_modules": ["q_proj", "v_proj"]}
    assert not rows["key"].isin(["prompt_format", "target_modules", "lora_r", "lr"]).any()


def test_skipped_gpu_settings_are_reported_with_the_reason(monkeypatch):
    import importlib.util

    monkeypatch.setattr(
        rehearsal, "_cuda", lambda: (False, "no CUDA GPU here (torch 9, a CPU build)")
    )
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a)
    )
    lines = rehearsal.skipped_lines("rehearsal")
    assert len(lines) == 3
    by = {line.split()[1]: line for line in lines}
    assert by["device"].startswith("skipped: device cuda (here cpu; notebooks 01, 02, 03, 04)")
    assert "no CUDA GPU here (torch 9, a CPU build)" in by["device"]
    assert by["dtype"].startswith("skipped: dtype bfloat16 (here float32; notebooks 01)")
    assert "bitsandbytes is not installed" in by["base_quant"]
    assert "pip install -e '.[gpu]'" in by["base_quant"]


def test_a_profile_that_is_no_rehearsal_is_refused():
    with pytest.raises(config.ConfigError, match="not a rehearsal"):
        rehearsal.differences("demo")


def test_rehearses_must_name_a_profile(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rehearses: nosuchprofile\ncommon: {seed: 1}\n")
    with pytest.raises(config.ConfigError, match="'rehearses' must name another profile"):
        config.load_profile("bad", file=bad)


def test_gpu_layers_are_refused_by_a_cpu_build_of_llama_cpp(monkeypatch):
    import llama_cpp

    from xling.models import scorers

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    scorers.check_gpu_layers(0)  # the CPU: always fine
    with pytest.raises(RuntimeError, match="no GPU backend"):
        scorers.check_gpu_layers(-1)
    with pytest.raises(ValueError, match="n_gpu_layers -2"):
        scorers.check_gpu_layers(-2)
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    scorers.check_gpu_layers(-1)


# ---------------------------------------------------------------------------------------------
# llama.cpp on the tiny Llama (slow)
# ---------------------------------------------------------------------------------------------


@pytest.mark.model
def test_tiny_llama_converts_and_llama_cpp_tokenizes_as_transformers(
    tiny_folder, tiny_tokenizer, tmp_path
):
    from xling.models import scorers

    f16 = quantize.convert_to_gguf(tiny_folder, tmp_path / "tiny-f16.gguf")
    q4 = tmp_path / "tiny-q4_k_m.gguf"
    quantize.quantize_gguf(f16, q4, "q4_k_m")
    prompt = prompts.make_prompt("chat", tiny_tokenizer)
    scorer = scorers.LlamaCppScorer(q4, prompt)
    try:
        texts = [
            prompt.render("Grüße aus Köln! 12345 Migranten 🚀 I've 'RE"),
            prompt.render("Göçmenler için ¿qué? مهاجرين प्रवासी 이민자"),
            "\n \n\n \t\t x  y   3.3 3...3 ''''''```````",
        ]
        for text in texts:
            # llama.cpp's llama-bpe pre-tokenizer gives transformers' ids, BOS included
            assert scorer.tokenize(text) == tiny_tokenizer(text).input_ids, text
        assert scorer.llm.token_eos() == tiny_tokenizer.convert_tokens_to_ids("<|eot_id|>")
        logp = scorer.score_one("hello")
        assert len(logp) == 4 and (logp < 0).all()
        assert isinstance(scorer.generate_one("hello", 3), str)
    finally:
        scorer.close()


# ---------------------------------------------------------------------------------------------
# The rehearsal, 00-05 end to end (slow)
# ---------------------------------------------------------------------------------------------

REHEARSED = ["00_data", "01_finetune", "02_quantize", "03_crosslingual_eval"]
REHEARSED += ["04_translation_ablation", "05_pretraining_bias"]


@pytest.mark.slow
def test_rehearsal_runs_00_to_05(scratch_root, paper_data):
    import shutil

    # 05 reads the LLaMA 2 shares, which the scratch copy of the project lacks
    shutil.copy(paths.ROOT / "data" / "pretraining_shares.csv", scratch_root / "data")
    cmd = [sys.executable, "-m", "xling.run.runner", "--profile", "rehearsal"]
    cmd += ["--paper-data", str(paper_data), "--only", *REHEARSED]
    t0 = time.perf_counter()
    res = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=scratch_env(scratch_root),
        cwd=scratch_root,
        timeout=3600,
    )
    print(res.stdout[-4000:], f"\n{time.perf_counter() - t0:.0f} s")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    out = res.stdout
    assert "a rehearsal of profile full" in out
    assert "skipped: base_quant nf4" in out and "skipped: dtype bfloat16" in out
    for nb in REHEARSED:
        assert f"{nb}: done in" in out, nb
    run = scratch_root / "runs" / "rehearsal"
    summary = pd.read_csv(run / "adapters" / "summary.csv")
    # full's variants (the paper's four and our en+pairs), as the rehearsal declares them
    variants = set(config.load_profile("rehearsal").common["variants"])
    assert variants == {"en", "es", "en-es", "multi", "en+pairs"}
    assert set(summary["variant"]) == variants
    cfg = json.loads((run / "adapters" / "en" / "adapter" / "adapter_config.json").read_text())
    assert sorted(cfg["target_modules"]) == ["q_proj", "v_proj"] and cfg["r"] == 64
    for v in variants:
        for kind in ("f16", "q8_0", "q4_k_m", "lora"):
            assert (run / "gguf" / f"{v}-{kind}.gguf").exists()
    predictions = pd.read_csv(run / "predictions.csv")
    assert set(predictions["method"]) == {"score", "generate"}
    assert set(predictions["backend"]) == {"llamacpp-q4_k_m"}
    assert (run / "regression" / "summary.txt").exists()


# ---------------------------------------------------------------------------------------------
# bench/gpu_check.sh
# ---------------------------------------------------------------------------------------------


def _gpu_check(*args, **env):
    script = paths.ROOT / "bench" / "gpu_check.sh"
    full_env = dict(scratch_env(paths.ROOT), XLING_VENV=sys.prefix, **env)
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_gpu_check_dry_run_prints_its_commands_and_runs_nothing(tmp_path):
    res = _gpu_check("--dry-run", "--steps", "12", OUT=str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("[gpu-check] would run:")]
    assert len(lines) == 3
    train, measure, bench_cmd = lines
    assert "xling.run.runner --profile demo" in train and "01_finetune.steps 12" in train
    assert "device cuda" in train and "dtype bfloat16" in train
    assert "bench/gpu_check.py" in measure and "bench/classify.py" in bench_cmd
    assert f"{tmp_path}/gpu-check" in res.stdout  # under $OUT when it is set
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_gpu_check_without_a_gpu_stops_with_a_clear_message(tmp_path):
    res = _gpu_check(OUT=str(tmp_path))
    assert res.returncode == 2
    assert "error: no CUDA GPU visible to torch" in res.stderr
    assert "./run_all.sh --gpu --setup" in res.stderr


def test_gpu_check_refuses_an_unknown_option():
    res = _gpu_check("--fast")
    assert res.returncode == 2 and "unknown option --fast" in res.stderr
