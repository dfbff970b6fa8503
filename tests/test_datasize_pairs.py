"""Translation pairs instead of labels (notebook 06, issue 22): the pair examples, the pairs mix of
a run, the plan of pair runs and the pairs table, without training a model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import train_settings
from xling.analysis import datasize, metrics
from xling.models import finetune, prompts
from xling.schema import LABELS
from xling.tasks import load_task


class CharTokenizer:
    """One token per character (its code point), no BOS: enough for the encoders, no model."""

    pad_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        return type("Encoded", (), {"input_ids": [ord(c) for c in text]})()

    @staticmethod
    def decode(ids) -> str:
        return "".join(chr(i) for i in ids)


TOK = CharTokenizer()
TASK = load_task("immigration")
#: every word and number the task's labels are known by: names and the numbers 1-4
LABEL_MARKS = [*TASK.labels, *(str(n) for n in TASK.label_of_number)]


def _pair_posts() -> pd.DataFrame:
    # texts and references without digits or label words, so any that appear came from the code
    return pd.DataFrame(
        {
            "post_id": ["hu-a", "hu-b", "tr-c"],
            "text": ["Ma esik az eső.", "A vonat késik, mint mindig.", "Bugün hava güzel."],
            "lang": ["hu", "hu", "tr"],
            "label": ["anti-immigration", "unrelated", "pro-immigration"],
            "text_en": ["It is raining today.", "The train is late, as always.", "Nice weather."],
        }
    )


# --------------------------------------------------------------------------------------------
# The pair examples
# --------------------------------------------------------------------------------------------


def test_a_pair_is_the_instruction_the_post_then_its_reference_and_never_a_label():
    posts = _pair_posts()
    examples = finetune.encode_pairs(posts, TOK, max_length=500)
    assert [e.post_id for e in examples] == ["hu-a", "hu-b", "tr-c"]
    first = TOK.decode(examples[0].input_ids)
    # the plain pair prompt, written out: the instruction names the language
    assert first == (
        "Translate this Hungarian social media post into English.\n"
        "Post: Ma esik az eső.\nEnglish: It is raining today."
    )
    assert TOK.decode(examples[2].input_ids).startswith("Translate this Turkish")
    for e in examples:
        text = TOK.decode(e.input_ids)
        assert e.label == ""
        for mark in LABEL_MARKS:
            assert mark not in text, (e.post_id, mark)
    # the label column is never read: other labels give the very same examples
    relabelled = posts.assign(label=["neutral", "neutral", "unrelated"])
    again = finetune.encode_pairs(relabelled, TOK, max_length=500)
    assert [e.input_ids for e in again] == [e.input_ids for e in examples]


def test_the_loss_falls_on_the_reference_tokens_exactly():
    posts = _pair_posts()
    examples = finetune.encode_pairs(posts, TOK, max_length=500)
    _, _, rows, cols, targets = finetune.collate(examples, pad_id=0)
    # the targets, example after example, are " " + the reference, one token per character
    want = [ord(c) for ref in posts["text_en"] for c in " " + ref]
    assert targets.tolist() == want
    # " It is raining today." is 21 characters: 21 answer tokens, predicted from the positions
    # just before each (the last prompt character ":" first)
    assert examples[0].n_answer == 21
    n0 = len(examples[0].input_ids)
    assert cols[rows == 0].tolist() == list(range(n0 - 22, n0 - 1))
    assert TOK.decode(examples[0].input_ids[: n0 - 21]).endswith("\nEnglish:")


def test_a_long_pair_is_cut_at_the_ends_of_post_and_reference_so_the_head_survives():
    post = "Ez egy nagyon hosszú bejegyzés " * 10  # 310 characters
    ref = "This is a very long post " * 10  # 250 characters
    posts = pd.DataFrame(
        {"post_id": ["x"], "text": [post], "lang": ["hu"], "label": ["neutral"], "text_en": [ref]}
    )
    (e,) = finetune.encode_pairs(posts, TOK, max_length=200)
    assert len(e.input_ids) <= 200
    text = TOK.decode(e.input_ids)
    head = "Translate this Hungarian social media post into English.\nPost: Ez egy nagyon"
    assert text.startswith(head)
    kept_post = text.split("Post: ")[1].split("\nEnglish:")[0]
    kept_ref = text.split("\nEnglish: ")[1]
    assert post.startswith(kept_post) and ref.startswith(kept_ref)  # both cut at their ends
    # the same share of each is cut (a fifth at a time): shares kept within one character
    assert abs(len(kept_post) / len(post) - len(kept_ref) / len(ref)) < 0.01
    assert e.n_answer == len(kept_ref) + 1  # the reference tokens, after a space


def test_english_posts_and_posts_without_a_reference_are_refused_naming_them():
    posts = _pair_posts()
    posts.loc[1, "text_en"] = None
    english = pd.DataFrame(
        {
            "post_id": ["en-1"],
            "text": ["hi"],
            "lang": ["en"],
            "label": ["neutral"],
            "text_en": ["hi"],
        }
    )
    with pytest.raises(ValueError, match=r"1 without an English reference \(text_en\) of 3.*hu-b"):
        finetune.encode_pairs(posts, TOK, 500)
    with pytest.raises(ValueError, match="1 English"):
        finetune.encode_pairs(pd.concat([english, posts.iloc[[0]]]), TOK, 500)
    assert finetune.has_reference(posts).tolist() == [True, False, True]
    assert not finetune.has_reference(posts.drop(columns="text_en")).any()


def test_label_mentions_find_names_numbered_categories_and_the_answer_stem():
    assert finetune.label_mentions("Categories: 1 = pro-immigration; 4 = unrelated.", TASK) == [
        "unrelated",
        "pro-immigration",
        "1 =",
        "4 =",
    ]
    assert finetune.label_mentions("Post: x\nAnswer =", TASK) == ["Answer ="]
    # the classification prompt shows every label; the pair prompt none
    assert len(finetune.label_mentions(prompts.plain_prompt().render("x"), TASK)) == 9
    pp = prompts.pair_prompt("plain", "hu")
    assert finetune.label_mentions(pp.render("") + pp.lead, TASK) == []
    with pytest.raises(ValueError, match="not in English"):
        prompts.pair_prompt("plain", "en")


def test_batch_tokens_counts_what_a_run_reads():
    # 4 labelled examples of 10 tokens (1 answer token) and 2 pairs of 25 (12 answer tokens);
    # 4 steps of 3 examples = 12 examples = exactly 2 epochs of the 6, whatever the order:
    # tokens 2 * (4 * 10 + 2 * 25) = 180, loss tokens 2 * (4 * 1 + 2 * 12) = 56
    examples = [finetune.Example(f"l{i}", [5] * 10, 1, "neutral") for i in range(4)]
    examples += [finetune.Example(f"p{i}", [6] * 25, 12) for i in range(2)]
    reads = finetune.batch_tokens(examples, train_settings(steps=4, batch_size=3))
    assert reads == {
        "steps": 4,
        "examples_seen": 12,
        "tokens_seen": 180,
        "loss_tokens_seen": 56,
    }
    # steps None: one epoch of 6 examples in batches of 3 is 2 steps, 90 tokens, 28 loss tokens
    reads = finetune.batch_tokens(examples, train_settings(steps=None, epochs=1.0, batch_size=3))
    assert (reads["steps"], reads["tokens_seen"], reads["loss_tokens_seen"]) == (2, 90, 28)


# --------------------------------------------------------------------------------------------
# The plan and the training sets
# --------------------------------------------------------------------------------------------


def _posts(langs=("en", "hu")) -> pd.DataFrame:
    """Per language 39 unrelated and 12 of each stance, train and test, each with a reference."""
    rows = []
    for lang in langs:
        for label, n in zip(LABELS, (39, 12, 12, 12), strict=True):
            for i in range(n):
                for split in ("train", "test"):
                    rows.append(
                        {
                            "post_id": f"{lang}-{label[:3]}-{split}-{i:03d}",
                            "text": f"{lang} post {label[:3]} {split} {chr(97 + i % 26)}",
                            "lang": lang,
                            "label": label,
                            "split": split,
                            "split_multi": split,
                            "evalset": lang,
                            "text_en": None if lang == "en" else f"english post {chr(97 + i % 26)}",
                            "translation_ok": None,
                            "source": "test",
                        }
                    )
    return pd.DataFrame(rows)


POSTS = _posts()


def test_plan_adds_one_pairs_run_per_target_m_and_seed_beside_the_curve():
    plan = datasize.plan_runs(["hu", "tr"], [0, 25, 75], [1, 2], diversity=False, pair_ms=[25, 75])
    ids = [r.run_id for r in plan]
    # per seed: k0 once, 2 targets x (2 k + 2 m) = 9 runs; two seeds 18
    assert len(ids) == len(set(ids)) == 18
    pairs = [r for r in plan if r.kind == "pairs"]
    assert sorted((r.target, r.m, r.seed) for r in pairs) == [
        (t, m, s) for t in ("hu", "tr") for m in (25, 75) for s in (1, 2)
    ]
    assert all(r.k == 0 for r in pairs) and "hu-m75-s2" in ids
    # the zero of the pairs axis (English alone) is planned even when ks lacks 0
    no_zero = datasize.plan_runs(["hu"], [25], [3], diversity=False, pair_ms=[25])
    assert [r.run_id for r in no_zero] == ["k0-s3", "hu-k25-s3", "hu-m25-s3"]
    # m = 0 is English alone: no pairs run of its own
    assert [r.run_id for r in datasize.plan_runs(["hu"], [0], [1], False, [0, 5])] == [
        "k0-s1",
        "hu-m5-s1",
    ]
    with pytest.raises(ValueError, match="pair_ms must be distinct"):
        datasize.plan_runs(["hu"], [0], [1], pair_ms=[25, 25])
    with pytest.raises(ValueError, match="pair_ms must be distinct"):
        datasize.plan_runs(["hu"], [0], [1], pair_ms=[-1])
    with pytest.raises(ValueError, match="needs a target language"):
        datasize.plan_runs([], [0], [1], pair_ms=[25])


def _set(run, n_tokens=None, base_posts=None):
    keys = {pid for pid in POSTS["post_id"]} | {f"pair:{pid}" for pid in POSTS["post_id"]}
    return datasize.training_set_for(
        run, POSTS, ["en"], [], [], n_tokens or dict.fromkeys(keys, 1), base_posts=base_posts
    )


def test_a_pairs_run_gets_the_posts_of_its_labelled_twin_marked_as_pairs():
    for m, seed in ((25, 1), (75, 2)):
        labels = _set(datasize.Run(f"hu-k{m}-s{seed}", "curve", seed, "hu", m), base_posts=50)
        pairs = _set(datasize.Run(f"hu-m{m}-s{seed}", "pairs", seed, "hu", m=m), base_posts=50)
        # every hu post has a reference here, so the same posts, in the same order
        assert list(pairs["post_id"]) == list(labels["post_id"])
        assert len(pairs) == 50 + m
        assert (pairs["pair"] == (pairs["lang"] == "hu")).all()  # the target posts, and only
        assert not labels["pair"].any()
        assert set(pairs.loc[~pairs["pair"], "lang"]) == {"en"}
    # the same settings read the same steps and examples from sets of the same size, with
    # steps set (30) or following the epochs (75 posts of 8 a step: 10 steps)
    for s in (train_settings(steps=30, batch_size=8), train_settings(steps=None, batch_size=8)):
        assert s.total_steps(len(pairs)) == s.total_steps(len(labels))
    assert train_settings(steps=None, batch_size=8, epochs=1.0).total_steps(len(pairs)) == 16


def test_pairs_skip_posts_without_a_reference_and_refuse_more_than_there_are():
    posts = POSTS.copy()
    hu_train = (posts["lang"] == "hu") & (posts["split"] == "train")
    first = datasize.nested_order(posts[hu_train], 1, "hu")
    # the first two posts of seed 1's order have no reference: the pairs are the next 10
    posts.loc[posts["post_id"].isin(first[:2]), "text_en"] = None
    chosen = datasize.pairs_training_set(posts, ["en"], "hu", 10, 1)
    assert set(chosen.loc[chosen["pair"], "post_id"]) == set(first[2:12])
    with pytest.raises(ValueError, match=r"m = 74 .* 73 of its 75 training posts have an English"):
        datasize.pairs_training_set(posts, ["en"], "hu", 74, 1)


def test_run_data_size_trains_the_pairs_mix_with_no_label_and_counts_its_tokens(
    tmp_path, monkeypatch
):
    """The examples a pairs run trains on, seen by a stand-in for finetune_lora: its English
    posts exactly as its labelled twin's, its Hungarian posts as pairs (no label word or number,
    the reference as the target); the run's token counts are those of what it read."""
    trained: dict[str, list[finetune.Example]] = {}

    def fake_finetune(model_folder, examples, out_dir, settings, **kw):
        trained[Path(out_dir).name] = list(examples)
        reads = finetune.batch_tokens(examples, settings)
        meta = {"steps": reads["steps"], "wall_seconds": 0.0, "final_loss": 1.0}
        meta["tokens"] = reads["tokens_seen"]
        return finetune.RunResult(Path(out_dir) / "adapter", meta, pd.DataFrame())

    def fake_evaluate(base_folder, adapter, posts, *a, **kw):
        table = posts[["post_id", "lang", "label", "split", "evalset"]].reset_index(drop=True)
        return table.assign(prediction="unrelated")

    monkeypatch.setattr(finetune, "finetune_lora", fake_finetune)
    monkeypatch.setattr(datasize, "evaluate_adapter", fake_evaluate)
    plan = datasize.plan_runs(["hu"], [0, 10], [1], diversity=False, pair_ms=[10])
    base = type("Base", (), {"folder": tmp_path, "sha256": "x"})()
    settings = train_settings(steps=4, batch_size=5, max_length=400)
    preds, runs = datasize.run_data_size(
        POSTS,
        plan,
        POSTS[POSTS["split"] == "test"].head(8),
        base,
        TOK,
        prompts.plain_prompt(),
        settings,
        tmp_path,
        base_langs=["en"],
        multi_langs=[],
        control_langs=[],
        base_posts=20,
        progress=False,
    )
    labelled, pairs = trained["hu-k10-s1"], trained["hu-m10-s1"]
    assert len(labelled) == len(pairs) == 30
    hu_ids = {pid for pid in POSTS.loc[POSTS["lang"] == "hu", "post_id"]}
    ref_of = POSTS.set_index("post_id")["text_en"]
    for a, b in zip(labelled, pairs, strict=True):
        assert a.post_id == b.post_id
        if a.post_id not in hu_ids:
            assert (a.input_ids, a.n_answer) == (b.input_ids, b.n_answer)  # English: labelled
            continue
        text = TOK.decode(b.input_ids)
        assert b.label == "" and "Answer =" not in text and "Categories" not in text
        for mark in LABEL_MARKS:
            assert mark not in text, (b.post_id, mark)
        assert TOK.decode(b.input_ids[-b.n_answer :]) == " " + ref_of[b.post_id]
        assert a.n_answer == 1 and TOK.decode(a.input_ids[-1:]) in "1234"  # the label's number
    r = runs.set_index("run_id")
    assert r.loc["hu-m10-s1", "pairs"] == 10 and r.loc["hu-k10-s1", "pairs"] == 0
    for run_id in ("hu-k10-s1", "hu-m10-s1"):
        # 4 steps of 5: 20 examples read of the 30
        assert (r.loc[run_id, "steps"], r.loc[run_id, "examples_seen"]) == (4, 20)
        # each run reads in the order its own seed draws (1 here), not the settings' seed
        want = finetune.batch_tokens(trained[run_id], replace(settings, seed=1))
        assert r.loc[run_id, "tokens_seen"] == want["tokens_seen"]
        assert r.loc[run_id, "loss_tokens_seen"] == want["loss_tokens_seen"]
    # the set's tokens: the pairs run's Hungarian posts counted as the pairs they are
    assert r.loc["hu-m10-s1", "tokens"] == sum(len(e.input_ids) for e in pairs)
    assert (
        set(preds["kind"]) == {"curve", "pairs"}
        and (preds.loc[preds["kind"] == "pairs", "m"] == 10).all()
    )


