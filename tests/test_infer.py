"""xling.infer: answer parsing, 'failed' handling and the on-disk prediction cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling import infer
from xling.models import prompts, scorers

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


# --------------------------------------------------------------------------------------------
# The batched llama.cpp scorer (many posts per llama_decode, sharing the prefix's KV cells)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_gguf():
    from xling import models

    return models.embedded_gguf()


@pytest.fixture(scope="module")
def demo_texts():
    from xling import data

    posts = data.load_demo_posts()
    test = posts[posts["split"] != "train"]
    return test.groupby("lang").head(1).sort_values("post_id")["text"].tolist()[:9]


@pytest.mark.model
def test_batched_scorer_gives_score_one_labels(embedded_gguf, demo_texts):
    prompt = prompts.plain_prompt()
    one = scorers.LlamaCppScorer(embedded_gguf, prompt)
    ref = np.array([one.score_one(t) for t in demo_texts])
    one.close()
    # one post per decode: the same cells as score_one's, so the same bits
    single = scorers.LlamaCppBatchScorer(embedded_gguf, prompt, batch_size=1, flash_attn=False)
    np.testing.assert_array_equal(single.score_many(demo_texts[:3]), ref[:3])
    single.close()
    # 4 posts per decode (9 posts: batches of 4, 4, 1), the logits of each read by its index
    batched = scorers.LlamaCppBatchScorer(embedded_gguf, prompt, batch_size=4)
    got = batched.score_many(demo_texts)
    assert batched.n_decode_calls == 1 + 3  # the prefix once, then three batches
    n_prefix = len(batched.prefix)
    batched.close()
    assert got.shape == (len(demo_texts), 4)
    assert (got.argmax(axis=1) == ref.argmax(axis=1)).all()
    # rounding differs with where a post's KV cells lie (see the class docstring)
    assert np.abs(got - ref).max() < 0.5
    # interleaving: every post's scores are its own (the posts' own scores differ)
    assert np.abs(got[0] - got[1]).max() > 0.01
    assert n_prefix > 5


@pytest.mark.model
def test_scorer_threads_cover_prompts_too(embedded_gguf):
    # llama-cpp-python runs a decode of several tokens (a post's prompt) on n_threads_batch,
    # which it sets to every core unless told: a scorer asked for one thread must use one for
    # prompts as well, or "one core" measurements (bench/archive.py's authors' way) use all
    one = scorers.LlamaCppScorer(embedded_gguf, prompts.plain_prompt(), n_threads=1)
    try:
        assert one.llm.context_params.n_threads == 1
        assert one.llm.context_params.n_threads_batch == 1
    finally:
        one.close()


@pytest.mark.model
def test_batched_scorer_evaluates_a_post_whole_when_its_tokens_merge_with_the_prefix(
    embedded_gguf, demo_texts
):
    # "quest" + "ion" is one token in the rendered prompt, not the prefix's last token
    prompt = prompts.Prompt("merged", "Answer the quest", "ion about this post: {text}\nAnswer =")
    one = scorers.LlamaCppScorer(embedded_gguf, prompt)
    texts = demo_texts[:3]
    ref = np.array([one.score_one(t) for t in texts])
    one.close()
    batched = scorers.LlamaCppBatchScorer(embedded_gguf, prompt, batch_size=2)
    toks = batched.tokenize(prompt.render(texts[0]))
    assert toks[: len(batched.prefix)] != batched.prefix  # the whole-post path is taken
    got = batched.score_many(texts)
    again = batched.score_many(texts)  # the prefix survives in every sequence
    batched.close()
    assert (got.argmax(axis=1) == ref.argmax(axis=1)).all()
    assert np.abs(got - ref).max() < 0.5
    np.testing.assert_allclose(again, got, atol=0.5)


def test_batched_scorer_packs_posts_by_count_and_tokens():
    s = object.__new__(scorers.LlamaCppBatchScorer)
    s.prefix, s.batch_size, s.max_batch_tokens = [1, 2], 3, 10
    # suffix sizes 4, 4, 4, 1, 1, 1, 1 (after the 2 prefix tokens); a post that does not start
    # with the prefix counts whole (5 tokens)
    toks = [[1, 2, 9, 9, 9, 9]] * 3 + [[1, 2, 9]] * 4 + [[7, 7, 7, 7, 7]]
    assert s._groups(toks) == [[0, 1], [2, 3, 4], [5, 6, 7]]
    with pytest.raises(ValueError, match="post 0: 11 tokens, more than max_batch_tokens 10"):
        s._groups([[1, 2] + [9] * 11])
