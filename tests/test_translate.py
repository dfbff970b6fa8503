"""xling.translate: cleaning the translator's output, the few-shot prompt, the cache, quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling import data, paths, translate

# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, clean",
    [
        (" The border is closed.", "The border is closed."),
        (' "The border is closed."', "The border is closed."),  # quotes around the whole text
        ("“The border is closed.”", "The border is closed."),
        ("«The border is closed.»", "The border is closed."),
        ("'Welcome, refugees'", "Welcome, refugees"),
        ('He said "no" to the law', 'He said "no" to the law'),  # inner quotes stay
        ('"Only an opening quote', '"Only an opening quote'),  # unmatched: left alone
        ("English: The border is closed.", "The border is closed."),
        ("Translation: The border is closed.", "The border is closed."),
        ("English translation: The border", "The border"),
        ("Here is the translation: The border is closed.", "The border is closed."),
        ("Here's the English translation of the post: Hi all", "Hi all"),
        ("Sure! English: The border is closed.", "The border is closed."),
        ("Sure, here is the translation: Hi", "Hi"),
        ("The border is closed. (Note: informal register)", "The border is closed."),
        ("The border is closed. Note: the post is sarcastic", "The border is closed."),
        ("Hi all German: Hallo zusammen", "Hi all"),  # ran on into another example
        ("Hi all Answer = 3", "Hi all"),  # or into a classification
        ("\n\n  First line  \nsecond line", "First line"),
        ("Too   many    spaces", "Too many spaces"),
        ("Migrants: welcome!", "Migrants: welcome!"),  # a colon inside the text stays
        ("", ""),
        ("   ", ""),
        (None, ""),
        ('""', ""),
    ],
)
def test_clean_translation(raw, clean):
    assert translate.clean_translation(raw) == clean


@pytest.mark.parametrize(
    "translation, source, truncated, status",
    [
        ("", "Hola amigos", False, "empty"),
        ("  ", "Hola amigos", True, "empty"),  # empty wins over truncated
        ("hola, amigos!", "Hola amigos", False, "unchanged"),  # same up to case, punctuation
        ("Hola amigos https://t.co/x", "Hola amigos", False, "unchanged"),  # and links
        ("Hello friends", "Hola amigos", True, "truncated"),
        ("Hello friends", "Hola amigos", False, "ok"),
    ],
)
def test_translation_status(translation, source, truncated, status):
    assert translate.translation_status(translation, source, truncated) == status


# --------------------------------------------------------------------------------------------
# The few-shot prompt
# --------------------------------------------------------------------------------------------

POOL = pd.DataFrame(
    {
        "post_id": ["de-1", "de-2", "de-3", "de-4", "de-5", "fr-1", "fr-2", "en-1"],
        "lang": ["de", "de", "de", "de", "de", "fr", "fr", "en"],
        "split": ["train", "train", "train", "test", "test", "train", "test", "train"],
        "text": [
            "Grenzen auf!",
            "Das Wetter ist schön",
            "Die Kontrolle bleibt",  # the same text as the test post de-5, up to case and "!"
            "Abschieben jetzt",
            "die Kontrolle bleibt!",
            "Bonjour à tous",
            "Fermez la frontière",
            "An English post",
        ],
        "text_en": [
            "Open the borders!",
            "The weather is nice",
            "The control stays",
            "Deport now",
            "The control stays!",
            "Hello everyone",
            "Close the border",
            None,
        ],
    }
)


def test_examples_are_training_posts_never_the_post_or_a_test_post():
    to_translate = POOL[POOL["split"] == "test"]
    shots = translate.build_prompts(POOL, to_translate, n_shots=5, seed=0)
    assert set(shots) == {"de", "fr"}
    test_texts = set(to_translate["text"])
    for lang, prompt in shots.items():
        for _, text, _ in prompt.examples:
            row = POOL[POOL["text"] == text].iloc[0]
            assert row["split"] == "train" and row["lang"] != "en"
            assert text not in test_texts
        assert "Die Kontrolle bleibt" not in prompt.prefix  # a test post's twin from train
        for post in to_translate[to_translate["lang"] == lang]["text"]:
            rendered = prompt.render(post)
            assert rendered.count(post) == 1 and rendered.endswith(f"{post}\nEnglish:")
            assert rendered.startswith(translate.INSTRUCTION)
            for other in test_texts - {post}:
                assert other not in rendered
    # German has two usable training posts; the other three come from French (topped up, first)
    de = shots["de"].examples
    assert [lang for lang, *_ in de] == ["fr", "de", "de"]
    assert {t for _, t, _ in de} == {"Bonjour à tous", "Grenzen auf!", "Das Wetter ist schön"}


def test_a_language_without_training_posts_borrows_examples():
    ko = pd.DataFrame(
        {
            "post_id": ["ko-1"],
            "lang": ["ko"],
            "split": ["extra"],
            "text": ["국경"],
            "text_en": ["border"],
        }
    )
    pool = pd.concat([POOL, ko], ignore_index=True)
    prompt = translate.build_prompts(pool, ko, n_shots=2, seed=1)["ko"]
    assert len(prompt.examples) == 2 and all(lang != "ko" for lang, *_ in prompt.examples)
    assert prompt.render("국경").endswith("Korean: 국경\nEnglish:")
    # the same pool and seed give the same examples
    assert translate.build_prompts(pool, ko, n_shots=2, seed=1)["ko"] == prompt


def test_long_example_posts_are_left_out():
    examples = translate.pick_examples(POOL, "de", 5, max_chars=13)
    assert {t for _, t, _ in examples} == {"Grenzen auf!"}  # 12 characters; the rest are longer


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------

POSTS = pd.DataFrame(
    {
        "post_id": [f"de-{i}" for i in range(6)],
        "lang": ["de"] * 6,
        "text": [f"Beitrag {i}" for i in range(6)],
    }
)


class FakeTranslator:
    """Translations from a lookup, counting calls; can die after ``die_after`` posts."""

    def __init__(self, die_after: int | None = None):
        self.calls, self.die_after, self.seen = 0, die_after, []

    def translate_one(self, prompt, text, max_new_tokens=64):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.seen.append(prompt.render(text))
        n = text.split()[-1]
        if n == "4":
            return " ", False  # comes back empty
        if n == "5":
            return f' "{text}"', True  # unchanged (and cut at the token limit)
        return f' "Post {n}"', False


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "MODEL_CACHE", tmp_path / "runs" / "cache" / "models")
    gguf = tmp_path / "translator.gguf"
    gguf.write_bytes(b"not really a model")
    return gguf


def _prompts(n_shots=1):
    pool = pd.DataFrame(
        {
            "post_id": ["de-x"],
            "lang": ["de"],
            "split": ["train"],
            "text": ["Hallo"],
            "text_en": ["Hello"],
        }
    )
    return translate.build_prompts(pool, POSTS, n_shots=n_shots)


def test_translations_are_cleaned_and_marked_not_dropped(model):
    out = translate.translate_posts(
        POSTS, model, _prompts(), translator=FakeTranslator(), progress=False
    )
    assert out["post_id"].tolist() == POSTS["post_id"].tolist()  # every post, in order
    assert out["text_mt"].tolist()[:4] == ["Post 0", "Post 1", "Post 2", "Post 3"]
    assert out["mt_status"].tolist() == ["ok"] * 4 + ["empty", "unchanged"]
    assert out.loc[5, "mt_raw"] == ' "Beitrag 5"'  # the raw output is kept beside the clean one


def test_killed_run_resumes_without_translating_a_post_twice(model):
    prompts = _prompts()
    with pytest.raises(KeyboardInterrupt):
        translate.translate_posts(
            POSTS, model, prompts, translator=FakeTranslator(die_after=3), progress=False
        )
    cache = translate.cache_file(model, 64)
    assert len(cache.read_text().splitlines()) == 3
    # a kill in the middle of writing leaves half a line: that post is translated again
    with cache.open("a") as f:
        f.write('{"key": "de-3|')
    again = FakeTranslator()
    out = translate.translate_posts(POSTS, model, prompts, translator=again, progress=False)
    assert again.calls == 3  # posts 3, 4, 5 only
    assert out["text_mt"].tolist()[:4] == ["Post 0", "Post 1", "Post 2", "Post 3"]
    assert out["mt_seconds"].iloc[:3].eq(0).all()  # read from the cache
    idle = FakeTranslator()
    out2 = translate.translate_posts(POSTS, model, prompts, translator=idle, progress=False)
    assert idle.calls == 0 and out2["text_mt"].equals(out["text_mt"])


def test_cache_is_per_model_prompt_and_post(model, tmp_path):
    first = FakeTranslator()
    translate.translate_posts(POSTS, model, _prompts(), translator=first, progress=False)
    assert first.calls == 6
    # an edited post is translated again, the others are not
    edited = POSTS.copy()
    edited.loc[0, "text"] = "Beitrag 9"
    second = FakeTranslator()
    translate.translate_posts(edited, model, _prompts(), translator=second, progress=False)
    assert second.calls == 1
    # other examples in the prompt: every post again
    third = FakeTranslator()
    translate.translate_posts(POSTS, model, _prompts(n_shots=0), translator=third, progress=False)
    assert third.calls == 6
    # another model file or token limit: another cache file
    other = tmp_path / "other.gguf"
    other.write_bytes(b"another model")
    assert translate.cache_file(model, 64) != translate.cache_file(other, 64)
    assert translate.cache_file(model, 64) != translate.cache_file(model, 32)


def test_a_language_without_a_prompt_is_refused(model):
    with pytest.raises(ValueError, match="no translation prompt for language"):
        translate.translate_posts(POSTS.assign(lang="pl"), model, _prompts(), progress=False)


# --------------------------------------------------------------------------------------------
# Given translations, predictions table, quality
# --------------------------------------------------------------------------------------------


def test_given_translations_mark_missing_and_copied_ones():
    posts = pd.DataFrame(
        {
            "post_id": ["a", "b", "c"],
            "text": ["Hola", "Adiós", "Bonjour"],
            "text_en": ["Hello", None, "bonjour"],
        }
    )
    out = translate.given_translations(posts)
    assert out["text_mt"].tolist() == ["Hello", "", "bonjour"]
    assert out["mt_status"].tolist() == ["ok", "empty", "unchanged"]


def test_replace_translated_keeps_the_original_rows():
    cols = ["post_id", "variant", "backend", "method", "input", "prediction"]
    old = pd.DataFrame(
        [
            ["p1", "en", "q4", "score", "original", "neutral"],
            ["p1", "en", "q4", "score", "translated", "neutral"],  # stale: replaced
            ["p1", "multi", "q4", "score", "translated", "unrelated"],  # another variant: kept
        ],
        columns=cols,
    )
    new = pd.DataFrame(
        [["p1", "en", "q4", "score", "translated", "anti-immigration"]], columns=cols
    )
    out = data.replace_translated(old, new)
    assert len(out) == 3
    en_tr = out[(out["variant"] == "en") & (out["input"] == "translated")]
    assert en_tr["prediction"].tolist() == ["anti-immigration"]
    assert (out["input"] == "original").sum() == 1


def test_quality_per_language_against_references():
    table = pd.DataFrame(
        {
            "lang": ["de", "de", "fr"],
            "text_mt": ["The border is closed", "", "Hello everyone in the village"],
            "text_en": [
                "The border is closed",
                "Open the borders",
                "Hello everyone in the village",
            ],
            "mt_status": ["ok", "empty", "ok"],
            "translation_ok": [1, 0, np.nan],
        }
    )
    q = translate.translation_quality(table, "text_en").set_index("lang")
    # (BLEU needs four words to have 4-grams: a shorter perfect sentence would score 0)
    assert q.loc["fr", "chrf"] == pytest.approx(100) and q.loc["fr", "bleu"] == pytest.approx(100)
    # de: one perfect sentence and one empty one; the corpus scores lie strictly between
    assert 0 < q.loc["de", "chrf"] < 100 and q.loc["de", "n_empty"] == 1
    assert q.loc["de", "n_checked"] == 2 and q.loc["de", "share_good"] == 0.5
    assert np.isnan(q.loc["fr", "share_good"]) and q.loc["all", "n"] == 3
    chrf = translate.sentence_chrf(table["text_mt"], table["text_en"])
    assert chrf[0] == pytest.approx(100) and chrf[1] == 0
    assert np.isnan(translate.sentence_chrf(["x"], [None])[0])
    # no references (the paper profile): NaN, and the human check still counted
    q2 = translate.translation_quality(table, None).set_index("lang")
    assert np.isnan(q2.loc["all", "chrf"]) and q2.loc["all", "n_checked"] == 2


# --------------------------------------------------------------------------------------------
# The real translator (the embedded model), on two posts
# --------------------------------------------------------------------------------------------


@pytest.mark.model
def test_embedded_model_translates_and_stops_at_the_line_end():
    from xling import models

    try:
        gguf = models.embedded_gguf()
    except models.ModelError as err:
        pytest.skip(str(err))
    pool = pd.DataFrame(
        {
            "post_id": ["de-a", "de-b"],
            "lang": ["de"] * 2,
            "split": ["train"] * 2,
            "text": ["Guten Morgen, Berlin!", "Die Grenze ist offen."],
            "text_en": ["Good morning, Berlin!", "The border is open."],
        }
    )
    post = "Ich liebe Hunde."
    prompt = translate.FewShotPrompt("de", translate.pick_examples(pool, "de", 2))
    translator = translate.LlamaCppTranslator(gguf, n_threads=2)
    try:
        raw, truncated = translator.translate_one(prompt, post, max_new_tokens=24)
        again, _ = translator.translate_one(prompt, post, max_new_tokens=24)  # KV prefix reused
    finally:
        translator.close()
    assert "\n" not in raw and not truncated
    assert raw == again  # greedy: the same output
    assert translate.clean_translation(raw)  # something English-looking came back
