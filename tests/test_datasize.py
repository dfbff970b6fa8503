"""xling.datasize: nested stratified subsets, token matching, the run plan and the curve tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import train_settings
from xling.analysis import datasize
from xling.schema import LABELS


def _posts(n_per_label=(39, 12, 12, 12), langs=("en", "hu")) -> pd.DataFrame:
    """Training and test posts shaped like the demo corpus (39 unrelated, 12 of each stance)."""
    rows = []
    for lang in langs:
        for label, n in zip(LABELS, n_per_label, strict=True):
            for i in range(n):
                for split in ("train", "test"):
                    rows.append(
                        {
                            "post_id": f"{lang}-{label[:3]}-{split}-{i:03d}",
                            "text": f"{lang} {label} {split} {i}",
                            "lang": lang,
                            "label": label,
                            "split": split,
                            "split_multi": split,
                            "evalset": lang,
                        }
                    )
    return pd.DataFrame(rows)


POSTS = _posts()


def test_every_prefix_is_stratified_by_label_within_one_post():
    pool = POSTS[(POSTS["lang"] == "hu") & (POSTS["split"] == "train")]
    share = pool["label"].value_counts(normalize=True)
    order = datasize.nested_order(pool, seed=3, lang="hu")
    assert sorted(order) == sorted(pool["post_id"])  # every post, once
    label_of = pool.set_index("post_id")["label"]
    for k in range(1, len(order) + 1):
        got = label_of[order[:k]].value_counts()
        for label in LABELS:
            # 39/75 of k unrelated posts, 12/75 of each other label, give or take one post
            assert abs(got.get(label, 0) - k * share[label]) < 1 + 1e-9, (k, label)


def test_subsets_are_nested_across_k_and_differ_across_seeds():
    def hu_ids(k, seed):
        s = datasize.curve_training_set(POSTS, ["en"], "hu", k, seed)
        return set(s.loc[s["lang"] == "hu", "post_id"])

    for seed in (1, 2):
        small, mid, large = hu_ids(25, seed), hu_ids(50, seed), hu_ids(75, seed)
        assert len(small) == 25 and len(mid) == 50 and len(large) == 75
        assert small < mid < large
    assert hu_ids(25, 1) != hu_ids(25, 2)
    assert hu_ids(25, 1) == hu_ids(25, 1)  # the same seed draws the same posts
    base = datasize.curve_training_set(POSTS, ["en"], "hu", 25, 1)
    en_train = POSTS[(POSTS["lang"] == "en") & (POSTS["split"] == "train")]
    assert set(base.loc[base["lang"] == "en", "post_id"]) == set(en_train["post_id"])
    assert set(base["split"]) == {"train"}  # never a test post
    zero = datasize.curve_training_set(POSTS, ["en"], None, 0, 1)
    assert set(zero["post_id"]) == set(en_train["post_id"])


def test_k_beyond_the_pool_or_an_untrained_language_is_refused():
    with pytest.raises(ValueError, match="'hu': k = 80 asked for, but it has 75 training posts"):
        datasize.curve_training_set(POSTS, ["en"], "hu", 80, 1)
    with pytest.raises(ValueError, match="'ko'.*0 training posts.*only ever tested"):
        datasize.curve_training_set(POSTS, ["en"], "ko", 25, 1)
    with pytest.raises(ValueError, match="already in the base"):
        datasize.curve_training_set(POSTS, ["en", "hu"], "hu", 25, 1)


def test_token_matched_control_repeats_the_pool_to_the_exact_count_and_tokens():
    rng = np.random.default_rng(0)
    pool = rng.integers(20, 120, size=525)  # en + es of the demo: 525 posts
    multi = rng.integers(20, 160, size=1275)  # the multilingual set: 1275 posts, longer ones
    idx = datasize.token_matched_control(pool, len(multi), int(multi.sum()), seed=4)
    assert len(idx) == 1275
    assert set(idx) == set(range(525))  # every pool post at least once before any repeat
    assert abs(int(pool[idx].sum()) - int(multi.sum())) <= 1  # lengths 20..119: exact or 1 off
    again = datasize.token_matched_control(pool, len(multi), int(multi.sum()), seed=4)
    assert (again == idx).all()


def test_token_matching_draws_a_subset_without_repeats_when_the_pool_is_larger():
    pool = np.arange(10, 1010)  # 1000 posts of 10..1009 tokens
    idx = datasize.token_matched_control(pool, 100, 30_000, seed=1)
    assert len(idx) == 100 and len(set(idx)) == 100
    assert int(pool[idx].sum()) == 30_000


def test_token_matching_gets_as_close_as_the_pool_allows():
    pool = np.full(50, 10)  # every post 10 tokens: 60 posts are 600 tokens, whatever is drawn
    idx = datasize.token_matched_control(pool, 60, 900, seed=1)
    assert len(idx) == 60 and int(pool[idx].sum()) == 600


def test_plan_runs_shares_english_alone_across_targets():
    plan = datasize.plan_runs(["hu", "tr"], [0, 25, 75], [1, 2])
    ids = [r.run_id for r in plan]
    assert len(ids) == len(set(ids))
    # per seed: k = 0 once, 2 targets x 2 k, multi and control
    assert len(plan) == 2 * (1 + 4 + 2)
    assert "k0-s1" in ids and "hu-k75-s2" in ids and "control-s2" in ids
    with pytest.raises(ValueError, match="distinct"):
        datasize.plan_runs(["hu"], [0, 25, 25], [1])


def _predictions(correct: dict[tuple[str, int, int], list[bool]]) -> pd.DataFrame:
    """Predictions of curve runs on 4 hu and 4 pl posts: (target, k, seed) -> 8 right/wrong."""
    rows = []
    for (target, k, seed), right in correct.items():
        for i, ok in enumerate(right):
            lang = "hu" if i < 4 else "pl"
            rows.append(
                {
                    "run_id": f"{target}-k{k}-s{seed}",
                    "kind": "curve",
                    "seed": seed,
                    "target_lang": target if k else None,
                    "k": k,
                    "variant": None,
                    "post_id": f"{lang}-{i}",
                    "lang": lang,
                    "label": "neutral",
                    "prediction": "neutral" if ok else "unrelated",
                }
            )
    return pd.DataFrame(rows)


T, F = True, False
PREDS = _predictions(
    {
        ("k0", 0, 1): [T, F, F, F, T, T, F, F],
        ("k0", 0, 2): [F, F, F, F, T, F, T, F],
        ("hu", 25, 1): [T, T, T, F, T, T, F, F],
        ("hu", 25, 2): [T, T, F, T, T, F, T, F],
    }
)


def test_curve_table_repeats_english_alone_under_every_target():
    curve = datasize.curve_table(PREDS, ["hu", "tr"], n_boot=200)
    assert list(curve.columns[:7]) == list(datasize.CURVE_COLUMNS)
    zero = curve[curve["k"] == 0]
    assert set(zero["target_lang"]) == {"hu", "tr"}  # k = 0 is the start of both curves
    row = curve[(curve["target_lang"] == "hu") & (curve["k"] == 25) & (curve["seed"] == 1)]
    hu = row[row["eval_lang"] == "hu"].iloc[0]
    assert hu["n"] == 4 and hu["accuracy"] == 0.75  # T T T F
    assert hu["majority"] == 1.0  # every gold label is neutral
    assert hu["acc_ci_low"] <= 0.75 <= hu["acc_ci_high"]


def test_curve_gains_average_seeds_per_post_then_compare_on_the_same_posts():
    gains = datasize.curve_gains(PREDS, ["hu"], n_boot=500)
    hu = gains[gains["eval_lang"] == "hu"].iloc[0]
    # per post, mean over seeds: k0 (0.5, 0, 0, 0) -> 0.125; k25 (1, 1, 0.5, 0.5) -> 0.75
    assert hu["acc_k0"] == pytest.approx(0.125) and hu["acc_k"] == pytest.approx(0.75)
    assert hu["diff"] == pytest.approx(0.625)
    assert hu["seeds_better"] == 2 and hu["n_seeds"] == 2
    pl = gains[gains["eval_lang"] == "pl"].iloc[0]
    # pl: k0 (1, 0.5, 0.5, 0) -> 0.5; k25 (1, 0.5, 0.5, 0) -> 0.5: no change at all
    assert pl["diff"] == pytest.approx(0.0) and pl["within_noise"]
    lines = datasize.describe_curve(gains)
    assert len(lines) == 1 and lines[0].startswith("hu: 25 posts") and "+0.62" in lines[0]


def test_diversity_table_reads_the_matching_and_pairs_posts():
    rows = []
    for variant, right in (("multi", [T, T, F, T]), ("control", [T, F, F, F])):
        for i, ok in enumerate(right):
            rows.append(
                {
                    "run_id": f"{variant}-s1",
                    "kind": "diversity",
                    "seed": 1,
                    "variant": variant,
                    "post_id": f"hu-{i}",
                    "lang": "hu",
                    "label": "neutral",
                    "prediction": "neutral" if ok else "unrelated",
                }
            )
    runs = pd.DataFrame(
        [
            {"variant": "multi", "seed": 1, "posts": 30, "distinct_posts": 30, "tokens": 900},
            {"variant": "control", "seed": 1, "posts": 30, "distinct_posts": 12, "tokens": 899},
        ]
    )
    table = datasize.diversity_table(pd.DataFrame(rows), runs, n_boot=200)
    assert list(table["eval_lang"]) == ["hu", "all"]
    hu = table.iloc[0]
    assert hu["acc_multi"] == 0.75 and hu["acc_control"] == 0.25 and hu["diff"] == 0.5
    assert (hu["posts_multi"], hu["posts_control"]) == (30, 30)
    assert (hu["tokens_multi"], hu["tokens_control"]) == (900, 899)
    assert hu["distinct_control"] == 12
    assert "30 posts / 900 tokens" in datasize.describe_diversity(table)[1]


def test_eval_posts_are_capped_per_language_and_name_missing_languages():
    ev = datasize.eval_posts(POSTS, ["test"], ["hu", "en"], per_lang=10, seed=0)
    assert ev.groupby("lang").size().to_dict() == {"en": 10, "hu": 10}
    assert set(ev["split"]) == {"test"}
    with pytest.raises(ValueError, match="no test posts in ko"):
        datasize.eval_posts(POSTS, ["test"], ["hu", "ko"])


def test_train_settings_from_notebook_parameters():
    from xling import config
    from xling.models.finetune import TrainSettings

    params = {**config.notebook_defaults("06_data_size"), "lora_r": 4, "seed": 9}
    params["target_modules"] = ["q_proj"]
    s = TrainSettings.from_params(params)  # extra keys (ks, profile) are ignored
    assert s.lora_r == 4 and s.target_modules == ("q_proj",) and s.seed == 9
    # 01 and 06 declare the same training defaults (steps apart: the demo sets each its own)
    one = TrainSettings.from_params(config.notebook_defaults("01_finetune"))
    six = TrainSettings.from_params(config.notebook_defaults("06_data_size"))
    assert one.lr == six.lr and one.lora_alpha == six.lora_alpha and one.steps != six.steps
    # a knob left out is an error naming it, never a silent default
    del params["lr"]
    with pytest.raises(ValueError, match="training parameters missing: lr"):
        TrainSettings.from_params(params)


@pytest.mark.slow
def test_a_second_run_redoes_nothing(tmp_path, embedded_base, monkeypatch):
    from transformers import AutoTokenizer

    from xling import data
    from xling.models import prompts

    posts = data.subsample(data.load_demo_posts(), 6, seed=0)
    tok = AutoTokenizer.from_pretrained(embedded_base.folder)
    prompt = prompts.make_prompt("plain", tok)
    settings = train_settings(
        lora_r=2, lora_alpha=4, steps=2, batch_size=2, max_length=96, save_every=1
    )
    plan = datasize.plan_runs(["de"], [0, 3], [1])
    ev = datasize.eval_posts(posts, ["test"], ["de"], per_lang=3)
    kw = dict(base_langs=["en"], multi_langs=["en", "es", "de"], control_langs=["en", "es"])
    args = (posts, plan, ev, embedded_base, tok, prompt, settings, tmp_path)
    first, runs = datasize.run_data_size(*args, progress=False, **kw)
    assert not runs["reused"].any() and len(first) == len(plan) * len(ev)
    control = runs.set_index("run_id").loc["control-s1"]
    multi = runs.set_index("run_id").loc["multi-s1"]
    assert control["posts"] == multi["posts"] and control["languages"] == "en es"
    assert abs(control["tokens"] - multi["tokens"]) <= 2

    def boom(*a, **k):
        raise AssertionError("a finished run was trained or scored again")

    monkeypatch.setattr("xling.finetune.load_for_training", boom)
    second, runs2 = datasize.run_data_size(*args, progress=False, **kw)
    assert runs2["reused"].all()
    pd.testing.assert_frame_equal(first, second, check_dtype=False)


class CharTokenizer:
    """One token per character: enough for encode_examples, no model needed."""

    pad_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        return type("Encoded", (), {"input_ids": [ord(c) for c in text]})()


def test_an_impossible_run_is_refused_before_any_run_trains(tmp_path, monkeypatch):
    from xling.models import finetune, prompts

    def boom(*a, **k):
        raise AssertionError("trained before every training set was checked")

    monkeypatch.setattr(datasize, "evaluate_adapter", boom)
    monkeypatch.setattr(finetune, "finetune_lora", boom)
    plan = datasize.plan_runs(["hu"], [0, 25, 80], [1], diversity=False)
    with pytest.raises(ValueError, match="'hu': k = 80"):
        datasize.run_data_size(
            POSTS,
            plan,
            POSTS[POSTS["split"] == "test"],
            None,
            CharTokenizer(),
            prompts.plain_prompt(),
            train_settings(max_length=200),
            tmp_path,
            base_langs=["en"],
            multi_langs=["en", "hu"],
            control_langs=["en"],
            progress=False,
        )
    assert not (tmp_path / "runs").exists()
