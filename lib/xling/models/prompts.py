"""Prompts: the paper's classification prompt, adapted to the model at hand and to the task.

The paper (docs/FACTS.md) asks LLaMA 3.2-3B-Instruct, in its chat format, for the most relevant
category of a tweet as a number (1 = pro-immigration, 2 = anti-immigration, 3 = neutral,
4 = unrelated), and reads the answer after ``Answer =``. The labels, their numbers and the
instruction come from the task (:mod:`xling.tasks`; ``tasks/immigration.yaml`` is the paper's).
Two formats here:

- ``plain``: for a base model without a chat template (the demo's Gemma 3 270M): the task's
  instruction (its category list) as plain text, then the post, then the ``Answer =`` stem. The
  shared instruction comes first so its KV cache can be reused across posts.
- ``chat``: the task's system message and instruction through the tokenizer's own chat template
  (instruction-tuned models).

The authors' exact training prompt is in their data files (the ``text`` column of the checked
workbooks); :func:`paper_template` reads it from there at run time for the paper-faithful run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from xling.tasks import Task, TaskError, load_task


@dataclass(frozen=True)
class Prompt:
    """A prompt format: ``prefix`` (shared by every post) + ``body(text)``, then an answer; the
    ``task`` says which labels the answers name (default: the paper's)."""

    name: str
    prefix: str
    body_template: str  # with {text}
    task: Task = field(default_factory=load_task)

    def body(self, text: str) -> str:
        return self.body_template.replace("{text}", " ".join(str(text).split()))

    def render(self, text: str) -> str:
        return self.prefix + self.body(text)

    @property
    def labels(self) -> tuple[str, ...]:
        """The task's labels, in its order: the order of every score vector."""
        return self.task.labels

    def answer(self, label: str) -> str:
        """What follows the prompt for a label: a space and its number in the task (its word,
        when the task answers in words)."""
        return f" {self.task.answer(label)}"


def plain_prompt(task: Task | str | None = None) -> Prompt:
    """The task's prompt as plain text, for a base model without a chat template: the task's
    instruction (its category list), the post, the answer stem (kept short: on a CPU every prompt
    token costs)."""
    task = load_task(task)
    return Prompt("plain", f"{task.instruction('plain')}\n", "Post: {text}\nAnswer =", task)


def adds_bos(tokenizer) -> str | None:
    """The BOS token's text when tokenizing adds it by itself (Llama 3's tokenizers do, on both
    sides: transformers' post-processor and llama.cpp's ``add_bos``), else None."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos:
        return None
    ids = tokenizer("x").input_ids
    return bos if ids and ids[0] == tokenizer.bos_token_id else None


def _drop_bos(text: str, bos: str | None) -> str:
    """A rendered prompt without its leading BOS token when the tokenizer adds one anyway: Llama
    3's chat template writes ``<|begin_of_text|>`` and its tokenizers add it again, and a prompt
    that starts with two BOS tokens is not the prompt the model was trained on."""
    return text[len(bos) :] if bos and text.startswith(bos) else text


def chat_prompt(tokenizer, task: Task | str | None = None) -> Prompt:
    """The task's prompt through the tokenizer's chat template (instruction-tuned models): its
    system message (when it gives one) and its instruction, then the post."""
    task = load_task(task)
    marker = "\x00POST\x00"
    messages = []
    if "system" in task.prompts.get("chat", {}):
        messages.append({"role": "system", "content": task.instruction("chat", "system")})
    messages.append({"role": "user", "content": f"{task.instruction('chat')}\n\nPost: {marker}"})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix, rest = _drop_bos(rendered, adds_bos(tokenizer)).split(marker)
    return Prompt("chat", prefix, "{text}" + rest + "Answer =", task)


def paper_template(
    workbook: str | os.PathLike[str], task: Task | str | None = None, bos: str | None = None
) -> Prompt:
    """The authors' exact training prompt, read from one of their checked workbooks: the ``text``
    column holds the full prompt with the tweet inside it, so the tweet is cut out to get the
    template. Nothing of it is stored in this repository. Only a task whose file says so
    (``prompts.paper.from: authors_workbook``, the paper's) has this format. ``bos``: the BOS
    token's text, dropped from the front when the tokenizer adds it itself (:func:`adds_bos`)."""
    import pandas as pd

    task = load_task(task)
    if "paper" not in task.prompts:
        raise TaskError(
            task.file,
            "prompts.paper",
            f"task '{task.name}' has no 'paper' prompt (the authors' workbooks hold the "
            "immigration task's prompt only); use prompt_format plain or chat",
        )

    df = pd.read_excel(Path(workbook), dtype=str).dropna(subset=["text", "plaintext"])
    for full, post in zip(df["text"], df["plaintext"], strict=True):
        if post in full:
            before, after = _drop_bos(full, bos).split(post, 1)
            cut = after.rfind("Answer =")
            if cut < 0:
                continue
            return Prompt("paper", before, "{text}" + after[: cut + len("Answer =")], task)
    raise ValueError(f"{workbook}: no row whose prompt contains its post and 'Answer ='")


def authors_example(workbook: str | os.PathLike[str], row: int = 0) -> tuple[str, str]:
    """``(post, text)`` of one row of the authors' checked workbook: the tweet and the full
    training prompt they built for it (answer included)."""
    import pandas as pd

    df = pd.read_excel(Path(workbook), dtype=str).dropna(subset=["text", "plaintext"])
    if row >= len(df):
        raise ValueError(f"{workbook}: no row {row} with both text and plaintext")
    return df["plaintext"].iloc[row], df["text"].iloc[row]


#: A special token of Llama 3's kind as written in a prompt: ``<|eot_id|>``.
_SPECIAL = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def special_skeleton(text: str) -> list[str]:
    """The special tokens a prompt text names, in order (its chat structure without the words)."""
    return _SPECIAL.findall(text)


def check_chat_prompt(prompt: Prompt, tokenizer, authors_text: str, post: str) -> list[str]:
    """What is wrong with ``prompt`` as a Llama 3 chat prompt, judged against the authors' own
    training prompt for the same post (their ``text`` column): one line per problem, none when
    it is right.

    - every special token the prompt writes is one token of the tokenizer's vocabulary (a
      misspelt ``<|eot|>`` would be read as a dozen ordinary tokens);
    - the prompt for ``post``, up to ``Answer =``, has the authors' sequence of special tokens
      (begin of text, system header, end of turn, user header, end of turn, assistant header),
      the BOS the tokenizer adds counted in;
    - tokenized, it starts with exactly one BOS token."""
    problems = []
    ours = prompt.render(post)
    bos = adds_bos(tokenizer)
    vocab = tokenizer.get_vocab()
    for name in dict.fromkeys(special_skeleton(ours)):
        if name not in vocab:
            problems.append(f"{name} is not a token of the tokenizer (it would be split up)")
    theirs = authors_text[: authors_text.rfind("Answer =")]
    got = ([bos] if bos else []) + special_skeleton(ours)
    want = special_skeleton(theirs)
    if got != want:
        problems.append(f"special tokens {got} differ from the authors' {want}")
    ids = tokenizer(ours).input_ids
    if tokenizer.bos_token_id is not None:
        n_bos = next((i for i, t in enumerate(ids) if t != tokenizer.bos_token_id), len(ids))
        if n_bos != 1:
            problems.append(f"the tokenized prompt starts with {n_bos} BOS tokens, not 1")
    return problems


def make_prompt(
    name: str, tokenizer=None, workbook: str | None = None, task: Task | str | None = None
) -> Prompt:
    """A prompt format by name: ``plain``, ``chat`` or ``paper``, for ``task`` (a
    :class:`~xling.tasks.Task`, a task's name, or None: the paper's)."""
    if name == "plain":
        return plain_prompt(task)
    if name == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt 'chat' needs a tokenizer with a chat template; use 'plain'")
        return chat_prompt(tokenizer, task)
    if name == "paper":
        if not workbook:
            raise ValueError("prompt 'paper' needs one of the authors' checked workbooks")
        return paper_template(
            workbook, task, adds_bos(tokenizer) if tokenizer is not None else None
        )
    raise ValueError(f"unknown prompt {name!r}; expected plain, chat or paper")


@dataclass(frozen=True)
class PairPrompt:
    """The prompt of a translation pair (notebook 06's pairs, 01's ``+pairs`` variants): an
    instruction to translate a post of ``lang`` into English, the post, then the English
    reference as the continuation (after ``lead``). No category list, no label: a pair teaches
    the languages, not the task."""

    name: str
    lang: str
    prefix: str
    body_template: str  # with {text}
    lead: str  # what precedes the reference: a space after "English:" (plain), "" (chat)

    def render(self, text: str) -> str:
        return self.prefix + self.body_template.replace("{text}", " ".join(str(text).split()))

    def target(self, reference: str) -> str:
        return self.lead + " ".join(str(reference).split())


def pair_prompt(name: str, lang: str, tokenizer=None) -> PairPrompt:
    """The translation-pair prompt for a post of ``lang``, in the format the classification
    prompt ``name`` uses: ``plain`` as plain text; ``chat`` (and ``paper``, the authors' chat
    template) through the tokenizer's chat template, the reference as the assistant's reply."""
    from xling.schema import LANG_NAMES

    if lang == "en":
        raise ValueError("a translation pair needs a post that is not in English (lang 'en')")
    language = LANG_NAMES.get(lang, lang)
    instruction = f"Translate this {language} social media post into English."
    if name == "plain":
        return PairPrompt("plain", lang, f"{instruction}\n", "Post: {text}\nEnglish:", " ")
    if name in ("chat", "paper"):
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"pair prompt {name!r} needs a tokenizer with a chat template")
        marker = "\x00POST\x00"
        messages = [{"role": "user", "content": f"{instruction}\n\nPost: {marker}"}]
        rendered = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        prefix, rest = _drop_bos(rendered, adds_bos(tokenizer)).split(marker)
        return PairPrompt("chat", lang, prefix, "{text}" + rest, "")
    raise ValueError(f"unknown prompt {name!r}; expected plain, chat or paper")


@dataclass
class AnswerTokens:
    """The answers' tokens split as: a stem common to all labels, then one distinct token each."""

    stem: list[int]
    label_token: dict[str, int]


def answer_tokens(tokenize, prompt: Prompt) -> AnswerTokens:
    """Tokenize each label's answer after the prompt; check they differ in one token at the end.
    ``label_token`` is in the order of the prompt's task labels."""
    labels = prompt.labels
    probe = prompt.render("x")
    head = tokenize(probe)
    tails = {}
    for label in labels:
        full = tokenize(probe + prompt.answer(label))
        if full[: len(head)] != head:
            raise ValueError(f"answer for {label!r} changes the prompt's tokens")
        tails[label] = full[len(head) :]
    first = next(iter(tails.values()))
    stem = first[:-1]
    for label, toks in tails.items():
        if toks[:-1] != stem or len(toks) != len(first):
            raise ValueError(
                f"answers must share all tokens but the last; {label!r} gives {toks} vs {first}"
            )
    if len({t[-1] for t in tails.values()}) != len(labels):
        raise ValueError("two labels have the same answer token")
    return AnswerTokens(stem, {label: toks[-1] for label, toks in tails.items()})


def parse_answer(raw: str | None, task: Task | str | None = None) -> str:
    """The label a generated answer gives: for a task answered in words, its first word (after
    spaces, brackets or quotes) when it is a label's word; else its first character must be one
    of the task's category numbers (the paper's: 1-4), or the answer must start with a label's
    name; anything else is ``failed``. The paper read the first number
    after ``Answer =``; a model that goes on after its digit (``44``, ``4 because``) answered
    with the first one."""

    task = load_task(task)
    by_number = task.label_of_number
    digits = "".join(str(n) for n in sorted(by_number))
    text = "" if raw is None else str(raw)
    text = text.split("Answer =", 1)[-1].strip().lower()
    if task.word:
        first = re.match(r"^[\[\(\s\"'*:=]*([a-z]+)", text)
        by_word = {w: label for label, w in task.word.items()}
        if first and first[1] in by_word:
            return by_word[first[1]]
    m = re.match(rf"^[\[\(\s\"'*:=]*([{digits}])", text)
    if m:
        return by_number[int(m[1])]
    for label in task.labels:
        if text.startswith(label):
            return label
    return "failed"
