"""Bad input is refused with the file, row, field or key named, and nothing already computed is
lost or overwritten (issue 11).

Where each case of the issue is tested (this file unless another is named):

| case | message | nothing lost |
|---|---|---|
| missing column, unknown label, whitespace text, unknown language code, duplicate post_id | test_data.py::test_bad_rows_name_file_row_and_field | test_bad_posts_file_leaves_earlier_results, test_00_data_writes_a_good_file_then_keeps_it_when_the_next_one_is_bad |
| label in another case or with spaces | test_data.py::test_labels_in_other_case_or_spacing_are_normalized_with_a_warning | (not an error) |
| empty text, empty label / language / split, ragged rows, empty file | test_empty_fields_and_broken_files_are_named | test_bad_posts_file_leaves_earlier_results |
| undecodable bytes | test_data.py::test_undecodable_bytes_name_the_line | test_bad_posts_file_leaves_earlier_results |
| a language without training posts as a variant | test_a_variant_language_without_training_posts | same test |
| an empty split | test_a_file_without_test_posts_is_refused, test_no_posts_in_the_evaluated_splits | same tests |
| unknown profile key or wrong type | test_config.py::test_unknown_key_names_key_and_file, ::test_wrong_type_names_key_file_and_expected_type | test_bad_profile_changes_nothing |
| missing or truncated GGUF file | test_quantize.py::test_missing_truncated_and_foreign_files_are_refused, test_missing_or_truncated_gguf_is_named_before_llama_cpp_loads_it | same test |
| model folder without weights | test_model_folder_without_weights_is_named | (read only) |
| translation that comes back empty | test_translate.py::test_translations_are_cleaned_and_marked_not_dropped | test_an_empty_translation_is_kept_classified_and_counted |
| unparsable output | test_infer.py::test_generate_keeps_failed_output_and_its_raw_text, test_metrics.py (n_failed) | (kept as failed) |
| posts file changing between runs | test_changed_posts_file_reruns_every_notebook, test_changed_training_posts_retrain_and_never_resume_a_stale_checkpoint, test_changed_label_reuses_the_cached_answer_but_not_the_old_label; test_infer.py / test_translate.py (edited post) | same tests |
"""  # noqa: E501

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import train_settings, write
from xling import config, data, infer, models, paths
from xling.models import prompts, scorers
from xling.run import runner

GOOD = (
    "post_id,text,lang,label,split\n"
    "en-1,Welcome to all newcomers,en,pro-immigration,train\n"
    "en-2,Close the borders now,en,anti-immigration,train\n"
    "en-3,Visa office opens at 9,en,neutral,test\n"
    "en-4,Great match tonight,en,unrelated,test\n"
    "es-1,Bienvenidos a todos,es,pro-immigration,train\n"
    "es-2,Cierren la frontera,es,anti-immigration,test\n"
)


# --------------------------------------------------------------------------------------------
# Running notebooks in-process: papermill replaced by exec() of each code cell
# --------------------------------------------------------------------------------------------


