"""Every notebook parameter at the command line, the way ``--help`` lists a program's options
(behind ``./run_all.sh --params [NOTEBOOK ...]``).

The list is read from the notebooks' cells tagged ``parameters`` (:func:`xling.config.
notebook_parameters`), so it never drifts from what the notebooks declare: per notebook, each
parameter's name, type, default (the demo profile's value) and comment, and the values a string
knob may take (:data:`xling.config.CHOICES`).

    python -m xling.run.params               # every notebook
    python -m xling.run.params 01 data       # 01_finetune and 00_data
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap

from xling import config, paths
from xling.run.runner import select

WIDTH = 100
INDENT = " " * 6


def _choices(name: str) -> str | None:
    allowed = config.CHOICES.get(name)
    if allowed is None:
        return None
    if isinstance(allowed, re.Pattern):
        return f"matching {allowed.pattern}"
    return ", ".join(allowed)


def describe_notebook(stem: str) -> str:
    """The help text of one notebook's parameters."""
    nb_path = config.notebook_paths()[stem]
    declared = config.notebook_parameters(nb_path)
    lines = [f"{stem} ({paths.display(nb_path)}): {len(declared)} parameters"]
    for p in declared.values():
        head = f"  {p.name}: {p.annotation} = {p.default!r}"
        if len(head) > WIDTH:  # a long dict or list: its value on lines of its own
            lines.append(f"  {p.name}: {p.annotation}")
            lines += textwrap.wrap(
                f"default {p.default!r}",
                WIDTH,
                initial_indent=INDENT,
                subsequent_indent=INDENT + "  ",
            )
        else:
            lines.append(head)
        text = p.comment or "(no comment in the parameters cell)"
        choices = _choices(p.name)
        if choices:
            text += f" [choices: {choices}]"
        lines += textwrap.wrap(text, WIDTH, initial_indent=INDENT, subsequent_indent=INDENT)
    return "\n".join(lines)


def describe(notebooks: list[str] | None = None) -> str:
    """The help text of the named notebooks' parameters (all notebooks when none is named);
    :class:`xling.config.ConfigError` for a name that matches no notebook."""
    chosen = select(config.notebook_paths(), notebooks, flag="--params")
    intro = (
        "Notebook parameters: name: type = default (the demo profile's value), then what it "
        "does. params/PROFILE.yaml sets them in its common: block (for every notebook that "
        "declares the key) or in a block per notebook; ./run_all.sh -p KEY VALUE or "
        "-p NN_notebook.KEY VALUE overrides them (VALUE is YAML)."
    )
    return "\n\n".join([textwrap.fill(intro, WIDTH)] + [describe_notebook(nb) for nb in chosen])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.sh --params",
        description="List every notebook parameter: name, type, default and comment.",
    )
    parser.add_argument(
        "notebooks", nargs="*", metavar="NOTEBOOK", help="00_data, 00 or data (default: all)"
    )
    args = parser.parse_args(argv)
    try:
        text = describe(args.notebooks or None)
    except config.ConfigError as err:
        print(f"run_all.sh: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
