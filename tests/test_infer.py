"""xling.infer: answer parsing, 'failed' handling and the on-disk prediction cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling import infer, paths, prompts

POSTS = pd.DataFrame(
    {
        "post_id": [f"en-{i:04d}" for i in range(6)],
        "text": [f"post number {i}" for i in range(6)],
    }
)


@pytest.mark.parametrize(
    "raw, label",
    [
        (" 1", "pro-immigration"),
        ("2", "anti-immigration"),
        (" [3]", "neutral"),
        ("444", "unrelated"),  # a model that goes on after its digit answered with the first
        ("Answer = 4", "unrelated"),
        ("4 because", "unrelated"),
        ("neutral", "neutral"),
        (" 5", "failed"),
        ("0", "failed"),
        (" it was a", "failed"),
        ("", "failed"),
        (None, "failed"),
        ("the answer is 2", "failed"),  # the number must come first, as the paper parsed it
    ],
)
def test_parse_answer(raw, label):
    assert infer.parse_answer(raw) == label


class FakeScorer:
    """Scores and generations from a lookup, counting calls; can die after ``die_after``."""

    def __init__(self, answers: dict[str, str], die_after: int | None = None):
        self.answers, self.calls, self.die_after = answers, 0, die_after

    def _tick(self):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1

    def generate_one(self, text, max_new_tokens=3):
        self._tick()
        return self.answers[text]

    def score_one(self, text):
        self._tick()
        logp = np.full(4, -5.0)
        logp[int(self.answers[text].strip()[0]) % 4] = -0.1
        return logp


@pytest.fixture
def model_files(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "MODEL_CACHE", tmp_path / "runs" / "cache" / "models")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not really a model")
    return infer.ModelFiles("llamacpp-q4_k_m", gguf)


def test_generate_keeps_failed_output_and_its_raw_text(model_files):
    answers = dict(zip(POSTS["text"], [" 1", " 2", " 3", " 4", " hmm", "44"], strict=True))
    out = infer.classify(
        POSTS,
        model_files,
        prompts.plain_prompt(),
        "generate",
        scorer=FakeScorer(answers),
        progress=False,
    )
    assert out["prediction"].tolist() == [
        "pro-immigration",
        "anti-immigration",
        "neutral",
        "unrelated",
        "failed",
        "unrelated",
    ]
    assert out.loc[4, "raw_output"] == " hmm"


def test_interrupted_run_resumes_without_redoing_finished_posts(model_files):
    answers = dict(zip(POSTS["text"], [" 1", " 2", " 3", " 4", " 1", " 2"], strict=True))
    prompt = prompts.plain_prompt()
    dying = FakeScorer(answers, die_after=4)
    with pytest.raises(KeyboardInterrupt):
        infer.classify(POSTS, model_files, prompt, "generate", scorer=dying, progress=False)
    cache = infer.cache_file(model_files, "generate", prompt, 3)
    assert len(cache.read_text().splitlines()) == 4
    # a kill mid-write leaves half a line: that post is simply classified again
    with cache.open("a") as f:
        f.write('{"key": "en-0004|')
    again = FakeScorer(answers)
    out = infer.classify(POSTS, model_files, prompt, "generate", scorer=again, progress=False)
    assert again.calls == 2
    assert out["prediction"].tolist()[-2:] == ["pro-immigration", "anti-immigration"]
    # everything cached now: nothing classified, same answers
    idle = FakeScorer(answers)
    out2 = infer.classify(POSTS, model_files, prompt, "generate", scorer=idle, progress=False)
    assert idle.calls == 0 and out2.equals(out)


def test_cache_is_per_model_method_prompt_and_text(model_files, tmp_path):
    answers = dict(zip(POSTS["text"], [" 1"] * 6, strict=True))
    prompt = prompts.plain_prompt()
    first = FakeScorer(answers)
    infer.classify(POSTS, model_files, prompt, "score", scorer=first, progress=False)
    assert first.calls == 6
    # an edited post is classified again, the others are not
    edited = POSTS.copy()
    edited.loc[0, "text"] = "an edited post"
    second = FakeScorer({**answers, "an edited post": " 2"})
    out = infer.classify(edited, model_files, prompt, "score", scorer=second, progress=False)
    assert second.calls == 1 and out.loc[0, "prediction"] == "pro-immigration"  # LABELS[2]
    # another method, another prompt, another model file: separate caches
    assert infer.cache_file(model_files, "generate", prompt, 3) != infer.cache_file(
        model_files, "score", prompt, 3
    )
    other_prompt = prompts.Prompt("other", "x\n", "{text} =")
    assert infer.cache_file(model_files, "score", prompt, 3) != infer.cache_file(
        model_files, "score", other_prompt, 3
    )
    other = tmp_path / "other.gguf"
    other.write_bytes(b"another model")
    assert infer.cache_file(model_files, "score", prompt, 3) != infer.cache_file(
        infer.ModelFiles("llamacpp-q4_k_m", other), "score", prompt, 3
    )
    with pytest.raises(ValueError, match="unknown method"):
        infer.classify(POSTS, model_files, prompt, "vote", scorer=first)
