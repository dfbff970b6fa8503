"""xling.ablation: the paired statistics by hand, the comparison table, the authors' data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling.analysis import ablation

# --------------------------------------------------------------------------------------------
# Paired statistics, worked by hand
# --------------------------------------------------------------------------------------------


def test_paired_comparison_hand_worked():
    # ten posts: right on the original / right on the translation
    #   posts 0-2 both right (3), posts 3-6 original only (4), post 7 translation only (1),
    #   posts 8-9 both wrong (2)
    # accuracy original 7/10 = 0.7, translated 4/10 = 0.4, diff = 0.4 - 0.7 = -0.3
    # McNemar exact: 5 discordant posts, the rarer kind 1 of them; two-sided binomial(5, 1/2):
    #   p = 2 * P(X <= 1) = 2 * (C(5,0) + C(5,1)) / 2^5 = 2 * 6 / 32 = 0.375
    co = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], bool)
    ct = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 0], bool)
    r = ablation.paired_comparison(co, ct, n_boot=2000, seed=0)
    assert r["n_pairs"] == 10
    assert r["acc_original"] == pytest.approx(0.7) and r["acc_translated"] == pytest.approx(0.4)
    assert r["diff"] == pytest.approx(-0.3)
    assert (r["n_original_only"], r["n_translated_only"]) == (4, 1)
    assert r["mcnemar_p"] == pytest.approx(0.375)
    # the paired interval holds the difference; resampling posts keeps a post's two sides
    # together, so no replicate can fall below -4/10*... only between -1 and +1 in steps of 0.1
    assert r["diff_ci_low"] < -0.3 < r["diff_ci_high"]
    assert -1 <= r["diff_ci_low"] and r["diff_ci_high"] <= 1
    assert r["acc_original_low"] <= 0.7 <= r["acc_original_high"]


def test_paired_comparison_extremes():
    # six posts, every one right on the original and wrong on the translation:
    # every bootstrap replicate gives -1, so the interval is [-1, -1];
    # McNemar: 6 discordant, none the other way: p = 2 * (1/2)^6 = 0.03125
    r = ablation.paired_comparison([1] * 6, [0] * 6)
    assert (r["diff"], r["diff_ci_low"], r["diff_ci_high"]) == (-1, -1, -1)
    assert r["mcnemar_p"] == pytest.approx(0.03125)
    # no discordant post: nothing to test, p = 1
    assert ablation.mcnemar_exact([1, 0, 1], [1, 0, 1]) == 1.0
    with pytest.raises(ValueError, match="same posts"):
        ablation.paired_comparison([1, 0], [1])


def test_topic_and_stance_scoring():
    truth = ["unrelated", "neutral", "pro-immigration", "anti-immigration", "unrelated"]
    pred = ["neutral", "pro-immigration", "failed", "anti-immigration", "unrelated"]
    # label: only posts 3 and 4 are exact
    counted, ok = ablation.correct(truth, pred, "label")
    assert counted.all() and ok.tolist() == [False, False, False, True, True]
    # topic: related vs unrelated; neutral for pro is right, failed is wrong
    _, ok = ablation.correct(truth, pred, "topic")
    assert ok.tolist() == [False, True, False, True, True]
    # stance: only the three posts about immigration count, exact label
    counted, ok = ablation.correct(truth, pred, "stance")
    assert counted.tolist() == [False, True, True, True, False]
    assert ok.tolist() == [False, False, True]


# --------------------------------------------------------------------------------------------
# Buckets and the table
# --------------------------------------------------------------------------------------------


def test_quality_buckets():
    # chrF 10..60: terciles at 26.67 and 43.33 -> low 10, 20; mid 30, 40; high 50, 60
    tr = pd.DataFrame(
        {
            "post_id": list("abcdef"),
            "chrf": [10, 20, 30, 40, 50, 60],
            "translation_ok": [1, 0, np.nan, 1, 1, np.nan],
        }
    )
    b = ablation.quality_buckets(tr)
    got = b.groupby("quality_bucket")["post_id"].apply(lambda s: "".join(sorted(s))).to_dict()
    assert got == {
        "all": "abcdef",
        "human: good": "ade",
        "human: bad": "b",
        "chrF: low": "ab",
        "chrF: mid": "cd",
        "chrF: high": "ef",
    }


def _predictions():
    """Four German test posts: en on originals, en on translations, multi and en-es on
    originals (all labels unrelated / neutral)."""
    gold = ["unrelated", "neutral", "neutral", "unrelated"]
    answers = {
        ("en", "original"): ["unrelated", "unrelated", "neutral", "neutral"],  # 2 of 4
        ("en", "translated"): ["unrelated", "neutral", "neutral", "neutral"],  # 3 of 4
        ("multi", "original"): ["unrelated", "neutral", "neutral", "unrelated"],  # 4 of 4
        ("en-es", "original"): ["unrelated", "unrelated", "unrelated", "unrelated"],  # 2 of 4
    }
    rows = []
    for (variant, inp), preds in answers.items():
        for i, (g, p) in enumerate(zip(gold, preds, strict=True)):
            rows.append(
                {
                    "post_id": f"de-{i}",
                    "lang": "de",
                    "label": g,
                    "split": "test",
                    "evalset": "de",
                    "variant": variant,
                    "backend": "q4",
                    "input": inp,
                    "method": "score",
                    "prediction": p,
                    "raw_output": None,
                }
            )
    return pd.DataFrame(rows)


def test_ablation_table_both_comparisons():
    preds = _predictions()
    buckets = pd.DataFrame({"post_id": ["de-0", "de-1"], "quality_bucket": ["human: good"] * 2})
    t = ablation.ablation_table(preds, buckets, "q4", "score", n_boot=200)
    assert list(t.columns) == list(ablation.ABLATION_COLUMNS)
    main = t[(t["metric"] == "label") & (t["quality_bucket"] == "all") & (t["lang"] == "de")]
    a = main[main["comparison"] == "a"].iloc[0]
    assert (a["variant"], a["native_variant"], a["n_pairs"]) == ("en", "en", 4)
    assert (a["acc_original"], a["acc_translated"], a["diff"]) == (0.5, 0.75, 0.25)
    b = main[main["comparison"] == "b"].set_index("native_variant")
    assert b.loc["multi", "acc_original"] == 1.0 and b.loc["en-es", "acc_original"] == 0.5
    assert b.loc["multi", "best_native"] and not b.loc["en-es", "best_native"]
    assert b.loc["multi", "diff"] == -0.25
    # the human bucket holds posts 0 and 1: en right on 0 only originally, on both translated
    good = t[(t["comparison"] == "a") & (t["quality_bucket"] == "human: good")]
    good = good[(good["metric"] == "label") & (good["lang"] == "de")].iloc[0]
    assert (good["n_pairs"], good["acc_original"], good["acc_translated"]) == (2, 0.5, 1.0)
    # stance counts the two neutral posts only
    stance = t[(t["comparison"] == "a") & (t["metric"] == "stance") & (t["lang"] == "de")]
    assert stance[stance["quality_bucket"] == "all"].iloc[0]["n_pairs"] == 2
    # one language: the Holm adjustment is the p-value itself
    de = t[t["lang"] == "de"]
    assert np.allclose(de["mcnemar_p_holm"], de["mcnemar_p"])
    assert t.loc[t["lang"] == "all", "mcnemar_p_holm"].isna().all()
    lines = ablation.describe_ablation(t)
    assert any(
        line.startswith("(a) en on originals vs on translations, test, label") for line in lines
    )


def test_posts_a_variant_learned_from_are_left_out():
    preds = _predictions()
    seen = pd.DataFrame({"variant": ["multi"], "post_id": ["de-1"]})
    paired = ablation.pairs(preds, "multi", "en", "q4", "score", ("test",), seen)
    assert paired["post_id"].tolist() == ["de-0", "de-2", "de-3"]
    # comparison a does not involve multi: all four posts
    assert len(ablation.pairs(preds, "en", "en", "q4", "score", ("test",), seen)) == 4
    # another split: nothing
    assert ablation.pairs(preds, "en", "en", "q4", "score", ("train",)).empty


def test_seen_posts_covers_training_posts_and_near_copies():
    posts = pd.DataFrame(
        {
            "post_id": ["de-1", "de-2", "de-3", "fr-1"],
            "text": ["Grenzen auf jetzt", "Grenzen auf jetzt!", "ganz anderes Thema", "Bonjour"],
            "lang": ["de", "de", "de", "fr"],
            "label": ["pro-immigration", "pro-immigration", "unrelated", "unrelated"],
            "split": ["train", "test", "test", "test"],
            "split_multi": ["train", "test", "test", "test"],
            "evalset": ["de", "de", "de", "fr"],
        }
    )
    seen = ablation.seen_posts(posts, {"multi": ["de", "fr"], "en": ["en"]}, {})
    assert set(zip(seen["variant"], seen["post_id"], strict=True)) == {
        ("multi", "de-1"),  # its own training post
        ("multi", "de-2"),  # the same text as a training post, up to punctuation
    }


# --------------------------------------------------------------------------------------------
# The authors' data: the released answers on their translations feed comparison (a)
# --------------------------------------------------------------------------------------------


def test_released_translated_answers_feed_comparison_a(paper_data, paper_posts):
    from xling import translate
    from xling.analysis import released

    preds = released.load_released_predictions(paper_data, paper_posts)
    tr = preds[preds["input"] == "translated"]
    # the English variant on the authors' translations: train and test posts of eleven languages
    assert set(tr["variant"]) == {"en"} and set(tr["backend"]) == {released.BACKEND_Q4}
    assert len(tr) == 2000 and tr["post_id"].is_unique
    assert sorted(tr["lang"].unique()) == sorted(
        ["ar", "de", "es", "fr", "hi", "hu", "id", "it", "pl", "pt", "tr"]
    )
    assert tr.groupby("split").size().to_dict() == {"test": 500, "train": 1500}
    # every translated post has the authors' translation in the posts table
    posts = paper_posts.set_index("post_id").loc[tr["post_id"]]
    assert posts["text_en"].notna().all()
    mt = translate.given_translations(posts.reset_index())
    assert (mt["mt_status"] != "empty").all()

    buckets = ablation.quality_buckets(posts.reset_index())
    table = ablation.ablation_table(
        preds, buckets, released.BACKEND_Q4, "generate", splits=("test",), n_boot=200
    )
    row = table[
        (table["comparison"] == "a")
        & (table["lang"] == "all")
        & (table["metric"] == "label")
        & (table["quality_bucket"] == "all")
    ].iloc[0]
    assert row["n_pairs"] == 500
    # the same numbers straight from the released rows, without the ablation code
    test_tr = tr[tr["split"] == "test"].set_index("post_id")
    orig = preds[
        (preds["variant"] == "en")
        & (preds["input"] == "original")
        & (preds["backend"] == released.BACKEND_Q4)
        & (preds["evalset"] == preds["lang"])
    ].set_index("post_id")
    orig = orig.loc[test_tr.index]
    assert row["acc_original"] == pytest.approx((orig["label"] == orig["prediction"]).mean())
    assert row["acc_translated"] == pytest.approx(
        (test_tr["label"] == test_tr["prediction"]).mean()
    )
    # the human check splits them: good and bad posts are a subset of the checked languages
    human = table[
        (table["comparison"] == "a")
        & (table["lang"] == "all")
        & (table["metric"] == "label")
        & table["quality_bucket"].isin(["human: good", "human: bad"])
    ]
    checked = posts[(posts["split"] == "test") & posts["translation_ok"].notna()]
    assert human["n_pairs"].sum() == len(checked)
