"""The authors' released files -> one posts table with the paper's sizes (skipped without them)."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import pytest

from xling import data, paths


def test_sizes_equal_the_papers(paper_posts):
    table = data.compare_sizes(paper_posts, data.PAPER_SIZES)
    assert table["ok"].all(), table[~table["ok"]]
    # 13 x 2 per-language sets minus ko (no train/test) + 6 extra sets = 24 + 6
    assert len(table) == 30
    assert len(paper_posts) == 4470  # 1500 + 1000 + 10 * 100 + 70 + 400 + 200 + 3 * 100


def test_languages_and_labels(paper_posts):
    assert set(paper_posts["lang"]) == set(data.PAPER_LANGS)  # 'in' mapped to 'id'
    assert set(paper_posts["label"]) == set(data.LABELS)
    assert paper_posts["post_id"].is_unique
    assert not (paper_posts["split"] == "extra").any() or (
        paper_posts.loc[paper_posts["split"] == "extra", "evalset"].str.endswith("-extra").all()
    )
    assert set(paper_posts.loc[paper_posts["lang"] == "ko", "split"]) == {"extra"}


def test_the_repeated_korean_post_is_kept(paper_posts):
    ko = paper_posts[paper_posts["lang"] == "ko"]
    assert len(ko) == 70 and ko["text"].nunique() == 69


def test_label_normalization_is_reported(paper_data):
    with pytest.warns(UserWarning, match=r"'Neutral' -> 'neutral' \(52x\)"):
        data.load_paper_posts(paper_data)


def test_translations_and_human_checks(paper_posts):
    non_en = paper_posts[(paper_posts["split"] != "extra") & (paper_posts["lang"] != "en")]
    assert non_en["text_en"].notna().all()
    assert paper_posts.loc[paper_posts["lang"] == "en", "text_en"].isna().all()
    checked = paper_posts.groupby("lang")["translation_ok"].apply(lambda s: int(s.notna().sum()))
    for lang in ("ar", "de", "es", "fr", "hi", "it", "pt"):
        assert checked[lang] == (1000 if lang == "es" else 100), lang
    for lang in ("hu", "id", "pl"):  # translated but never checked by a human
        assert checked[lang] == 0
    # tr train: the workbook holds every post twice and 13 are checked both ways -> left empty
    assert checked["tr"] == 100 - 13
    # German test set: 20 of 25 translations judged good in the workbook
    de_test = paper_posts[(paper_posts["evalset"] == "de") & (paper_posts["split"] == "test")]
    assert int(de_test["translation_ok"].sum()) == 20


def test_missing_folder_names_the_fetch_script(tmp_path):
    with pytest.raises(data.PostsError, match="fetch_paper_data.sh"):
        data.load_paper_posts(tmp_path / "nope")


def test_conflicting_labels_across_copies_are_refused(paper_data, tmp_path):
    copy = tmp_path / "pd"
    shutil.copytree(paper_data / "test_dataset_raw", copy / "test_dataset_raw")
    f = copy / "test_dataset_raw" / "llama-32-3B-es-Q4_K_M_andreanasuto_mig-de-L3_test.csv"
    f.chmod(0o644)
    lines = f.read_text(encoding="utf-8").split("\n")
    msg_id, label, rest = lines[1].split(",", 2)  # the label is the second field
    other = next(lab for lab in data.LABELS if lab != label.strip().lower())
    lines[1] = f"{msg_id},{other},{rest}"
    f.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(data.PostsError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data.load_paper_posts(copy)
    assert "disagrees" in str(err.value) and "row 2" in str(err.value)


def test_fetch_script_verifies_a_copy_against_the_manifest(paper_data, tmp_path):
    script = paths.DATA / "fetch_paper_data.sh"
    ok = subprocess.run([script, "--from", paper_data], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "verified 214 files" in ok.stdout
    copy = tmp_path / "pd"
    shutil.copytree(paper_data, copy)
    target = copy / "test_dataset_raw" / "metrics" / "accuracy_metrics_test.csv"
    target.chmod(0o644)
    target.write_text(target.read_text() + "x\n")
    (copy / "extra" / "llama-32-3B-es-Q4_K_M_andreanasuto_mig-multi-L3_test.csv").unlink()
    bad = subprocess.run([script, "--from", copy], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "changed:  test_dataset_raw/metrics/accuracy_metrics_test.csv" in bad.stderr
    assert "missing:  extra/llama-32-3B-es-Q4_K_M_andreanasuto_mig-multi-L3_test.csv" in bad.stderr


def test_pooled_split_differs_from_the_per_language_split_for_172_spanish_posts_each_way(
    paper_posts,
):
    trained = paper_posts[paper_posts["split"] != "extra"]
    moved = trained[trained["split"] != trained["split_multi"]]
    assert set(moved["lang"]) == {"es"}
    assert ((moved["split"] == "test") & (moved["split_multi"] == "train")).sum() == 172
    assert ((moved["split"] == "train") & (moved["split_multi"] == "test")).sum() == 172
    assert paper_posts.loc[paper_posts["split"] == "extra", "split_multi"].isna().all()
    # the multilingual variant under the pooled split holds 172 of the 250 Spanish test posts
    multi = {"multi": [lang for lang in data.PAPER_LANGS if lang != "ko"]}
    audit = data.audit_splits(paper_posts, multi).set_index(["train_split", "evalset"])
    assert audit.loc[("pooled", "es"), "n_seen_exact"] == 172
    # per-language: one Spanish test post repeats a training post (another link or mention)
    assert audit.loc[("per_language", "es"), "n_seen_exact"] == 1
