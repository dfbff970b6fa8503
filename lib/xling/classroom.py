"""The classroom playground: type a post in any language and watch every variant (and the untuned
base model) weigh the four labels, side by side (``xling.playground(profile)``, the last cell of
03_crosslingual_eval).

Each model is the one 03 classified with: the profile's first backend in 03's parameters, the
files 02 wrote for each variant (:func:`xling.models.layout.model_files`), the prompt format 03
used, scored by :mod:`xling.models.scorers` (the four answer tokens' log-probabilities,
renormalized over the labels, as 02 compares files). In JupyterLab it is a text box and a live
table (ipywidgets); in a papermill run, which has no one to type, it returns a static table for a
few of the run's own test posts instead.

Layer 4 (beside :mod:`xling.infer`). May import: :mod:`xling.models` and the layers below it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xling import config, paths
from xling.artifacts import NOTEBOOK_ENV, in_notebook
from xling.models.calibration import label_probabilities
from xling.tasks import load_task

#: 03's notebook: its parameters say which models and prompt the playground uses.
EVAL_NOTEBOOK = "03_crosslingual_eval"
#: The languages of the example posts in a static table (one test post each; Korean is never
#: trained on, so it shows transfer to an unseen language).
EXAMPLE_LANGS = ("en", "es", "de", "hu", "ko")
_NUMBER_WORDS = dict(enumerate(("zero one two three four five six seven eight nine ten").split()))
#: The probability columns of the paper's task (another task's: ``p_<label>`` of its labels).
PROB_COLUMNS = [f"p_{label}" for label in load_task().labels]


def _distribution(logp: np.ndarray, n_labels: int = 4) -> np.ndarray:
    """Log-probabilities of the ``n_labels`` answers -> probabilities over the labels (rows sum
    to 1), as :func:`xling.models.calibration.label_probabilities` renormalizes them."""
    return label_probabilities(np.asarray(logp, dtype=float).reshape(-1, n_labels))


@dataclass
class Playground:
    """Open scorers by model name (``base``, then each variant), each with ``score_one(text)``
    returning the labels' log-probabilities in ``labels`` order (``task``'s; default the
    paper's four)."""

    scorers: Mapping[str, Any]
    backend: str = ""
    _last: str | None = field(default=None, repr=False)
    #: the task whose labels the scorers score (a Task or its name; None: the paper's)
    task: Any = None

    @property
    def labels(self) -> tuple[str, ...]:
        return load_task(self.task).labels

    @property
    def prob_columns(self) -> list[str]:
        return [f"p_{label}" for label in self.labels]

    def probabilities(self, texts: list[str]) -> pd.DataFrame:
        """One row per (post, model): ``post`` (its position in ``texts``), ``text``, ``model``,
        a ``p_<label>`` column per label (summing to 1) and ``prediction``."""
        rows = []
        cols = self.prob_columns
        for i, text in enumerate(texts):
            for name, scorer in self.scorers.items():
                p = _distribution(scorer.score_one(text), len(self.labels))[0]
                rows.append(
                    {
                        "post": i,
                        "text": text,
                        "model": name,
                        **dict(zip(cols, p, strict=True)),
                        "prediction": self.labels[int(p.argmax())],
                    }
                )
        return pd.DataFrame(rows, columns=["post", "text", "model", *cols, "prediction"])

    def html(self, text: str) -> str:
        """One post's table as HTML: a row per model, a bar per label, the choice in bold."""
        table = self.probabilities([text])
        head = "".join(f"<th style='text-align:left'>{html.escape(lb)}</th>" for lb in self.labels)
        body = []
        for r in table.to_dict("records"):
            cells = []
            for label, col in zip(self.labels, self.prob_columns, strict=True):
                p = float(r[col])
                weight = "bold" if label == r["prediction"] else "normal"
                cells.append(
                    "<td style='min-width:9em'>"
                    f"<div style='background:#4c72b0;height:0.7em;width:{100 * p:.0f}%'></div>"
                    f"<span style='font-weight:{weight}'>{p:.2f}</span></td>"
                )
            name = html.escape(r["model"])
            body.append(f"<tr><th style='text-align:left'>{name}</th>{''.join(cells)}</tr>")
        return (
            f"<table><tr><th>model</th>{head}</tr>{''.join(body)}</table>"
            f"<small>{html.escape(self.backend)}; probabilities over the "
            f"{_NUMBER_WORDS.get(len(self.labels), len(self.labels))} labels</small>"
        )

    def on_text(self, text: str) -> str | None:
        """The HTML for the box's new text, or None when it has not changed (typing fires the
        callback for every key; an unchanged or empty post is not scored again)."""
        text = text.strip()
        if text == self._last:
            return None
        self._last = text
        return self.html(text) if text else ""

    def widget(self):
        """A text box and the live table under it (ipywidgets)."""
        import ipywidgets as w

        box = w.Textarea(
            placeholder="Type a post in any language ...",
            layout=w.Layout(width="100%", height="5em"),
            continuous_update=True,
        )
        out = w.HTML()

        def update(change):
            shown = self.on_text(change["new"])
            if shown is not None:
                out.value = shown

        box.observe(update, names="value")
        intro = w.HTML(
            "<b>Playground</b>: each row is a model, each bar the probability it gives a label."
        )
        return w.VBox([intro, box, out])

    def close(self) -> None:
        for scorer in self.scorers.values():
            if hasattr(scorer, "close"):
                scorer.close()


