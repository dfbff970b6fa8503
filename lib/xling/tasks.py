"""Tasks: what the posts are classified into, read from a task file (``tasks/<name>.yaml``).

A task holds the labels (in the order tables and figures use), the number each has in the
prompt, which label means "off topic" (topic versus stance: the topic is off topic or not, the
stance is the exact label among the posts on topic), and the instruction of each prompt format
(``plain``, ``chat``; for ``paper``, the rule that the prompt is read from the authors' files at
run time). A profile picks one with its ``task`` key (default ``immigration``, the paper's);
validation, prompts, answer tokens, metrics and figures read it from here instead of constants.

A task file is checked when it is read: an unknown key, a duplicate label or number, an off-topic
label that is not a label or a missing instruction is a :class:`TaskError` naming the file and
the key. The README's "Tasks" section documents the keys.

Layer 0 (beside ``paths`` and ``schema``). May import: ``xling.paths`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xling import paths

#: The paper's task, used wherever no task is given.
DEFAULT_TASK = "immigration"
#: The prompt formats a task gives an instruction for, and what each must hold.
FORMAT_KEYS = {
    "plain": {"instruction": True},
    "chat": {"system": False, "instruction": True},
    "paper": {"from": True},
}
#: Where the ``paper`` format's prompt comes from (the only rule so far): the authors' checked
#: workbooks, read at run time (:func:`xling.models.prompts.paper_template`).
PAPER_SOURCES = ("authors_workbook",)
TOP_KEYS = {"description": False, "topic": True, "labels": True, "off_topic": True, "prompts": True}
LABEL_KEYS = {"name": True, "number": True, "word": False, "short": False, "color": False}
#: Colours for labels whose task gives none, in turn (matplotlib's tab10, greys left out).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)
#: The off-topic label's colour when its task gives none.
OFF_TOPIC_COLOR = "#b8b8b8"
#: What a model's unparsable answer is called (xling.schema.FAILED): never a label's name.
RESERVED_LABELS = ("failed",)


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file and the key."""

    def __init__(self, file: str | os.PathLike[str], key: str | None, msg: str):
        self.file, self.key = str(file), key
        super().__init__(f"{file}: " + (f"key '{key}': " if key else "") + msg)


@dataclass(frozen=True)
class Task:
    """One classification task, as its file says. Two tasks are equal when their content is."""

    name: str
    file: str = field(compare=False)
    digest: str  # sha256 of the checked content (comments and layout left out)
    topic: str = field(compare=False)
    description: str = field(compare=False)
    #: the labels in the order tables and figures use
    labels: tuple[str, ...] = field(compare=False)
    off_topic: str = field(compare=False)
    number: dict[str, int] = field(compare=False, repr=False)
    short: dict[str, str] = field(compare=False, repr=False)
    colors: dict[str, str] = field(compare=False, repr=False)
    prompts: dict[str, dict[str, str]] = field(compare=False, repr=False)
    #: what the prompt and the answer call each label when the task answers in words (every
    #: label's ``word``); empty: the answer is the label's number (the paper's way)
    word: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def on_topic(self) -> tuple[str, ...]:
        """The labels of posts on the topic (every label but the off-topic one), in order."""
        return tuple(label for label in self.labels if label != self.off_topic)

    @property
    def label_of_number(self) -> dict[int, str]:
        return {n: label for label, n in self.number.items()}

    def answer(self, label: str) -> str:
        """What the model answers for ``label``: its word when the task answers in words, else
        its number."""
        return self.word[label] if self.word else str(self.number[label])

    def categories(self) -> str:
        """The category list the instructions' ``{categories}`` stands for: each answer and its
        label, by number (``1 = pro-immigration; 2 = anti-immigration; ...``; in words
        ``pro = pro-immigration; anti = anti-immigration; ...``)."""
        return "; ".join(
            f"{self.answer(label)} = {label}" for _, label in sorted(self.label_of_number.items())
        )

    def instruction(self, fmt: str, key: str = "instruction") -> str:
        """A prompt format's text (``instruction``, or ``system`` for chat), ``{categories}``
        filled in; a format or key the task does not give is a TaskError naming the file."""
        spec = self.prompts.get(fmt)
        if spec is None:
            raise TaskError(
                self.file, f"prompts.{fmt}", f"task '{self.name}' gives no {fmt!r} prompt format"
            )
        if key not in spec:
            raise TaskError(self.file, f"prompts.{fmt}.{key}", "missing")
        return spec[key].replace("{categories}", self.categories())


def task_file(spec: str | os.PathLike[str]) -> Path:
    """The file of a task: a name is ``tasks/<name>.yaml``; a path (ending in ``.yaml`` or
    ``.yml``, or holding a ``/``) is taken as it is (relative to the repository root)."""
    text = str(spec)
    if text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        return paths.resolve(text)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text):
        raise TaskError(f"task {text!r}", None, "a task is a name under tasks/ or a .yaml file")
    return paths.TASKS / f"{text}.yaml"


_CACHE: dict[tuple[str, int, int], Task] = {}