class _ExecutionError(Exception):
    """Stands in for papermill's PapermillExecutionError (the runner reads ename and evalue)."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue = ename, evalue


def _execute_in_process(input_path, output_path, parameters=None, **_kwargs) -> None:
    """papermill.execute_notebook without a kernel: each code cell exec'd in one namespace, the
    parameters assigned after the tagged cell, an error recorded as papermill records it."""
    nb = json.loads(Path(input_path).read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__", "display": lambda *a, **k: None}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "parameters" in cell["metadata"].get("tags", []):
            source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in (parameters or {}).items())
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, str(input_path), "exec"), namespace)  # noqa: S102
        except Exception as err:
            cell["outputs"] = [
                {"output_type": "error", "ename": type(err).__name__, "evalue": str(err)}
            ]
            Path(output_path).write_text(json.dumps(nb), encoding="utf-8")
            raise _ExecutionError(type(err).__name__, str(err)) from err
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ""}]
    Path(output_path).write_text(json.dumps(nb), encoding="utf-8")


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The real params and notebooks in a scratch root, where runs and figures go too; papermill
    executes in-process."""
    root = tmp_path / "xling"
    shutil.copytree(paths.PARAMS, root / "params")
    shutil.copytree(paths.NOTEBOOKS, root / "notebooks")
    # the smoke profile's evaluation file
    shutil.copytree(paths.ROOT / "data" / "examples", root / "data" / "examples")
    for name, value in {
        "ROOT": root,
        "PARAMS": root / "params",
        "NOTEBOOKS": root / "notebooks",
        "RUNS": root / "runs",
        "FIGURES": root / "figures",
        "MODEL_CACHE": root / "runs" / "cache" / "models",
    }.items():
        monkeypatch.setattr(paths, name, value)
    fake = types.ModuleType("papermill")
    fake.execute_notebook = _execute_in_process
    fake.PapermillExecutionError = _ExecutionError
    monkeypatch.setitem(sys.modules, "papermill", fake)
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _seed_earlier_results(root: Path) -> dict[str, bytes]:
    """What an earlier run left under runs/smoke/: a posts table, predictions, an adapter, and
    the runner's record of a finished 01_finetune."""
    run = root / "runs" / "smoke"
    posts = data.load_user_posts(write(root / "earlier.csv", GOOD))
    data.write_posts(posts, run / "posts.csv")
    write(run / "predictions.csv", "post_id,prediction\nen-3,neutral\n")
    write(run / "adapters" / "en" / "adapter" / "adapter_model.safetensors", b"weights")
    write(run / "notebooks" / "state.json", json.dumps({"01_finetune": {"status": "ok"}}))
    return {k: v for k, v in _snapshot(run).items() if k != "notebooks/state.json"}


# --------------------------------------------------------------------------------------------
# Posts files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "row", "field", "message"),
    [
        ("text,lang,label\nok,en,neutral\n,en,neutral\n", 3, "text", "empty text"),
        ('text,lang,label\nok,en,neutral\n"\t\n",en,neutral\n', 3, "text", "empty text"),
        ("text,lang,label\nok,en,\n", 2, "label", "empty label"),
        ("text,lang,label\nok,,neutral\n", 2, "lang", "empty language code"),
        ("text,lang,label,split\nok,en,neutral,train\nhi,en,neutral,\n", 3, "split", "empty split"),
        # one field too many on every line: pandas would take the first column as an index
        ("text,lang,label\nhi,en,neutral,extra\n", 2, None, "4 fields but the header has 3"),
        ("text,lang,label\nok,en,neutral\nhi, there,en,neutral\n", 3, None, "4 fields"),
        ("text,lang,label\n", None, None, "no posts"),
        ("", None, None, "empty file"),
        ("\n\n", None, None, "empty file"),
        # blank lines count as lines: the bad label is on line 5 of the file
        ("text,lang,label\n\nok,en,neutral\n\nx,en,bogus\n", 5, "label", "unknown label 'bogus'"),
    ],
)
def test_empty_fields_and_broken_files_are_named(tmp_path, content, row, field, message):
    f = write(tmp_path / "bad.csv", content)
    with pytest.raises(data.PostsError) as err:
        data.load_user_posts(f)
    assert (err.value.file, err.value.row, err.value.field) == (str(f), row, field)
    assert message in str(err.value) and str(f) in str(err.value)


def test_a_file_without_test_posts_is_refused(tmp_path):
    # two posts per (lang, label): round(2 * 0.25) = 0 test posts each, so nothing to evaluate
    rows = "".join(f"{lab} {i},en,{lab}\n" for lab in data.LABELS for i in range(2))
    f = write(tmp_path / "small.csv", "text,lang,label\n" + rows)
    with pytest.raises(data.PostsError) as err:
        data.load_posts("file", f)
    assert err.value.field == "split" and "no test or extra posts" in str(err.value)
    assert str(f) in str(err.value)
    # a file that says where its posts go is taken as it is
    given = write(tmp_path / "given.csv", GOOD)
    assert set(data.load_posts("file", given)["split"]) == {"train", "test"}


