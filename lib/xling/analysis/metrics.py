"""Metrics with uncertainty: accuracy, weighted F1, and bootstrap confidence intervals.

Test sets here are small (25 posts per language in the paper), so every accuracy comes with a
bootstrap interval, and comparisons of two models on the same posts use the paired bootstrap
(resampling posts, not models), which is what "A beats B" needs. The labels, and which of them
means off topic, are the task's (``task``: a :class:`xling.tasks.Task`, its name, or None for the
paper's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xling.data.summaries import commonest_label
from xling.schema import FAILED
from xling.tasks import load_task


def accuracy(truth, pred) -> float:
    truth, pred = np.asarray(truth), np.asarray(pred)
    return float((truth == pred).mean()) if len(truth) else float("nan")


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0):
    """Mean of ``values`` and its percentile bootstrap interval (resampling items)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(values.mean()), float(lo), float(hi)


def compare_accuracy(truth, pred_a, pred_b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Accuracy of A and B on the same posts with bootstrap CIs, and the paired bootstrap CI of
    A - B. ``a_better`` is True when that interval lies above zero."""
    truth = np.asarray(truth)
    ca = (np.asarray(pred_a) == truth).astype(float)
    cb = (np.asarray(pred_b) == truth).astype(float)
    a, a_lo, a_hi = bootstrap_ci(ca, n_boot, seed=seed)
    b, b_lo, b_hi = bootstrap_ci(cb, n_boot, seed=seed)
    d, d_lo, d_hi = bootstrap_ci(ca - cb, n_boot, seed=seed)
    return {
        "n": len(truth),
        "acc_a": a,
        "acc_a_low": a_lo,
        "acc_a_high": a_hi,
        "acc_b": b,
        "acc_b_low": b_lo,
        "acc_b_high": b_hi,
        "diff": d,
        "diff_low": d_lo,
        "diff_high": d_hi,
        "a_better": bool(d_lo > 0),
    }


def finetune_gains(predictions: pd.DataFrame, base_variant: str = "base", **kw) -> pd.DataFrame:
    """Per variant: its accuracy against the untuned base model's on the same posts.

    ``predictions`` has columns post_id, label, variant, prediction (the base included).
    """
    base = predictions[predictions["variant"] == base_variant].set_index("post_id")["prediction"]
    rows = []
    for variant, sub in predictions[predictions["variant"] != base_variant].groupby(
        "variant", sort=False
    ):
        sub = sub[sub["post_id"].isin(base.index)]
        res = compare_accuracy(sub["label"], sub["prediction"], base.loc[sub["post_id"]], **kw)
        rows.append({"variant": variant, **res})
    return pd.DataFrame(rows)


# --- Evaluation tables (notebook 03) ------------------------------------------------------------
#: What a metric row is computed over: one model, one kind of input, one evaluation set.
GROUP = ["variant", "backend", "input", "method", "split", "evalset"]


def with_pooled_multi(predictions: pd.DataFrame, training_langs) -> pd.DataFrame:
    """Add the pooled set ``multi``: every test post of the training languages (the paper's
    mig-multi test set). Left as it is when the table already has an evalset ``multi`` (the
    authors' own pooled files, imported as they are)."""
    if (predictions["evalset"] == "multi").any():
        return predictions
    pooled = predictions[
        (predictions["split"] == "test")
        & predictions["lang"].isin(list(training_langs))
        & (predictions["evalset"] == predictions["lang"])
    ]
    return pd.concat([predictions, pooled.assign(evalset="multi")], ignore_index=True)


def scores(truth, pred, task=None) -> dict:
    """n, accuracy, weighted F1, macro F1 and the number of failed predictions (scikit-learn).

    F1 is averaged over the labels present in the gold labels (a label absent from a small test
    set cannot be judged); a ``failed`` prediction counts as wrong: a miss for its post's class.
    """
    from sklearn.metrics import accuracy_score, f1_score

    truth, pred = np.asarray(truth, dtype=object), np.asarray(pred, dtype=object)
    if len(truth) == 0:
        nan = float("nan")
        return {"n": 0, "accuracy": nan, "weighted_f1": nan, "macro_f1": nan, "n_failed": 0}
    present = [label for label in load_task(task).labels if (truth == label).any()]
    kw = dict(labels=present, zero_division=0)
    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, pred)),
        "weighted_f1": float(f1_score(truth, pred, average="weighted", **kw)),
        "macro_f1": float(f1_score(truth, pred, average="macro", **kw)),
        "n_failed": int((pred == FAILED).sum()),
    }


