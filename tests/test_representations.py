"""Notebook 07's machinery: hidden states and the logit lens (models/hidden), ABX, probes, PCA and
the sentences (analysis/representations), on planted vectors and on small real models."""

from __future__ import annotations

import string

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_gemma
from xling.analysis import representations as rep
from xling.models import hidden
from xling.models.hidden import HiddenStates
from xling.models.prompts import plain_prompt
from xling.schema import LABELS

# --------------------------------------------------------------------------------------------
# A character-level tokenizer for the tiny Gemma (fast tokenizer: it gives character offsets)
# --------------------------------------------------------------------------------------------


def char_tokenizer():
    from tokenizers import Regex, Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + list(string.printable))}
    tk = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tk.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


TEXTS = [
    "Deport them all, now!",
    "My cat Kevin is a menace",
    "Der Bundestag debattiert heute über Migration.",  # ü: <unk> in the char vocabulary
    "ok",
]


def test_post_tokens_are_the_posts_own_characters():
    tok = char_tokenizer()
    prompt = plain_prompt()
    ids, in_post = hidden.post_token_ids(tok, prompt, "  ab   c ", [7])
    # the post is written with its spaces collapsed: "ab c" -> 4 character tokens
    assert in_post.sum() == 4
    own = [i for i, m in zip(ids, in_post, strict=True) if m]
    assert "".join(tok.convert_ids_to_tokens(own)) == "ab c"
    assert ids[-1] == 7 and not in_post[-1]  # the stem is appended, not part of the post