def load_task(spec: Task | str | os.PathLike[str] | None = None) -> Task:
    """The task ``spec`` names (a :class:`Task` is returned as it is; None is the paper's task,
    :data:`DEFAULT_TASK`), read and checked; files are re-read when they change."""
    if isinstance(spec, Task):
        return spec
    file = task_file(DEFAULT_TASK if spec is None else spec)
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in paths.TASKS.glob("*.yaml"))) or "none"
        raise TaskError(file, None, f"no such task file (tasks under tasks/: {known})")
    st = file.stat()
    key = (str(file), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE[key] = parse_task(file.read_text(encoding="utf-8"), file)
    return _CACHE[key]


def parse_task(text: str, file: str | os.PathLike[str], name: str | None = None) -> Task:
    """A task from a task file's text (``file`` names it in errors; the task's name is the
    file's stem unless ``name``)."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TaskError(file, None, f"not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise TaskError(file, None, "the top level must be a mapping of keys")
    _keys(raw, TOP_KEYS, file, "")
    topic = _text(raw["topic"], file, "topic")
    description = _text(raw.get("description", ""), file, "description", empty=True)

    items = raw["labels"]
    if not isinstance(items, list) or len(items) < 2:
        raise TaskError(file, "labels", "must be a list of at least two labels")
    labels, number, short, colors, word = [], {}, {}, {}, {}
    for i, item in enumerate(items, start=1):
        where = f"labels[{i}]"
        if not isinstance(item, dict):
            raise TaskError(file, where, "each label is a mapping with name and number")
        _keys(item, LABEL_KEYS, file, where + ".")
        label = _text(item["name"], file, where + ".name")
        canonical = re.sub(r"\s+", "-", label.strip().lower())
        if label != canonical:
            raise TaskError(
                file,
                where + ".name",
                f"{label!r}: a label is lower case without spaces (posts' labels are matched in "
                f"that form), e.g. {canonical!r}",
            )
        if label in RESERVED_LABELS:
            raise TaskError(file, where + ".name", f"{label!r} names an unparsable answer")
        if label in number:
            raise TaskError(file, where + ".name", f"duplicate label {label!r}")
        n = item["number"]
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 9:
            raise TaskError(
                file,
                where + ".number",
                f"{n!r}: a label's number is one digit, 0 to 9 (the answer is one token, and "
                "a generated answer is read by its first digit)",
            )
        _refuse_clash(number, n, label, file, where + ".number", "number")
        if "word" in item:
            w = item["word"]
            if not isinstance(w, str) or not re.fullmatch(r"[a-z]+", w):
                raise TaskError(
                    file,
                    where + ".word",
                    f"{w!r}: a label's answer word is one lower-case word of letters a-z (the "
                    "answer is one token, read by its first word)",
                )
            _refuse_clash(word, w, label, file, where + ".word", "word")
            word[label] = w
        labels.append(label)
        number[label] = n
        short[label] = _text(item.get("short", label), file, where + ".short")
        if "color" in item:
            color = _text(item["color"], file, where + ".color")
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
                raise TaskError(file, where + ".color", f"{color!r} is not a colour like '#1f77b4'")
            colors[label] = color

    if word and len(word) != len(labels):
        missing = [x for x in labels if x not in word]
        raise TaskError(
            file,
            "labels",
            f"every label needs a word when one has (the answers are words or numbers, not "
            f"both); no word for {', '.join(missing)}",
        )

    off_topic = raw["off_topic"]
    if off_topic not in labels:
        raise TaskError(
            file, "off_topic", f"{off_topic!r} is not one of the labels ({', '.join(labels)})"
        )

    # labels without a colour: the off-topic one grey, the others the palette's in turn
    spare = iter(PALETTE)
    colors = {
        x: colors.get(x) or (OFF_TOPIC_COLOR if x == off_topic else next(spare)) for x in labels
    }

    prompts = raw["prompts"]
    if not isinstance(prompts, dict):
        raise TaskError(file, "prompts", "must be a mapping of prompt formats")
    _keys(prompts, {"plain": True, "chat": True, "paper": False}, file, "prompts.")
    checked: dict[str, dict[str, str]] = {}
    for fmt, spec in prompts.items():
        where = f"prompts.{fmt}"
        if not isinstance(spec, dict):
            raise TaskError(file, where, "must be a mapping (e.g. instruction: ...)")
        _keys(spec, FORMAT_KEYS[fmt], file, where + ".")
        checked[fmt] = {k: _text(v, file, f"{where}.{k}") for k, v in spec.items()}
    if checked.get("paper", {}).get("from", PAPER_SOURCES[0]) not in PAPER_SOURCES:
        raise TaskError(
            file,
            "prompts.paper.from",
            f"{checked['paper']['from']!r}; the paper's prompt comes from: "
            + ", ".join(PAPER_SOURCES),
        )

    content = {
        "topic": topic,
        "labels": [[x, number[x], short[x], colors[x]] for x in labels],
        "off_topic": off_topic,
        "prompts": checked,
    }
    if word:  # tasks answered by number keep the digest they had before words existed
        content["words"] = [word[x] for x in labels]
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return Task(
        name=name or Path(file).stem,
        file=str(file),
        digest=digest,
        topic=topic,
        description=description,
        labels=tuple(labels),
        off_topic=off_topic,
        number=number,
        short=short,
        colors=colors,
        prompts=checked,
        word=word,
    )


def _refuse_clash(seen: dict, value, label: str, file, key: str, what: str) -> None:
    """Refuse ``value`` for ``label`` when an earlier label (``seen``: label -> value) has it."""
    clash = [other for other, v in seen.items() if v == value]
    if clash:
        raise TaskError(file, key, f"duplicate {what} {value!r} ({label!r} and {clash[0]!r})")


def _keys(mapping: dict, allowed: dict[str, bool], file, prefix: str) -> None:
    """Refuse keys ``allowed`` does not name, and missing required ones (``allowed[k]`` True)."""
    for key in mapping:
        if key not in allowed:
            raise TaskError(file, f"{prefix}{key}", f"unknown key (expected: {', '.join(allowed)})")
    for key, required in allowed.items():
        if required and key not in mapping:
            raise TaskError(file, f"{prefix}{key}", "missing")


def _text(value: Any, file, key: str, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise TaskError(file, key, f"must be a non-empty string, got {value!r}")
    return value