# --------------------------------------------------------------------------------------------
# The pairs table and its sentences
# --------------------------------------------------------------------------------------------


def _preds(correct: dict[tuple[str, int, int], list[bool]]) -> pd.DataFrame:
    """Predictions on 4 hu and 4 pl posts: (kind, n, seed) -> 8 right/wrong (gold: neutral)."""
    rows = []
    for (kind, n, seed), right in correct.items():
        run_id = "k0-s{seed}" if n == 0 else f"hu-{'k' if kind == 'curve' else 'm'}{n}-s{seed}"
        for i, ok in enumerate(right):
            lang = "hu" if i < 4 else "pl"
            rows.append(
                {
                    "run_id": run_id.format(seed=seed),
                    "kind": kind,
                    "seed": seed,
                    "target_lang": "hu" if n else None,
                    "k": n if kind == "curve" else 0,
                    "m": n if kind == "pairs" else 0,
                    "post_id": f"{lang}-{i}",
                    "lang": lang,
                    "label": "neutral",
                    "prediction": "neutral" if ok else "unrelated",
                }
            )
    return pd.DataFrame(rows)


T, F = True, False
PREDS = _preds(
    {
        ("curve", 0, 1): [F, F, F, F, T, T, F, F],
        ("curve", 0, 2): [F, F, F, F, T, F, T, F],
        ("curve", 4, 1): [T, T, T, T, T, T, F, F],
        ("curve", 4, 2): [T, T, T, T, T, F, T, F],
        ("pairs", 4, 1): [T, F, F, F, T, T, F, F],
        ("pairs", 4, 2): [F, T, F, F, T, F, T, F],
    }
)
RUNS = pd.DataFrame(
    [
        # what each run read (invented counts, as batch_tokens would give them)
        {"kind": "curve", "k": 0, "m": 0, "target_lang": None, "seed": s, "steps": 30,
         "examples_seen": 240, "tokens_seen": 12000, "loss_tokens_seen": 240}
        for s in (1, 2)
    ]
    + [
        {"kind": "curve", "k": 4, "m": 0, "target_lang": "hu", "seed": s, "steps": 30,
         "examples_seen": 240, "tokens_seen": 12400, "loss_tokens_seen": 240}
        for s in (1, 2)
    ]
    + [
        {"kind": "pairs", "k": 0, "m": 4, "target_lang": "hu", "seed": s, "steps": 30,
         "examples_seen": 240, "tokens_seen": t, "loss_tokens_seen": 700}
        for s, t in ((1, 18000), (2, 19000))
    ]
)  # fmt: skip


