"""Translate posts into English with a local LLM, and measure how good the translations are.

The paper classified machine translations of the non-English posts with its English-only model
(``docs/FACTS.md``; the translator is not named). Here any GGUF model translates through
llama-cpp-python: the demo's embedded model is a base model without a chat template, so the prompt
is a few-shot one built from *training* posts of the same language and their reference
translations (``text_en``), never the post being translated and never a test post. Decoding is
greedy and stops at the end of the line; the output is cleaned of quotes, labels and chatter.

Every finished post is appended to a JSON-lines cache keyed by the model's sha256, the prompt and
the post (as :func:`xling.infer.classify` does), so a killed run resumes and a re-run translates
nothing. A translation that comes back empty or unchanged is marked in ``mt_status``, never dropped.

Quality is measured with sacrebleu (chrF and BLEU, per language, against ``text_en`` where it is a
reference) and with the authors' human check ``translation_ok`` where the data has one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xling.infer import end_cut_line, read_jsonl_cache
from xling.models.scorers import open_llama
from xling.schema import LANG_NAMES

#: Bump when the prompt's wording or layout changes: the cache keys follow it.
PROMPT_VERSION = "fewshot-v1"
INSTRUCTION = "Translate each social media post into English. Keep names, hashtags and emoji."
#: What ``mt_status`` says about a translation.
MT_STATUSES = ("ok", "truncated", "unchanged", "empty")


def lang_name(lang: str) -> str:
    return LANG_NAMES.get(lang, lang)


def _flat(text: str) -> str:
    """One line: the prompt is line-based, and decoding stops at the first newline."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------------
# The few-shot prompt
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FewShotPrompt:
    """An instruction, then ``n`` (source, English) example pairs, then the post to translate."""

    lang: str
    examples: tuple[tuple[str, str, str], ...]  # (lang, text, text_en)

    @property
    def prefix(self) -> str:
        """Everything before the post: shared by every post of a language, so llama.cpp keeps
        its KV cache and a post costs only its own tokens."""
        lines = [INSTRUCTION, ""]
        for lang, text, text_en in self.examples:
            lines += [f"{lang_name(lang)}: {_flat(text)}", f"English: {_flat(text_en)}", ""]
        return "\n".join(lines) + "\n"

    def body(self, text: str) -> str:
        return f"{lang_name(self.lang)}: {_flat(text)}\nEnglish:"

    def render(self, text: str) -> str:
        return self.prefix + self.body(text)


def pick_examples(
    pool: pd.DataFrame,
    lang: str,
    n_shots: int,
    exclude_texts=(),
    max_chars: int = 160,
    seed: int = 0,
) -> tuple[tuple[str, str, str], ...]:
    """``n_shots`` example pairs for translating from ``lang``: training posts only (split
    ``train``) that have a reference ``text_en``, none whose text equals (after
    :func:`xling.data.normalize_text`) any text in ``exclude_texts`` (the posts to be
    translated), short ones first (every prompt token costs on a CPU). Taken from the same
    language when it has enough, topped up from the other languages otherwise (Korean has no
    training posts). The same pool and seed give the same examples."""
    from xling.data.audit import normalize_text

    if n_shots <= 0:
        return ()
    excluded = {normalize_text(t) for t in exclude_texts}
    ref = pool["text_en"] if "text_en" in pool.columns else pd.Series("", index=pool.index)
    ok = (
        (pool["split"] == "train")
        & ref.notna()
        & (ref.astype(str).str.strip() != "")
        & (pool["lang"] != "en")
        & (pool["text"].astype(str).str.len() <= max_chars)
        & ~pool["text"].map(normalize_text).isin(excluded)
    )
    cands = pool[ok]
    rng = np.random.default_rng(seed)
    same = cands[cands["lang"] == lang]
    picked = same.iloc[rng.permutation(len(same))[:n_shots]] if len(same) else same
    if len(picked) < n_shots:
        other = cands[cands["lang"] != lang]
        extra = other.iloc[rng.permutation(len(other))[: n_shots - len(picked)]]
        picked = pd.concat([extra, picked])  # the post's own language comes last, nearest
    return tuple((str(r.lang), str(r.text), str(r.text_en)) for r in picked.itertuples(index=False))


def build_prompts(
    pool: pd.DataFrame,
    to_translate: pd.DataFrame,
    n_shots: int = 3,
    max_chars: int = 160,
    seed: int = 0,
) -> dict[str, FewShotPrompt]:
    """One few-shot prompt per language of ``to_translate``, its examples from ``pool``'s
    training posts (see :func:`pick_examples`)."""
    exclude = to_translate["text"].tolist()
    return {
        lang: FewShotPrompt(lang, pick_examples(pool, lang, n_shots, exclude, max_chars, seed))
        for lang in sorted(to_translate["lang"].unique())
    }


