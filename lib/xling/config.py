"""Profiles: load params/<profile>.yaml and check it against the notebooks' parameters cells.

A profile holds a ``common:`` block (passed to every notebook that declares the key), one block
per notebook (``00_data:`` ...) and optionally ``rehearses: PROFILE`` (it runs that profile's code
path smaller: :mod:`xling.run.rehearsal`). The schema is the notebooks themselves: each
notebook's cell tagged ``parameters`` declares every knob as ``name: type = literal  # comment``.
An unknown key, or a value of the wrong type, is an error naming the key and the file, before
anything runs (as nanoGPT's configurator and alignment-handbook's configs do).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xling import paths, tasks
from xling.schema import (
    CODINGS,
    CONFLICTS,
    INPUTS,
    LR_SCHEDULES,
    METHODS,
    POSITIONS,
    QUANT_TYPES,
    SPLITS,
    TRAIN_SPLITS,
)


class ConfigError(ValueError):
    """A profile or override that does not fit the notebooks' declared parameters."""


_BACKEND = re.compile(
    rf"llamacpp-(f16|{'|'.join(QUANT_TYPES)})(\+[\w.-]+)?|transformers-unquantized"
)

#: String knobs that take one of a fixed set of values, checked in every profile, override and
#: notebook default (papermill's parameter reader accepts no ``Literal[...]`` annotation, so the
#: choices live here). A tuple lists the values; a pattern is matched whole. For a list knob each
#: element is checked, for a dict knob each element of each value.
CHOICES: dict[str, tuple | re.Pattern] = {
    "posts_source": ("demo", "paper", "file"),
    "device": re.compile(r"cpu|cuda(:\d+)?"),
    "prompt_format": ("plain", "chat", "paper"),
    "dtype": ("float32", "bfloat16", "float16"),
    "lr_schedule": LR_SCHEDULES,
    "base_quant": ("nf4",),
    "method": METHODS,
    "methods": METHODS,
    "input_kind": INPUTS,
    "coding": CODINGS,
    "train_split": tuple(TRAIN_SPLITS),
    "train_splits": tuple(TRAIN_SPLITS),
    "quant_types": QUANT_TYPES,
    "backend": _BACKEND,
    "backends": _BACKEND,
    "eval_backend": _BACKEND,
    "eval_splits": SPLITS,
    "translate_splits": SPLITS,
    "ablation_splits": SPLITS,
    "splits": SPLITS,
    "authors_splits": SPLITS,
    "figure_position": POSITIONS,
    "item_splits": SPLITS,
    "conflicting_labels": CONFLICTS,
}