def test_pairs_table_compares_pairs_with_labels_and_english_alone_on_the_same_posts():
    table = datasize.pairs_table(PREDS, RUNS, ["hu"], n_boot=500)
    assert list(table.columns) == list(datasize.PAIRS_COLUMNS)
    hu = table[table["eval_lang"] == "hu"].set_index(["axis", "n"])
    # hu posts, correctness averaged over the two seeds:
    # English alone (0, 0, 0, 0) -> 0; 4 labelled (1, 1, 1, 1) -> 1; 4 pairs (.5, .5, 0, 0) -> .25
    assert hu.loc[("labels", 0), "accuracy"] == 0 and hu.loc[("pairs", 0), "accuracy"] == 0
    assert hu.loc[("labels", 4), "accuracy"] == 1
    assert hu.loc[("pairs", 4), "accuracy"] == pytest.approx(0.25)
    assert hu.loc[("pairs", 4), "diff_vs_k0"] == pytest.approx(0.25)
    # pairs minus labels per post: (-.5, -.5, -1, -1) -> -0.75; every resample is below 0
    p = hu.loc[("pairs", 4)]
    assert p["diff_vs_labels"] == pytest.approx(-0.75) and p["diff_vs_labels_ci_high"] < 0
    assert p["within_noise_vs_labels"] == False  # noqa: E712 (a numpy bool)
    assert np.isnan(hu.loc[("labels", 4), "diff_vs_labels"])
    # the cost: the mean over seeds of what each run read
    assert p["tokens_seen"] == 18500 and p["loss_tokens_seen"] == 700 and p["steps"] == 30
    assert hu.loc[("labels", 4), "tokens_seen"] == 12400
    pl = table[table["eval_lang"] == "pl"].set_index(["axis", "n"])
    # pl: labelled (1, .5, .5, 0) and pairs (1, .5, .5, 0): the very same, difference 0
    assert pl.loc[("pairs", 4), "diff_vs_labels"] == 0
    assert pl.loc[("pairs", 4), "within_noise_vs_labels"] == True  # noqa: E712


