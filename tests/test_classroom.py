"""The classroom playground (xling.playground, the last cell of 03): every model's four label
probabilities for a post, side by side; a static table in papermill runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import xling
from xling import artifacts, classroom, paths
from xling.schema import LABELS


class FixedScorer:
    """Stands in for a llama.cpp scorer: fixed log-probabilities per text, counting calls."""

    def __init__(self, logp_by_text):
        self.logp_by_text = logp_by_text
        self.calls = 0
        self.closed = False

    def score_one(self, text):
        self.calls += 1
        return np.array(self.logp_by_text[text], dtype=float)

    def close(self):
        self.closed = True


# log-probabilities over the whole vocabulary: they sum to less than 1 over the four labels.
# base: log(0.1), log(0.1), log(0.2), log(0.1) -> renormalized 0.2, 0.2, 0.4, 0.2 (sum 0.5)
# en:   log(0.6), log(0.1), log(0.05), log(0.05) -> 0.75, 0.125, 0.0625, 0.0625 (sum 0.8)
BASE = np.log([0.1, 0.1, 0.2, 0.1])
EN = np.log([0.6, 0.1, 0.05, 0.05])


def fake_playground():
    texts = {"a post": BASE, "ein Beitrag": EN}
    return classroom.Playground(
        {"base": FixedScorer({"a post": BASE, "ein Beitrag": BASE}), "en": FixedScorer(texts)},
        backend="llamacpp-q4_k_m+lora",
    )


def test_probabilities_are_renormalized_over_the_labels_per_post_and_model():
    table = fake_playground().probabilities(["a post", "ein Beitrag"])
    assert len(table) == 4  # 2 posts x 2 models
    assert list(table["model"]) == ["base", "en", "base", "en"]
    p = table[classroom.PROB_COLUMNS].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [0.2, 0.2, 0.4, 0.2])  # base on "a post" (worked out above)
    np.testing.assert_allclose(p[3], [0.75, 0.125, 0.0625, 0.0625])  # en on "ein Beitrag"
    # LABELS order: unrelated, neutral, pro, anti -> base picks the third, en the first
    assert table["prediction"].tolist() == [LABELS[2], LABELS[2], LABELS[2], LABELS[0]]


def test_the_live_table_scores_only_a_changed_post():
    pg = fake_playground()
    shown = pg.on_text("  a post ")
    assert "<table>" in shown and shown.count("<tr>") == 3  # a header and one row per model
    assert "0.40" in shown and "llamacpp-q4_k_m+lora" in shown
    calls = pg.scorers["en"].calls
    assert pg.on_text("a post") is None  # unchanged after stripping: nothing scored again
    assert pg.scorers["en"].calls == calls
    assert pg.on_text("") == ""  # an emptied box clears the table


def test_the_widget_updates_its_table_when_the_text_changes():
    pytest.importorskip("ipywidgets")
    pg = fake_playground()
    box = pg.widget()
    text, out = box.children[1], box.children[2]
    text.value = "ein Beitrag"  # as typing does: the observer runs, the HTML changes
    assert "0.75" in out.value and "<b>" not in out.value.split("<table>")[0]


def test_example_posts_are_one_evaluated_post_per_language(tmp_path, monkeypatch):
    from xling.data.sources import load_demo_posts
    from xling.data.tables import write_posts

    monkeypatch.delenv(artifacts.NOTEBOOK_ENV, raising=False)
    write_posts(load_demo_posts(), paths.posts_csv("playground-test"))
    ex = classroom.example_posts("playground-test")
    # the demo corpus has test posts in en, es, de, hu and an extra Korean set: one each, in order
    assert ex["lang"].tolist() == list(classroom.EXAMPLE_LANGS)
    assert list(ex.columns) == ["post_id", "lang", "label", "text"]


def test_static_table_carries_each_posts_language_and_gold_label():
    posts = pd.DataFrame(
        {
            "post_id": ["p1", "p2"],
            "lang": ["en", "de"],
            "label": ["neutral", "unrelated"],
            "text": ["a post", "ein Beitrag"],
        }
    )
    table = classroom.static_table(fake_playground(), posts)
    assert table.shape == (4, 10)
    assert table.loc[table["model"] == "en", "post_id"].tolist() == ["p1", "p2"]
    assert table.loc[3, "label"] == "unrelated" and math.isclose(table.loc[3, "p_unrelated"], 0.75)


def test_interactive_only_in_a_server_kernel_and_not_under_run_all(monkeypatch):
    monkeypatch.setattr(classroom, "in_notebook", lambda: True)
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/03_crosslingual_eval.ipynb")
    monkeypatch.delenv(artifacts.NOTEBOOK_ENV, raising=False)
    assert classroom.interactive()  # JupyterLab's kernel
    monkeypatch.setenv(artifacts.NOTEBOOK_ENV, "03_crosslingual_eval")
    assert not classroom.interactive()  # run_all.sh's papermill run
    monkeypatch.delenv(artifacts.NOTEBOOK_ENV)
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert not classroom.interactive()  # papermill by hand: no server session


def test_the_root_package_reaches_it_and_the_fingerprint_sees_it():
    from xling.run import fingerprint

    assert xling.playground is classroom.playground
    # notebook 03's code calls xling.playground: the module is part of 03's fingerprint
    used = fingerprint.library_modules("import xling\nxling.playground('demo')\n")
    assert paths.LIB / "classroom.py" in used


def test_a_profile_without_a_model_is_refused_by_name():
    with pytest.raises(ValueError, match="base_model is None"):
        classroom.open_playground("paper", {"base_model": None})


@pytest.mark.model
def test_static_table_from_real_models(monkeypatch):
    """The real path: the embedded base model and a variant file, both opened in llama.cpp as 03
    classifies with them; a variant file that is the base model's own bytes must give the base
    model's probabilities."""
    import shutil

    from xling import models

    monkeypatch.delenv(artifacts.NOTEBOOK_ENV, raising=False)
    base = models.resolve_base(models.EMBEDDED)
    gguf = paths.run_dir("playground-real") / "gguf" / "en-q4_k_m.gguf"
    gguf.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(base.gguf, gguf)  # 'en' is the untuned model under a variant's name
    params = {
        "base_model": "embedded",
        "prompt_format": "plain",
        "backends": ["llamacpp-q4_k_m"],
        "variants": {"en": ["en"]},
        "include_base": True,
        "device": "cpu",
    }
    posts = pd.DataFrame(
        {
            "post_id": ["p1", "p2", "p3"],
            "lang": ["en", "de", "ko"],
            "label": ["anti-immigration", "neutral", "unrelated"],
            "text": [
                "Close the borders now, no more asylum seekers",
                "Die Stadt eröffnet ein neues Beratungszentrum für Geflüchtete.",
                "오늘 날씨가 정말 좋네요",
            ],
        }
    )
    table = classroom.playground("playground-real", live=False, posts=posts, params=params)
    assert table.shape == (6, 10)  # 3 posts x (base, en)
    p = table[classroom.PROB_COLUMNS].to_numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)
    assert ((p > 0) & (p < 1)).all()
    base_rows, en_rows = p[table["model"] == "base"], p[table["model"] == "en"]
    np.testing.assert_allclose(base_rows, en_rows, atol=1e-6)  # the same bytes, the same model
    assert table["prediction"].tolist() == [LABELS[int(i)] for i in p.argmax(axis=1)]
