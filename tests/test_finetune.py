"""xling.finetune: answer-only loss, variants' training sets, and resume after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_gemma, train_settings
from xling.models import finetune, prompts


def test_collate_points_at_the_positions_that_predict_the_answer():
    # two posts: [5 6 7 | 9] and [5 8 | 3 4]; answers 9 and (3, 4); pad id 0
    batch = [
        finetune.Example("a", [5, 6, 7, 9], 1),
        finetune.Example("b", [5, 8, 3, 4], 2),
    ]
    ids, mask, rows, cols, targets = finetune.collate(batch, pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 9], [5, 8, 3, 4]]
    # token 9 sits at position 3 of row 0, predicted by the hidden state at 2;
    # tokens 3 and 4 sit at positions 2 and 3 of row 1, predicted at 1 and 2
    assert rows.tolist() == [0, 1, 1] and cols.tolist() == [2, 1, 2]
    assert targets.tolist() == [9, 3, 4]
    short = finetune.collate([finetune.Example("c", [5, 9], 1), batch[0]], pad_id=0)
    assert short[0].tolist()[0] == [5, 9, 0, 0] and short[1].tolist()[0] == [1, 1, 0, 0]


def test_answer_loss_equals_the_masked_full_vocabulary_loss():
    """Applying the LM head only at answer positions gives the loss a standard masked
    cross-entropy (labels -100 on every prompt and padding token) gives."""
    model = tiny_gemma()
    batch = [
        finetune.Example("a", [2, 10, 11, 12, 13, 40], 1),
        finetune.Example("b", [2, 20, 21, 41, 42], 2),
    ]
    ids, mask, rows, cols, targets = finetune.collate(batch, pad_id=0)
    ours = finetune.answer_loss(model, ids, mask, rows, cols, targets)
    labels = torch.full_like(ids, -100)
    labels[0, 5] = 40
    labels[1, 3:5] = torch.tensor([41, 42])
    reference = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(ours, reference, atol=1e-5)
    # and it ignores the prompt's tokens as targets: the answer alone moves it
    labels[0, 5] = 39
    assert not torch.allclose(model(input_ids=ids, attention_mask=mask, labels=labels).loss, ours)


@pytest.mark.slow
def test_encoded_examples_end_with_the_label_token(embedded_base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_base.folder)
    posts = pd.DataFrame(
        {
            "post_id": ["a", "b"],
            "text": ["Open the borders!", "x " * 400],
            "label": ["pro-immigration", "unrelated"],
        }
    )
    examples = finetune.encode_examples(posts, prompts.plain_prompt(), tok, max_length=64)
    for e, number in zip(examples, ("1", "4"), strict=True):
        assert e.n_answer == 1  # the shared " " before the digit is not trained on
        assert tok.decode(e.input_ids[-1:]).strip() == number
        assert tok.decode(e.input_ids[:-1]).rstrip().endswith("Answer =")
    assert len(examples[1].input_ids) <= 64  # the long post was cut, the answer stem kept


def test_training_sets_refuse_a_language_without_training_posts():
    posts = pd.DataFrame(
        {
            "post_id": ["1", "2", "3"],
            "lang": ["en", "en", "ko"],
            "split": ["train", "test", "extra"],
            "label": ["neutral"] * 3,
            "text": ["a", "b", "c"],
        }
    )
    assert len(finetune.training_sets(posts, {"en": ["en"]})["en"]) == 1
    with pytest.raises(ValueError, match="variant 'ko': no training posts in ko"):
        finetune.training_sets(posts, {"ko": ["ko"]})


def test_training_sets_follow_the_variants_training_split():
    posts = pd.DataFrame(
        {
            "post_id": ["1", "2", "3"],
            "lang": ["es"] * 3,
            "split": ["train", "test", "test"],
            "split_multi": ["test", "train", "train"],
            "label": ["neutral"] * 3,
            "text": ["a", "b", "c"],
        }
    )
    sets = finetune.training_sets(
        posts, {"es": ["es"], "multi": ["es"]}, train_splits={"multi": ["pooled"]}
    )
    assert sets["es"]["post_id"].tolist() == ["1"]
    assert sets["multi"]["post_id"].tolist() == ["2", "3"]
    with pytest.raises(ValueError, match="train split 'mixed'"):
        finetune.training_sets(posts, {"es": ["es"]}, train_splits={"es": ["mixed"]})


def test_batch_order_is_fixed_by_the_seed_and_covers_each_epoch():
    a = finetune.batch_order(10, 4, 5, seed=3)
    assert a == finetune.batch_order(10, 4, 5, seed=3) != finetune.batch_order(10, 4, 5, seed=4)
    flat = [i for b in a for i in b]
    assert sorted(flat[:10]) == list(range(10))  # the first epoch sees every example once


TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from xling import config, finetune
    folder, out, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    examples = [finetune.Example(str(i), [2, 10 + i % 7, 20 + i % 5, 30 + i % 3, 40 + i % 4], 1)
                for i in range(24)]
    knobs = dict(lora_r=4, lora_alpha=8, lora_dropout=0.1, lr=5e-3, steps=8, batch_size=4,
                 save_every=2, seed=7)
    defaults = config.notebook_defaults("01_finetune")
    settings = finetune.TrainSettings.from_params({**defaults, **knobs})
    finetune.finetune_lora(folder, examples, out, settings, progress=False,
                           on_step=lambda step: time.sleep(delay))
    """
)