# --------------------------------------------------------------------------------------------
# Cleaning the translator's output
# --------------------------------------------------------------------------------------------

_QUOTES = {'"': '"', "'": "'", "“": "”", "„": "“", "«": "»", "‘": "’", "»": "«", "「": "」"}
_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:english(?:\s+translation)?|translation(?:\s+in(?:to)?\s+english)?"
    r"|translated(?:\s+text)?|answer)\s*(?:\*\*)?\s*[:=\-–]\s*",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"^\s*(?:sure|okay|ok|certainly|of course|here(?:'s| is)|below is|the translation"
    r"|the english translation)\b[^:\n]{0,60}:\s*",
    re.IGNORECASE,
)
_NOTE = re.compile(
    r"\s*(?:\((?:note|translation|translated|literally|lit\.)\b[^)]*\)|"
    r"\b(?:note|n\.b\.)\s*:.*)\s*$",
    re.IGNORECASE,
)
#: A line that starts another example or a classification: the model ran past its answer.
_RUNON = re.compile(
    r"\s+(?:" + "|".join(sorted(set(LANG_NAMES.values()))) + r"|Post|Category|Answer)\s*[:=]\s.*$"
)


def clean_translation(raw: str | None) -> str:
    """The translation in a model's raw output: its first non-empty line, without a leading
    label (``English:``, ``Translation:``), chatter (``Here is the translation:``), quotes
    wrapped around the whole text, a trailing note (``(Note: ...)``) or a run-on into the next
    example (``... German: ...``). Empty when nothing is left."""
    text = "" if raw is None else str(raw)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    for _ in range(3):  # labels and chatter can come stacked ("Sure! English: ...")
        before = text
        text = _CHATTER.sub("", text)
        text = _LABEL.sub("", text)
        text = re.sub(r"^(?:sure|okay|ok|certainly)[!.,]\s*", "", text, flags=re.IGNORECASE)
        if text == before:
            break
    text = _RUNON.sub("", text)
    text = _NOTE.sub("", text).strip()
    while len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return " ".join(text.split())


def translation_status(translation: str, source: str, truncated: bool = False) -> str:
    """``empty`` (nothing left after cleaning), ``unchanged`` (the source again, up to case,
    punctuation and links), ``truncated`` (decoding stopped at the token limit, mid-sentence
    perhaps) or ``ok``."""
    from xling.data.audit import normalize_text

    if not str(translation).strip():
        return "empty"
    if normalize_text(translation) == normalize_text(source):
        return "unchanged"
    return "truncated" if truncated else "ok"


# --------------------------------------------------------------------------------------------
# The translator (llama.cpp) and its cache
# --------------------------------------------------------------------------------------------


class LlamaCppTranslator:
    """Greedy decoding with a GGUF model until the end of the line; the prompt prefix (the
    instruction and examples) is evaluated once per language and its KV cache kept."""

    def __init__(
        self,
        gguf: str | os.PathLike[str],
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
    ):
        self.llm = open_llama(gguf, n_ctx=n_ctx, n_threads=n_threads, seed=seed, what="translator")
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = n_ctx
        self._prefix: list[int] = []

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def _last_logits(self) -> np.ndarray:
        ptr = self.llm._ctx.get_logits()
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def translate_one(self, prompt: FewShotPrompt, text: str, max_new_tokens: int = 64):
        """(raw output, truncated): greedy tokens after ``English:`` up to a newline, the end of
        text or ``max_new_tokens`` (then ``truncated`` is True)."""
        from xling.models.scorers import quiet_stderr

        prefix = self.tokenize(prompt.prefix)
        toks = self.tokenize(prompt.render(text))
        room = self.n_ctx - max_new_tokens
        if len(toks) > room:  # a very long post: keep its start and the "English:" cue
            cue = self.tokenize("\nEnglish:")[1:]
            toks = toks[: room - len(cue)] + cue
        n = len(prefix)
        with quiet_stderr():
            if self._prefix and self._prefix == prefix and toks[:n] == prefix:
                self.llm.n_tokens = n  # eval() drops the KV cells after the shared prefix
                self.llm.eval(toks[n:])
            else:
                self.llm.reset()
                self.llm.eval(toks)
                self._prefix = prefix if toks[:n] == prefix else []
        eos = self.llm.token_eos()
        out = b""
        for _ in range(max_new_tokens):
            tok = int(np.argmax(self._last_logits()))
            if tok == eos:
                return out.decode("utf-8", errors="replace"), False
            piece = self.llm.detokenize([tok])
            if b"\n" in piece and out.strip():
                out += piece.split(b"\n", 1)[0]
                return out.decode("utf-8", errors="replace"), False
            out += piece
            with quiet_stderr():
                self.llm.eval([tok])
        return out.decode("utf-8", errors="replace"), True

    def close(self) -> None:
        from xling.models.scorers import quiet_stderr

        with quiet_stderr():
            self.llm.close()


