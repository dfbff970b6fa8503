"""xling.bench: FLOPs from a config, cost arithmetic, tables, results, the missing-files message,
and one configuration run in a child process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from xling import bench, paths
from xling.analysis import cost
from xling.models import prompts

CONFIG = {
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "vocab_size": 100,
}


def test_model_flops_from_config():
    f = bench.ModelFlops.from_config(CONFIG)
    # per layer: q 8x(2*4)=64, k and v 8x4=32 each, o (2*4)x8=64, MLP 3x8x16=384 -> 576
    assert f.linear_params == 2 * 576
    assert f.per_token == 2 * 2 * 576
    assert f.head_params == 8 * 100
    # attention: 4 FLOPs per layer, head, head dimension and attended position: 4*2*2*4 = 64
    assert f.attention(1) == 64
    # 3 tokens at positions 2, 3, 4 attend to 3 + 4 + 5 = 12 positions; logits at one of them
    assert f.forward(2, 3, 1) == 3 * 2304 + 64 * 12 + 2 * 800


@pytest.mark.model  # the embedded model, dequantized (a minute, the first time)
def test_model_flops_of_the_embedded_model_config(embedded_base):
    f = bench.ModelFlops.from_folder(embedded_base.folder)
    cfg = json.loads((embedded_base.folder / "config.json").read_text())
    assert f.head_params == cfg["hidden_size"] * cfg["vocab_size"]
    # Gemma 3 270M: about 100M weights in the layers, the rest is the 262k-token embedding
    assert 60e6 < f.linear_params < 140e6


def test_cost_arithmetic():
    # 10 posts/s at $0.36 an hour: 1M posts take 1e5 s = 27.8 h, $10
    assert cost.dollars_per_million_posts(10, 0.36) == pytest.approx(10.0)
    # GPT-4o: 100 input tokens at $2.50/M and 3 output tokens at $10/M a post: $280 per 1M posts
    assert cost.api_dollars_per_million_posts(100, 3, "gpt-4o") == pytest.approx(280.0)
    rows = bench.cost_rows({"local": 10.0}, 100, 3, 0.36)
    local = rows.iloc[0]
    assert local["usd_per_1m_posts"] == pytest.approx(10.0)
    assert local["gpt-4o_cost_ratio"] == pytest.approx(28.0)
    assert local["gpt-4o-mini_cost_ratio"] == pytest.approx((100 * 0.15 + 3 * 0.60) / 10)
    assert rows["configuration"].str.contains("API").sum() == len(cost.API_PRICES)


def test_summarize_ratios_agreement_and_share_of_limit():
    f = bench.ModelFlops.from_config(CONFIG)
    configs = [
        bench.Config("tf one", "transformers", "transformers", "score", "m"),
        bench.Config("tf batch", "transformers", "transformers", "score", "m", batch_size=4),
        bench.Config("q4", "llamacpp", "llamacpp-q4_k_m", "score-batched", "g", precision="int8"),
    ]

    def result(name, seconds, preds, evaluated):
        return {
            "name": name,
            "seconds": seconds,
            "n_posts": 4,
            "prompt_tokens": 40,
            "evaluated_tokens": evaluated,
            "n_prefix": 3,
            "generated_tokens": 0,
            "predictions": preds,
            "rss_before_load_mb": 100.0,
            "peak_rss_mb": 500.0,
        }

    a = ["neutral", "unrelated", "neutral", "neutral"]
    results = [
        result("tf one", 4.0, a, 40),
        result("tf batch", 2.0, a, 40),
        result("q4", 0.5, ["neutral", "unrelated", "unrelated", "unrelated"], 28),
    ]
    t = bench.summarize(results, configs, f, {"fp32": 10.0, "int8": 20.0}).set_index(
        "configuration"
    )
    assert t.loc["q4", "posts_per_s"] == 8.0
    assert t.loc["q4", "x_tf_one"] == 8.0 and t.loc["q4", "x_tf_best"] == 4.0
    assert t.loc["q4", "agreement"] == 0.5
    assert t.loc["tf batch", "prompt_tokens_per_s"] == 20.0
    # q4: 7 evaluated tokens a post after the 3 prefix tokens, logits at one
    useful = f.forward(3, 7, 1)
    assert t.loc["q4", "share_of_limit"] == pytest.approx(8.0 * useful / 20e9)
    assert t.loc["tf one", "share_of_limit"] == pytest.approx(1.0 * f.forward(0, 10, 1) / 10e9)


def test_markdown_table_and_result_file(tmp_path):
    table = pd.DataFrame([{"a": "x", "b": 1.234}, {"a": "y", "b": None}])
    md = bench.markdown_table(table, {"a": ("name", "{}"), "b": ("value", "{:.1f}")})
    assert md.splitlines() == ["| name | value |", "|---|---:|", "| x | 1.2 |", "| y |  |"]
    result = {
        "benchmark": "classify",
        "date": "2026-12-01T10:00:00+00:00",
        "machine": {"host": "my host/1"},
        "n": np.int64(3),
    }
    path = bench.write_result(result, tmp_path)
    assert path.name == "2026-12-01-my-host-1-classify.json"
    assert json.loads(path.read_text())["n"] == 3


def test_matmul_limit_is_measured():
    gflops = bench.matmul_limit("fp32", n=128, seconds=0.05)
    assert 0.1 < gflops < 1e5
    with pytest.raises(ValueError, match="fp32 or int8"):
        bench.matmul_limit("fp8")


def test_machine_info_names_cpu_cores_and_versions():
    info = bench.machine_info()
    assert info["cores"] >= 1 and info["cpu"]
    assert info["versions"]["llama-cpp-python"]


def test_missing_files_name_the_command_that_makes_them(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    with pytest.raises(FileNotFoundError, match=r"\./run_all\.sh --only 00_data 01_finetune"):
        bench.benchmark_files("demo", "en")
    with pytest.raises(FileNotFoundError, match="--profile smoke --only 00_data"):
        bench.benchmark_files("smoke", "en")


def test_classify_script_exits_with_the_message():
    res = subprocess.run(
        [sys.executable, str(paths.ROOT / "bench" / "classify.py"), "--profile", "no-such"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "make them with: ./run_all.sh --profile no-such --only 00_data" in res.stderr


@pytest.mark.slow
def test_one_configuration_in_a_child_process():
    from xling import models

    gguf = models.embedded_gguf()
    texts = ["Welcome, refugees!", "The match ended 2-1.", "Close the borders now."]
    config = bench.Config("q4", "llamacpp", "llamacpp-q4_k_m", "generate", str(gguf))
    r = bench.run_isolated(config, texts, prompts.plain_prompt(), warmup=1)
    assert r["n_posts"] == 3 and len(r["predictions"]) == 3 and r["seconds"] > 0
    assert 0 < r["generated_tokens"] <= 3 * 3  # at most 3 new tokens a post
    # the prefix is evaluated once: each post costs its own tokens only
    assert r["evaluated_tokens"] == r["prompt_tokens"] - 3 * r["n_prefix"]
    # the child's own peak: at least the model file it read
    assert r["peak_rss_mb"] > max(r["rss_before_load_mb"], gguf.stat().st_size / 2**20 * 0.5)


def test_archive_benchmark_reading_and_its_headlines(tmp_path):
    from xling.data.archive import demo_archive

    demo_archive(300, 3, tmp_path, seed=2, bad_rows=3)
    r = bench._read_child((str(tmp_path / "*.csv.gz"), 64))
    # 3 files of 100 rows in chunks of 64: 2 tasks each; the 3 bad rows are read and refused
    # except the over-long one, which only the model's tokenizer refuses
    assert (r["rows"], r["tasks"], r["read"]) == (300, 6, 298)
    result = {
        "ratios": {
            "b_over_a_per_core": 3.0,
            "c_over_b": 1.5,
            "scaling_efficiency_c": 0.75,
            "c_workers": 2,
        },
        "same_bits_b_and_c": True,
        "authors_vs_scores_agreement": 0.9,
        "memory": {
            "small": {"posts": 2000, "peak_rss_mb": 200.0},
            "big": {"posts": 20000, "peak_rss_mb": 210.0},
            "big_over_small_peak": 1.05,
        },
    }
    lines = bench.describe_archive(result)
    assert "3.00x the authors' way per core" in lines[0]
    assert "2 workers = 1.50x (b)" in lines[1] and "scaling efficiency 75%" in lines[1]
    assert "90.0% of posts" in lines[2] and "(1.05x)" in lines[3]
    # (a) before and after: 4.0 then 3.0 posts/s is a drift of 3.0 / 4.0 = 0.75x
    lines = bench.describe_archive({**result, "authors_before_after_posts_per_s": [4.0, 3.0]})
    assert "4.00 then 3.00 posts/s" in lines[3] and "drifted 0.75x" in lines[3]
    assert "(1.05x)" in lines[4]


@pytest.mark.model
def test_archive_breakdown_child_times_every_way_on_the_same_posts():
    from xling import models
    from xling.models.prompts import plain_prompt

    embedded_gguf = models.embedded_gguf()
    texts = ["Borders should stay open.", "The match was great", "Deport them all", "hola"]
    r = bench._breakdown_child((str(embedded_gguf), None, plain_prompt(), texts, 2, 2))
    # four ways, each timed once per round (2 rounds), all positive rates
    assert set(r["rates"]) == {"generate", "score_one", "batched_1", "batched_2"}
    assert all(len(v) == 2 and min(v) > 0 for v in r["rates"].values())
    assert r["prefix_tokens"] > 5 and r["post_tokens_mean"] > 2
    result = {
        "n_posts": 4,
        "rounds": 2,
        "prefix_tokens": 28,
        "post_tokens_mean": 38.0,
        "median_posts_per_s": {"generate": 2.0, "score_one": 3.0, "batched_16": 5.0},
        "over_generate": {"generate": 1.0, "score_one": 1.5, "batched_16": 2.5},
    }
    lines = bench.describe_breakdown(result)
    # 5.0 posts/s is 5.0 / 2.0 = 2.50x generating
    assert "5.00 posts/s  2.50x  16 posts per decode (the archive's)" in lines[3]
    assert "38.0 tokens each after a 28-token prefix" in lines[0]


# ---------------------------------------------------------------------------------------------
# Recipe search (issue 25)
# ---------------------------------------------------------------------------------------------


def test_balanced_labels_keep_every_post_and_draw_the_rare_labels_up():
    from xling.models import finetune

    labels = ["unrelated"] * 5 + ["anti-immigration"] * 2 + ["pro-immigration"]
    posts = pd.DataFrame({"post_id": [f"p{i}" for i in range(8)], "label": labels})
    out = finetune.balance_labels(posts, seed=3)
    # the commonest label has 5 posts: every label 5, so 15 rows, each original post at least once
    assert out["label"].value_counts().to_dict() == {
        "unrelated": 5,
        "anti-immigration": 5,
        "pro-immigration": 5,
    }
    assert set(out["post_id"]) == set(posts["post_id"])
    assert (out[out["label"] == "pro-immigration"]["post_id"] == "p7").all()  # its only post
    assert out.equals(finetune.balance_labels(posts, seed=3))  # the same draw again


def test_recipe_rows_give_accuracy_floor_and_recall_per_group():
    labels = ("neutral", "unrelated", "pro-immigration", "anti-immigration")  # nan first
    gold = ["unrelated"] * 6 + ["anti-immigration"] * 4
    # the model says unrelated for all 10 posts but one anti post, which it gets right
    pred = ["unrelated"] * 6 + ["anti-immigration"] + ["unrelated"] * 3
    table = pd.DataFrame({"label": gold, "prediction": pred, "group": "authors"})
    (row,) = bench._recipe_rows(table, "balanced", "en", labels, n_boot=200)
    # 7 of 10 right; floor: unrelated 6 of 10; recall: unrelated 6/6, anti 1/4; neutral and pro
    # have no gold post here (nan), so the lowest recall is anti's 0.25
    assert row["accuracy"] == pytest.approx(0.7) and row["floor"] == pytest.approx(0.6)
    assert row["recall_unrelated"] == 1.0 and row["recall_anti-immigration"] == 0.25
    assert np.isnan(row["recall_neutral"])
    assert row["answers_unrelated"] == pytest.approx(0.9)
    assert row["min_recall"] == 0.25


def test_describe_recipes_names_the_recipe_whose_variants_all_beat_the_floor():
    rows = []
    for recipe, accs, recalls in [
        ("profile", (0.50, 0.60), (0.0, 0.4)),  # en below its 0.52 floor
        ("balanced", (0.55, 0.60), (0.3, 0.4)),  # both above, lowest recall 0.3
        ("lr-3e-4", (0.56, 0.58), (0.1, 0.5)),  # both above, lowest recall 0.1
    ]:
        for variant, acc, rec in zip(("en", "multi"), accs, recalls, strict=True):
            rows.append(
                {"recipe": recipe, "variant": variant, "group": "authors", "n": 310,
                 "accuracy": acc, "acc_low": acc - 0.05, "acc_high": acc + 0.05, "floor": 0.52,
                 "min_recall": rec}
            )  # fmt: skip
    lines = bench.describe_recipes({"rows": rows}, recall_variants=("en", "multi"))
    assert lines[-2] == (
        "authors: every variant above the floor with balanced, lr-3e-4; the highest lowest "
        "recall among them: balanced (0.30)"
    )
    # the bar: balanced's recalls 0.3 and 0.4 are not below 0.3; lr-3e-4's en 0.1 is
    assert lines[-1] == "authors: no label's recall below 0.3 for en, multi as well: balanced"
    assert len(lines) == 8  # six table lines and the two verdicts (no recipe run with two seeds)


def test_describe_recipes_says_how_far_the_seed_alone_moves_a_variant():
    rows = [
        {"recipe": recipe, "variant": variant, "group": "authors", "n": 310, "accuracy": acc,
         "acc_low": acc - 0.05, "acc_high": acc + 0.05, "floor": 0.52, "min_recall": 0.0}
        for recipe, variant, acc in [
            ("profile", "en", 0.45), ("seed-2", "en", 0.53), ("seed-3", "en", 0.50),
            ("profile", "es", 0.53), ("seed-2", "es", 0.55), ("seed-3", "es", 0.52),
            ("balanced", "en", 0.40), ("balanced", "es", 0.40),
        ]
    ]  # fmt: skip
    recipes = {"profile": {}, "seed-2": {"seed": 2}, "seed-3": {"seed": 3}, "balanced": {"b": 1}}
    assert bench.seed_twins(recipes) == {"profile": ["profile", "seed-2", "seed-3"]}
    lines = bench.describe_recipes({"rows": rows, "recipes": recipes})
    # en: 0.45 to 0.53 (0.08); es: 0.52 to 0.55 (0.03); balanced has one seed and no line
    assert lines[-1] == (
        "seed alone (profile, seed-2, seed-3), authors: en 0.450-0.530; es 0.520-0.550; "
        "widest 0.080"
    )
    assert bench.seed_twins({"profile": {}, "lr": {"lr": 1}}) == {}


def test_recipe_search_names_the_command_that_makes_its_inputs(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    with pytest.raises(FileNotFoundError, match=r"\./run_all\.sh --only 00_data 01_finetune"):
        bench.recipe_search("demo")


def test_every_recipe_names_known_settings_and_a_whole_numbering():
    from dataclasses import fields

    from xling.models import finetune
    from xling.tasks import load_task

    knobs = {f.name for f in fields(finetune.TrainSettings)}
    knobs |= {"balance", "numbers", "words", "tweets"}
    labels = set(load_task().labels)
    for name, recipe in bench.RECIPES.items():
        assert set(recipe) <= knobs, name
        if "numbers" in recipe:  # every label numbered, no number twice
            assert set(recipe["numbers"]) == labels, name
            assert len(set(recipe["numbers"].values())) == len(labels), name
        if "words" in recipe:  # every label a word, no word twice, each a word a task accepts
            assert set(recipe["words"]) == labels, name
            assert len(set(recipe["words"].values())) == len(labels), name
            assert all(w.isalpha() and w.islower() for w in recipe["words"].values()), name


def test_tweet_like_posts_get_mentions_and_links_at_the_given_rates():
    from xling.models import finetune

    n = 2000
    posts = pd.DataFrame({"post_id": range(n), "text": ["Hello world"] * n, "label": "neutral"})
    out = finetune.like_tweets(posts, seed=5, mention_rate=0.5, link_rate=0.25)
    # the post's own words stay, between the handles and the link
    assert out["text"].str.contains("Hello world", regex=False).all()
    mention = out["text"].str.match(r"^@\w+( @\w+){0,2} Hello world")
    link = out["text"].str.contains(r"Hello world https://t\.co/[A-Za-z0-9]{10}$")
    # each drawn per post: over 2000 posts the shares are within 0.04 of the rates (about four
    # binomial standard deviations: sqrt(0.25 / 2000) = 0.011)
    assert abs(mention.mean() - 0.5) < 0.04 and abs(link.mean() - 0.25) < 0.04
    untouched = ~mention & ~link
    assert (out.loc[untouched, "text"] == "Hello world").all()
    assert out["label"].eq("neutral").all() and out["post_id"].equals(posts["post_id"])
    assert out.equals(finetune.like_tweets(posts, seed=5, mention_rate=0.5, link_rate=0.25))
    # rates 0: nothing changes
    assert finetune.like_tweets(posts, 1, 0, 0)["text"].eq("Hello world").all()
    with pytest.raises(ValueError, match="shares"):
        finetune.like_tweets(posts, 1, 1.5, 0)