def open_playground(profile: str, params: dict[str, Any] | None = None) -> Playground:
    """The base model and every variant of ``profile``, opened as 03 classified with them (03's
    parameters under the profile, or ``params``)."""
    from transformers import AutoTokenizer

    from xling.models.base import resolve_base
    from xling.models.layout import model_files
    from xling.models.prompts import make_prompt
    from xling.models.scorers import open_scorer

    params = params or config.effective_params(profile, EVAL_NOTEBOOK)
    if params.get("base_model") is None:
        raise ValueError(
            f"profile {profile}: {EVAL_NOTEBOOK}.base_model is None (released predictions, no "
            "model): the playground needs a model"
        )
    base = resolve_base(params["base_model"])
    task = load_task(params.get("task"))
    prompt = make_prompt(
        params["prompt_format"], AutoTokenizer.from_pretrained(base.folder), task=task
    )
    backend = params["backends"][0]
    run = paths.run_dir(profile)
    names = (["base"] if params.get("include_base", True) else []) + list(params["variants"])
    device = params.get("device", "cpu")
    scorers: dict[str, Any] = {}
    try:
        for name in names:
            scorers[name] = _one_at_a_time(
                open_scorer(model_files(run, base, name, backend), prompt, device)
            )
    except BaseException:
        Playground(scorers).close()
        raise
    return Playground(scorers, backend=backend, task=task)


class _one_at_a_time:  # noqa: N801 - a thin adapter, named for what it does
    """A scorer with ``score_one`` whatever its kind (transformers scores in batches)."""

    def __init__(self, scorer):
        self.scorer = scorer

    def score_one(self, text: str) -> np.ndarray:
        if hasattr(self.scorer, "score_one"):
            return self.scorer.score_one(text)
        return self.scorer.score_many([text])[0]

    def close(self) -> None:
        if hasattr(self.scorer, "close"):
            self.scorer.close()


def example_posts(profile: str, langs: tuple[str, ...] = EXAMPLE_LANGS, task=None) -> pd.DataFrame:
    """One evaluated post per language of ``langs`` that the run holds (the first by post_id
    among the test and extra posts), from the run's posts table (labels of ``task``)."""
    from xling.data.tables import read_posts

    posts = read_posts(paths.posts_csv(profile), task=task)
    evaluated = posts[posts["split"].isin(["test", "extra"]) & posts["lang"].isin(langs)]
    first = evaluated.sort_values("post_id").groupby("lang", sort=False).head(1)
    order = {lang: i for i, lang in enumerate(langs)}
    return first.sort_values("lang", key=lambda s: s.map(order))[
        ["post_id", "lang", "label", "text"]
    ]


def static_table(pg: Playground, posts: pd.DataFrame) -> pd.DataFrame:
    """Every model's label probabilities for each post, the post's language and gold label
    beside them: one row per (post, model)."""
    table = pg.probabilities(posts["text"].tolist())
    meta = posts.reset_index(drop=True)[["post_id", "lang", "label"]]
    table = table.join(meta, on="post")
    cols = ["post_id", "lang", "label", "model", *pg.prob_columns, "prediction", "text"]
    return table[cols]


def interactive() -> bool:
    """Whether someone can type: a notebook kernel that JupyterLab (a Jupyter server) started,
    not a papermill run (run_all.sh sets XLING_NOTEBOOK; papermill starts no server session)."""
    return in_notebook() and NOTEBOOK_ENV not in os.environ and "JPY_SESSION_NAME" in os.environ


def playground(
    profile: str,
    live: bool | None = None,
    posts: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
):
    """The playground for ``profile``: in JupyterLab (``live``), a text box over a live table of
    every model's label probabilities; otherwise a static table for a few of the run's test
    posts (:func:`example_posts`, or ``posts`` with columns post_id, lang, label, text), the
    models closed afterwards. ``params``: 03's parameters (default: the profile's). Returns what
    a notebook cell shows (the widget, or the table)."""
    live = interactive() if live is None else live
    pg = open_playground(profile, params)
    if live:
        return pg.widget()
    try:
        if posts is None:
            posts = example_posts(profile, task=pg.task)
        return static_table(pg, posts)
    finally:
        pg.close()
