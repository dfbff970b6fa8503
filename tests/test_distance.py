"""Language distance beside pretraining share (notebook 05, issue 22 part 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xling.analysis import distance as ld


class FakeUriel:
    """new_distance from a fixed table; a pair missing from it raises as URIEL+ does."""

    def __init__(self, table):
        self.table = {tuple(sorted(k)): v for k, v in table.items()}
        self.calls = 0

    def new_distance(self, kind, langs):
        self.calls += 1
        key = tuple(sorted(langs))
        if key not in self.table:
            raise ValueError(f"No shared {kind} features between {langs[0]} and {langs[1]}.\nx")
        return self.table[key]


def test_nearest_training_language_and_missing_pairs():
    uriel = FakeUriel({("eng", "deu"): 0.3, ("spa", "deu"): 0.6, ("eng", "kor"): 0.9})
    out = ld.language_distances(
        ["de", "ko", "en"], {"en-es": ["en", "es"]}, types=["genetic"], uriel=uriel
    )
    got = out.set_index("lang")
    # de: min(eng 0.3, spa 0.6) = 0.3 through English
    assert got.loc["de", "distance"] == 0.3 and got.loc["de", "nearest"] == "en"
    # ko: only the English pair exists (0.9); the Spanish pair's refusal is kept in the note
    assert got.loc["ko", "distance"] == 0.9 and "ko-es: No shared genetic" in got.loc["ko", "note"]
    # a training language is at distance 0 from itself, without asking URIEL+
    assert got.loc["en", "distance"] == 0.0 and got.loc["en", "nearest"] == "en"
    # pairs are asked once each: de-en, de-es, ko-en, ko-es, en-es (en-en is free) = 5
    assert uriel.calls == 5


def test_no_pair_at_all_leaves_the_distance_empty_and_unknown_codes_are_refused():
    out = ld.language_distances(["ko"], {"en": ["en"]}, types=["phonological"], uriel=FakeUriel({}))
    assert np.isnan(out["distance"].iloc[0]) and out["nearest"].iloc[0] == ""
    with pytest.raises(ld.DistanceError, match="'xx'"):
        ld.language_distances(["xx"], {"en": ["en"]}, uriel=FakeUriel({}))


def _lang_acc(dist, share, noise):
    # accuracy falls one for one with distance; share adds nothing but noise
    return pd.DataFrame(
        {
            "variant": "en",
            "lang": [f"l{i}" for i in range(len(dist))],
            "accuracy": 0.9 - np.asarray(dist) + np.asarray(noise),
            "log10_share": share,
        }
    )


def test_distance_explains_more_when_accuracy_follows_it():
    dist = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    share = [0.5, -1.0, 0.2, -0.3, 1.0, -0.8, 0.1, -0.2]  # unrelated to distance
    noise = [0.01, -0.01, 0.0, 0.01, -0.01, 0.0, 0.01, -0.01]
    lang_acc = _lang_acc(dist, share, noise)
    distances = pd.DataFrame(
        {
            "lang": lang_acc["lang"],
            "variant": "en",
            "type": "genetic",
            "distance": dist,
            "nearest": "en",
            "note": "",
        }
    )
    models = ld.fit_distance_models(lang_acc, distances, "log10_share")
    alone = models[(models["model"] == "distance") & (models["term"] == "distance")].iloc[0]
    # the slope is -1 by construction, recovered within the interval; R² near 1
    assert alone["ci_low"] < -1 < alone["ci_high"] and alone["r2"] > 0.99 and alone["n"] == 8
    cmp = ld.compare_models(models).iloc[0]
    assert cmp["better"] == "distance"
    assert cmp["distance_ci_low"] < -1 < cmp["distance_ci_high"]
    assert cmp["adj_r2_distance"] > cmp["adj_r2_share"]
    assert ld.best_distance(ld.compare_models(models))["type"].tolist() == ["genetic"]
    assert (
        "distance alone explains more than share alone under 1 of 1"
        in ld.sentences(ld.compare_models(models))[0]
    )


def test_a_variant_at_distance_zero_everywhere_is_skipped_with_the_reason():
    lang_acc = _lang_acc([0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.1, 0.0, 0.1, 0.0])
    distances = pd.DataFrame(
        {
            "lang": lang_acc["lang"],
            "variant": "en",
            "type": "script",
            "distance": 0.0,
            "nearest": "en",
            "note": "",
        }
    )
    models = ld.fit_distance_models(lang_acc, distances, "log10_share")
    skipped = models[models["model"] == "distance"].iloc[0]
    assert skipped["term"] == "" and "no spread in distance" in skipped["note"]
    # share alone is still fitted on those five languages
    assert (models[models["model"] == "share"]["term"] == "log10_share").any()


def test_uriel_plus_distances_agree_with_what_linguistics_says():
    uriel = ld.open_uriel()
    out = ld.language_distances(
        ["pt", "ko", "de", "hi"], {"es": ["es"]}, types=["genetic", "script"], uriel=uriel
    ).set_index(["type", "lang"])["distance"]
    # Portuguese is Romance like Spanish; German is Indo-European but Germanic; Korean is no
    # relative at all: genetic distance from Spanish grows in that order
    assert out[("genetic", "pt")] < out[("genetic", "de")] < out[("genetic", "ko")]
    # Portuguese and German are written in Latin script like Spanish, Hindi and Korean are not
    assert out[("script", "pt")] == 0 and out[("script", "de")] == 0
    assert out[("script", "hi")] > 0 and out[("script", "ko")] > 0