def check_choice(key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid choice for knob ``key`` (None when it is, or when the knob
    has no fixed choices)."""
    allowed = CHOICES.get(key)
    if allowed is None or value is None:
        return None
    if isinstance(value, dict):
        items = [v for vs in value.values() for v in (vs if isinstance(vs, list) else [vs])]
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    for item in items:
        ok = (
            isinstance(item, str) and allowed.fullmatch(item) is not None
            if isinstance(allowed, re.Pattern)
            else item in allowed
        )
        if not ok:
            what = allowed.pattern if isinstance(allowed, re.Pattern) else ", ".join(allowed)
            return f"{item!r} is not one of: {what}"
    return None


@dataclass(frozen=True)
class Param:
    """One declared notebook parameter."""

    name: str
    annotation: str
    default: Any
    comment: str = ""


# --------------------------------------------------------------------------------------------
# Reading the parameters cell
# --------------------------------------------------------------------------------------------


def parameters_cell(nb_path: Path) -> str:
    """The source of the cell tagged ``parameters`` in a notebook."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    raise ConfigError(f"{nb_path}: no cell tagged 'parameters'")


def notebook_parameters(nb_path: Path) -> dict[str, Param]:
    """Declared parameters of a notebook: ``name: type = literal  # comment`` lines.

    Optional values are written ``Optional[str]``, the form papermill's own inspection reads.
    """
    src = parameters_cell(nb_path)
    lines = src.splitlines()
    out: dict[str, Param] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue  # e.g. "from typing import Optional" for the hints
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            raise ConfigError(
                f"{nb_path}: parameters cell line {node.lineno}: every statement must be "
                "'name: type = literal'"
            )
        name = node.target.id
        try:
            default = ast.literal_eval(node.value) if node.value is not None else None
        except ValueError as err:
            raise ConfigError(f"{nb_path}: parameter '{name}' must have a literal value") from err
        span = lines[node.lineno - 1 : node.end_lineno]
        comment = next((ln.split("#", 1)[1].strip() for ln in span if "#" in ln), "")
        out[name] = Param(name, ast.unparse(node.annotation), default, comment)
    return out


def notebook_paths() -> dict[str, Path]:
    """Notebooks in run order, by stem (``00_data`` ...)."""
    return {p.stem: p for p in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


# --------------------------------------------------------------------------------------------
# Type checks from annotations
# --------------------------------------------------------------------------------------------


def _matches(value: Any, ann: ast.expr) -> bool:
    if isinstance(ann, ast.Constant) and ann.value is None:
        return value is None
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        return _matches(value, ann.left) or _matches(value, ann.right)
    if isinstance(ann, ast.Name):
        simple = {
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: isinstance(v, list),
            "dict": lambda v: isinstance(v, dict),
            "None": lambda v: v is None,
            "Any": lambda v: True,
        }
        if ann.id not in simple:
            raise ConfigError(f"unsupported parameter type '{ann.id}'")
        return simple[ann.id](value)
    if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name):
        outer, inner = ann.value.id, ann.slice
        if outer == "Optional":
            return value is None or _matches(value, inner)
        if outer == "list":
            return isinstance(value, list) and all(_matches(v, inner) for v in value)
        if outer == "dict":
            if not isinstance(value, dict):
                return False
            k_ann, v_ann = inner.elts if isinstance(inner, ast.Tuple) else (inner, inner)
            return all(_matches(k, k_ann) and _matches(v, v_ann) for k, v in value.items())
    raise ConfigError(f"unsupported parameter type '{ast.unparse(ann)}'")


def check_type(value: Any, annotation: str) -> bool:
    """Whether ``value`` fits a parameter annotation such as ``list[str]`` or ``str | None``."""
    return _matches(value, ast.parse(annotation, mode="eval").body)


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


@dataclass
class Profile:
    """A checked profile: the parameters each notebook gets."""

    name: str
    file: Path
    common: dict[str, Any]
    blocks: dict[str, dict[str, Any]]
    schema: dict[str, dict[str, Param]] = field(repr=False)
    #: the run's name: runs/<run>/ and figures/<run>/ (the profile's name unless --run gives one)
    run: str = ""
    #: the profile whose code path this one rehearses on a smaller scale (``rehearses: full``)
    rehearses: str | None = None
    #: what loading changed in the profile's own values, one line each, for the runner to print
    #: (e.g. its translation-pair variant left out of a run whose posts were replaced with -p)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.run = self.run or self.name

    def params_for(self, notebook: str) -> dict[str, Any]:
        """Parameters passed to one notebook: its declared common keys, then its own block."""
        declared = self.schema[notebook]
        merged = {k: v for k, v in self.common.items() if k in declared}
        merged.update(self.blocks.get(notebook, {}))
        # notebooks build every path from `profile`: the run's name, so a named run writes
        # runs/<run>/ and figures/<run>/ with the profile's parameters
        merged["profile"] = self.run
        return {k: v for k, v in merged.items() if k in declared}

    def variant_problem(self, notebook: str) -> str | None:
        """Why a notebook's lists of variants (``VARIANT_LISTS``) name a variant the run does not
        train, e.g. 04's default ``translated_variants: [en]`` on a run with ``variants: {es:
        [es]}`` (None when they all exist). Checked for the notebooks a run executes, before any
        runs."""
        defaults = {k: p.default for k, p in self.schema[notebook].items()}
        values = {**defaults, **self.params_for(notebook)}
        have = set(values.get("variants") or {})
        problems = []
        for key, extra in VARIANT_LISTS.items():
            if key not in values or values[key] is None:
                continue
            wanted = values[key]
            if isinstance(wanted, dict):  # pair_variants: its keys are variants
                wanted = list(wanted)
            elif not isinstance(wanted, list):
                wanted = [wanted]
            unknown = [v for v in wanted if v not in have | set(extra)]
            if unknown and key == "pair_variants":
                problems.append(
                    f"{notebook}.pair_variants names {', '.join(repr(v) for v in unknown)}, not a "
                    f"variant of this run (variants: {', '.join(sorted(have)) or 'none'}); "
                    f"declare each in variants with its labelled languages (e.g. "
                    f"'{unknown[0]}: [en]'), or set -p {notebook}.pair_variants '{{}}'"
                )
            elif unknown:
                known = [v for v in wanted if v not in unknown] or sorted(have)[:1]
                problems.append(
                    f"{notebook}.{key} names {', '.join(repr(v) for v in unknown)}, not a variant "
                    f"of this run (variants: {', '.join(sorted(have)) or 'none'}); set it, e.g. "
                    f"-p {notebook}.{key} '[{', '.join(known)}]'"
                )
        return "; ".join(problems) or None


#: Parameters that name variants of the run (and the extra names each allows besides them).
VARIANT_LISTS: dict[str, tuple[str, ...]] = {
    "translated_variants": (),
    "native_variants": (),
    "read_variants": ("base",),
    "pair_variants": (),
}


def parse_override(key: str, raw: str) -> tuple[str | None, str, Any]:
    """``-p KEY VALUE``: KEY is ``name`` (common) or ``NN_notebook.name``; VALUE is YAML."""
    value = yaml.safe_load(raw) if raw != "" else ""
    if "." in key:
        block, name = key.split(".", 1)
        return block, name, value
    return None, key, value


def load_profile(
    name: str,
    overrides: list[tuple[str, str]] | None = None,
    file: Path | None = None,
    run: str | None = None,
) -> Profile:
    """Load and check ``params/<name>.yaml`` plus ``-p`` overrides; ConfigError on any misfit.
    ``run`` names the run apart from the profile (runs/<run>/; default: the profile's name)."""
    if run is not None:
        check_run_name(run)
    file = Path(file) if file else paths.profile_file(name)
    if not file.exists():
        known = sorted(p.stem for p in paths.PARAMS.glob("*.yaml"))
        raise ConfigError(
            f"unknown profile '{name}': no file {file} (profiles: {', '.join(known)})"
        )
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of blocks")

    schema = {nb: notebook_parameters(p) for nb, p in notebook_paths().items()}
    rehearses = raw.pop("rehearses", None)
    if rehearses is not None and (
        not isinstance(rehearses, str) or not paths.profile_file(rehearses).exists()
    ):
        raise ConfigError(f"{file}: 'rehearses' must name another profile, got {rehearses!r}")
    common = dict(raw.pop("common", None) or {})
    blocks: dict[str, dict[str, Any]] = {}
    for block, values in raw.items():
        if block not in schema:
            raise ConfigError(
                f"{file}: unknown key '{block}' (expected 'common' or a notebook: "
                f"{', '.join(schema)})"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{file}: '{block}' must be a mapping of parameters")
        blocks[block] = dict(values)

    source = str(file)
    overridden: set[tuple[str | None, str]] = set()
    for key, raw_value in overrides or []:
        block, pname, value = parse_override(key, raw_value)
        overridden.add((block, pname))
        if block is None:
            common[pname] = value
        elif block not in schema:
            raise ConfigError(f"-p {key}: unknown notebook '{block}' ({', '.join(schema)})")
        else:
            blocks.setdefault(block, {})[pname] = value
        source = f"{file} (with -p overrides)"

    if "profile" in common:
        raise ConfigError(f"{source}: 'profile' is set from the file name, not in common")
    for key, value in common.items():
        owners = [nb for nb, decl in schema.items() if key in decl]
        if not owners:
            raise ConfigError(f"{source}: unknown key 'common.{key}' (no notebook declares it)")
        for nb in owners:
            _check(source, f"common.{key}", value, schema[nb][key], nb)
    for block, values in blocks.items():
        for key, value in values.items():
            if key not in schema[block]:
                known = ", ".join(k for k in schema[block] if k != "profile")
                raise ConfigError(
                    f"{source}: unknown key '{block}.{key}' (notebook {block} declares: {known})"
                )
            _check(source, f"{block}.{key}", value, schema[block][key], block)
    _check_task_source(source, common, blocks)
    notes = _fit_pairs(common, blocks, schema, overridden)
    return Profile(
        name, file, common, blocks, schema, run=run or "", rehearses=rehearses, notes=notes
    )


#: Where a profile trains on translation pairs: notebook -> its parameter (01's pair variants,
#: 06's pairs axis). Both draw the pairs from the profile's own posts' English references.
PAIR_KEYS = {"01_finetune": "pair_variants", "06_data_size": "pair_ms"}
#: Parameters that replace the profile's posts
POSTS_KEYS = ("posts_source", "posts_path", "task")


def _fit_pairs(
    common: dict[str, Any],
    blocks: dict[str, dict[str, Any]],
    schema: dict[str, dict[str, Param]],
    overridden: set[tuple[str | None, str]],
) -> list[str]:
    """Keep a profile's translation pairs in step with ``-p`` overrides that do not name them.

    A profile's pairs (``pair_variants``, ``pair_ms``) are drawn from its own posts and declared
    for its own variants. When ``-p`` replaces the variants, the pair variants not among the new
    ones are left out; when ``-p`` replaces the posts (``posts_source``, ``posts_path``, ``task``)
    with a file of the user's (``posts_source: file``) and keeps the profile's variants, the
    pairs are left out altogether (a user's file seldom has English references), their variants
    too. Each change is returned as a line to print.
    Pairs named with ``-p`` are left as given: a mismatch then is the user's, refused by
    :meth:`Profile.variant_problem` or by 01 itself, naming the key."""
    names = {name for _, name in overridden}
    variants_set = "variants" in names
    source = blocks.get("00_data", {}).get("posts_source", common.get("posts_source"))
    posts_set = source == "file" and any(k in names for k in POSTS_KEYS)
    if not (variants_set or posts_set):
        return []
    notes = []

    def value(nb: str, key: str) -> Any:  # what notebook nb gets for key: block, common, default
        return blocks.get(nb, {}).get(key, common.get(key, schema[nb][key].default))

    nb, key = "01_finetune", PAIR_KEYS["01_finetune"]
    if nb in schema and key in schema[nb] and key not in names:
        pairs = value(nb, key) or {}
        variants = value(nb, "variants") or {}
        if variants_set:
            dropped = [v for v in pairs if v not in variants]
            why = "-p variants does not name it"
        else:
            dropped = list(pairs)
            why = (
                "its translation pairs are the profile's own posts' English references, and -p "
                f"replaced the posts ({', '.join(k for k in POSTS_KEYS if k in names)})"
            )
        if dropped:
            blocks.setdefault(nb, {})[key] = {v: ls for v, ls in pairs.items() if v not in dropped}
            if not variants_set:
                # the profile's variants, less its pair variants, for every notebook
                for values in (common, *blocks.values()):
                    if isinstance(values.get("variants"), dict):
                        values["variants"] = {
                            v: ls for v, ls in values["variants"].items() if v not in dropped
                        }
                if "variants" not in common:
                    common["variants"] = {v: ls for v, ls in variants.items() if v not in dropped}
            for v in dropped:
                notes.append(
                    f"pair variant {v} left out: {why} (name it in -p {nb}.{key} to train it)"
                )
    nb, key = "06_data_size", PAIR_KEYS["06_data_size"]
    if posts_set and nb in schema and key in schema[nb] and key not in names:
        ms = value(nb, key) or []
        if ms:
            blocks.setdefault(nb, {})[key] = []
            notes.append(
                f"{nb}.{key} {ms} left out: its pairs are the profile's own posts' English "
                f"references, and -p replaced the posts (set -p {nb}.{key} to keep them)"
            )
    return notes


def _check_task_source(source: str, common: dict[str, Any], blocks: dict[str, dict]) -> None:
    """The demo corpus and the authors' files are labelled for the paper's task: another task
    needs its own posts (``posts_source: file``), refused here rather than at the first label."""
    task = common.get("task")
    if task is None or tasks.load_task(task) == tasks.load_task():
        return
    for where, values in (("common", common), *blocks.items()):
        src = values.get("posts_source")
        if src in ("demo", "paper"):
            raise ConfigError(
                f"{source}: '{where}.posts_source' is {src!r}, whose posts are labelled for the "
                f"paper's task; task {task!r} needs its own posts: posts_source file and "
                "posts_path (see the README, Tasks)"
            )


#: runs/ folders that are not runs: the shared caches
RESERVED_RUNS = ("cache",)


def check_run_name(run: str) -> str:
    """A run's name becomes a folder under runs/ and figures/: letters, digits, ``.``, ``_`` and
    ``-``, starting with a letter or digit, and not a reserved folder (runs/cache)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", run or ""):
        raise ConfigError(
            f"--run {run!r}: a run's name is a folder name: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    if run in RESERVED_RUNS:
        raise ConfigError(
            f"--run {run!r}: runs/{run}/ holds the shared caches; choose another name"
        )
    return run


def _check(source: str, key: str, value: Any, param: Param, nb: str) -> None:
    if not check_type(value, param.annotation):
        raise ConfigError(
            f"{source}: '{key}' must be {param.annotation} (as notebook {nb} declares), "
            f"got {type(value).__name__} {value!r}"
        )
    why = check_choice(param.name, value)
    if why:
        raise ConfigError(f"{source}: '{key}': {why} (xling.config.CHOICES)")
    if param.name == "task" and isinstance(value, str):
        # the task file is read and checked before anything runs: a bad one names its key
        try:
            tasks.load_task(value)
        except tasks.TaskError as err:
            raise ConfigError(f"{source}: '{key}': {err}") from err


def notebook_defaults(notebook: str) -> dict[str, Any]:
    """A notebook's parameters as its parameters cell sets them (the demo profile's values)."""
    return {k: p.default for k, p in notebook_parameters(notebook_paths()[notebook]).items()}


def effective_params(profile: str, notebook: str, overrides=None) -> dict[str, Any]:
    """What a notebook runs with under a profile: its defaults, then the profile's values."""
    return {**notebook_defaults(notebook), **load_profile(profile, overrides).params_for(notebook)}


def default_drift(profile: str = "demo", notebooks: dict[str, Path] | None = None) -> list[str]:
    """Where the parameters cells stop being one source of defaults, one line each:

    - a notebook's default differs from what ``profile`` (the demo) gives it, so running the
      notebook top to bottom in JupyterLab would train or score something else than
      ``./run_all.sh`` does;
    - a knob declared by several notebooks with different types, or with different defaults
      that the profile does not set per notebook (one word meaning two things).
    """
    notebooks = notebooks or notebook_paths()
    schema = {nb: notebook_parameters(path) for nb, path in notebooks.items()}
    prof = load_profile(profile)
    lines = []
    for nb, decl in schema.items():
        given = {k: v for k, v in prof.common.items() if k in decl}
        given.update(prof.blocks.get(nb, {}))
        for key, value in given.items():
            if key in decl and decl[key].default != value:
                lines.append(
                    f"{nb}: '{key}' defaults to {decl[key].default!r} but profile {profile} "
                    f"gives {value!r}"
                )
    declared: dict[str, list[tuple[str, Param]]] = {}
    for nb, decl in schema.items():
        for key, param in decl.items():
            declared.setdefault(key, []).append((nb, param))
    for key, owners in declared.items():
        if len({p.annotation for _, p in owners}) > 1:
            lines.append(
                f"'{key}' has different types: "
                + ", ".join(f"{nb} {p.annotation}" for nb, p in owners)
            )
        per_notebook = any(key in prof.blocks.get(nb, {}) for nb, _ in owners)
        defaults = {json.dumps(p.default, sort_keys=True) for _, p in owners}
        if len(defaults) > 1 and not per_notebook:
            lines.append(
                f"'{key}' has different defaults: "
                + ", ".join(f"{nb} {p.default!r}" for nb, p in owners)
            )
    return lines
