"""Shared figure helpers: one colour per label, the paper's language order, variant and
evaluation-set order.
"""

from __future__ import annotations

import matplotlib

from xling.schema import PAPER_LANGS  # noqa: E402
from xling.tasks import load_task

matplotlib.use("Agg")


#: One colour per label of the paper's task, the same in every figure (tasks/immigration.yaml;
#: another task's are ``load_task(task).colors``).
LABEL_COLORS = dict(load_task().colors)


def _lang_order(langs) -> list[str]:
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}
    return sorted(set(langs), key=lambda x: (order.get(x, 99), x))


def _evalset_order(evalsets) -> list[str]:
    """Per-language sets in the paper's order, then the extra sets, then the pooled ``multi``,
    then the sets from evaluation files (named by the user, never by a two-letter code)."""
    order = {lang: i for i, lang in enumerate(PAPER_LANGS)}

    def key(e: str):
        group = 2 if e == "multi" else (1 if e.endswith("-extra") else 0)
        if group == 0 and len(e) != 2:
            group = 3
        lang = e.split("-")[0]
        return (group, order.get(lang, 99), e)

    return sorted(set(evalsets), key=key)


def _variant_order(variants) -> list[str]:
    """The untuned base first, then the paper's variants in its order, then any others."""
    known = ["base", "en", "es", "en-es", "multi", "en-es-full"]
    present = list(dict.fromkeys(variants))
    return [v for v in known if v in present] + [v for v in present if v not in known]


def trained_on(variant: str, evalset: str, training: dict[str, list[str]]) -> bool:
    langs = training.get(variant, [])
    if evalset == "multi":
        return False
    return evalset.split("-")[0] in langs