def test_duplicate_post_id_across_demo_files_names_both_files(tmp_path):
    head = "post_id,text,lang,label,split\n"
    write(tmp_path / "en.csv", head + "x1,hello,en,neutral,train\n")
    write(tmp_path / "es.csv", head + "x1,hola,es,neutral,test\n")
    with pytest.raises(data.PostsError, match=r"duplicate post_id 'x1' across files \(en.csv, es"):
        data.load_demo_posts(tmp_path)


BAD_FILES = {
    "missing_column": (b"post_id,text,lang\na,hi,en\n", "field 'label': missing column"),
    "unknown_label": (b"text,lang,label\nfine,en,neutral\nhola,es,maybe\n", "row 3, field 'label'"),
    "empty_text": (b"text,lang,label\nfine,en,neutral\n  ,en,neutral\n", "row 3, field 'text'"),
    "undecodable": (b"text,lang,label\nfine,en,neutral\ncaf\xe9,fr,neutral\n", "row 3: bytes"),
    "duplicate_id": (
        b"post_id,text,lang,label\na,x,en,neutral\na,y,en,neutral\n",
        "row 3, field 'post_id': duplicate post_id 'a' (first at row 2)",
    ),
    "unknown_lang": (b"text,lang,label\nhola,sp,neutral\n", "row 2, field 'lang'"),
    "empty_file": (b"", "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_posts_file_leaves_earlier_results(scratch, case):
    """00_data given a bad file fails in the cell that loads it, names file, row and field, and
    leaves the previous posts table and every later notebook's results as they were."""
    content, expected = BAD_FILES[case]
    earlier = _seed_earlier_results(scratch)
    bad = write(scratch / f"{case}.csv", content)
    log: list[str] = []
    overrides = [("posts_source", "file"), ("posts_path", json.dumps(str(bad)))]
    outcomes = runner.run_profile("smoke", ["00"], overrides=overrides, log=log.append)
    assert [(o.notebook, o.status) for o in outcomes] == [("00_data", "failed")]
    assert "PostsError" in outcomes[0].reason and f"{bad}" in outcomes[0].reason
    assert expected in outcomes[0].reason
    text = "\n".join(log)
    assert (
        "00_data: FAILED" in text
        and "code cell 3 (posts, loader_notes = data.load_run_posts(" in text
    )
    run = scratch / "runs" / "smoke"
    assert {k: v for k, v in _snapshot(run).items() if k in earlier} == earlier
    state = runner.read_state("smoke")
    assert state["00_data"]["status"] == "failed" and state["01_finetune"]["status"] == "ok"
    assert (run / "notebooks" / "00_data.ipynb").exists()  # the failing run's copy, kept


def test_00_data_writes_a_good_file_then_keeps_it_when_the_next_one_is_bad(scratch):
    good = write(scratch / "posts.csv", GOOD)
    overrides = [("posts_source", "file"), ("posts_path", json.dumps(str(good)))]
    outcomes = runner.run_profile("smoke", ["00"], overrides=overrides, log=lambda _: None)
    assert outcomes[0].status == "ran", outcomes[0].reason
    table = scratch / "runs" / "smoke" / "posts.csv"
    written = table.read_bytes()
    posts = data.read_posts(table)
    # the file's six posts, and the smoke profile's evaluation file (split eval) after them
    assert set(posts.loc[posts["split"] == "eval", "evalset"]) == {"speeches"}
    assert posts.loc[posts["split"] != "eval", "post_id"].tolist() == [
        "en-1",
        "en-2",
        "en-3",
        "en-4",
        "es-1",
        "es-2",
    ]
    write(good, GOOD + "es-3,Hola,es,nonsense,test\n")  # the same file, edited badly
    outcomes = runner.run_profile("smoke", ["00"], overrides=overrides, log=lambda _: None)
    assert outcomes[0].status == "failed" and "row 8, field 'label'" in outcomes[0].reason
    assert table.read_bytes() == written


# --------------------------------------------------------------------------------------------
# Profiles, variants, splits
# --------------------------------------------------------------------------------------------


def test_bad_profile_changes_nothing(scratch):
    earlier = _seed_earlier_results(scratch)
    state_before = (scratch / "runs" / "smoke" / "notebooks" / "state.json").read_bytes()
    write(scratch / "params" / "typo.yaml", "common:\n  seed: 1\n01_finetune:\n  stpes: 3\n")
    with pytest.raises(config.ConfigError) as err:
        runner.run_profile("typo", log=lambda _: None)
    assert "01_finetune.stpes" in str(err.value) and "typo.yaml" in str(err.value)
    with pytest.raises(config.ConfigError, match=r"'01_finetune.steps' must be Optional\[int\]"):
        runner.run_profile("smoke", overrides=[("01_finetune.steps", "'many'")], log=print)
    run = scratch / "runs" / "smoke"
    assert {k: v for k, v in _snapshot(run).items() if k in earlier} == earlier
    assert (run / "notebooks" / "state.json").read_bytes() == state_before
    assert not (scratch / "runs" / "typo").exists()


def test_a_variant_language_without_training_posts(tmp_path):
    from xling.models import finetune

    posts = data.load_user_posts(
        write(tmp_path / "p.csv", GOOD + "ko-1,안녕하세요,ko,unrelated,extra\n")
    )
    with pytest.raises(ValueError) as err:
        finetune.training_sets(posts, {"en": ["en"], "ko": ["ko"]})
    msg = str(err.value)
    assert "variant 'ko': no training posts in ko" in msg and "training posts: en, es" in msg
    # the check comes before any training: an adapter folder is not even created
    out = tmp_path / "adapters" / "ko"
    with pytest.raises(ValueError, match="no training posts"):
        finetune.finetune_lora(tmp_path / "no-model", [], out, train_settings())
    assert not out.exists()


@pytest.fixture
def model_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(paths, "MODEL_CACHE", tmp_path / "runs" / "cache" / "models")
    return write(tmp_path / "model.gguf", b"not really a model")


class _Scorer:
    """Label log-probabilities from the text's length (an empty post: 'pro-immigration')."""

    def __init__(self):
        self.texts: list[str] = []

    def score_one(self, text: str) -> np.ndarray:
        self.texts.append(text)
        logp = np.full(4, -5.0)
        logp[len(text) % 4] = -0.1
        return logp

    def close(self) -> None:
        pass


def test_no_posts_in_the_evaluated_splits(model_file):
    posts = data.load_user_posts(write(model_file.parent / "p.csv", GOOD))
    evaluated = posts[posts["split"].isin(["extra"])]  # this data has no extra split
    files = infer.ModelFiles("llamacpp-q4_k_m", model_file)
    predictions = infer.predict(
        evaluated, lambda v, b: files, ["en"], ["llamacpp-q4_k_m"], prompt=prompts.plain_prompt()
    )
    assert predictions.empty
    with pytest.raises(ValueError, match="no predictions .*no posts in the evaluated splits"):
        data.check_predictions(predictions)
    assert not (paths.RUNS / "cache" / "predictions").exists()  # no model opened, nothing cached


# --------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------


def _tiny_gguf(path: Path) -> Path:
    """A small, complete GGUF file: one 64 x 64 float tensor."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.ones((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_missing_or_truncated_gguf_is_named_before_llama_cpp_loads_it(model_file):
    from xling import translate

    whole = _tiny_gguf(model_file.parent / "tiny.gguf")
    assert models.check_gguf(whole)["n_tensors"] == 1
    cut = write(model_file.parent / "cut.gguf", whole.read_bytes()[:-1000])
    header_only = write(model_file.parent / "head.gguf", whole.read_bytes()[:40])
    prompt = prompts.plain_prompt()
    for bad, message in ((cut, "truncated GGUF file"), (header_only, "truncated or corrupt")):
        with pytest.raises(models.ModelError, match=message) as err:
            scorers.LlamaCppScorer(bad, prompt)
        assert str(bad) in str(err.value)
        with pytest.raises(models.ModelError, match=message):
            translate.LlamaCppTranslator(bad)
    with pytest.raises(models.ModelError, match="truncated GGUF file"):
        scorers.LlamaCppScorer(whole, prompt, lora=cut)
    missing = model_file.parent / "gone.gguf"
    with pytest.raises(
        FileNotFoundError, match=f"model GGUF file not found: {re.escape(str(missing))}"
    ):
        scorers.LlamaCppScorer(missing, prompt)
    # a classification with a broken file leaves the cache of the good one as it was
    posts = pd.DataFrame({"post_id": ["a", "b"], "text": ["one", "two"]})
    good = infer.ModelFiles("llamacpp-q4_k_m", model_file)
    infer.classify(posts, good, prompt, "score", scorer=_Scorer(), progress=False)
    cache = paths.RUNS / "cache" / "predictions"
    before = _snapshot(cache)
    with pytest.raises(models.ModelError, match="truncated"):
        infer.classify(posts, infer.ModelFiles("llamacpp-q4_k_m", cut), prompt, progress=False)
    assert _snapshot(cache) == before
    # a backend whose file 02_quantize has not written is named, with what to run
    base = models.BaseModel("embedded", model_file.parent, model_file, "0" * 64)
    run = model_file.parent / "runs" / "smoke"
    with pytest.raises(FileNotFoundError, match=r"en-q8_0.gguf not found \(run 02_quantize"):
        models.model_files(run, base, "en", "llamacpp-q8_0")


def test_model_folder_without_weights_is_named(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    where = re.escape(str(folder))
    with pytest.raises(models.ModelError, match=f"{where}: no config.json"):
        models.resolve_base(str(folder))
    write(folder / "config.json", "{}")
    with pytest.raises(models.ModelError, match=f"{where}: no \\*.safetensors weights$"):
        models.resolve_base(str(folder))
    write(folder / "pytorch_model.bin", b"pickle")
    with pytest.raises(models.ModelError, match="found pytorch_model.bin: only safetensors"):
        models.resolve_base(str(folder))
    with pytest.raises(FileNotFoundError, match=f"no safetensors weights in {where}"):
        infer.ModelFiles("transformers-unquantized", folder).fingerprint()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]


# --------------------------------------------------------------------------------------------
# Model output
# --------------------------------------------------------------------------------------------


def test_an_empty_translation_is_kept_classified_and_counted(model_file, monkeypatch):
    from xling import translate

    translated = pd.DataFrame(
        {
            "post_id": ["de-1", "de-2"],
            "lang": ["de", "de"],
            "label": ["neutral", "unrelated"],
            "split": ["test", "test"],
            "evalset": ["de", "de"],
            "text": ["Die Grenze ist offen", "Tor!"],
            "text_en": ["The border is open", "Goal!"],
            "text_mt": ["The border is open", ""],
            "mt_status": ["ok", "empty"],
        }
    )
    scorer = _Scorer()
    monkeypatch.setattr(infer, "open_scorer", lambda *a, **k: scorer)
    files = infer.ModelFiles("llamacpp-q4_k_m", model_file)
    rows = translate.classify_translations(
        translated, lambda v, b: files, ["en"], "llamacpp-q4_k_m", prompts.plain_prompt()
    )
    assert rows["post_id"].tolist() == ["de-1", "de-2"]  # the empty one is not dropped
    assert scorer.texts == ["The border is open", ""]  # classified as what the model got
    assert rows["prediction"].tolist() == [data.LABELS[18 % 4], data.LABELS[0]]
    quality = translate.translation_quality(translated, "text_en").set_index("lang")
    assert quality.loc["de", "n_empty"] == 1 and quality.loc["de", "n"] == 2


# --------------------------------------------------------------------------------------------
# A posts file that changes between runs
# --------------------------------------------------------------------------------------------


def test_changed_posts_file_reruns_every_notebook(scratch, monkeypatch):
    """The runner's fingerprints cover the posts file: edit it, and 00_data and every notebook
    after it run again (nothing is taken as up to date)."""
    executed: list[str] = []

    def fake(input_path, output_path, parameters=None, **_kwargs):
        executed.append(Path(input_path).stem)
        Path(output_path).write_text(Path(input_path).read_text())

    monkeypatch.setattr(sys.modules["papermill"], "execute_notebook", fake)
    # every notebook's requirements met, so the fingerprints alone decide
    monkeypatch.setattr(runner, "missing_requirement", lambda *a: None)
    posts = write(scratch / "mine.csv", GOOD)
    overrides = [("posts_source", "file"), ("posts_path", json.dumps(str(posts)))]
    everything = list(config.notebook_paths())
    runner.run_profile("smoke", overrides=overrides, log=lambda _: None)
    assert executed == everything
    executed.clear()
    runner.run_profile("smoke", overrides=overrides, log=lambda _: None)
    assert executed == []  # all up to date
    write(posts, GOOD.replace("Great match tonight", "Great match tonight!"))
    runner.run_profile("smoke", overrides=overrides, log=lambda _: None)
    assert executed == everything


def test_changed_training_posts_retrain_and_never_resume_a_stale_checkpoint(tmp_path):
    import torch

    from conftest import tiny_gemma
    from xling.models import finetune

    folder = tmp_path / "tiny"
    tiny_gemma().save_pretrained(folder, safe_serialization=True)
    settings = train_settings(
        lora_r=2, lora_alpha=4, lr=1e-2, steps=2, batch_size=2, save_every=1, seed=3
    )
    examples = [finetune.Example(f"p{i}", [2, 10 + i, 20, 30 + i % 4], 1) for i in range(4)]
    out = tmp_path / "adapters" / "en"
    first = finetune.finetune_lora(folder, examples, out, settings, progress=False)
    assert not first.reused
    again = finetune.finetune_lora(folder, examples, out, settings, progress=False)
    assert again.reused and again.meta["fingerprint"] == first.meta["fingerprint"]
    # one post's label changed in the posts file: its answer token differs
    changed = [*examples[:3], finetune.Example("p3", [2, 13, 20, 40], 1)]
    # and a checkpoint of the old data lies about: it must not be resumed
    ckpt = out / "checkpoint"
    ckpt.mkdir()
    torch.save({"fingerprint": first.meta["fingerprint"], "step": 1}, ckpt / "state.pt")
    write(ckpt / "adapter_model.safetensors", b"stale")
    retrained = finetune.finetune_lora(folder, changed, out, settings, progress=False)
    assert not retrained.reused and retrained.meta["resumed_from_step"] == 0
    assert retrained.meta["fingerprint"] != first.meta["fingerprint"]
    assert not ckpt.exists()


def test_changed_label_reuses_the_cached_answer_but_not_the_old_label(model_file, monkeypatch):
    """The prediction cache is keyed by post and text (the model never sees the label), so a
    relabelled post is not classified again, but the predictions table carries the new label."""
    posts = data.load_user_posts(write(model_file.parent / "p.csv", GOOD))
    files = infer.ModelFiles("llamacpp-q4_k_m", model_file)
    prompt = prompts.plain_prompt()
    scorer = _Scorer()
    monkeypatch.setattr(infer, "open_scorer", lambda *a, **k: scorer)

    def run(table):
        return infer.predict(table, lambda v, b: files, ["en"], ["llamacpp-q4_k_m"], prompt=prompt)

    before = run(posts)
    relabelled = posts.copy()
    relabelled.loc[relabelled["post_id"] == "en-3", "label"] = "unrelated"
    after = run(relabelled)
    assert len(scorer.texts) == len(posts)  # the second run classified nothing
    assert after["prediction"].tolist() == before["prediction"].tolist()
    assert after.set_index("post_id").loc["en-3", "label"] == "unrelated"
    edited = posts.copy()
    edited.loc[edited["post_id"] == "en-3", "text"] = "Visa office opens at 10"
    run(edited)
    assert scorer.texts[len(posts) :] == ["Visa office opens at 10"]  # the edited post only
