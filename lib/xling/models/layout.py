"""The file layout of a run's models: which files a (variant, backend) classifies with, and
clearing a retrained variant's stale files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


def model_files(run_dir: Path, base, variant: str, backend: str):
    """The files a (variant, backend) classifies with, by the names build_variant_files gives
    them. Variant ``base`` is the untuned base model: its own Q4_K_M GGUF for every llama.cpp
    backend (the embedded model ships only that), its folder for transformers."""

    gguf_dir = run_dir / "gguf"
    if variant == "base":
        if backend.startswith("transformers"):
            return ModelFiles(backend, base.folder)
        if base.gguf is not None and "q4_k_m" in base.gguf.name.lower():
            return ModelFiles(backend, base.gguf)
        return ModelFiles(backend, gguf_dir / "base-q4_k_m.gguf")
    if backend == "transformers-unquantized":
        folder = run_dir / "merged" / variant
    elif backend == "llamacpp-q4_k_m+lora":
        files = model_files(run_dir, base, "base", backend)
        return _existing(ModelFiles(backend, files.model, gguf_dir / f"{variant}-lora.gguf"))
    elif backend.startswith("llamacpp-"):
        folder = gguf_dir / f"{variant}-{backend.removeprefix('llamacpp-')}.gguf"
    else:
        raise ValueError(
            f"unknown backend {backend!r}: llamacpp-<quant>, llamacpp-q4_k_m+lora, "
            "llamacpp-q4_k_m+<mix> or transformers-unquantized"
        )
    return _existing(ModelFiles(backend, folder))


def _existing(files):
    for path in (files.model, files.lora):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{path} not found (run 02_quantize for this backend first)")
    return files


@dataclass(frozen=True)
class ModelFiles:
    """What one (variant, backend) classifies with: a GGUF file (+ LoRA GGUF) for llama.cpp, or a
    safetensors folder for transformers."""

    backend: str  # llamacpp-<quant>[+lora|+mix] or transformers-unquantized
    model: Path
    lora: Path | None = None

    @property
    def engine(self) -> str:
        return "transformers" if self.backend.startswith("transformers") else "llamacpp"

    def fingerprint(self) -> str:
        from xling.models.base import sha256_file

        if self.engine == "transformers":
            weights = sorted(self.model.glob("*.safetensors"))
            if not weights:
                raise FileNotFoundError(f"no safetensors weights in {self.model}")
            parts = [sha256_file(w) for w in weights]
        else:
            parts = [sha256_file(self.model)]
        if self.lora is not None:
            parts.append(sha256_file(self.lora))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()