def test_describe_pairs_says_what_the_numbers_say_and_what_the_cost_was():
    lines = datasize.describe_pairs(datasize.pairs_table(PREDS, RUNS, ["hu"], n_boot=500))
    text = "\n".join(lines)
    assert lines[0].startswith("hu, its own 4 test posts: English alone 0.00")
    assert "4 translation pairs: 0.25" in text and "labels do better" in text
    # 18,500 / 12,400 tokens = 1.49x, +49%; the loss on 700 tokens against 240
    assert "equal steps and examples read (30 steps, 240 examples each)" in text
    assert "a pairs run read 18,500 against 12,400 for labels (1.49x, +49%)" in text
    assert "loss fell on 700 tokens against 240" in text
    # pl, the other language: pairs and labels the same there
    assert (
        "other languages, 4 pairs against as many labelled posts: 1 of 1 with no difference we "
        "can detect" in text
    )
    # where the interval holds 0 the sentence says so
    tied = PREDS.copy()
    pairs_hu = (tied["kind"] == "pairs") & (tied["lang"] == "hu")
    tied.loc[pairs_hu, "prediction"] = "neutral"  # pairs as good as labels on hu
    lines = datasize.describe_pairs(datasize.pairs_table(tied, RUNS, ["hu"], n_boot=500))
    assert "pairs minus 4 labelled posts +0.00 [+0.00, +0.00]: no difference we can detect" in (
        "\n".join(lines)
    )
    empty = datasize.pairs_table(PREDS[PREDS["kind"] == "curve"], RUNS, ["hu"])
    assert empty.empty and "pair_ms is empty" in datasize.describe_pairs(empty)[0]