def _adapter(folder):
    from safetensors.torch import load_file

    return load_file(folder / "adapter" / "adapter_model.safetensors")


@pytest.mark.slow
def test_killed_training_resumes_and_ends_where_an_uninterrupted_run_ends(tmp_path):
    model_dir = tmp_path / "tiny"
    tiny_gemma().save_pretrained(model_dir, safe_serialization=True)
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)

    def run(out, delay):
        return subprocess.Popen([sys.executable, script, model_dir, out, str(delay)])

    straight = tmp_path / "straight"
    assert run(straight, 0).wait(timeout=300) == 0

    resumed = tmp_path / "resumed"
    proc = run(resumed, 0.5)
    state = resumed / "checkpoint" / "state.pt"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.exists() and torch.load(state, weights_only=False)["step"] >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resumed / "adapter").exists()  # killed before the end
    assert run(resumed, 0).wait(timeout=300) == 0
    meta = json.loads((resumed / "meta.json").read_text())
    assert meta["resumed_from_step"] >= 4 and meta["steps"] == 8
    a, b = _adapter(straight), _adapter(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-6, err_msg=k)
    assert not (resumed / "checkpoint").exists()
    # a finished variant is reused, not retrained
    again = subprocess.run([sys.executable, script, model_dir, resumed, "0"], timeout=300)
    assert again.returncode == 0
    assert json.loads((resumed / "meta.json").read_text()) == meta


def test_base_loads_in_the_configured_dtype_and_qlora_is_refused_without_a_gpu(tmp_path):
    folder = tmp_path / "tiny"
    tiny_gemma().save_pretrained(folder, safe_serialization=True)
    bf16 = finetune.load_for_training(folder, train_settings(dtype="bfloat16"))
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    with pytest.raises(ValueError, match="dtype 'float8'"):
        finetune.load_for_training(folder, train_settings(dtype="float8"))
    with pytest.raises(ValueError, match="only 'nf4'"):
        finetune.load_for_training(folder, train_settings(base_quant="int3"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            finetune.load_for_training(folder, train_settings(base_quant="nf4"))


def test_answer_loss_in_bfloat16_is_computed_in_float32():
    model = tiny_gemma().to(torch.bfloat16)
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(ids)
    rows, cols, targets = torch.tensor([0]), torch.tensor([2]), torch.tensor([8])
    loss = finetune.answer_loss(model, ids, mask, rows, cols, targets)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_learning_rate_schedules():
    constant = train_settings(lr=1e-3, warmup_ratio=0.03)
    linear = train_settings(lr=1e-3, warmup_ratio=0.03, lr_schedule="linear")
    # 60 steps: warm-up round(0.03 x 60) = 2 steps, so step 0 runs at half the rate, step 1 at it
    assert [constant.lr_at(s, 60) for s in (0, 1, 30, 59)] == pytest.approx(
        [5e-4, 1e-3] + [1e-3] * 2
    )
    # linear: after the warm-up, (60 - step) / 59 of it: step 2 58/59, step 59 1/59 (zero would
    # be the step after the last)
    assert [linear.lr_at(s, 60) for s in (0, 1, 2, 59)] == pytest.approx(
        [5e-4, 1e-3, 1e-3 * 58 / 59, 1e-3 / 59]
    )
    rates = [linear.lr_at(s, 60) for s in range(60)]
    assert all(a >= b for a, b in zip(rates[1:], rates[2:], strict=False))  # never rises again
    # the default schedule is the paper's constant one, and a run with it keeps its fingerprint
    # (the knob is left out of it); a linear run gets another
    examples = [finetune.Example("a", [5, 6, 7], 1, "neutral")]
    assert constant.lr_schedule == "constant"
    assert finetune.fingerprint(constant, examples, "sha") != finetune.fingerprint(
        linear, examples, "sha"
    )
    with pytest.raises(ValueError, match="lr_schedule 'cosine'"):
        train_settings(lr_schedule="cosine")
