"""The model stage: the base model, prompts and answer tokens, LoRA fine-tuning, merging and
GGUF export, quantization, and the scorers that read the four labels' probabilities.

Modules: ``base`` (the embedded model, local folders), ``errors``, ``prompts`` (the paper's prompt
in each format, answer tokens, parsing a generated answer), ``finetune`` (LoRA training with
checkpoints), ``gguf`` (GGUF layout checks and splicing, without llama.cpp), ``quantize`` (merge,
convert, quantize, compare files), ``layout`` (which files a variant and backend classify with),
``scorers`` (llama.cpp and transformers scorers), ``hidden`` (every layer's hidden states and the
logit lens, cached per model files, prompt and post).

Layer 3. May import: the layers below (:mod:`xling.data`, :mod:`xling.config`,
:mod:`xling.artifacts`, :mod:`xling.paths`, :mod:`xling.schema`).
"""

from __future__ import annotations

from xling.models.base import (  # noqa: F401
    EMBEDDED,
    BaseModel,
    embedded_gguf,
    load_base,
    resolve_base,
    sha256_file,
)
from xling.models.errors import (  # noqa: F401
    ModelError,
    QuantizeError,
)
from xling.models.gguf import (  # noqa: F401
    check_gguf,
    gguf_layout,
    splice_gguf,
)
from xling.models.hidden import (  # noqa: F401
    HiddenStates,
    ModelSource,
    hidden_states,
    model_source,
)
from xling.models.layout import ModelFiles, model_files  # noqa: F401