# --------------------------------------------------------------------------------------------
# 01's pairs variant (en+pairs)
# --------------------------------------------------------------------------------------------

VARIANTS = {"en": ["en"], "en+pairs": ["en"]}


def test_a_pairs_variant_adds_capped_pairs_of_its_languages_and_skips_unreferenced_posts():
    posts = POSTS.copy()
    hu_train = posts.index[(posts["lang"] == "hu") & (posts["split"] == "train")]
    posts.loc[hu_train[:5], "text_en"] = None  # 5 of the 75 Hungarian posts lack a reference
    pairs, notes = finetune.pair_training_sets(posts, VARIANTS, {"en+pairs": ["hu"]})
    assert list(pairs) == ["en+pairs"] and len(pairs["en+pairs"]) == 70
    assert set(pairs["en+pairs"]["split"]) == {"train"}
    assert notes == ["en+pairs: 5 of 75 hu training posts skipped: no English reference (text_en)"]
    capped, _ = finetune.pair_training_sets(posts, VARIANTS, {"en+pairs": ["hu"]}, 10, seed=3)
    assert len(capped["en+pairs"]) == 10 and capped["en+pairs"]["text_en"].notna().all()
    table = finetune.describe_training_sets({"en+pairs": POSTS[POSTS["lang"] == "en"]}, capped)
    assert table.loc["en+pairs (pairs)", "hu"] == 10 and table.loc["en+pairs (pairs)", "en"] == 0


