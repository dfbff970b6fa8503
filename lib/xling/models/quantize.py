"""Merge adapters, export GGUF, quantize, and check every file written.

llama.cpp's converters (``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py``) ship in no wheel;
they are in the source distribution of the pinned llama-cpp-python, and must run with the
``gguf-py`` bundled beside them (PyPI's gguf is older than the converter expects).
``xling.run.setup`` fetches that source distribution once at set-up (run_all.sh), checks its
sha256 against PyPI's, and extracts only the converter files into the virtual environment; at run
time nothing is downloaded.

The files' names are in :mod:`xling.models.layout`; GGUF surgery in :mod:`xling.models.gguf`.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from xling.models.errors import QuantizeError
from xling.models.gguf import splice_gguf
from xling.models.tiny import LLAMA3_SPLIT
from xling.schema import QUANT_TYPES


def llama_cpp_version() -> str:
    return metadata.version("llama-cpp-python")


def converter_dir() -> Path:
    """Where the converter of the installed llama-cpp-python version lives (inside the venv)."""
    return Path(sys.prefix) / "share" / "xling" / f"llama.cpp-{llama_cpp_version()}"


def converter_script(name: str = "convert_hf_to_gguf.py") -> Path:
    """Path of a converter script; a clear error if set-up has not installed it."""
    path = converter_dir() / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: llama.cpp's converter is installed by ./run_all.sh --setup "
            "(or: python -m xling.run.setup)"
        )
    return path


#: llama.cpp file types by the names used in file names and tables.
FTYPES = {q: f"LLAMA_FTYPE_MOSTLY_{q.upper()}" for q in QUANT_TYPES}


def merge_adapter(base_folder: Path, adapter: Path, out: Path) -> Path:
    """Merge a LoRA adapter into its base model (peft merge_and_unload); save safetensors and
    the tokenizer to ``out``. Reused when ``out`` is complete."""
    if (out / "model.safetensors").exists() and (out / "xling-merged.json").exists():
        return out
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(
        base_folder, dtype=torch.float32, use_safetensors=True
    )
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(tmp, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_folder).save_pretrained(tmp)
    (tmp / "xling-merged.json").write_text(
        json.dumps({"base": str(base_folder), "adapter": str(adapter)})
    )
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


#: Llama 3's pre-tokenizer as tokenizer.json writes it: the split pattern, then the byte-level
#: mapping without its own regex. llama.cpp calls it ``llama-bpe``.
LLAMA3_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {
            "type": "Split",
            "pattern": {"Regex": LLAMA3_SPLIT},
            "behavior": "Isolated",
            "invert": False,
        },
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ],
}


def tokenizer_pre_override(model_folder: Path) -> str | None:
    """``llama-bpe`` when the folder's tokenizer.json pre-tokenizes exactly as Llama 3's does,
    else None.

    llama.cpp's converter names a BPE pre-tokenizer by the sha256 of the token ids it gives for a
    fixed text and refuses any hash it does not know ("BPE pre-tokenizer was not recognized").
    The ids depend on the vocabulary, so a tokenizer with Llama 3's pre-tokenizer and a vocabulary
    of its own (the tiny Llama of the rehearsal profile) cannot match Llama 3's hash, though
    llama.cpp's ``llama-bpe`` pre-tokenization is the right one for it. For such a folder, and
    only when the hash is unknown, the converter is told the name instead (the real Llama 3's
    hash is known and taken as it is). The installed converter is not changed: it runs inside
    a small wrapper that answers ``get_vocab_base_pre`` where the converter raises. A test checks
    that llama.cpp then tokenizes as transformers does."""
    file = Path(model_folder) / "tokenizer.json"
    if not file.exists():
        return None
    with file.open(encoding="utf-8") as f:
        tok = json.load(f)
    if tok.get("model", {}).get("type") != "BPE":
        return None
    return "llama-bpe" if tok.get("pre_tokenizer") == LLAMA3_PRE_TOKENIZER else None


#: Runs a converter script with a known pre-tokenizer name for a hash it does not know (argv: the
#: script, the name, then the script's own arguments). gguf-py beside the script comes first on
#: the path, as the script itself arranges, so that the bundled gguf is imported, not PyPI's.
_PRE_OVERRIDE = """
import runpy, sys
from pathlib import Path
script, pre = sys.argv[1], sys.argv[2]
sys.argv = [script, *sys.argv[3:]]
here = str(Path(script).parent)
sys.path[:0] = [here, str(Path(here) / "gguf-py")]
import conversion.base as base
known = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return known(self, tokenizer)
    except NotImplementedError:
        print(f"xling: pre-tokenizer hash not known to the converter; using {pre!r}")
        return pre
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
runpy.run_path(script, run_name="__main__")
"""


def _run_converter(
    script: str, args: list[str], out: Path, tokenizer_pre: str | None = None
) -> None:
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    path = str(converter_script(script))
    head = (
        [sys.executable, "-c", _PRE_OVERRIDE, path, tokenizer_pre]
        if tokenizer_pre
        else [
            sys.executable,
            path,
        ]
    )
    cmd = [*head, *args, "--outfile", str(tmp)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise QuantizeError(f"{script} failed for {out.name}:\n{tail}")
    os.replace(tmp, out)


def convert_to_gguf(model_folder: Path, out: Path, outtype: str = "f16") -> Path:
    """A safetensors model folder -> one GGUF file (llama.cpp's convert_hf_to_gguf.py)."""
    if not out.exists():
        _run_converter(
            "convert_hf_to_gguf.py",
            [str(model_folder), "--outtype", outtype],
            out,
            tokenizer_pre_override(Path(model_folder)),
        )
    return out


def _adapter_sha256(adapter: Path) -> str:
    """The sha256 of a peft adapter's weights, the stamp its exported files are checked by."""
    from xling.models.base import sha256_file

    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.exists():
        raise QuantizeError(f"{adapter}: no adapter_model.safetensors (run 01_finetune first)")
    return sha256_file(weights)


def export_lora_gguf(adapter: Path, base_folder: Path, out: Path) -> Path:
    """A peft adapter -> a LoRA GGUF for llama.cpp (convert_lora_to_gguf.py), a few MB.

    A stamp beside ``out`` (``<out>.adapter-sha256``) records the adapter it was made from: an
    ``out`` made from another adapter (the variant was retrained), or without a stamp, is made
    again, so a retrained adapter is never scored through its predecessor's file."""
    sha = _adapter_sha256(adapter)
    stamp = out.with_name(out.name + ".adapter-sha256")
    if out.exists() and stamp.exists() and stamp.read_text().strip() == sha:
        return out
    out.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    _run_converter(
        "convert_lora_to_gguf.py",
        [str(adapter), "--base", str(base_folder), "--outtype", "f16"],
        out,
    )
    stamp.write_text(sha + "\n")
    return out


def quantize_gguf(src: Path, out: Path, qtype: str, threads: int | None = None) -> float:
    """Quantize a GGUF file with llama.cpp's own quantizer (llama-cpp-python, no binary).
    Returns the seconds it took (0 when the file was already there)."""
    import llama_cpp

    from xling.models.scorers import quiet_stderr

    if out.exists():
        return 0.0
    if qtype not in FTYPES:
        raise ValueError(f"unknown quantization {qtype!r}; one of {', '.join(FTYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[qtype])
    params.nthread = threads or os.cpu_count() or 1
    tmp = out.with_name(out.name + ".partial")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with quiet_stderr():
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(tmp).encode(), ctypes.byref(params)
        )
    seconds = time.perf_counter() - t0
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise QuantizeError(f"llama_model_quantize {src.name} -> {qtype} failed (code {rc})")
    os.replace(tmp, out)
    return seconds


def verify_gguf(path: Path, prompt, lora: Path | None = None, text: str = "Hello") -> dict:
    """Check a GGUF file after writing: complete, loads, classifies one post. A file that fails
    is deleted (never left for the next step) and the error says why."""
    from xling.models.gguf import check_gguf
    from xling.models.scorers import LlamaCppScorer

    try:
        info = check_gguf(path)
        scorer = LlamaCppScorer(path, prompt, lora=lora, n_ctx=512)
        logp = scorer.score_one(text)
        scorer.close()
        if not all(map(lambda v: v == v and v < 0, logp)):  # NaN or impossible values
            raise QuantizeError(f"{path.name}: classifies to invalid scores {logp}")
    except Exception as err:
        path.unlink(missing_ok=True)
        raise QuantizeError(f"{path}: failed its check and was deleted: {err}") from err
    return info


def comparison_posts(posts, n: int, seed: int = 0):
    """``n`` evaluation posts (test and extra), spread evenly over the evaluation sets."""
    import pandas as pd

    test = posts[posts["split"].isin(["test", "extra"])]  # not the evaluation files' posts
    per = max(1, -(-n // test["evalset"].nunique()))
    picked = pd.concat(
        g.sample(min(per, len(g)), random_state=seed) for _, g in test.groupby("evalset")
    )
    return picked.sample(min(n, len(picked)), random_state=seed).reset_index(drop=True)


def build_variant_files(
    base,
    variants,
    run_dir: Path,
    quant_types=("q8_0", "q4_k_m"),
    prompt_format: str = "plain",
    mixes: dict[str, list[str]] | None = None,
    task=None,
):
    """Merged GGUF files (f16 and each quantization) and a LoRA GGUF per variant, each checked
    after writing (scored with ``task``'s prompt; default the paper's). ``mixes`` (name ->
    tensor-name parts) adds Q4_K_M files whose matching tensors are taken from the Q8_0 file
    (backend ``llamacpp-q4_k_m+<name>``). Returns one row per (variant, backend): file, LoRA
    file, size, seconds."""
    import pandas as pd
    from transformers import AutoTokenizer

    from xling.models.prompts import make_prompt

    gguf_dir = run_dir / "gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    prompt = make_prompt(prompt_format, AutoTokenizer.from_pretrained(base.folder), task=task)
    if base.gguf is not None and "q4_k_m" in base.gguf.name.lower():
        base_q4 = base.gguf  # the embedded model ships as Q4_K_M already
    else:
        base_f16 = convert_to_gguf(base.folder, gguf_dir / "base-f16.gguf")
        base_q4 = gguf_dir / "base-q4_k_m.gguf"
        if not base_q4.exists():
            quantize_gguf(base_f16, base_q4, "q4_k_m")
            verify_gguf(base_q4, prompt)
    mixes = dict(mixes or {})
    if mixes and not {"q8_0", "q4_k_m"} <= set(quant_types):
        raise ValueError("mixed-precision files need both q8_0 and q4_k_m in quant_types")
    rows = []

    def add(variant, backend, path, lora=None, seconds=0.0):
        rows.append(
            {
                "variant": variant,
                "backend": backend,
                "file": str(path),
                "lora": str(lora) if lora else None,
                "size_mb": round(
                    (path.stat().st_size + (lora.stat().st_size if lora else 0)) / 1e6, 1
                ),
                "make_seconds": round(seconds, 1),
            }
        )

    for variant in variants:
        adapter = run_dir / "adapters" / variant / "adapter"
        _drop_stale_files(adapter, run_dir, variant)
        t0 = time.perf_counter()
        merged = merge_adapter(base.folder, adapter, run_dir / "merged" / variant)
        f16 = gguf_dir / f"{variant}-f16.gguf"
        if not f16.exists():
            convert_to_gguf(merged, f16)
            verify_gguf(f16, prompt)
        add(variant, "llamacpp-f16", f16, seconds=time.perf_counter() - t0)
        for qtype in quant_types:
            out = gguf_dir / f"{variant}-{qtype}.gguf"
            fresh = not out.exists()
            seconds = quantize_gguf(f16, out, qtype)
            if fresh:
                verify_gguf(out, prompt)
            add(variant, f"llamacpp-{qtype}", out, seconds=seconds)
        for name, keep in mixes.items():
            out = gguf_dir / f"{variant}-q4_k_m+{name}.gguf"
            fresh = not out.exists()
            low, high = gguf_dir / f"{variant}-q4_k_m.gguf", gguf_dir / f"{variant}-q8_0.gguf"
            seconds = splice_gguf(low, high, out, list(keep))
            if fresh:
                verify_gguf(out, prompt)
            add(variant, f"llamacpp-q4_k_m+{name}", out, seconds=seconds)
        lora = gguf_dir / f"{variant}-lora.gguf"
        t0 = time.perf_counter()
        if not lora.exists():
            export_lora_gguf(adapter, base.folder, lora)
            try:
                verify_gguf(base_q4, prompt, lora=lora)
            except QuantizeError as err:
                lora.unlink(missing_ok=True)
                raise QuantizeError(f"{lora}: failed its check and was deleted: {err}") from err
        add(variant, "llamacpp-q4_k_m+lora", base_q4, lora=lora, seconds=time.perf_counter() - t0)
    return pd.DataFrame(rows)


def run_files(files, run_dir: Path) -> list[Path]:
    """The files of a :func:`build_variant_files` table that this run made (under ``run_dir``;
    the embedded base model's own file lives in the shared model cache), each once."""
    out: list[Path] = []
    for col in ("file", "lora"):
        for value in files[col].dropna():
            path = Path(value)
            if path.resolve().is_relative_to(Path(run_dir).resolve()) and path not in out:
                out.append(path)
    return out


def compare_files(
    files,
    base,
    posts,
    prompt_format: str = "plain",
    progress: bool = True,
    task=None,
    n_gpu_layers: int = 0,
):
    """Score ``posts`` with the unquantized merged model and with every file; one row per
    (variant, backend): agreement and KL against the unquantized model, accuracy, posts/s.
    ``task``: whose labels the prompt asks for (default the paper's). ``n_gpu_layers``:
    llama.cpp's layers on a GPU (the unquantized model runs fp32 on the CPU)."""
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xling.models.prompts import make_prompt
    from xling.models.scorers import (
        LlamaCppScorer,
        TransformersScorer,
        agreement_and_kl,
        score_posts,
    )

    rows = []
    truth = posts["label"].to_numpy()
    for variant, group in files.groupby("variant", sort=False):
        merged = Path(group["file"].iloc[0]).parent.parent / "merged" / variant
        tok = AutoTokenizer.from_pretrained(merged)
        prompt = make_prompt(prompt_format, tok, task=task)
        model = AutoModelForCausalLM.from_pretrained(
            merged, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        t0 = time.perf_counter()
        ref = score_posts(
            TransformersScorer(model, tok, prompt), posts, progress, f"{variant} fp32"
        )
        ref_rate = len(posts) / (time.perf_counter() - t0)
        del model
        rows.append(
            {
                "variant": variant,
                "backend": "transformers-unquantized",
                "size_mb": round(
                    sum(p.stat().st_size for p in merged.glob("*.safetensors")) / 1e6, 1
                ),
                "agreement": 1.0,
                "kl": 0.0,
                "accuracy": float((ref["prediction"].to_numpy() == truth).mean()),
                "posts_per_s": round(ref_rate, 1),
                "make_seconds": None,
            }
        )
        for r in group.itertuples():
            lora = r.lora if isinstance(r.lora, str) and r.lora else None  # pandas: None -> NaN
            scorer = LlamaCppScorer(r.file, prompt, lora=lora, n_gpu_layers=n_gpu_layers)
            t0 = time.perf_counter()
            got = score_posts(scorer, posts, progress, f"{variant} {r.backend}")
            rate = len(posts) / (time.perf_counter() - t0)
            scorer.close()
            agree, kl = agreement_and_kl(ref, got)
            rows.append(
                {
                    "variant": variant,
                    "backend": r.backend,
                    "size_mb": r.size_mb,
                    "agreement": round(agree, 3),
                    "kl": round(kl, 4),
                    "accuracy": float((got["prediction"].to_numpy() == truth).mean()),
                    "posts_per_s": round(rate, 1),
                    "make_seconds": r.make_seconds,
                }
            )
    table = pd.DataFrame(rows)
    table["accuracy"] = table["accuracy"].round(3)
    return table


def finetune_check(
    files,
    base,
    posts,
    variants,
    eval_backend: str,
    prompt_format: str = "plain",
    per_variant: int = 200,
    seed: int = 0,
    progress: bool = True,
    task=None,
    n_gpu_layers: int = 0,
):
    """Predictions of the untuned base model (its Q4_K_M GGUF, variant ``base``) and of each
    variant's ``eval_backend`` file on the test posts of that variant's own training languages
    (at most ``per_variant`` of them), with ``task``'s prompt (default the paper's). Columns:
    post_id, lang, label, variant, prediction."""
    import pandas as pd
    from transformers import AutoTokenizer

    from xling.models.prompts import make_prompt
    from xling.models.scorers import LlamaCppScorer, score_posts

    prompt = make_prompt(prompt_format, AutoTokenizer.from_pretrained(base.folder), task=task)
    test = posts[posts["split"] == "test"]
    chosen = {}
    for variant, langs in variants.items():
        sub = test[test["lang"].isin(langs)]
        if len(sub) > per_variant:
            sub = sub.sample(per_variant, random_state=seed)
        chosen[variant] = sub
    union = pd.concat(chosen.values()).drop_duplicates("post_id")
    base_row = files[files["backend"] == "llamacpp-q4_k_m+lora"].iloc[0]
    # the base GGUF alone: no adapter
    scorer = LlamaCppScorer(base_row["file"], prompt, n_gpu_layers=n_gpu_layers)
    base_pred = score_posts(scorer, union, progress, "base (untuned)").set_index("post_id")
    scorer.close()
    rows = [
        union.assign(
            variant="base", prediction=base_pred.loc[union["post_id"], "prediction"].to_numpy()
        )
    ]
    for variant, sub in chosen.items():
        r = files[(files["variant"] == variant) & (files["backend"] == eval_backend)]
        if r.empty:
            raise ValueError(f"no {eval_backend} file for variant {variant}")
        r = r.iloc[0]
        lora = r["lora"] if isinstance(r["lora"], str) and r["lora"] else None
        scorer = LlamaCppScorer(r["file"], prompt, lora=lora, n_gpu_layers=n_gpu_layers)
        pred = score_posts(scorer, sub, progress, f"{variant} {eval_backend}")
        scorer.close()
        rows.append(sub.assign(variant=variant, prediction=pred["prediction"].to_numpy()))
    cols = ["post_id", "lang", "label", "variant", "prediction"]
    return pd.concat(rows, ignore_index=True)[cols]


def describe_comparison(table, eval_backend: str) -> list[str]:
    """Sentences computed from the comparison table (no number written by hand)."""
    lines = []
    means = table.groupby("backend")[
        ["agreement", "kl", "accuracy", "size_mb", "posts_per_s"]
    ].mean()
    for backend, r in means.sort_values("kl").iterrows():
        lines.append(
            f"{backend}: agreement {r['agreement']:.2f}, KL {r['kl']:.4f}, accuracy "
            f"{r['accuracy']:.2f}, {r['size_mb']:.0f} MB, {r['posts_per_s']:.1f} posts/s "
            "(mean over variants)"
        )
    if eval_backend in means.index:
        r = means.loc[eval_backend]
        lines.append(
            f"later notebooks classify with {eval_backend} "
            f"(agreement {r['agreement']:.2f} with the unquantized model)"
        )
    else:
        lines.append(f"eval_backend {eval_backend} is not among the files made here")
    return lines


def _drop_stale_files(adapter: Path, run_dir: Path, variant: str) -> None:
    """Delete a variant's merged model and GGUF files when they were made from another adapter
    (a retrained variant), so nothing downstream reads a stale file. A stamp beside the GGUF
    files records the adapter's sha256."""
    sha = _adapter_sha256(adapter)
    stamp = run_dir / "gguf" / f"{variant}.adapter-sha256"
    if stamp.exists() and stamp.read_text().strip() == sha:
        return
    shutil.rmtree(run_dir / "merged" / variant, ignore_errors=True)
    own = {"f16.gguf", "lora.gguf", *(f"{q}.gguf" for q in FTYPES)}
    for f in (run_dir / "gguf").glob(f"{variant}-*.gguf"):
        rest = f.name[len(variant) + 1 :]  # "en-es-f16.gguf" is not variant en's file
        if rest in own or rest.startswith("q4_k_m+"):
            f.unlink()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(sha + "\n")
