"""The two tables' contracts: labels, splits, languages and the columns of posts and predictions.

Every stage reads these names from here (DESIGN.md, "Data flows through two tables"), so the
vocabulary of the task is written once.

Layer: the bottom (imports nothing from xling).
"""

from __future__ import annotations

#: The four labels, in the order tables and figures use.
LABELS = ("unrelated", "neutral", "pro-immigration", "anti-immigration")
#: Labels of posts about immigration (topic versus stance: stance is the label among these).
RELATED = ("neutral", "pro-immigration", "anti-immigration")
#: The number each label has in the authors' prompt and ``catCode`` column.
CAT_CODES = {1: "pro-immigration", 2: "anti-immigration", 3: "neutral", 4: "unrelated"}
LABEL_NUMBER = {label: number for number, label in CAT_CODES.items()}
#: The paper's 13 languages, in the order its tables use (Korean only ever as an extra test set).
PAPER_LANGS = ("en", "es", "ar", "de", "fr", "hi", "hu", "id", "it", "pl", "pt", "tr", "ko")
#: ``eval``: a labelled file given as an evaluation set (``eval_files``), never trained on.
SPLITS = ("train", "test", "extra", "eval")
#: The splits classified and scored: every split but train.
EVAL_SPLITS = ("test", "extra", "eval")
#: What a loader does with the same text labelled differently in two rows of a file: refuse it
#: (an error naming the rows), drop every such row, or keep the first.
CONFLICTS = ("refuse", "drop", "first")
#: Which posts-table column holds each training split (``pooled``: the authors' mig-multi split).
TRAIN_SPLITS = {"per_language": "split", "pooled": "split_multi"}
#: Language codes the authors' files write differently from ISO 639-1.
LANG_ALIASES = {"in": "id"}
#: English names of the languages, as prompts write them (translation, translation pairs).
LANG_NAMES = {
    "ar": "Arabic",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ko": "Korean",
    "pl": "Polish",
    "pt": "Portuguese",
    "tr": "Turkish",
}

#: The posts table (written by 00_data).
POSTS_COLUMNS = (
    "post_id",
    "text",
    "lang",
    "label",
    "split",
    "evalset",
    "text_en",
    "translation_ok",
    "source",
    "split_multi",
)
REQUIRED_USER_COLUMNS = ("text", "lang", "label")

#: The predictions table (written by 03, and by 04 for translated posts).
PREDICTION_COLUMNS = (
    "post_id",
    "lang",
    "label",
    "split",
    "evalset",
    "variant",
    "backend",
    "input",
    "method",
    "prediction",
    "raw_output",
)
#: A generated answer that could not be parsed as a label.
FAILED = "failed"
#: How a label is read from a model: label log-probabilities, greedy decoding parsed, or the
#: label log-probabilities divided by the model's content-free prior (Zhao et al. 2021).
METHODS = ("score", "generate", "calibrated")
#: The learning-rate schedules of fine-tuning after warm-up (``lr_schedule``): constant (the
#: paper's) or linear, down to zero at the last step.
LR_SCHEDULES = ("constant", "linear")
INPUTS = ("original", "translated")
#: Where a post's hidden state is read (notebook 07): the mean over its own tokens, or the last
#: prompt token (where the answer is read).
POSITIONS = ("mean", "last")
#: How a language with no LLaMA 2 share is coded in the pretraining regression (notebook 05).
CODINGS = ("authors", "half_threshold", "drop")
#: The llama.cpp quantizations notebook 02 can make (f16 is the unquantized GGUF).
QUANT_TYPES = ("q8_0", "q4_k_m", "q5_k_m", "q4_0", "q6_k")