@pytest.mark.parametrize(
    ("pair_variants", "message"),
    [
        ({"de+pairs": ["hu"]}, r"pair_variants.de\+pairs: 'de\+pairs' is not one of the variants"),
        ({"en+pairs": []}, r"pair_variants.en\+pairs names no languages"),
        ({"en+pairs": ["en", "hu"]}, r"pair_variants.en\+pairs: en cannot be translation pairs"),
        ({"en+pairs": ["ko"]}, r"pair_variants.en\+pairs: no training posts in ko"),
    ],
)
def test_a_bad_pairs_variant_is_refused_naming_the_key(pair_variants, message):
    with pytest.raises(ValueError, match=message):
        finetune.pair_training_sets(POSTS, VARIANTS, pair_variants)


def test_a_language_without_any_reference_is_refused():
    posts = POSTS.assign(text_en=None)
    with pytest.raises(ValueError, match=r"none of the 75 hu training posts has an English"):
        finetune.pair_training_sets(posts, VARIANTS, {"en+pairs": ["hu"]})


def test_variants_set_with_p_leave_out_the_profile_pair_variants_they_do_not_name():
    from xling import config

    # demo declares en+pairs in variants and in 01's pair_variants; -p variants without it
    # leaves it out of the pairs too, saying so, instead of refusing the run
    profile = config.load_profile("demo", [("variants", "{en: [en], es: [es]}")])
    assert profile.params_for("01_finetune")["pair_variants"] == {}
    assert profile.variant_problem("01_finetune") is None
    assert len(profile.notes) == 1 and "pair variant en+pairs left out" in profile.notes[0]
    assert "-p variants does not name it" in profile.notes[0]
    # -p variants that keep en+pairs keep its pairs
    kept = config.load_profile("demo", [("variants", "{en: [en], en+pairs: [en]}")])
    assert list(kept.params_for("01_finetune")["pair_variants"]) == ["en+pairs"]
    assert kept.notes == []


def test_pairs_named_with_p_for_a_variant_the_run_lacks_are_refused_naming_the_key():
    from xling import config

    profile = config.load_profile(
        "demo",
        [("variants", "{en: [en], es: [es]}"), ("01_finetune.pair_variants", "{en+pairs: [es]}")],
    )
    problem = profile.variant_problem("01_finetune")
    assert "01_finetune.pair_variants names 'en+pairs', not a variant of this run" in problem
    assert "-p 01_finetune.pair_variants '{}'" in problem


def test_a_users_own_posts_leave_out_the_profile_pairs_and_their_variant():
    from xling import config

    overrides = [("posts_source", "file"), ("posts_path", "data/tasks/climate_posts.csv")]
    profile = config.load_profile("smoke", overrides)
    for nb in ("00_data", "01_finetune", "03_crosslingual_eval"):
        # smoke's variants are en, multi and en+pairs: the pairs variant goes everywhere
        assert set(profile.params_for(nb)["variants"]) == {"en", "multi"}, nb
    assert profile.params_for("01_finetune")["pair_variants"] == {}
    assert profile.params_for("06_data_size")["pair_ms"] == []
    assert any("pair variant en+pairs left out" in n and "posts_path" in n for n in profile.notes)
    assert any("06_data_size.pair_ms [4] left out" in n for n in profile.notes)
    # the profile's own posts, or another of ours with English references, keep them
    assert config.load_profile("smoke").notes == []
    paper_posts = config.load_profile("smoke", [("posts_source", "paper")])
    assert "en+pairs" in paper_posts.params_for("01_finetune")["pair_variants"]
    # pairs named with -p stay as given (01 then refuses them if the file has no text_en)
    named = config.load_profile("smoke", [*overrides, ("06_data_size.pair_ms", "[2]")])
    assert named.params_for("06_data_size")["pair_ms"] == [2]


# ---------------------------------------------------------------------------------------------
# 03: a pairs variant against its twin (metrics.pairs_gain)
# ---------------------------------------------------------------------------------------------