def _codes(truth, pred, task=None) -> tuple[np.ndarray, np.ndarray, int]:
    labels = list(load_task(task).labels)
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels) + 1  # the last code is "failed" (or anything else)
    t = np.array([index[x] for x in truth])
    p = np.array([index.get(x, k - 1) for x in pred])
    return t, p, k


def bootstrap_scores(
    truth, pred, n_boot: int = 1000, level: float = 0.95, seed: int = 0, task=None
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of accuracy and macro F1 (posts resampled with
    replacement; vectorized with numpy, since scikit-learn per replicate would take minutes on
    the paper's tables; tests check the arithmetic against scikit-learn)."""
    t, p, k = _codes(truth, pred, task)
    n = len(t)
    if n == 0:
        nan = (float("nan"), float("nan"))
        return {"accuracy": nan, "macro_f1": nan}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    acc = (t[idx] == p[idx]).mean(axis=1)
    f1 = _macro_f1_counts(_confusion_counts(t[idx], p[idx], k), present=np.unique(t))
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    lo_a, hi_a = np.quantile(acc, q)
    lo_f, hi_f = np.quantile(f1, q)
    return {"accuracy": (float(lo_a), float(hi_a)), "macro_f1": (float(lo_f), float(hi_f))}


def _confusion_counts(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts per replicate: (replicates, k, k), rows gold, columns predicted."""
    t, p = np.atleast_2d(t), np.atleast_2d(p)
    b = t.shape[0]
    flat = (np.arange(b)[:, None] * k * k + t * k + p).ravel()
    return np.bincount(flat, minlength=b * k * k).reshape(b, k, k)


def _macro_f1_counts(counts: np.ndarray, present) -> np.ndarray:
    """Macro F1 over the ``present`` gold classes from confusion counts (replicates, k, k)."""
    present = np.asarray(present)
    tp = counts[:, present, present]
    predicted = counts.sum(axis=1)[:, present]
    actual = counts.sum(axis=2)[:, present]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(predicted + actual > 0, 2 * tp / (predicted + actual), 0.0)
    return f1.mean(axis=1)


def by_evalset(
    predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0, task=None
) -> pd.DataFrame:
    """One row per (variant, backend, input, method, split, evalset): n, accuracy, weighted and
    macro F1, bootstrap 95% intervals of accuracy and macro F1, n_failed, and the floor: the
    share of the commonest gold label (``floor_label``), the accuracy of always answering it."""
    rows = []
    for key, g in predictions.groupby(GROUP, sort=False):
        ci = bootstrap_scores(g["label"], g["prediction"], n_boot, seed=seed, task=task)
        top, share = commonest_label(g["label"])
        rows.append(
            {
                **dict(zip(GROUP, key, strict=True)),
                **scores(g["label"], g["prediction"], task),
                "floor": share,
                "floor_label": top,
                "acc_ci_low": ci["accuracy"][0],
                "acc_ci_high": ci["accuracy"][1],
                "macro_f1_ci_low": ci["macro_f1"][0],
                "macro_f1_ci_high": ci["macro_f1"][1],
            }
        )
    cols = [*GROUP[:4], "split", "evalset", "n", "accuracy", "weighted_f1", "macro_f1"]
    cols += ["acc_ci_low", "acc_ci_high", "macro_f1_ci_low", "macro_f1_ci_high", "n_failed"]
    cols += ["floor", "floor_label"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(cols)))


def per_class(predictions: pd.DataFrame, task=None) -> pd.DataFrame:
    """Precision, recall, F1 and support of each of the task's labels, per group
    (scikit-learn)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(load_task(task).labels)
    rows = []
    for key, g in predictions.groupby(GROUP, sort=False):
        p, r, f, s = precision_recall_fscore_support(
            g["label"], g["prediction"], labels=labels, zero_division=0
        )
        predicted = g["prediction"].value_counts()
        for j, label in enumerate(labels):
            rows.append(
                {
                    **dict(zip(GROUP, key, strict=True)),
                    "class": label,
                    "precision": float(p[j]),
                    "recall": float(r[j]),
                    "f1": float(f[j]),
                    "support": int(s[j]),
                    "predicted": int(predicted.get(label, 0)),
                }
            )
    return pd.DataFrame(rows)


def topic_stance(
    predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0, task=None
) -> pd.DataFrame:
    """Topic and stance, separately, per group.

    Topic: is the post about the task's topic at all (the paper's: immigration; neutral, pro or
    anti versus unrelated: any label versus the task's off-topic one)? ``topic_accuracy`` and
    ``topic_f1`` (related as the positive class); a failed prediction is wrong. Stance: among the
    posts whose gold label is related, ``stance_accuracy`` (the exact label), ``stance_macro_f1``
    over the stances (the on-topic labels), and ``stance_accuracy_when_related`` (only those the
    model also called related: stance alone, with topic errors set aside).
    """
    from sklearn.metrics import f1_score

    task = load_task(task)
    related = task.on_topic
    rows = []
    for key, g in predictions.groupby(GROUP, sort=False):
        gold_rel = g["label"].isin(related).to_numpy()
        pred_rel = g["prediction"].isin(related).to_numpy()
        pred_unrel = (g["prediction"] == task.off_topic).to_numpy()
        topic_ok = np.where(gold_rel, pred_rel, pred_unrel).astype(float)
        t_mean, t_lo, t_hi = bootstrap_ci(topic_ok, n_boot, seed=seed)
        stance = g[gold_rel]
        exact = (stance["label"] == stance["prediction"]).to_numpy().astype(float)
        s_mean, s_lo, s_hi = bootstrap_ci(exact, n_boot, seed=seed)
        when = stance[stance["prediction"].isin(related)]
        present = [x for x in related if (stance["label"] == x).any()]
        rows.append(
            {
                **dict(zip(GROUP, key, strict=True)),
                "n": len(g),
                "topic_accuracy": t_mean,
                "topic_ci_low": t_lo,
                "topic_ci_high": t_hi,
                "topic_f1": float(f1_score(gold_rel, pred_rel, zero_division=0)),
                "stance_n": len(stance),
                "stance_accuracy": s_mean,
                "stance_ci_low": s_lo,
                "stance_ci_high": s_hi,
                "stance_macro_f1": float(
                    f1_score(
                        stance["label"],
                        stance["prediction"],
                        labels=present,
                        average="macro",
                        zero_division=0,
                    )
                )
                if len(stance)
                else float("nan"),
                "stance_accuracy_when_related": float((when["label"] == when["prediction"]).mean())
                if len(when)
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def accuracy_unseen(predictions: pd.DataFrame, seen: pd.DataFrame) -> pd.DataFrame:
    """Accuracy on every evaluation set beside accuracy on its posts the variant's training set
    did not hold (``seen``: variant, post_id rows, e.g. from data.seen_in_training), for the
    cells with any seen post. Columns: GROUP, n, n_seen, accuracy, accuracy_unseen."""
    pairs = set(zip(seen["variant"], seen["post_id"], strict=True))
    flag = np.array(
        [
            (v, p) in pairs
            for v, p in zip(predictions["variant"], predictions["post_id"], strict=True)
        ],
        dtype=bool,
    )
    rows = []
    for key, g in predictions.assign(_seen=flag).groupby(GROUP, sort=False):
        if not g["_seen"].any():
            continue
        unseen = g[~g["_seen"]]
        rows.append(
            {
                **dict(zip(GROUP, key, strict=True)),
                "n": len(g),
                "n_seen": int(g["_seen"].sum()),
                "accuracy": accuracy(g["label"], g["prediction"]),
                "accuracy_unseen": accuracy(unseen["label"], unseen["prediction"]),
            }
        )
    return pd.DataFrame(rows, columns=[*GROUP, "n", "n_seen", "accuracy", "accuracy_unseen"])


def eval_file_metrics(
    by_evalset_rows: pd.DataFrame, per_class_rows: pd.DataFrame, task=None
) -> pd.DataFrame:
    """The evaluation files' sets (split ``eval``) read against their floor: per group of
    ``by_evalset_rows``, accuracy with its interval, the floor and its label, ``versus_floor``
    (``above`` / ``below`` when the 95% interval excludes the floor, else ``not distinguishable``),
    and from ``per_class_rows`` each label's recall (``recall_<label>``) and the share of posts
    given each label (``answers_<label>``: the variant's bias on this set)."""
    rows = by_evalset_rows[by_evalset_rows["split"] == "eval"]
    cols = [*GROUP, "n", "accuracy", "acc_ci_low", "acc_ci_high", "floor", "floor_label"]
    out = rows[cols].copy().reset_index(drop=True)
    out["versus_floor"] = np.select(
        [out["acc_ci_low"] > out["floor"], out["acc_ci_high"] < out["floor"]],
        ["above", "below"],
        "not distinguishable",
    )
    pc = per_class_rows[per_class_rows["split"] == "eval"]
    return _with_recall_and_answers(out, pc, GROUP, load_task(task).labels)


def _with_recall_and_answers(out: pd.DataFrame, pc: pd.DataFrame, keys, labels) -> pd.DataFrame:
    """``out`` (one row per group of ``keys``, with its ``n``) gains, from :func:`per_class` rows
    ``pc``, each label's recall (``recall_<label>``, empty where the group has no such post) and
    the share of posts given each label (``answers_<label>``)."""
    index = pd.MultiIndex.from_frame(out[list(keys)])
    for label in labels:
        mine = pc[pc["class"] == label].set_index(list(keys))
        support = mine["support"].reindex(index).to_numpy(dtype=float)
        recall = mine["recall"].reindex(index).to_numpy(dtype=float)
        out[f"recall_{label}"] = np.where(support > 0, recall, np.nan)
        out[f"answers_{label}"] = mine["predicted"].reindex(index).to_numpy(dtype=float) / out["n"]
    return out


def describe_eval_files(table: pd.DataFrame, task=None) -> list[str]:
    """One sentence per row of :func:`eval_file_metrics`, every number from the table."""
    labels = load_task(task).labels
    lines = []
    for r in table.to_dict("records"):
        answers = {lab: r[f"answers_{lab}"] for lab in labels}
        top = max(answers, key=answers.get)
        never = [lab for lab in labels if answers[lab] == 0]
        line = (
            f"{r['variant']} on {r['evalset']} ({r['n']} posts): accuracy {r['accuracy']:.3f} "
            f"(95% CI {r['acc_ci_low']:.3f}-{r['acc_ci_high']:.3f}) against a floor of "
            f"{r['floor']:.3f} (always '{r['floor_label']}'): {r['versus_floor']}; it answers "
            f"'{top}' for {answers[top]:.0%} of the posts"
        )
        if never:
            line += ", never " + " or ".join(f"'{lab}'" for lab in never)
        lines.append(line)
    return lines


#: The group of an evaluated post in :func:`answer_groups`: this run's own test posts, pooled.
OWN_POSTS = "this run's test posts"


def answer_groups(predictions: pd.DataFrame) -> pd.Series:
    """Which group each prediction is read in for answer shares: an evaluation file's set by
    its name (split ``eval``), every other post pooled as :data:`OWN_POSTS`."""
    return predictions["evalset"].where(predictions["split"] == "eval", OWN_POSTS)


def answer_shares(
    predictions: pd.DataFrame, n_boot: int = 1000, seed: int = 0, task=None
) -> pd.DataFrame:
    """Per (variant, backend, input, method) and answer group (:func:`answer_groups`): n,
    accuracy with its bootstrap interval, the commonest-label floor, each label's recall
    (``recall_<label>``, empty where the group has no such post), ``min_recall`` over the labels
    present, and the share of posts given each label (``answers_<label>``), with the gold shares
    as method ``gold`` (one row per group and backend, accuracy empty). The table behind raw
    against calibrated answer shares (notebook 03)."""
    labels = list(load_task(task).labels)
    pooled = predictions.assign(evalset=answer_groups(predictions), split="pooled")
    acc = by_evalset(pooled, n_boot=n_boot, seed=seed, task=task)
    pc = per_class(pooled, task=task)
    keys = [*GROUP[:4], "evalset"]
    out = acc[[*keys, "n", "accuracy", "acc_ci_low", "acc_ci_high", "floor", "floor_label"]]
    out = _with_recall_and_answers(out.reset_index(drop=True), pc, keys, labels)
    out["min_recall"] = out[[f"recall_{label}" for label in labels]].min(axis=1, skipna=True)
    gold = []
    original = pooled[pooled["input"] == "original"]
    for (backend, group), g in original.groupby(["backend", "evalset"], sort=False):
        one = g.drop_duplicates("post_id")
        shares = one["label"].value_counts(normalize=True)
        gold.append(
            {
                "variant": "gold",
                "backend": backend,
                "input": "original",
                "method": "gold",
                "evalset": group,
                "n": len(one),
                **{f"answers_{label}": float(shares.get(label, 0.0)) for label in labels},
            }
        )
    out = pd.concat([out, pd.DataFrame(gold)], ignore_index=True)
    return out.rename(columns={"evalset": "group"})


def describe_calibration(shares: pd.DataFrame, raw: str = "score", task=None) -> list[str]:
    """One sentence per variant and group of :func:`answer_shares`: accuracy and the lowest
    label recall raw and calibrated, against the group's floor; every number from the table."""
    labels = load_task(task).labels
    lines = []
    models = shares[shares["method"].isin([raw, "calibrated"])]
    for (variant, _backend, group), g in models.groupby(
        ["variant", "backend", "group"], sort=False
    ):
        by = g.set_index("method")
        if raw not in by.index or "calibrated" not in by.index:
            continue
        a, c = by.loc[raw], by.loc["calibrated"]
        top = max(labels, key=lambda lab: a[f"answers_{lab}"])
        lines.append(
            f"{variant} on {group} ({int(a['n'])} posts, floor {a['floor']:.3f}): accuracy "
            f"{a['accuracy']:.3f} raw (95% CI {a['acc_ci_low']:.3f}-{a['acc_ci_high']:.3f}), "
            f"{c['accuracy']:.3f} calibrated ({c['acc_ci_low']:.3f}-{c['acc_ci_high']:.3f}); "
            f"lowest recall {a['min_recall']:.2f} raw, {c['min_recall']:.2f} calibrated; raw it "
            f"answers '{top}' for {a[f'answers_{top}']:.0%} of the posts, calibrated for "
            f"{c[f'answers_{top}']:.0%}"
        )
    return lines


# --- What translation pairs buy (notebook 03, issue 22) ------------------------------------------
PAIRS_GAIN_KEYS = ["backend", "method", "input", "split"]


def pair_twin(pair_variant: str, variants: dict, pair_languages: dict) -> str | None:
    """The variant a pairs variant is read against: trained on the same labelled languages and on
    no translation pairs (``en`` for ``en+pairs: [en]``); None when the run has none."""
    labelled = set(variants[pair_variant])
    for name, langs in variants.items():
        if name != pair_variant and not pair_languages.get(name) and set(langs) == labelled:
            return name
    return None


def _pairs_group(evalset: str, lang: str, split: str, labelled, pairs) -> str:
    """What a pairs variant had of an evaluation set's language (:func:`pairs_gain`)."""
    if split == "eval" or evalset.split("-")[0] != lang:  # a language's set: en, ko-extra
        return "file"
    if lang in labelled:
        return "labelled"
    return "pairs" if lang in pairs else "unseen"


def pairs_gain(
    predictions: pd.DataFrame,
    variants: dict,
    pair_languages: dict,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[str]]:
    """Each translation-pairs variant against its twin (:func:`pair_twin`) on the same posts.

    ``predictions``: one row per post and variant (columns post_id, label, prediction, variant,
    evalset, lang and :data:`PAIRS_GAIN_KEYS`); ``pair_languages``: variant -> the languages it
    saw as translation pairs (01's ``pair_variants``, as its adapters record them). One row per
    evaluation set, with ``group`` saying what the pairs variant had of that language: labelled
    (its labelled languages), pairs (posts and English references, no label), unseen (neither,
    e.g. Korean), or file (an evaluation file); and one pooled row per group (``evalset`` is the
    group's name in brackets, e.g. ``(pairs)``) over all its per-language posts, so the question
    is asked of every pair language at once too. ``diff`` is the pairs variant's accuracy minus
    the twin's with the paired bootstrap interval (resampling posts); ``verdict`` reads it. The
    pooled set ``multi`` is left out (it repeats per-language posts). Returns the table and one
    note per pairs variant that could not be compared, saying why."""
    cols = [
        "pair_variant", "twin", *PAIRS_GAIN_KEYS, "group", "evalset", "n", "acc_pairs",
        "acc_twin", "diff", "diff_low", "diff_high", "verdict",
    ]  # fmt: skip
    rows, notes = [], []
    preds = predictions[predictions["evalset"] != "multi"]
    for pv, plangs in pair_languages.items():
        if not plangs or pv not in variants:
            continue
        twin = pair_twin(pv, variants, pair_languages)
        if twin is None:
            notes.append(
                f"{pv}: no variant trained on its labelled languages "
                f"({', '.join(variants[pv])}) without pairs, so nothing to read its pairs against"
            )
            continue
        if not (preds["variant"] == pv).any() or not (preds["variant"] == twin).any():
            notes.append(f"{pv}: no predictions of {pv} and {twin} on the same posts here")
            continue
        on = ["post_id", "evalset", *PAIRS_GAIN_KEYS]
        a = preds[preds["variant"] == pv][[*on, "label", "lang", "prediction"]]
        b = preds[preds["variant"] == twin][[*on, "prediction"]]
        both = a.merge(b, on=on, suffixes=("_pairs", "_twin"))

        both["group"] = [
            _pairs_group(e, la, s, variants[pv], plangs)
            for e, la, s in zip(both["evalset"], both["lang"], both["split"], strict=True)
        ]
        pooled = both[both["group"] != "file"].assign(evalset=lambda d: "(" + d["group"] + ")")
        for key, g in pd.concat([both, pooled]).groupby(
            [*PAIRS_GAIN_KEYS, "group", "evalset"], sort=True
        ):
            res = compare_accuracy(
                g["label"], g["prediction_pairs"], g["prediction_twin"], n_boot, seed
            )
            verdict = (
                f"{pv} better"
                if res["diff_low"] > 0
                else f"{twin} better"
                if res["diff_high"] < 0
                else "no difference we can detect"
            )
            rows.append(
                {
                    "pair_variant": pv,
                    "twin": twin,
                    **dict(zip([*PAIRS_GAIN_KEYS, "group", "evalset"], key, strict=True)),
                    "n": res["n"],
                    "acc_pairs": res["acc_a"],
                    "acc_twin": res["acc_b"],
                    "diff": res["diff"],
                    "diff_low": res["diff_low"],
                    "diff_high": res["diff_high"],
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows, columns=cols), notes


def describe_pairs_gain(gain: pd.DataFrame) -> list[str]:
    """One sentence per pairs variant, split and pooled group of :func:`pairs_gain`, every number
    from the table, naming the languages it pools."""
    what = {
        "pairs": "the languages it saw only as translation pairs",
        "unseen": "languages it saw in no form",
        "labelled": "its labelled languages",
    }
    lines = []
    pooled = gain[gain["evalset"].str.startswith("(")]
    files = gain[gain["group"] == "file"]
    for r in files.itertuples():
        lines.append(
            f"{r.pair_variant} against {r.twin} on the evaluation file {r.evalset} (n = {r.n}): "
            f"accuracy {r.acc_pairs:.3f} against {r.acc_twin:.3f}, difference {r.diff:+.3f} "
            f"(95% CI {r.diff_low:+.3f} to {r.diff_high:+.3f}): {r.verdict}"
        )
    for r in pooled.itertuples():
        langs = gain[
            (gain["pair_variant"] == r.pair_variant)
            & (gain["group"] == r.group)
            & (gain["split"] == r.split)
            & (gain["backend"] == r.backend)
            & (gain["method"] == r.method)
            & (gain["input"] == r.input)
            & ~gain["evalset"].str.startswith("(")
        ]["evalset"]
        lines.append(
            f"{r.pair_variant} against {r.twin} on {what[r.group]} ({', '.join(langs)}; "
            f"{r.split} posts, n = {r.n}): accuracy {r.acc_pairs:.3f} against {r.acc_twin:.3f}, "
            f"difference {r.diff:+.3f} (95% CI {r.diff_low:+.3f} to {r.diff_high:+.3f}): "
            f"{r.verdict}"
        )
    return lines
