"""Contextual calibration (Zhao et al. 2021): a planted prior is removed, through the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling import infer
from xling.models import calibration, prompts

LABELS = prompts.plain_prompt().labels  # unrelated, neutral, pro-immigration, anti-immigration
GOLD = [0, 1, 2, 3, 0, 1, 3, 3]  # each post's true label (index into LABELS)
POSTS = pd.DataFrame(
    {
        "post_id": [f"p-{i}" for i in range(len(GOLD))],
        "text": [f"post {i}" for i in range(len(GOLD))],
    }
)
# the planted prior: the model likes "pro-immigration" (as the untuned base model likes "1")
BIAS = np.array([0.05, 0.05, 0.85, 0.05])


def true_distribution(k: int) -> np.ndarray:
    """An unbiased reader of post k: 0.55 on its gold label, 0.15 on each other."""
    p = np.full(4, 0.15)
    p[GOLD[k]] = 0.55
    return p


class BiasedScorer:
    """The unbiased reader times the planted prior, as the four answers' log-probabilities
    (unnormalized over the vocabulary: a constant -1.0 is added, which renormalizing removes).
    A content-free input carries no signal, so the reader is uniform there and the scorer
    answers the prior itself."""

    def __init__(self):
        self.calls = 0

    def score_one(self, text):
        self.calls += 1
        if text in calibration.CONTENT_FREE:
            p = np.full(4, 0.25)
        else:
            p = true_distribution(int(text.split()[1]))
        return np.log(p * BIAS) - 1.0


class Refuse:
    def score_one(self, text):
        raise AssertionError(f"scored {text!r} again although it is cached")


def test_calibration_removes_the_bias_it_was_built_from(model_files):
    prompt = prompts.plain_prompt()
    scorer = BiasedScorer()
    raw = infer.classify(POSTS, model_files, prompt, "score", scorer=scorer, progress=False)
    # raw: for a post of gold label g != pro, pro gets 0.15 * 0.85 = 0.1275 against g's
    # 0.55 * 0.05 = 0.0275, so the planted prior wins every post
    assert set(raw["prediction"]) == {"pro-immigration"}
    cal = infer.classify(POSTS, model_files, prompt, "calibrated", scorer=scorer, progress=False)
    # calibrated: p * BIAS / BIAS = p, the unbiased reader's answer, the gold label each time
    assert cal["prediction"].tolist() == [LABELS[g] for g in GOLD]
    columns = [f"logp_{label}" for label in LABELS]
    expected = np.log([true_distribution(k) for k in range(len(GOLD))])
    np.testing.assert_allclose(cal[columns].to_numpy(), expected, atol=1e-12)
    # the prior read from the content-free inputs is the planted one
    np.testing.assert_allclose(infer.model_prior(model_files, prompt, scorer=Refuse()), BIAS)
    # the posts were scored once (8) and the three content-free inputs once (3): a second run
    # reads both from the score cache
    assert scorer.calls == len(GOLD) + len(calibration.CONTENT_FREE)
    again = infer.classify(
        POSTS, model_files, prompt, "calibrated", scorer=Refuse(), progress=False
    )
    pd.testing.assert_frame_equal(again, cal)


def test_a_uniform_prior_changes_nothing_and_a_bad_prior_is_refused():
    logp = np.log([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])
    np.testing.assert_allclose(calibration.calibrate(logp, np.full(4, 0.25)), logp, atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        calibration.calibrate(logp, np.array([0.5, 0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match="4 labels"):
        calibration.calibrate(logp, np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="at least one"):
        calibration.content_free_prior(np.zeros((0, 4)))
    # the prior is the mean of the inputs' distributions: (0.2, 0.8) and (0.6, 0.4) -> (0.4, 0.6)
    prior = calibration.content_free_prior(np.log([[0.2, 0.8], [0.6, 0.4]]))
    np.testing.assert_allclose(prior, [0.4, 0.6])


def test_calibrated_is_a_method_a_profile_may_name():
    from xling import config

    assert config.check_choice("methods", ["score", "calibrated"]) is None
    assert config.check_choice("method", "calibrated") is None
    assert "'calibrate' is not one of" in config.check_choice("methods", ["calibrate"])


def test_answer_shares_read_each_group_against_its_gold_shares():
    from xling import metrics

    # two own test posts (en) and four posts of an evaluation file "talks"; variant v answers
    # "unrelated" to everything raw, and gets every post right calibrated
    gold = ["unrelated", "neutral", "anti-immigration", "anti-immigration", "neutral", "unrelated"]
    split = ["test", "test", "eval", "eval", "eval", "eval"]
    evalset = ["en", "en", "talks", "talks", "talks", "talks"]
    base = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(6)],
            "lang": "en",
            "label": gold,
            "split": split,
            "evalset": evalset,
            "variant": "v",
            "backend": "b",
            "input": "original",
            "raw_output": None,
        }
    )
    raw = base.assign(method="score", prediction="unrelated")
    cal = base.assign(method="calibrated", prediction=gold)
    shares = metrics.answer_shares(pd.concat([raw, cal]), n_boot=50).set_index(["group", "method"])
    talks_raw = shares.loc[("talks", "score")]
    # raw on talks: 1 of 4 right (the one unrelated post); anti recall 0 of 2; answers all
    # unrelated; the floor is anti's 2 of 4
    assert talks_raw["accuracy"] == 0.25 and talks_raw["floor"] == 0.5
    assert talks_raw["answers_unrelated"] == 1.0 and talks_raw["recall_anti-immigration"] == 0.0
    assert np.isnan(talks_raw["recall_pro-immigration"])  # no pro post in the group
    assert talks_raw["min_recall"] == 0.0
    assert shares.loc[("talks", "calibrated"), "min_recall"] == 1.0
    # the gold row: anti 2/4, neutral 1/4, unrelated 1/4; the own posts are pooled as one group
    talks_gold = shares.loc[("talks", "gold")]
    assert talks_gold["answers_anti-immigration"] == 0.5 and talks_gold["n"] == 4
    own = shares.loc[(metrics.OWN_POSTS, "score")]
    assert own["n"] == 2 and own["accuracy"] == 0.5
    from xling import plots

    fig = plots.plot_answer_shares(shares.reset_index())
    assert len(fig.axes) == 2  # one panel per group


def test_score_and_calibrated_classifies_only_the_method_the_table_lacks(monkeypatch):
    rows = pd.DataFrame(
        {
            "post_id": ["a", "a", "a", "a"],
            "backend": ["b", "b", "other", "b"],
            "input": ["original", "original", "original", "translated"],
            "method": ["score", "generate", "score", "score"],
        }
    )
    asked = []

    def fake_predict(posts, files_for, variants, backends, methods, prompt, **kw):
        asked.append((list(backends), list(methods)))
        return pd.DataFrame(
            {"post_id": ["a"], "backend": backends, "input": "original", "method": methods}
        )

    monkeypatch.setattr(infer, "predict", fake_predict)
    both = infer.score_and_calibrated(rows, None, None, ["v"], "b", prompts.plain_prompt())
    # backend b, input original: the one score row is kept, calibrated is classified
    assert asked == [(["b"], ["calibrated"])]
    assert sorted(both["method"]) == ["calibrated", "score"]
    asked.clear()
    again = infer.score_and_calibrated(both, None, None, ["v"], "b", prompts.plain_prompt())
    assert asked == [] and len(again) == 2  # both there: nothing classified