def _gain_predictions() -> pd.DataFrame:
    # en: 10 English test posts, hu: 20 Hungarian (en+pairs saw hu as pairs), ko: 10 Korean (seen
    # by no variant), speeches: 4 posts of an evaluation file; all gold 'neutral'. Planted: on en
    # both answer right; on hu en+pairs is right on all 20 and en on none; on ko en is right on all
    # 10 and en+pairs on none; on speeches both right. A pooled 'multi' copy of the en posts must
    # be ignored (it would double en's posts).
    rows = []
    sets = [("en", "en", "test", 10), ("hu", "hu", "test", 20), ("ko", "ko", "test", 10)]
    sets += [("speeches", "en", "eval", 4)]
    for evalset, lang, split, n in sets:
        for i in range(n):
            pid = f"{evalset}-{i}"
            right = {"en+pairs": evalset != "ko", "en": evalset != "hu", "multi": True}
            for variant, ok in right.items():
                rows.append(
                    {
                        "post_id": pid, "evalset": evalset, "lang": lang, "split": split,
                        "backend": "llamacpp-q4_k_m+lora", "method": "score",
                        "input": "original", "variant": variant, "label": "neutral",
                        "prediction": "neutral" if ok else "pro-immigration",
                    }
                )  # fmt: skip
    table = pd.DataFrame(rows)
    pooled = table[table["evalset"] == "en"].assign(evalset="multi", prediction="unrelated")
    return pd.concat([table, pooled], ignore_index=True)


def test_a_pairs_variant_is_read_against_its_twin_on_the_same_posts():
    variants = {"en": ["en"], "multi": ["en", "hu"], "en+pairs": ["en"]}
    gain, notes = metrics.pairs_gain(_gain_predictions(), variants, {"en+pairs": ["hu"]}, 200)
    assert notes == []
    # the twin: trained on en alone, without pairs (multi has hu labels too, so not it)
    assert set(gain["twin"]) == {"en"}
    by = gain.set_index("evalset")
    assert "multi" not in by.index
    assert by.loc["en", "group"] == "labelled" and by.loc["hu", "group"] == "pairs"
    assert by.loc["ko", "group"] == "unseen" and by.loc["speeches", "group"] == "file"
    # hu: 20 of 20 right against 0 of 20: +1.0, every bootstrap draw too
    assert by.loc["hu", "n"] == 20 and by.loc["hu", "diff"] == 1.0
    assert by.loc["hu", "diff_low"] == 1.0 and by.loc["hu", "verdict"] == "en+pairs better"
    # ko: 0 of 10 against 10 of 10: -1.0; en and speeches: both right on every post: 0, no verdict
    assert by.loc["ko", "diff"] == -1.0 and by.loc["ko", "verdict"] == "en better"
    assert by.loc["en", "diff"] == 0.0 and by.loc["en", "verdict"] == "no difference we can detect"
    assert by.loc["speeches", "verdict"] == "no difference we can detect"
    # pooled rows, one per language group (not for files): (pairs) holds hu's 20 posts
    assert by.loc["(pairs)", "n"] == 20 and by.loc["(unseen)", "n"] == 10
    assert by.loc["(labelled)", "n"] == 10 and "(file)" not in by.index
    lines = metrics.describe_pairs_gain(gain)
    assert any(
        line.startswith("en+pairs against en on the languages it saw only as translation pairs "
                        "(hu; test posts, n = 20): accuracy 1.000 against 0.000, difference +1.000")
        for line in lines
    )  # fmt: skip
    assert any("evaluation file speeches (n = 4)" in line for line in lines)


def test_a_pairs_variant_without_a_twin_is_skipped_saying_why():
    variants = {"multi": ["en", "hu"], "en+pairs": ["en"]}
    gain, notes = metrics.pairs_gain(_gain_predictions(), variants, {"en+pairs": ["hu"]})
    assert gain.empty
    assert notes == [
        "en+pairs: no variant trained on its labelled languages (en) without pairs, so nothing "
        "to read its pairs against"
    ]
    # no pairs variant at all: nothing to compare, nothing said
    assert metrics.pairs_gain(_gain_predictions(), variants, {})[0].empty


def test_pair_languages_are_read_from_the_adapters_01_wrote(tmp_path):
    import json

    for variant, langs in [("en", []), ("en+pairs", ["hu", "de"])]:
        (tmp_path / variant).mkdir()
        meta = {"variant": variant, "pair_languages": langs}
        (tmp_path / variant / "meta.json").write_text(json.dumps(meta))
    # es has no adapter here: left out, as en (no pairs)
    got = finetune.pair_languages(tmp_path, ["en", "en+pairs", "es"])
    assert got == {"en+pairs": ["hu", "de"]}