def test_lens_at_the_last_layer_is_the_scorers_answer_distribution_tiny_model():
    from xling.models.scorers import TransformersScorer

    model, tok = tiny_gemma(vocab_size=128), char_tokenizer()
    prompt = plain_prompt()
    states = hidden.forward_hidden(model, tok, prompt, TEXTS, batch_size=3)
    assert states.mean.shape == (4, 3, 32)  # embedding + 2 layers, hidden size 32
    assert states.lens.shape == (4, 3, 4)
    # the mean runs over each post's own characters (as Prompt.body writes them)
    assert list(states.n_post_tokens) == [len(t) for t in TEXTS]
    logp = TransformersScorer(model, tok, prompt, batch_size=2).score_many(TEXTS)
    p = np.exp(logp)
    p /= p.sum(axis=1, keepdims=True)
    z = states.lens[:, -1]
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(q, p, atol=1e-5)
    # the last position's state is the same whatever the batch (padding is masked)
    alone = hidden.forward_hidden(model, tok, prompt, TEXTS[1:2], batch_size=1)
    np.testing.assert_allclose(alone.last[0], states.last[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(alone.mean[0], states.mean[1], rtol=1e-4, atol=1e-4)


def test_the_cache_returns_the_same_arrays_without_opening_the_model(tmp_path):
    model, tok = tiny_gemma(vocab_size=128), char_tokenizer()
    prompt = plain_prompt()
    opened = []

    def load():
        opened.append(1)
        return model, tok

    first = hidden.read_hidden(TEXTS, prompt, "k" * 64, load, batch_size=2, cache_dir=tmp_path)
    assert len(opened) == 1
    assert len(list(tmp_path.rglob("*.npz"))) == len(TEXTS)

    def refuse():
        raise AssertionError("the model was opened although every text is cached")

    again = hidden.read_hidden(TEXTS, prompt, "k" * 64, refuse, cache_dir=tmp_path)
    for name in ("mean", "last", "lens", "n_post_tokens"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    direct = hidden.forward_hidden(model, tok, prompt, TEXTS, batch_size=2)
    np.testing.assert_allclose(first.mean, direct.mean, rtol=1e-5, atol=1e-5)
    # a new text is read through the model; the cached ones are not read again
    more = hidden.read_hidden([*TEXTS, "new one"], prompt, "k" * 64, load, cache_dir=tmp_path)
    assert len(opened) == 2 and more.mean.shape[0] == 5
    np.testing.assert_array_equal(more.mean[:4], first.mean)
    # another model (fingerprint) or another prompt is another cache entry
    assert hidden.cache_path("a" * 64, prompt, "x", tmp_path) != hidden.cache_path(
        "b" * 64, prompt, "x", tmp_path
    )


def test_a_damaged_cache_file_is_read_again(tmp_path):
    model, tok = tiny_gemma(vocab_size=128), char_tokenizer()
    prompt = plain_prompt()
    first = hidden.read_hidden(
        TEXTS[:1], prompt, "d" * 64, lambda: (model, tok), cache_dir=tmp_path
    )
    path = hidden.cache_path("d" * 64, prompt, TEXTS[0], tmp_path)
    path.write_bytes(b"cut short")
    again = hidden.read_hidden(
        TEXTS[:1], prompt, "d" * 64, lambda: (model, tok), cache_dir=tmp_path
    )
    np.testing.assert_array_equal(again.mean, first.mean)


def test_lens_probabilities_and_ranks_worked_out():
    # one post, two layers; logits of (unrelated, neutral, pro, anti)
    # layer 0: all equal -> p = 0.25 each, gold (neutral) ranks 1 (no label is above it)
    # layer 1: log(1), log(2), log(3), log(4) -> p(neutral) = 2/10, two labels above it: rank 3
    lens = np.array([[[0.0, 0.0, 0.0, 0.0], np.log([1.0, 2.0, 3.0, 4.0])]])
    p, rank = hidden.lens_probabilities(lens, np.array([1]))
    np.testing.assert_allclose(p, [[0.25, 0.2]])
    assert rank.tolist() == [[1, 3]]


def test_emergence_layer_is_where_the_probability_stays_halfway_up():
    # chance 0.25, final 0.85: halfway is 0.55; layer 2 reaches 0.6 but layer 3 falls back,
    # so the answer emerges at layer 4 (0.7, and 0.85 after it)
    curve = pd.Series([0.25, 0.3, 0.6, 0.5, 0.7, 0.85])
    assert rep.emergence_layer(curve) == 4
    assert rep.emergence_layer(pd.Series([0.3, 0.25, 0.2])) is None  # never above chance
    assert rep.emergence_layer(pd.Series([0.2, 0.26])) is None  # above, but by less than 0.05


# --------------------------------------------------------------------------------------------
# Planted vectors
# --------------------------------------------------------------------------------------------


def planted_posts(per_group: int = 3) -> pd.DataFrame:
    rows = []
    for lang in ("en", "de"):
        for label in ("neutral", "unrelated"):
            for k in range(per_group):
                rows.append(
                    {
                        "post_id": f"{lang}-{label}-{k}",
                        "text": f"{lang} {label} {k}",
                        "lang": lang,
                        "label": label,
                        "split": "test",
                        "text_en": None if lang == "en" else f"en {label} {k}",
                    }
                )
    return pd.DataFrame(rows)


def planted_states(items: pd.DataFrame, layers) -> HiddenStates:
    """Each item's vector per layer: s * (its text's language direction) + w * (its label's
    direction) + c * (its post's own content direction), all directions orthogonal; an English
    reference has the English direction and its post's content."""
    posts = items[items["kind"] == "post"]["post_id"].tolist()
    dims = 4 + len(posts)
    lang_dir = {"en": 0, "de": 1}
    label_dir = {"neutral": 2, "unrelated": 3}
    out = np.zeros((len(items), len(layers), dims))
    for r in items.itertuples():
        text_lang = "en" if r.kind == "reference" else r.lang
        for layer, (s, w, c) in enumerate(layers):
            out[r.item, layer, lang_dir[text_lang]] = s
            out[r.item, layer, label_dir[r.label]] = w
            out[r.item, layer, 4 + posts.index(r.post_id)] = c
    lens = np.zeros((len(items), len(layers), 4))
    return HiddenStates(out, out.copy(), lens, np.ones(len(items), dtype=np.int32))


def test_items_pair_each_non_english_post_with_its_reference():
    items = rep.select_items(planted_posts(), ["test"], posts_per_lang=None)
    posts = items[items["kind"] == "post"]
    refs = items[items["kind"] == "reference"]
    assert len(posts) == 12 and len(refs) == 6
    assert (items["item"] == np.arange(len(items))).all()
    de = posts[posts["lang"] == "de"].set_index("post_id")
    for r in refs.itertuples():
        assert de.loc[r.post_id, "ref_item"] == r.item and r.text.startswith("en ")
    en = posts[posts["lang"] == "en"]
    assert (en["ref_item"] == en["item"]).all()  # an English post is its own reference


def test_items_are_capped_per_language_with_the_labels_balanced():
    posts = planted_posts(per_group=5)
    items = rep.select_items(posts, ["test"], posts_per_lang=4, english_posts=6, seed=3)
    counts = items[items["kind"] == "post"].groupby(["lang", "label"]).size()
    assert counts["de"].tolist() == [2, 2] and counts["en"].tolist() == [3, 3]
    again = rep.select_items(posts, ["test"], posts_per_lang=4, english_posts=6, seed=3)
    pd.testing.assert_frame_equal(items, again)  # the seed fixes the draw


def test_items_without_any_reference_in_a_language_are_refused():
    posts = planted_posts().assign(text_en=None)
    with pytest.raises(ValueError, match="text_en.*de"):
        rep.select_items(posts, ["test"], posts_per_lang=None)


def test_abx_on_planted_vectors_gives_the_worked_out_errors():
    # Two languages (en, de) x two labels (neutral, unrelated), three posts each, and an English
    # reference per German post. Vectors: s*language + w*label + c*content, orthogonal unit
    # directions, so for a post X every other item has the same norm sqrt(s^2 + w^2 + c^2) and
    # the cosine is set by the shared directions alone:
    #   layer 0 (s=1, w=0.5, c=0): language dominates.
    #     language: A (same language and label) shares s^2 + w^2, B (other language) only w^2
    #       -> X always nearer A: error 0.
    #     label: A (same label, other language) shares w^2 = 0.25, B (other label, same
    #       language) s^2 = 1 -> X always nearer B: error 1.
    #     meaning: A (X's reference) and B (another same-label reference) are the same vector
    #       (no content) -> a tie every time: error 0.5.
    #   layer 1 (s=1, w=2, c=1): label dominates.
    #     language: A shares s^2 + w^2 = 5, B w^2 = 4 -> error 0.
    #     label: A shares w^2 = 4, B s^2 = 1 -> error 0.
    #     meaning: A shares w^2 + c^2 = 5, B w^2 = 4 -> error 0.
    #   layer 2 (s=0, w=1, c=1): no language at all.
    #     language: A and B share w^2 = 1 each (content is each post's own) -> ties: 0.5.
    #     label: A shares w^2 = 1, B nothing -> error 0.
    #     meaning: A shares 2, B 1 -> error 0.
    items = rep.select_items(planted_posts(), ["test"], posts_per_lang=None)
    states = planted_states(items, [(1, 0.5, 0), (1, 2, 1), (0, 1, 1)])
    table = rep.abx_table(items, {"planted": states}, n_triplets=300, n_boot=200, seed=5)
    got = table[table["position"] == "mean"].pivot(index="task", columns="layer", values="error")
    expected = {"language": [0, 0, 0.5], "label": [1, 0, 0], "meaning": [0.5, 0, 0]}
    for task, errors in expected.items():
        np.testing.assert_allclose(got.loc[task].to_numpy(), errors, atol=1e-12)
    # every triplet of a task has the same error here, so the interval has no width
    assert np.allclose(table["low"], table["error"]) and np.allclose(table["high"], table["error"])
    assert (table["n_triplets"] == 300).all()
    # X is any post for language and label, a German post (it has a reference) for meaning
    assert table.groupby("task")["n_x"].first().to_dict() == {
        "language": 12,
        "label": 12,
        "meaning": 6,
    }


def test_abx_triplets_keep_to_their_definitions():
    items = rep.select_items(planted_posts(), ["test"], posts_per_lang=None).set_index("item")
    for task in rep.ABX_TASKS:
        trip = rep.sample_triplets(items.reset_index(), task, 200, seed=1)
        a, b, x = (items.loc[trip[c]] for c in ("a", "b", "x"))
        assert (x["kind"] == "post").all()
        if task == "language":
            assert (a["lang"].values == x["lang"].values).all()
            assert (b["lang"].values != x["lang"].values).all()
            assert (a["label"].values == x["label"].values).all()
            assert (b["label"].values == x["label"].values).all()
            assert (trip["a"] != trip["x"]).all()
        elif task == "label":
            assert (a["label"].values == x["label"].values).all()
            assert (a["lang"].values != x["lang"].values).all()
            assert (b["label"].values != x["label"].values).all()
            assert (b["lang"].values == x["lang"].values).all()
        else:
            assert (a["kind"] == "reference").all() and (b["kind"] == "reference").all()
            assert (a["post_id"].values == x["post_id"].values).all()
            assert (b["post_id"].values != x["post_id"].values).all()
            assert (b["label"].values == x["label"].values).all()
    # the seed fixes the draw; another seed draws other triplets
    first = rep.sample_triplets(items.reset_index(), "label", 200, seed=1)
    assert rep.sample_triplets(items.reset_index(), "label", 200, seed=1).equals(first)
    assert not rep.sample_triplets(items.reset_index(), "label", 200, seed=2).equals(first)


def test_a_probe_on_separable_data_is_perfect_and_on_shuffled_labels_near_chance():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    x = rng.normal(size=(400, 20))
    x[:, 0] += np.where(y == 1, 6.0, -6.0)  # twelve standard deviations apart on one axis
    train = rng.permutation(400) < 200
    assert rep.probe_accuracy(x[train], y[train], x[~train], y[~train], seed=1) == 1.0
    # the same points with the labels shuffled: nothing to learn, held-out accuracy ~ 0.5
    shuffled = rng.permutation(y)
    acc = rep.probe_accuracy(x[train], shuffled[train], x[~train], shuffled[~train], seed=1)
    assert 0.35 <= acc <= 0.65, acc
    assert np.isnan(rep.probe_accuracy(x[:5], [1] * 5, x[5:9], [1] * 4))  # one class: no probe
    # balanced accuracy: always "a" on three a's and one b is right on every a, no b: (1 + 0) / 2
    assert rep.balanced_accuracy(["a"] * 4, ["a", "a", "a", "b"]) == 0.5


def test_probe_table_transfers_a_shared_label_direction_and_reads_the_language():
    # layer 0: label direction shared by both languages -> the English probe transfers (1.0);
    # layer 1: German posts carry the label on another axis than English -> the English probe
    # cannot read German labels; the language axis is there at both layers (language probe 1.0)
    items = rep.select_items(planted_posts(per_group=6), ["test"], posts_per_lang=None)
    rng = np.random.default_rng(2)
    # three planted axes and one of noise only (the probes standardize every feature, so pure
    # noise dimensions weigh as much as the planted ones: a few of them cost a post here and
    # there in cross-validation)
    n, d = len(items), 4
    reps = rng.normal(scale=0.05, size=(n, 2, d))
    for r in items.itertuples():
        sign = 1.0 if r.label == "neutral" else -1.0
        reps[r.item, :, 0] += 3.0 if r.lang == "de" else -3.0
        reps[r.item, 0, 1] += sign
        reps[r.item, 1, 1 if r.lang == "en" else 2] += sign
    states = HiddenStates(reps, reps, np.zeros((n, 2, 4)), np.ones(n, dtype=np.int32))
    table = rep.probe_table(items, {"m": states}, seed=0, positions=("mean",), progress=False)
    label = table[(table["probe"] == "label") & (table["test_lang"] == "de")].set_index("layer")
    assert label.loc[0, "accuracy"] == 1.0
    assert label.loc[1, "accuracy"] <= 0.75  # the English direction says nothing in German
    assert (label["n_train"] == 12).all() and (label["n_test"] == 12).all()
    assert (label["chance"] == 0.5).all()
    language = table[table["probe"] == "language"]
    assert (language["accuracy"] == 1.0).all()


def test_pca_panels_and_the_sentences_come_from_the_tables():
    items = rep.select_items(planted_posts(), ["test"], posts_per_lang=None)
    states = {
        "base": planted_states(items, [(1, 0.5, 0), (1, 0.5, 0.2), (1, 0.7, 0.5)]),
        "en": planted_states(items, [(1, 0.5, 0), (1, 2, 1), (0.5, 1, 0.5)]),
    }
    pca = rep.pca_table(items, states, position="mean")
    assert len(pca) == 2 * 3 * 12 and pca["var1"].between(0, 1).all()
    assert rep.panel_layers(18, 4) == [0, 6, 12, 18]
    abx = rep.abx_table(items, states, n_triplets=200, n_boot=100, seed=0)
    probes = rep.probe_table(items, states, seed=0, progress=False)
    # a lens whose answer appears at layer 1 for the en variant's own language (English)
    lens_logits = np.zeros((len(items), 3, 4))
    gold = items["label"].map({label: i for i, label in enumerate(LABELS)}).to_numpy()
    lens_logits[np.arange(len(items)), 1:, gold] = 3.0
    for st in states.values():
        st.lens = lens_logits
    lens = rep.lens_table(items, states, {"en": ["en"]})
    assert set(lens.loc[lens["model"] == "en", "seen"]) == {True, False}
    assert not lens.loc[lens["model"] == "base", "seen"].any()
    text = " ".join(rep.describe(lens, abx, probes, position="mean"))
    # the en variant's label error is lowest at layer 1 (0.00), the base model's is 1.00 there
    assert "en tells labels apart best at layer 1 of 2, ABX error 0.00" in text
    assert "changes that error against the base model by -1.00 [-1.00, -1.00], beyond noise" in text
    # the paired difference is the model's error less the base model's, layer by layer
    en = abx[(abx["model"] == "en") & (abx["position"] == "mean")].set_index(["task", "layer"])
    b = abx[(abx["model"] == "base") & (abx["position"] == "mean")].set_index(["task", "layer"])
    np.testing.assert_allclose(en["diff"], en["error"] - b["error"], atol=1e-12)
    assert b["diff"].isna().all()
    assert "emerges at layer 1" in text


# --------------------------------------------------------------------------------------------
# The embedded model (slow tier)
# --------------------------------------------------------------------------------------------


@pytest.mark.model
def test_lens_at_the_last_layer_equals_the_models_answer_probabilities(embedded_base, tmp_path):
    """The untuned embedded model and the same model with a (random, non-zero) LoRA adapter
    through peft: the lens's last layer is the scorer's distribution over the four answers."""
    import torch
    from peft import LoraConfig, get_peft_model

    from xling.models.scorers import TransformersScorer

    prompt = plain_prompt()
    base_source = hidden.model_source("base", embedded_base)
    model, tok = hidden.open_model(base_source)
    torch.manual_seed(0)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    tuned = get_peft_model(model, lora)
    tuned.save_pretrained(tmp_path / "adapters" / "toy" / "adapter")
    texts = TEXTS[:3]
    lens = {}
    for name in ("base", "toy"):
        source = hidden.model_source(name, embedded_base, tmp_path / "adapters")
        m, t = hidden.open_model(source)
        states = hidden.forward_hidden(m, t, prompt, texts, batch_size=2)
        layers = (m.get_base_model() if name == "toy" else m).config.num_hidden_layers
        assert states.mean.shape[1] == layers + 1  # the embedding, then every layer
        # the scorer reads the same batches as the lens (two, then one), so both run the same
        # shapes. The two still differ in fp32 rounding (the lens multiplies four rows of the
        # output embedding, the scorer all of them, then a softmax over the whole vocabulary):
        # 1.2e-6 at most on the dev machine, 2.1e-5 on CI's CPU (other kernels, batches of 2+1
        # against 3). The layer before the last is off by 0.11 (measured on the base model),
        # a thousand times atol 1e-4, so a lens read one layer early still fails here.
        logp = TransformersScorer(m, t, prompt, batch_size=2).score_many(texts)
        p = np.exp(logp)
        p /= p.sum(axis=1, keepdims=True)
        z = states.lens[:, -1].astype(np.float64)
        q = np.exp(z - z.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(q, p, atol=1e-4)
        lens[name] = states.lens
    assert not np.allclose(lens["toy"], lens["base"])  # the adapter changed the states
    assert (
        hidden.model_source("toy", embedded_base, tmp_path / "adapters").fingerprint()
        != base_source.fingerprint()
    )


def test_the_paper_profile_skips_07_for_want_of_a_model():
    from xling import config, paths
    from xling.run import requirements

    needs = requirements.notebook_meta(paths.NOTEBOOKS / "07_representations.ipynb")["requires"]
    params = config.effective_params("paper", "07_representations")
    reason = requirements.missing_requirement(needs, params, "paper")
    assert reason is not None and "no model (base_model: null)" in reason