def cache_file(model: str | os.PathLike[str], max_new_tokens: int) -> Path:
    """The translation cache of one (model file, prompt version, token limit): a JSON-lines file,
    one finished post per line."""
    from xling import paths
    from xling.models.base import sha256_file

    spec = json.dumps([sha256_file(model), PROMPT_VERSION, INSTRUCTION, max_new_tokens])
    key = hashlib.sha256(spec.encode()).hexdigest()[:20]
    return paths.RUNS / "cache" / "translations" / f"{key}.jsonl"


def _sha(text: str) -> str:
    return hashlib.sha256(str(text).encode()).hexdigest()[:16]


def post_key(post_id: str, text: str, prompt: FewShotPrompt) -> str:
    """A post's cache key: its id, its text and its prompt (examples included)."""
    return f"{post_id}|{_sha(text)}|{_sha(prompt.prefix + prompt.body(''))}"


def translate_posts(
    posts: pd.DataFrame,
    model: str | os.PathLike[str],
    prompts: dict[str, FewShotPrompt],
    max_new_tokens: int = 64,
    progress: bool = True,
    translator=None,
    n_threads: int | None = None,
) -> pd.DataFrame:
    """Translate ``posts`` (post_id, text, lang) into English with the GGUF ``model``, one
    few-shot prompt per language (:func:`build_prompts`).

    Returns post_id, ``text_mt`` (the cleaned translation), ``mt_status`` (see
    :func:`translation_status`), ``mt_raw`` (the model's output as generated) and ``mt_seconds``
    (time spent on the post when it was translated; 0 for none in the cache). Every finished
    post is appended to the cache (:func:`cache_file`), so a killed run resumes where it stopped
    and a re-run translates nothing; the cleaning runs again on every read, so a change to the
    cleaner needs no re-translation. ``translator`` (anything with ``translate_one``) may be
    passed to reuse an open model, or to test.
    """
    from tqdm import tqdm

    missing = sorted(set(posts["lang"]) - set(prompts))
    if missing:
        raise ValueError(f"no translation prompt for language(s) {', '.join(missing)}")
    path = cache_file(model, max_new_tokens)
    done = read_jsonl_cache(path)
    keys = [
        post_key(p, t, prompts[lang])
        for p, t, lang in zip(posts["post_id"], posts["text"], posts["lang"], strict=True)
    ]
    # language by language, so the shared prefix stays in the KV cache
    todo = sorted(
        (i for i, k in enumerate(keys) if k not in done), key=lambda i: posts["lang"].iloc[i]
    )
    if todo:
        own = translator is None
        translator = translator or LlamaCppTranslator(model, n_threads=n_threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        end_cut_line(path)
        texts, langs = posts["text"].tolist(), posts["lang"].tolist()
        try:
            with path.open("a", encoding="utf-8") as f:
                for i in tqdm(todo, desc="translate", disable=not progress):
                    start = time.perf_counter()
                    raw, truncated = translator.translate_one(
                        prompts[langs[i]], texts[i], max_new_tokens
                    )
                    rec = {
                        "key": keys[i],
                        "raw": raw,
                        "truncated": bool(truncated),
                        "seconds": round(time.perf_counter() - start, 4),
                    }
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    f.flush()
                    done[keys[i]] = rec
        finally:
            if own and hasattr(translator, "close"):
                translator.close()
    fresh = set(keys[i] for i in todo)
    raw = [done[k]["raw"] for k in keys]
    text_mt = [clean_translation(r) for r in raw]
    status = [
        translation_status(mt, src, done[k].get("truncated", False))
        for mt, src, k in zip(text_mt, posts["text"], keys, strict=True)
    ]
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "text_mt": text_mt,
            "mt_status": status,
            "mt_raw": raw,
            "mt_seconds": [done[k]["seconds"] if k in fresh else 0.0 for k in keys],
        },
        index=posts.index,
    )


def given_translations(posts: pd.DataFrame, column: str = "text_en") -> pd.DataFrame:
    """Translations that come with the data (the authors' machine translations in the paper
    profile), in the same form as :func:`translate_posts` returns: post_id, text_mt, mt_status,
    mt_raw, mt_seconds. A post without one is ``empty``."""
    col = posts[column] if column in posts.columns else pd.Series(None, index=posts.index)
    text_mt = [" ".join(str(t).split()) if isinstance(t, str) else "" for t in col]
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "text_mt": text_mt,
            "mt_status": [
                translation_status(mt, src) for mt, src in zip(text_mt, posts["text"], strict=True)
            ],
            "mt_raw": col.to_numpy(),
            "mt_seconds": float("nan"),  # not translated here
        },
        index=posts.index,
    )


