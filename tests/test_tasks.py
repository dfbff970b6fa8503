"""Tasks: the task files (tasks/*.yaml) are read and checked, the paper's task is the one the code
used to hard-code, and every stage that reads labels reads them from the task it is given."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import write
from xling import config, data, metrics, paths, plots, schema, tasks
from xling.models import prompts
from xling.run import fingerprint
from xling.run.requirements import task_unsupported

CLIMATE_LABELS = ("unrelated", "neutral", "supports-climate-action", "opposes-climate-action")

GOOD = """\
description: three labels, numbers 7-9
topic: sport
labels:
  - {name: other, number: 9}
  - {name: likes-sport, number: 7, short: likes}
  - {name: dislikes-sport, number: 8, short: dislikes, color: "#123456"}
off_topic: other
prompts:
  plain:
    instruction: "Sport. {categories}."
  chat:
    instruction: "Classify the post. {categories}."
"""


def task_from(tmp_path, text: str, name: str = "sport"):
    return tasks.load_task(write(tmp_path / f"{name}.yaml", text))


# --- the paper's task --------------------------------------------------------------------------


def test_immigration_task_is_what_the_schema_and_the_figures_always_said():
    t = tasks.load_task()  # no task: the paper's
    assert t.name == "immigration" and t == tasks.load_task("immigration")
    assert t.labels == schema.LABELS
    assert t.on_topic == schema.RELATED
    assert t.label_of_number == schema.CAT_CODES
    assert t.number == schema.LABEL_NUMBER
    assert t.off_topic == "unrelated"
    assert t.colors == plots.LABEL_COLORS
    assert t.colors["unrelated"] == "#b8b8b8"  # the colour every figure has used


def test_immigration_prompts_are_the_papers_text():
    plain = prompts.plain_prompt()
    # the category list in number order, as the paper's prompt numbers them
    assert plain.prefix == (
        "Categories: 1 = pro-immigration; 2 = anti-immigration; 3 = neutral; 4 = unrelated.\n"
    )
    assert plain.render("a  post\nhere") == plain.prefix + "Post: a post here\nAnswer ="
    assert plain.answer("unrelated") == " 4" and plain.answer("pro-immigration") == " 1"
    assert plain.labels == schema.LABELS

    class Template:
        chat_template = "yes"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            self.messages = messages
            return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<a>"

    tok = Template()
    chat = prompts.make_prompt("chat", tok)
    assert tok.messages[0] == {
        "role": "system",
        "content": "You are an analyst of public debate about migration.",
    }
    assert tok.messages[1]["content"] == (
        "Assign the social media post below to the most relevant category. Return only the "
        "number of the category.\nCategories: 1 = pro-immigration; 2 = anti-immigration; "
        "3 = neutral; 4 = unrelated.\n\nPost: \x00POST\x00"
    )
    assert chat.render("hi") == chat.prefix + "hi</user><a>Answer ="


def test_paper_prompt_is_only_for_a_task_that_says_so():
    t = tasks.load_task("climate")
    assert "paper" not in t.prompts and tasks.load_task().prompts["paper"] == {
        "from": "authors_workbook"
    }
    with pytest.raises(tasks.TaskError, match=r"climate\.yaml: key 'prompts\.paper'"):
        prompts.make_prompt("paper", workbook="any.xlsx", task=t)


# --- another task ------------------------------------------------------------------------------


def test_climate_task_prompt_answers_and_parsing():
    t = tasks.load_task("climate")
    assert t.labels == CLIMATE_LABELS and t.off_topic == "unrelated"
    assert t.on_topic == CLIMATE_LABELS[1:]
    p = prompts.make_prompt("plain", task="climate")
    assert p.prefix == (
        "Climate posts. Categories: 1 = supports-climate-action; 2 = opposes-climate-action; "
        "3 = neutral; 4 = unrelated.\n"
    )
    assert p.answer("opposes-climate-action") == " 2"
    assert prompts.parse_answer(" 2 because", t) == "opposes-climate-action"
    assert prompts.parse_answer("supports-climate-action!", t) == "supports-climate-action"
    # a label of the paper's task is no answer of this one
    assert prompts.parse_answer("pro-immigration", t) == "failed"
    # the off-topic label has no colour in the file: grey, as the paper's 'unrelated'
    assert t.colors["unrelated"] == tasks.OFF_TOPIC_COLOR


def test_numbers_other_than_one_to_four_are_read_and_tokenized(tmp_path):
    t = task_from(tmp_path, GOOD)
    assert t.labels == ("other", "likes-sport", "dislikes-sport")
    assert t.categories() == "7 = likes-sport; 8 = dislikes-sport; 9 = other"
    # generated answers: a digit of the task (7-9), the paper's 1-4 are not
    assert [prompts.parse_answer(r, t) for r in ("8", "[9]", "4", "1", "likes-sport")] == [
        "dislikes-sport",
        "other",
        "failed",
        "failed",
        "likes-sport",
    ]
    # a character-level tokenizer: each answer is " " (the stem) then its digit
    p = prompts.plain_prompt(t)
    answers = prompts.answer_tokens(lambda s: [ord(c) for c in s], p)
    assert answers.stem == [ord(" ")]
    assert answers.label_token == {"other": ord("9"), "likes-sport": ord("7"), "dislikes-sport": 56}
    assert t.short == {"other": "other", "likes-sport": "likes", "dislikes-sport": "dislikes"}
    # colours: the given one, the off-topic grey, the palette's first for the rest
    assert t.colors == {
        "other": "#b8b8b8",
        "likes-sport": tasks.PALETTE[0],
        "dislikes-sport": "#123456",
    }


# --- bad task files ------------------------------------------------------------------------------


BAD = [
    # (change to GOOD, key named, words in the message)
    (("topic: sport\n", "topic: sport\ncolour: red\n"), "colour", "unknown key"),
    (
        ("{name: other, number: 9}", "{name: other, number: 9, weight: 2}"),
        "labels[1].weight",
        "unknown key",
    ),
    (
        ("{name: likes-sport, number: 7, short: likes}", "{name: likes-sport, number: 9}"),
        "labels[2].number",
        "duplicate number 9",
    ),
    (
        ("{name: likes-sport, number: 7, short: likes}", "{name: other, number: 7}"),
        "labels[2].name",
        "duplicate label 'other'",
    ),
    (
        ("off_topic: other", "off_topic: unrelated"),
        "off_topic",
        "'unrelated' is not one of the labels",
    ),
    (
        ('    instruction: "Sport. {categories}."\n', "    system: hi\n"),
        "prompts.plain.system",
        "unknown key",
    ),
    (
        ('  plain:\n    instruction: "Sport. {categories}."\n', "  plain: {}\n"),
        "prompts.plain.instruction",
        "missing",
    ),
    (
        ('  chat:\n    instruction: "Classify the post. {categories}."\n', ""),
        "prompts.chat",
        "missing",
    ),
    (("  chat:\n", "  chats:\n"), "prompts.chats", "unknown key"),
    (("{name: other, number: 9}", "{name: other, number: 10}"), "labels[1].number", "one digit"),
    (
        ("{name: other, number: 9}", "{name: Other Things, number: 9}"),
        "labels[1].name",
        "'other-things'",
    ),
    (("{name: other, number: 9}", "{name: failed, number: 9}"), "labels[1].name", "unparsable"),
    (("off_topic: other\n", ""), "off_topic", "missing"),
    (("topic: sport\n", "topic: ''\n"), "topic", "non-empty string"),
    (('color: "#123456"', "color: red"), "labels[3].color", "not a colour"),
    (
        ("  chat:\n", "  paper: {from: my_files}\n  chat:\n"),
        "prompts.paper.from",
        "authors_workbook",
    ),
]


@pytest.mark.parametrize("change, key, words", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_task_file_is_refused_naming_file_and_key(tmp_path, change, key, words):
    old, new = change
    assert old in GOOD
    file = write(tmp_path / "sport.yaml", GOOD.replace(old, new, 1))
    with pytest.raises(tasks.TaskError) as err:
        tasks.load_task(file)
    msg = str(err.value)
    assert msg.startswith(f"{file}: key '{key}': "), msg
    assert words in msg, msg
    assert err.value.key == key and err.value.file == str(file)


def test_task_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    for text, words in (
        ("- a\n- b\n", "top level must be a mapping"),
        ("a: [\n", "not valid YAML"),
    ):
        file = write(tmp_path / "x.yaml", text)
        with pytest.raises(tasks.TaskError, match=words) as err:
            tasks.load_task(file)
        assert str(err.value).startswith(str(file))
    with pytest.raises(tasks.TaskError, match=r"nope\.yaml: no such task file .*climate"):
        tasks.load_task("nope")


def test_a_task_file_is_read_again_when_it_changes(tmp_path):
    file = write(tmp_path / "sport.yaml", GOOD)
    first = tasks.load_task(file)
    write(file, GOOD.replace("topic: sport", "topic: football"))
    import os

    os.utime(file, ns=(1, 1))  # a different mtime whatever the clock's resolution
    second = tasks.load_task(file)
    assert second.topic == "football" and second != first


def test_profile_refuses_a_bad_task_before_anything_runs(tmp_path):
    bad = write(tmp_path / "bad.yaml", GOOD.replace("off_topic: other", "off_topic: nobody"))
    with pytest.raises(config.ConfigError) as err:
        config.load_profile("smoke", [("task", str(bad)), ("posts_source", "file")])
    assert "'common.task'" in str(err.value) and f"{bad}: key 'off_topic'" in str(err.value)
    # the demo corpus is labelled for the paper's task: another task needs its own posts
    with pytest.raises(config.ConfigError, match="'common.posts_source' is 'demo'"):
        config.load_profile("smoke", [("task", "climate")])
    prof = config.load_profile(
        "smoke",
        [("task", "climate"), ("posts_source", "file"), ("posts_path", "data/tasks/x.csv")],
    )
    # the notebooks that declare it get it; a notebook that does not is skipped under it
    assert prof.params_for("03_crosslingual_eval")["task"] == "climate"
    assert "task" not in prof.params_for("05_pretraining_bias")
    assert task_unsupported("climate", prof.schema["03_crosslingual_eval"]) is None
    why = task_unsupported("climate", prof.schema["05_pretraining_bias"])
    assert "declares no 'task' parameter" in why and "'climate'" in why
    assert task_unsupported("immigration", prof.schema["05_pretraining_bias"]) is None
    assert task_unsupported(None, prof.schema["05_pretraining_bias"]) is None


def test_every_notebook_that_declares_task_defaults_to_the_papers():
    declared = {
        nb: config.notebook_parameters(p).get("task") for nb, p in config.notebook_paths().items()
    }
    with_task = sorted(nb for nb, p in declared.items() if p is not None)
    assert with_task == ["00_data", "01_finetune", "02_quantize", "03_crosslingual_eval"]
    assert {declared[nb].default for nb in with_task} == {"immigration"}


def test_fingerprint_reads_the_task_file():
    assert paths.TASKS / "climate.yaml" in fingerprint.input_files({"task": "climate"})
    assert paths.TASKS / "immigration.yaml" in fingerprint.input_files({})


# --- validation, metrics and figures read the task ---------------------------------------------


def test_labels_are_validated_against_the_task(tmp_path):
    t = tasks.load_task("climate")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fixed = data.normalize_labels(
            pd.Series(["Supports Climate Action", "neutral"]), "f", task=t
        )
    assert fixed.tolist() == ["supports-climate-action", "neutral"]
    assert "normalized 1 labels" in str(seen[0].message)
    with pytest.raises(data.PostsError) as err:
        data.normalize_labels(pd.Series(["neutral", "pro-immigration"]), "f.csv", task=t)
    # row 3: the second data row after the header
    assert str(err.value) == (
        "f.csv, row 3, field 'label': unknown label 'pro-immigration'; expected one of "
        "unrelated, neutral, supports-climate-action, opposes-climate-action"
    )
    # the paper's task (no task given) refuses the climate labels
    with pytest.raises(data.PostsError, match="unknown label 'supports-climate-action'"):
        data.normalize_labels(pd.Series(["supports-climate-action"]), "f.csv")


def test_example_task_posts_load_and_split():
    posts = data.load_posts("file", "data/tasks/climate_posts.csv", seed=1234, task="climate")
    # 3 languages x 4 labels x 5 posts; round(5 * 0.25) = 1 test post per language and label
    assert len(posts) == 60 and set(posts["lang"]) == {"en", "es", "de"}
    assert set(posts["label"]) == set(CLIMATE_LABELS)
    per = posts.groupby(["lang", "label", "split"]).size().unstack()
    assert (per["test"] == 1).all() and (per["train"] == 4).all()
    # the smoke profile keeps 8 posts per evaluation set and split, the labels in turn: 2 each
    small = data.subsample(posts, 8, seed=1234, task="climate")
    train = small[small["split"] == "train"]
    assert (train.groupby(["lang", "label"]).size() == 2).all()
    counts = data.count_posts(posts, task="climate")
    assert list(counts.columns) == [*CLIMATE_LABELS, "total"]
    out = data.write_posts(posts, paths.RUNS / "tasks-test" / "posts.csv")
    assert data.read_posts(out, task="climate").equals(posts)
    # the paper's task does not know these labels: the first en 'supports' post is the 11th row
    # of the table (5 unrelated, 5 neutral before it), row 12 of the file with its header
    with pytest.raises(data.PostsError, match="row 12, field 'label': unknown label 'supports-cl"):
        data.read_posts(out)


def predictions_of(rows, labels_pred):
    """A predictions table of one group from (gold, prediction) pairs."""
    gold = [g for g, _ in rows]
    return pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(len(rows))],
            "lang": "en",
            "label": gold,
            "split": "test",
            "evalset": "en",
            "variant": "en",
            "backend": "b",
            "input": "original",
            "method": "score",
            "prediction": [p for _, p in rows],
            "raw_output": None,
        }
    )


def test_topic_and_stance_use_the_tasks_off_topic_label(tmp_path):
    t = task_from(tmp_path, GOOD)
    rows = [
        ("other", "other"),  # topic right
        ("other", "likes-sport"),  # topic wrong
        ("likes-sport", "likes-sport"),  # topic right, stance right
        ("likes-sport", "dislikes-sport"),  # topic right, stance wrong
        ("dislikes-sport", "other"),  # topic wrong, stance wrong (called off topic)
        ("dislikes-sport", "failed"),  # topic wrong, stance wrong
    ]
    table = predictions_of(rows, None)
    ts = metrics.topic_stance(table, n_boot=50, seed=0, task=t).iloc[0]
    # topic right: rows 1, 3, 4 -> 3 of 6; stance: 4 on-topic posts, 1 exact
    assert ts["topic_accuracy"] == pytest.approx(3 / 6)
    assert ts["stance_n"] == 4 and ts["stance_accuracy"] == pytest.approx(1 / 4)
    # among on-topic posts called on topic (rows 3, 4): 1 of 2 exact
    assert ts["stance_accuracy_when_related"] == pytest.approx(1 / 2)
    # read with the paper's task instead, none of these labels is on topic: no stance posts
    paper = metrics.topic_stance(table, n_boot=50, seed=0).iloc[0]
    assert paper["stance_n"] == 0
    pc = metrics.per_class(table, task=t)
    assert pc["class"].tolist() == list(t.labels)
    # likes-sport: predicted twice (rows 2, 3), right once -> precision 1/2; gold twice (rows
    # 3, 4), found once -> recall 1/2
    likes = pc.set_index("class").loc["likes-sport"]
    assert likes["precision"] == pytest.approx(1 / 2) and likes["recall"] == pytest.approx(1 / 2)
    by = metrics.by_evalset(table, n_boot=50, seed=0, task=t).iloc[0]
    assert by["accuracy"] == pytest.approx(2 / 6) and by["n_failed"] == 1


def test_figures_show_the_tasks_labels(tmp_path):
    t = tasks.load_task("climate")
    rows = [(lab, lab) for lab in t.labels] + [("neutral", "failed")]
    fig = plots.plot_confusion_matrices(predictions_of(rows, None), task=t)
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_yticklabels()] == [t.short[lab] for lab in t.labels]
    assert [x.get_text() for x in ax.get_xticklabels()][-1] == "failed"
    posts = data.load_posts("file", "data/tasks/climate_posts.csv", seed=1, task=t)
    fig = plots.plot_label_counts(posts, task=t)
    legend = [x.get_text() for x in fig.legends[0].get_texts()]
    assert legend == list(t.labels)
    share = data.unrelated_share(posts, task=t)
    # 1 unrelated test post of 4 in each language
    assert share["share_unrelated"].tolist() == [0.25, 0.25, 0.25]
    fig = plots.plot_unrelated_share(share, task=t)
    assert "always answering 'unrelated'" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_prediction_cache_key_is_unchanged_for_the_papers_task(tmp_path):
    from xling import infer
    from xling.models.layout import ModelFiles

    model = write(tmp_path / "m.gguf", b"GGUF" + bytes(16))
    files = ModelFiles("llamacpp-q4_k_m", model)
    p = prompts.plain_prompt()
    # the key as it was computed before tasks existed: caches made then are still read
    import hashlib

    spec = json.dumps([files.fingerprint(), "score", p.prefix, p.body_template, 3])
    old = hashlib.sha256(spec.encode()).hexdigest()[:20]
    assert infer.cache_file(files, "score", p, 3).name == f"score-{old}.jsonl"
    # another task with the very same prompt text still gets its own cache (its labels differ)
    same_text = prompts.Prompt("plain", p.prefix, p.body_template, tasks.load_task("climate"))
    assert infer.cache_file(files, "score", same_text, 3) != infer.cache_file(files, "score", p, 3)


def test_scores_and_playground_follow_the_prompts_task(tmp_path):
    from xling import classroom
    from xling.models import scorers

    t = task_from(tmp_path, GOOD)
    prompt = prompts.plain_prompt(t)

    class Fake:
        def __init__(self):
            self.prompt = prompt

        def score_one(self, text):
            return np.log(np.array([0.2, 0.5, 0.3]))  # likes-sport is the most probable

    posts = pd.DataFrame({"post_id": ["a", "b"], "text": ["x", "y"]})
    table = scorers.score_posts(Fake(), posts, progress=False)
    assert list(table.columns) == [
        "post_id",
        "logp_other",
        "logp_likes-sport",
        "logp_dislikes-sport",
        "prediction",
    ]
    assert table["prediction"].tolist() == ["likes-sport", "likes-sport"]
    assert scorers.label_distribution(table)[0] == pytest.approx([0.2, 0.5, 0.3])
    pg = classroom.Playground({"en": Fake()}, task=t)
    probs = pg.probabilities(["x"])
    assert probs.loc[0, "p_dislikes-sport"] == pytest.approx(0.3)
    assert probs.loc[0, "prediction"] == "likes-sport"
    assert "probabilities over the three labels" in pg.html("x")


def test_readme_documents_every_task_key():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Tasks", 1)[1].split("\n## ", 1)[0]
    keys = [*tasks.TOP_KEYS, *(f"labels[i].{k}" for k in tasks.LABEL_KEYS)]
    keys += [f"prompts.{fmt}" for fmt in tasks.FORMAT_KEYS]
    keys += [k for spec in tasks.FORMAT_KEYS.values() for k in spec]
    for key in keys:
        assert f"`{key}`" in section, key
    assert "tasks/climate.yaml" in section and "--run" in section


# --- answers in words ----------------------------------------------------------------------------

WORDS = (
    GOOD.replace("{name: other, number: 9}", "{name: other, number: 9, word: other}")
    .replace("number: 7, short: likes}", "number: 7, word: likes, short: likes}")
    .replace("number: 8, short: dislikes", "number: 8, word: dislikes, short: dislikes")
)


def _word_tokens(text: str) -> list[int]:
    """A word-level tokenizer: each word with its leading space is one token."""
    import re
    import zlib

    return [zlib.crc32(w.encode()) for w in re.findall(r"\s*\S+", text)]


def test_a_task_answered_in_words(tmp_path):
    t = task_from(tmp_path, WORDS)
    assert t.word == {"other": "other", "likes-sport": "likes", "dislikes-sport": "dislikes"}
    # the category list keeps number order (7, 8, 9) and names each label by its word
    assert t.categories() == "likes = likes-sport; dislikes = dislikes-sport; other = other"
    p = prompts.plain_prompt(t)
    assert p.prefix == "Sport. likes = likes-sport; dislikes = dislikes-sport; other = other.\n"
    assert p.answer("dislikes-sport") == " dislikes"
    # generated answers: the first word; a digit of the task still reads; an unknown word fails
    answers = [" dislikes it", "[other]", "Likes.", "8", "maybe likes", ""]
    assert [prompts.parse_answer(r, t) for r in answers] == [
        "dislikes-sport", "other", "likes-sport", "dislikes-sport", "failed", "failed",
    ]  # fmt: skip
    # one token per word: the answers differ in their only token, no shared stem
    toks = prompts.answer_tokens(_word_tokens, p)
    assert toks.stem == []
    assert toks.label_token["likes-sport"] == _word_tokens(" likes")[0]
    # words are part of the task: another digest than the same task answered by number
    assert t.digest != task_from(tmp_path, GOOD, name="sport2").digest


def test_the_papers_task_keeps_its_digest():
    # sha256 of the immigration task's checked content, computed with the code as it was before
    # label words existed (git stash; load_task('immigration').digest): fingerprints and caches
    # of every run made before stay valid
    assert tasks.load_task("immigration").digest == (
        "365718a4484325d00e40544fe16a805d45466fb200f4de9bbd134bb6205ede1c"
    )
    assert tasks.load_task("immigration").word == {}


@pytest.mark.parametrize(
    "old, new, key, words",
    [
        ("word: likes, ", "", "labels", "no word for likes-sport"),
        ("word: likes,", "word: other,", "labels[2].word", "duplicate word 'other'"),
        ("word: likes,", "word: Likes Sport,", "labels[2].word", "one lower-case word"),
        ("word: likes,", "word: 7,", "labels[2].word", "one lower-case word"),
    ],
)
def test_bad_words_are_refused_naming_the_key(tmp_path, old, new, key, words):
    assert old in WORDS
    file = write(tmp_path / "sport.yaml", WORDS.replace(old, new, 1))
    with pytest.raises(tasks.TaskError) as err:
        tasks.load_task(file)
    assert err.value.key == key and words in str(err.value), str(err.value)