def test_the_heatmap_dashes_the_languages_a_variant_saw_only_as_pairs():
    from matplotlib.patches import Rectangle

    from xling import plots

    cells = [(v, e) for v in ("en", "en+pairs") for e in ("en", "hu", "ko", "hu-extra", "multi")]
    table = pd.DataFrame([{"variant": v, "evalset": e, "accuracy": 0.5} for v, e in cells])
    fig = plots.plot_accuracy_heatmap(
        table, {"en": ["en"], "en+pairs": ["en"]}, pairs={"en+pairs": ["hu"]}
    )
    ax = fig.axes[0]
    # rows: en (0), en+pairs (1); columns: en, hu, ko, then hu-extra, then multi
    cols = [t.get_text() for t in ax.get_xticklabels()]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    dashed = {(round(p.get_y() + 0.45), cols[round(p.get_x() + 0.45)]) for p in boxes
              if p.get_linestyle() == "--"}  # fmt: skip
    solid = {(round(p.get_y() + 0.5), cols[round(p.get_x() + 0.5)]) for p in boxes
             if p.get_linestyle() in ("-", "solid")}  # fmt: skip
    assert dashed == {(1, "hu"), (1, "hu-extra")}
    assert solid == {(0, "en"), (1, "en")}
    assert "dashed: seen as translation pairs only" in ax.get_xlabel()


def test_examples_seen_counts_labelled_posts_and_pairs_by_the_runs_batch_order(tmp_path):
    import json

    # 6 labelled posts then 4 pairs (indices 6-9), 3 steps of 4: 12 examples read; the batch order
    # is an epoch's permutation of the 10 then the next epoch's first 2, counted by hand below
    settings = {"batch_size": 4, "seed": 7}
    meta = {"n_examples": 10, "pairs": 4, "steps": 3, "settings": settings}
    order = [i for b in finetune.batch_order(10, 4, 3, 7) for i in b]
    labelled = sum(i < 6 for i in order)
    assert finetune.examples_seen(meta) == {
        "examples": 12,
        "labelled": labelled,
        "pairs": 12 - labelled,
    }
    # one full epoch holds each of the 6 labelled posts once: at least 6 of the 12 are labelled
    assert 6 <= labelled <= 8
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "meta.json").write_text(json.dumps(meta))
    assert finetune.describe_examples_seen(tmp_path, ["p", "missing"]) == [
        f"p: its 3 steps read 12 examples, {labelled} labelled posts and {12 - labelled} "
        "translation pairs"
    ]


def test_every_example_weighs_the_same_in_a_batch_that_mixes_labels_and_pairs():
    import torch
    import torch.nn.functional as F

    label = finetune.Example("a", [5, 6, 7], 1, "neutral")
    pair = finetune.Example("b", [5, 6, 7, 8, 9, 10], 3)
    rows = torch.tensor([0, 1, 1, 1])  # collate's rows: one answer token of a, three of b
    weights = finetune.example_weights([label, pair], rows)
    # 1 / (answer tokens x 2 examples): a's token 1/2, each of b's 1/6; each example sums to 1/2
    assert torch.allclose(weights, torch.tensor([1 / 2, 1 / 6, 1 / 6, 1 / 6]))
    # the weighted sum is then the mean over examples of each example's mean token loss
    logits, targets = torch.randn(4, 11), torch.tensor([1, 2, 3, 4])
    per = F.cross_entropy(logits, targets, reduction="none")
    expected = (per[0] + per[1:].mean()) / 2
    assert torch.allclose((per * weights).sum(), expected)
    # a batch of labelled posts alone keeps the plain mean (no weights)
    assert finetune.example_weights([label, label], torch.tensor([0, 1])) is None


def test_only_runs_that_mix_labels_and_pairs_change_their_fingerprint():
    import hashlib
    import json
    from dataclasses import asdict

    settings = train_settings()
    labelled = [finetune.Example("a", [5, 6, 7], 1, "neutral")]
    mixed = [*labelled, finetune.Example("b", [5, 6, 7, 8, 9, 10], 3)]

    def before(examples):  # the fingerprint as it was computed before examples were weighed
        # (and before lr_schedule existed: the settings had no such knob)
        knobs = {k: v for k, v in asdict(settings).items() if k != "lr_schedule"}
        h = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode())
        h.update(b"sha")
        for e in examples:
            h.update(json.dumps([e.post_id, e.input_ids, e.n_answer]).encode())
        return h.hexdigest()

    # labelled runs are reused as they were; a run with pairs trained with the old loss is not
    assert finetune.fingerprint(settings, labelled, "sha") == before(labelled)
    assert finetune.fingerprint(settings, mixed, "sha") != before(mixed)