# --------------------------------------------------------------------------------------------
# Classifying the translations
# --------------------------------------------------------------------------------------------


def classify_translations(
    translated: pd.DataFrame,
    files_for,
    variants,
    backend: str,
    prompt,
    method: str = "score",
    max_new_tokens: int = 3,
    progress: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Predictions (``xling.metrics.PREDICTION_COLUMNS``) with input ``translated`` for every
    variant over ``translated`` (the posts table's columns plus ``text_mt``).

    Unlike ``infer.predict(..., inputs=("translated",))`` nothing is left out: a post whose
    translation came back empty is classified as it is (an empty post), since that is what the
    English model gets from this translator. Cached per post by :func:`xling.infer.classify`.
    """
    from xling.infer import classify
    from xling.schema import PREDICTION_COLUMNS

    sub = translated.assign(text=translated["text_mt"].fillna("").astype(str))
    parts = []
    for variant in variants:
        out = classify(
            sub,
            files_for(variant, backend),
            prompt,
            method,
            max_new_tokens,
            progress,
            desc=f"{variant} {backend} {method} translated",
            device=device,
        )
        parts.append(
            sub[["post_id", "lang", "label", "split", "evalset"]].assign(
                variant=variant,
                backend=backend,
                input="translated",
                method=method,
                prediction=out["prediction"].to_numpy(),
                raw_output=out["raw_output"].to_numpy(),
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(PREDICTION_COLUMNS)]


# --------------------------------------------------------------------------------------------
# Translation quality
# --------------------------------------------------------------------------------------------


def sentence_chrf(hypotheses, references) -> np.ndarray:
    """chrF (sacrebleu, 0-100) of each translation against its reference; NaN without one."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    out = []
    for hyp, ref in zip(hypotheses, references, strict=True):
        if not isinstance(ref, str) or not ref.strip():
            out.append(np.nan)
        else:
            out.append(chrf.sentence_score(str(hyp or ""), [ref]).score)
    return np.array(out, dtype=float)


def translation_quality(
    translated: pd.DataFrame, reference: str | None = "text_en"
) -> pd.DataFrame:
    """Per language and over all (``lang`` = ``all``): n, how many translations are empty,
    unchanged or truncated, corpus chrF and BLEU against ``reference`` (sacrebleu; NaN where
    there is no reference), the mean sentence chrF, and the human check: n_checked and
    share_good (``translation_ok`` = 1)."""
    from sacrebleu.metrics import BLEU, CHRF

    rows = []
    groups = [(lang, g) for lang, g in translated.groupby("lang", sort=True)]
    groups.append(("all", translated))
    for lang, g in groups:
        row = {"lang": lang, "n": len(g)}
        for status in MT_STATUSES[1:]:
            row[f"n_{status}"] = int((g["mt_status"] == status).sum())
        refs = g[reference] if reference and reference in g.columns else None
        has = refs.notna() & (refs.astype(str).str.strip() != "") if refs is not None else None
        if has is not None and has.any():
            hyp = g.loc[has, "text_mt"].fillna("").astype(str).tolist()
            ref = refs[has].astype(str).tolist()
            row["n_reference"] = int(has.sum())
            row["chrf"] = CHRF().corpus_score(hyp, [ref]).score
            # corpus BLEU with sacrebleu's defaults; a language's few dozen posts make it jumpy
            row["bleu"] = BLEU().corpus_score(hyp, [ref]).score
            row["chrf_sentence_mean"] = float(np.mean(sentence_chrf(hyp, ref)))
        else:
            row.update(n_reference=0, chrf=np.nan, bleu=np.nan, chrf_sentence_mean=np.nan)
        ok = g["translation_ok"] if "translation_ok" in g.columns else pd.Series(dtype=float)
        checked = pd.to_numeric(ok, errors="coerce").dropna()
        row["n_checked"] = len(checked)
        row["share_good"] = float((checked == 1).mean()) if len(checked) else np.nan
        if "mt_seconds" in g.columns:
            row["seconds"] = float(g["mt_seconds"].sum(min_count=1))
        rows.append(row)
    cols = ["lang", "n", "n_truncated", "n_unchanged", "n_empty", "n_reference", "chrf", "bleu"]
    cols += ["chrf_sentence_mean", "n_checked", "share_good"]
    table = pd.DataFrame(rows)
    return table[cols + (["seconds"] if "seconds" in table.columns else [])]
