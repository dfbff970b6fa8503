"""Errors of the model stage: a model or GGUF file that cannot be used, a failed quantization."""

from __future__ import annotations


class ModelError(RuntimeError):
    """A model that cannot be used: missing, truncated, corrupt, or without safetensors weights."""


class QuantizeError(RuntimeError):
    """A conversion or quantization that failed; its partial output has been deleted."""
