"""How few posts does a language need? The learning curve and diversity versus volume (notebook 06).

The paper reports that 75 annotated posts of a low-resource language clearly help on it, and leaves
open whether the multilingual variant gains from language diversity or just from more data. Two
experiments on the code path of notebook 01 (:func:`xling.finetune.finetune_lora`):

- **Learning curve**: the English training posts plus the first ``k`` training posts of a target
  language, for each ``k`` and seed. The order in which a language's posts join is drawn once per
  seed and stratified by label at every length (:func:`nested_order`), so a larger ``k`` contains
  every smaller subset of the same seed, and ``k = 0`` (English alone) is one run per seed shared
  by every target language.
- **Diversity versus volume**: the multilingual variant against a control trained on exactly as
  many posts, and as many tokens, from English and Spanish only (:func:`token_matched_control`):
  the gap estimates what the other ten languages add beyond the amount of data.
- **Translation pairs instead of labels** (*Getting More from Less*, arXiv 2405.13816): the
  English posts plus ``m`` posts of the target language as translation pairs (the post, then its
  English reference as the target; :func:`xling.finetune.encode_pairs`; no label seen), against
  ``k = m`` labelled posts. The pairs are the first ``m`` posts of the same seed's
  :func:`nested_order` that have a reference (all of them in the demo corpus: then exactly the
  posts the labelled run of that seed gets), so a pairs run and its labelled twin differ only in
  what each target post teaches. Same seeds, evaluation posts, steps and examples per step;
  the tokens differ (a pair is longer than a label), and :func:`pairs_table` reports them.

Each run is a folder under ``runs/<profile>/data_size/runs/`` holding its adapter (reused when its
data and settings are unchanged, resumed from its checkpoint when killed) and its predictions on
the evaluation posts (reused when adapter, posts and prompt are unchanged), so a re-run redoes
nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xling.schema import LABELS

#: Columns of runs/<profile>/data_size/curve.csv.
CURVE_COLUMNS = ("target_lang", "k", "seed", "eval_lang", "n", "accuracy", "macro_f1")


# --------------------------------------------------------------------------------------------
# Drawing the training sets
# --------------------------------------------------------------------------------------------


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator fixed by the seed and names (a language, say), the same on every machine."""
    return np.random.default_rng([int(seed), *(b for key in keys for b in key.encode())])


def nested_order(pool: pd.DataFrame, seed: int, lang: str = "") -> list[str]:
    """The order in which a language's training posts join a training set (post ids).

    Within each label the posts are shuffled by the seed; the i-th of a label's n posts sits at
    position (i + 0.5) / n, and all posts are sorted by position (ties in random order). So every
    prefix holds each label in proportion, within one post of ``k * n_label / n``, and the first
    ``k`` posts of a seed are contained in its first ``k + 1``.
    """
    rng = _rng(seed, lang, "nested-order")
    keys = []
    for label in sorted(pool["label"].unique()):
        ids = sorted(pool.loc[pool["label"] == label, "post_id"].astype(str))
        perm = rng.permutation(len(ids))
        keys += [((rank + 0.5) / len(ids), ids[j]) for rank, j in enumerate(perm)]
    ties = rng.random(len(keys))
    order = sorted(range(len(keys)), key=lambda i: (keys[i][0], ties[i]))
    return [keys[i][1] for i in order]


def curve_training_set(
    posts: pd.DataFrame,
    base_langs: list[str],
    target: str | None,
    k: int,
    seed: int,
    train_split: str = "per_language",
) -> pd.DataFrame:
    """The training posts of one point of the curve: every training post of ``base_langs`` plus
    the first ``k`` of ``target``'s in :func:`nested_order` for ``seed``."""
    from xling.data.audit import training_posts

    base = training_posts(posts, base_langs, train_split)
    if base.empty:
        raise ValueError(f"no training posts in {', '.join(base_langs)} (base of the curve)")
    if k == 0:
        return base.sort_values("post_id").reset_index(drop=True)
    if target is None:
        raise ValueError(f"k = {k} needs a target language")
    if target in base_langs:
        raise ValueError(f"target language '{target}' is already in the base ({base_langs})")
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    pool = training_posts(posts, [target], train_split)
    if len(pool) < k:
        raise ValueError(
            f"target language '{target}': k = {k} asked for, but it has {len(pool)} training "
            "posts" + (" (it is only ever tested)" if pool.empty else "")
        )
    chosen = set(nested_order(pool, seed, target)[:k])
    added = pool[pool["post_id"].astype(str).isin(chosen)]
    return pd.concat([base, added]).sort_values("post_id").reset_index(drop=True)


def pairs_training_set(
    posts: pd.DataFrame,
    base_langs: list[str],
    target: str,
    m: int,
    seed: int,
    train_split: str = "per_language",
) -> pd.DataFrame:
    """The training posts of one pairs run: every training post of ``base_langs`` (labelled) plus
    the first ``m`` of ``target``'s training posts with an English reference, in the
    :func:`nested_order` of ``seed`` (the order the labelled curve uses), marked ``pair``: they
    are trained as translation pairs, their labels never read."""
    from xling.data.audit import training_posts
    from xling.models.finetune import has_reference

    base = curve_training_set(posts, base_langs, None, 0, seed, train_split).assign(pair=False)
    if m == 0:
        return base
    if m < 0:
        raise ValueError(f"m must be 0 or more, got {m}")
    if target in base_langs:
        raise ValueError(f"target language '{target}' is already in the base ({base_langs})")
    pool = training_posts(posts, [target], train_split)
    usable = set(pool.loc[has_reference(pool), "post_id"].astype(str))
    order = [pid for pid in nested_order(pool, seed, target) if pid in usable]
    if len(order) < m:
        raise ValueError(
            f"target language '{target}': m = {m} translation pairs asked for, but "
            f"{len(order)} of its {len(pool)} training posts have an English reference (text_en)"
        )
    chosen = set(order[:m])
    added = pool[pool["post_id"].astype(str).isin(chosen)].assign(pair=True)
    return pd.concat([base, added]).sort_values("post_id").reset_index(drop=True)


def token_matched_control(pool_tokens, n_posts: int, n_tokens: int, seed: int = 0) -> np.ndarray:
    """Indices into a pool of posts (with repeats where the pool is smaller than ``n_posts``) that
    make a training set of exactly ``n_posts`` posts whose token count is as close to
    ``n_tokens`` as the pool allows.

    Every pool post is used once before any is repeated (or, for a larger pool, a subset is
    drawn). The free part (the repeats, or the subset) starts as a seeded random draw; then posts
    in it are swapped for the pool post whose length best closes the remaining gap, until no swap
    closes it further.
    """
    lengths = np.asarray(pool_tokens, dtype=np.int64)
    if len(lengths) == 0 or n_posts <= 0:
        raise ValueError("token matching needs a non-empty pool and a positive number of posts")
    rng = _rng(seed, "token-match")
    if n_posts >= len(lengths):
        fixed = np.arange(len(lengths))
        free = rng.integers(0, len(lengths), n_posts - len(lengths))
    else:
        fixed = np.array([], dtype=np.int64)
        free = rng.permutation(len(lengths))[:n_posts]
    by_length = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[by_length]
    gap = int(n_tokens - lengths[fixed].sum() - lengths[free].sum())
    in_free = np.zeros(len(lengths), dtype=np.int64)  # a subset may not repeat a post
    np.add.at(in_free, free, 1)
    repeats = n_posts >= len(lengths)
    for _ in range(20 * len(free) + 100):
        if gap == 0 or len(free) == 0:
            break
        best = (abs(gap), -1, -1)
        for pos in np.unique(free, return_index=True)[1]:
            want = lengths[free[pos]] + gap  # the length that would close the gap exactly
            at = np.searchsorted(sorted_lengths, want)
            for j, step in ((at - 1, -1), (at, 1)):
                # the nearest length on each side that may still be drawn
                while 0 <= j < len(lengths) and not repeats and in_free[by_length[j]]:
                    j += step
                if not 0 <= j < len(lengths):
                    continue
                cand = by_length[j]
                new_gap = abs(gap - int(lengths[cand] - lengths[free[pos]]))
                if new_gap < best[0]:
                    best = (new_gap, pos, cand)
        if best[1] < 0:
            break
        _, pos, cand = best
        gap -= int(lengths[cand] - lengths[free[pos]])
        in_free[free[pos]] -= 1
        in_free[cand] += 1
        free[pos] = cand
    return np.sort(np.concatenate([fixed, free]))


# --------------------------------------------------------------------------------------------
# The plan: which runs the curve and the comparison need
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One fine-tuning run of notebook 06."""

    run_id: str
    kind: str  # curve | diversity | pairs
    seed: int
    target: str | None = None  # curve, pairs: the target language (None for k = 0)
    k: int = 0
    variant: str = ""  # diversity: multi | control
    m: int = 0  # pairs: translation pairs of the target added (no labelled target post)


def plan_runs(
    targets: list[str],
    ks: list[int],
    seeds: list[int],
    diversity: bool = True,
    pair_ms: list[int] | None = None,
) -> list[Run]:
    """Every run, each once: ``k = 0`` is English alone, one run per seed for all targets (and
    the zero of the pairs axis too: planned whenever ``pair_ms`` is, even if ``ks`` lacks 0).
    ``pair_ms``: per target and seed, one pairs run for each ``m > 0``."""
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if len(set(ks)) != len(ks) or any(k < 0 for k in ks):
        raise ValueError(f"ks must be distinct numbers of posts, 0 or more; got {ks}")
    pair_ms = list(pair_ms or [])
    if len(set(pair_ms)) != len(pair_ms) or any(m < 0 for m in pair_ms):
        raise ValueError(f"pair_ms must be distinct numbers of pairs, 0 or more; got {pair_ms}")
    ms = sorted(m for m in pair_ms if m > 0)
    if ms and not targets:
        raise ValueError(f"pair_ms {pair_ms} needs a target language (targets is empty)")
    runs = []
    for seed in seeds:
        if 0 in ks or ms:
            runs.append(Run(f"k0-s{seed}", "curve", seed))
        for target in targets:
            for k in sorted(k for k in ks if k > 0):
                runs.append(Run(f"{target}-k{k}-s{seed}", "curve", seed, target, k))
            for m in ms:
                runs.append(Run(f"{target}-m{m}-s{seed}", "pairs", seed, target, m=m))
        if diversity:
            for variant in ("multi", "control"):
                runs.append(Run(f"{variant}-s{seed}", "diversity", seed, variant=variant))
    return runs


def eval_posts(
    posts: pd.DataFrame,
    splits: list[str],
    langs: list[str] | None = None,
    per_lang: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The posts every run is evaluated on: ``splits`` of ``langs`` (all when empty), at most
    ``per_lang`` per language (stratified by label, the same posts for every run)."""
    chosen = posts[posts["split"].isin(splits)]
    if langs:
        missing = sorted(set(langs) - set(chosen["lang"]))
        if missing:
            raise ValueError(
                f"eval_langs: no {'/'.join(splits)} posts in {', '.join(missing)} "
                f"(languages there: {', '.join(sorted(chosen['lang'].unique()))})"
            )
        chosen = chosen[chosen["lang"].isin(langs)]
    if chosen.empty:
        raise ValueError(f"no posts in the splits {splits} to evaluate on")
    if per_lang is not None:
        keep = []
        for lang, g in chosen.groupby("lang"):
            keep += nested_order(g, seed, f"eval-{lang}")[:per_lang]
        chosen = chosen[chosen["post_id"].astype(str).isin(set(keep))]
    return chosen.sort_values(["lang", "post_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Evaluating one adapter (cached in its run folder)
# --------------------------------------------------------------------------------------------


def _eval_key(adapter: Path, posts: pd.DataFrame, prompt, base_sha: str, settings) -> str:
    from xling.models.base import sha256_file

    spec = [
        sha256_file(adapter / "adapter_model.safetensors"),
        base_sha,
        settings.dtype,
        settings.base_quant,
        prompt.prefix,
        prompt.body_template,
        posts[["post_id", "text"]].astype(str).values.tolist(),
    ]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()


def evaluate_adapter(
    base_folder: Path,
    adapter: Path,
    posts: pd.DataFrame,
    prompt,
    tokenizer,
    settings,
    base_sha: str = "",
    out: Path | None = None,
    device: str = "cpu",
    batch_size: int = 16,
) -> pd.DataFrame:
    """Score ``posts`` with the base model plus ``adapter`` (transformers, the training dtype and
    quantization, LoRA unmerged); one row per post: post_id, lang, label, prediction and the four
    log-probabilities. With ``out``, the table is kept there and read back when adapter, posts and
    prompt are unchanged."""
    import torch
    from peft import PeftModel

    from xling.models.finetune import load_for_training
    from xling.models.scorers import TransformersScorer

    key = _eval_key(adapter, posts, prompt, base_sha, settings)
    if out is not None and out.exists() and (out.with_suffix(".key")).exists():
        if out.with_suffix(".key").read_text().strip() == key:
            return pd.read_csv(out, dtype={"post_id": str})
    model = load_for_training(base_folder, settings, device)
    model = PeftModel.from_pretrained(model, adapter).eval()
    scorer = TransformersScorer(model, tokenizer, prompt, batch_size=batch_size)
    texts = posts["text"].astype(str).tolist()
    order = np.argsort([len(t) for t in texts], kind="stable")  # less padding per batch
    with torch.no_grad():
        logp_sorted = scorer.score_many([texts[i] for i in order])
    logp = np.empty_like(logp_sorted)
    logp[order] = logp_sorted
    del model, scorer
    table = posts[["post_id", "lang", "label", "split", "evalset"]].reset_index(drop=True).copy()
    table["prediction"] = [LABELS[i] for i in logp.argmax(axis=1)]
    for j, label in enumerate(LABELS):
        table[f"logp_{label}"] = logp[:, j]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, out)
        out.with_suffix(".key").write_text(key + "\n")
    return table


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def curve_table(
    predictions: pd.DataFrame, targets: list[str], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """runs/<profile>/data_size/curve.csv: one row per (target_lang, k, seed, eval_lang), with
    n, accuracy and macro F1 and their 95% bootstrap intervals. The ``k = 0`` runs (English
    alone) appear under every target language."""
    from xling.analysis.metrics import bootstrap_scores, scores

    curve = predictions[predictions["kind"] == "curve"]
    rows = []
    for (_run, eval_lang), g in curve.groupby(["run_id", "lang"], sort=False):
        first = g.iloc[0]
        s = scores(g["label"], g["prediction"])
        ci = bootstrap_scores(g["label"], g["prediction"], n_boot, seed=seed)
        for target in targets if first["k"] == 0 else [first["target_lang"]]:
            rows.append(
                {
                    "target_lang": target,
                    "k": int(first["k"]),
                    "seed": int(first["seed"]),
                    "eval_lang": eval_lang,
                    "n": s["n"],
                    "accuracy": s["accuracy"],
                    "macro_f1": s["macro_f1"],
                    "majority": _majority(g),
                    "acc_ci_low": ci["accuracy"][0],
                    "acc_ci_high": ci["accuracy"][1],
                    "macro_f1_ci_low": ci["macro_f1"][0],
                    "macro_f1_ci_high": ci["macro_f1"][1],
                }
            )
    cols = [*CURVE_COLUMNS, "majority", "acc_ci_low", "acc_ci_high"]
    cols += ["macro_f1_ci_low", "macro_f1_ci_high"]
    table = pd.DataFrame(rows, columns=cols)
    return table.sort_values(["target_lang", "eval_lang", "k", "seed"]).reset_index(drop=True)


def _majority(preds: pd.DataFrame) -> float:
    """The accuracy of always answering the commonest gold label of these posts: the floor a
    model that learned only the label mix reaches."""
    return float(preds.drop_duplicates("post_id")["label"].value_counts(normalize=True).iloc[0])


def _accuracy_by_seed(preds: pd.DataFrame) -> pd.Series:
    """Per seed (run), its accuracy on these posts."""
    return (preds["prediction"] == preds["label"]).groupby(preds["seed"]).mean()


def _correct_by_post(preds: pd.DataFrame) -> pd.Series:
    """Per post, the share of seeds (runs) that got it right."""
    return (preds["prediction"] == preds["label"]).groupby(preds["post_id"]).mean()


def curve_gains(
    predictions: pd.DataFrame, targets: list[str], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per (target_lang, k > 0, eval_lang): accuracy against English alone (k = 0) on the same
    posts, averaged over seeds per post, with the paired bootstrap interval of the difference
    (posts resampled) and how many seeds improved. ``within_noise`` when the interval holds 0."""
    from xling.analysis.metrics import bootstrap_ci

    curve = predictions[predictions["kind"] == "curve"]
    zero = curve[curve["k"] == 0]
    rows = []
    if zero.empty:
        return pd.DataFrame()
    for target in targets:
        mine = curve[(curve["target_lang"] == target) & (curve["k"] > 0)]
        for (k, eval_lang), g in mine.groupby(["k", "lang"]):
            z = zero[zero["lang"] == eval_lang]
            a, b = _correct_by_post(g), _correct_by_post(z)
            common = a.index.intersection(b.index)
            diff, lo, hi = bootstrap_ci(
                a[common].to_numpy() - b[common].to_numpy(), n_boot, seed=seed
            )
            per_seed, zero_seed = _accuracy_by_seed(g), _accuracy_by_seed(z)
            seeds = per_seed.index.intersection(zero_seed.index)
            rows.append(
                {
                    "target_lang": target,
                    "k": int(k),
                    "eval_lang": eval_lang,
                    "n_posts": len(common),
                    "n_seeds": len(seeds),
                    "majority": _majority(z),
                    "acc_k0": float(b[common].mean()),
                    "acc_k": float(a[common].mean()),
                    "diff": diff,
                    "diff_ci_low": lo,
                    "diff_ci_high": hi,
                    "seeds_better": int((per_seed[seeds] > zero_seed[seeds]).sum()),
                    "within_noise": bool(lo <= 0 <= hi),
                }
            )
    return pd.DataFrame(rows)


def diversity_table(
    predictions: pd.DataFrame,
    matching: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """runs/<profile>/data_size/diversity.csv: per evaluation language (and ``all``), the
    multilingual variant's accuracy and macro F1 against the token-matched English+Spanish
    control's on the same posts (averaged over seeds), the paired bootstrap interval of the
    accuracy difference, and the matching (posts, distinct posts, tokens) of both sets."""
    from xling.analysis.metrics import bootstrap_ci, scores

    div = predictions[predictions["kind"] == "diversity"]
    if div.empty:
        return pd.DataFrame()
    match = matching.set_index(["variant", "seed"])
    rows = []
    langs = sorted(div["lang"].unique())
    for lang in [*langs, "all"]:
        sub = div if lang == "all" else div[div["lang"] == lang]
        m, c = sub[sub["variant"] == "multi"], sub[sub["variant"] == "control"]
        a, b = _correct_by_post(m), _correct_by_post(c)
        common = a.index.intersection(b.index)
        diff, lo, hi = bootstrap_ci(a[common].to_numpy() - b[common].to_numpy(), n_boot, seed=seed)
        _, m_lo, m_hi = bootstrap_ci(a[common].to_numpy(), n_boot, seed=seed)
        _, c_lo, c_hi = bootstrap_ci(b[common].to_numpy(), n_boot, seed=seed)
        f1_m = np.mean(
            [scores(g["label"], g["prediction"])["macro_f1"] for _, g in m.groupby("seed")]
        )
        f1_c = np.mean(
            [scores(g["label"], g["prediction"])["macro_f1"] for _, g in c.groupby("seed")]
        )
        row = {
            "eval_lang": lang,
            "n_posts": len(common),
            "n_seeds": m["seed"].nunique(),
            "acc_multi": float(a[common].mean()),
            "acc_multi_ci_low": m_lo,
            "acc_multi_ci_high": m_hi,
            "acc_control": float(b[common].mean()),
            "acc_control_ci_low": c_lo,
            "acc_control_ci_high": c_hi,
            "diff": diff,
            "diff_ci_low": lo,
            "diff_ci_high": hi,
            "macro_f1_multi": float(f1_m),
            "macro_f1_control": float(f1_c),
            "within_noise": bool(lo <= 0 <= hi),
        }
        for variant in ("multi", "control"):
            sets = match.loc[variant]
            row[f"posts_{variant}"] = int(sets["posts"].iloc[0])
            row[f"distinct_{variant}"] = int(sets["distinct_posts"].iloc[0])
            row[f"tokens_{variant}"] = int(sets["tokens"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


#: Columns of runs/<profile>/data_size/pairs.csv.
PAIRS_COLUMNS = (
    "target_lang",
    "eval_lang",
    "axis",
    "n",
    "n_posts",
    "n_seeds",
    "majority",
    "accuracy",
    "acc_ci_low",
    "acc_ci_high",
    "diff_vs_k0",
    "diff_vs_k0_ci_low",
    "diff_vs_k0_ci_high",
    "diff_vs_labels",
    "diff_vs_labels_ci_low",
    "diff_vs_labels_ci_high",
    "within_noise_vs_labels",
    "steps",
    "examples_seen",
    "tokens_seen",
    "loss_tokens_seen",
)


def pairs_table(
    predictions: pd.DataFrame,
    runs: pd.DataFrame,
    targets: list[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """runs/<profile>/data_size/pairs.csv: per target language, evaluation language, axis
    (``labels``: k labelled target posts; ``pairs``: m translation pairs) and count ``n`` (k or
    m; ``n = 0`` is English alone, the same runs on both axes), the accuracy on the same posts
    (each post's correctness averaged over seeds) with its 95% bootstrap interval (posts
    resampled); the paired difference against English alone and, for a pairs row with a labelled
    run of the same count, against labels (pairs minus labels), each with its paired bootstrap
    interval; ``within_noise_vs_labels`` when that interval holds 0. The cost columns are the
    mean over seeds of what each run read (:func:`xling.finetune.batch_tokens`): steps,
    examples, tokens (padding not counted) and tokens under the loss."""
    from xling.analysis.metrics import bootstrap_ci

    runs = runs.copy()
    if "m" not in runs.columns:
        runs["m"] = 0
    cost_cols = ["steps", "examples_seen", "tokens_seen", "loss_tokens_seen"]
    preds = predictions[predictions["kind"].isin(["curve", "pairs"])]
    if "m" not in preds.columns:
        preds = preds.assign(m=0)
    zero_runs = runs[(runs["kind"] == "curve") & (runs["k"] == 0)]
    zero = preds[(preds["kind"] == "curve") & (preds["k"] == 0)]
    if zero.empty or (preds["kind"] == "pairs").sum() == 0:
        return pd.DataFrame(columns=list(PAIRS_COLUMNS))

    def arm(kind: str, target: str, n: int):
        if n == 0:
            return zero, zero_runs
        col = "k" if kind == "curve" else "m"
        p = preds[(preds["kind"] == kind) & (preds["target_lang"] == target) & (preds[col] == n)]
        r = runs[(runs["kind"] == kind) & (runs["target_lang"] == target) & (runs[col] == n)]
        return p, r

    rows = []
    for target in targets:
        mine = preds[preds["target_lang"] == target]
        ks = sorted(set(mine.loc[mine["kind"] == "curve", "k"]) | {0})
        ms = sorted(set(mine.loc[mine["kind"] == "pairs", "m"]) | {0})
        for eval_lang in sorted(preds["lang"].unique()):
            z = _correct_by_post(zero[zero["lang"] == eval_lang])
            for axis, kind, counts in (("labels", "curve", ks), ("pairs", "pairs", ms)):
                for n in counts:
                    p, r = arm(kind, target, n)
                    a = _correct_by_post(p[p["lang"] == eval_lang])
                    if a.empty:
                        continue
                    acc, lo, hi = bootstrap_ci(a.to_numpy(), n_boot, seed=seed)
                    common = a.index.intersection(z.index)
                    d = bootstrap_ci(a[common].to_numpy() - z[common].to_numpy(), n_boot, seed=seed)
                    row = {
                        "target_lang": target,
                        "eval_lang": eval_lang,
                        "axis": axis,
                        "n": int(n),
                        "n_posts": len(a),
                        "n_seeds": int(p["seed"].nunique()),
                        "majority": _majority(p[p["lang"] == eval_lang]),
                        "accuracy": acc,
                        "acc_ci_low": lo,
                        "acc_ci_high": hi,
                        "diff_vs_k0": d[0],
                        "diff_vs_k0_ci_low": d[1],
                        "diff_vs_k0_ci_high": d[2],
                        "diff_vs_labels": np.nan,
                        "diff_vs_labels_ci_low": np.nan,
                        "diff_vs_labels_ci_high": np.nan,
                        "within_noise_vs_labels": None,
                    }
                    if axis == "pairs" and n > 0 and n in ks:
                        lp, _ = arm("curve", target, n)
                        b = _correct_by_post(lp[lp["lang"] == eval_lang])
                        both = a.index.intersection(b.index)
                        dl = bootstrap_ci(
                            a[both].to_numpy() - b[both].to_numpy(), n_boot, seed=seed
                        )
                        row.update(
                            diff_vs_labels=dl[0],
                            diff_vs_labels_ci_low=dl[1],
                            diff_vs_labels_ci_high=dl[2],
                            within_noise_vs_labels=bool(dl[1] <= 0 <= dl[2]),
                        )
                    for c in cost_cols:
                        row[c] = float(r[c].mean()) if c in r and len(r) else np.nan
                    rows.append(row)
    table = pd.DataFrame(rows, columns=list(PAIRS_COLUMNS))
    return table.sort_values(["target_lang", "eval_lang", "axis", "n"]).reset_index(drop=True)


def _verdict(diff: float, lo: float, hi: float, better: str, worse: str) -> str:
    if lo <= 0 <= hi:
        return "no difference we can detect (the interval holds 0)"
    return better if diff > 0 else worse


def describe_pairs(table: pd.DataFrame) -> list[str]:
    """Sentences on translation pairs against labelled posts, from pairs.csv: on each target's
    own test posts, each count against English alone and pairs against labels; then what is
    equal in cost and what is not, from the measured steps and tokens; then the other
    languages at the largest count."""
    if table.empty:
        return ["no translation-pair runs in this profile (pair_ms is empty)"]
    lines = []
    for target, mine in table.groupby("target_lang"):
        own = mine[mine["eval_lang"] == target].set_index(["axis", "n"])
        zero = own.loc[("labels", 0)]
        lines.append(
            f"{target}, its own {int(zero['n_posts'])} test posts: English alone "
            f"{zero['accuracy']:.2f} [{zero['acc_ci_low']:.2f}, {zero['acc_ci_high']:.2f}] "
            f"(always answering the commonest label: {zero['majority']:.2f})"
        )
        for (axis, n), r in own.sort_index().iterrows():
            if n == 0:
                continue
            what = "labelled posts" if axis == "labels" else "translation pairs"
            line = (
                f"  {n} {what}: {r['accuracy']:.2f} [{r['acc_ci_low']:.2f}, "
                f"{r['acc_ci_high']:.2f}], {r['diff_vs_k0']:+.2f} "
                f"[{r['diff_vs_k0_ci_low']:+.2f}, {r['diff_vs_k0_ci_high']:+.2f}] against English "
                "alone: "
                + _verdict(
                    r["diff_vs_k0"],
                    r["diff_vs_k0_ci_low"],
                    r["diff_vs_k0_ci_high"],
                    "a clear gain",
                    "a clear loss",
                )
            )
            if axis == "pairs" and pd.notna(r["diff_vs_labels"]):
                line += (
                    f"; pairs minus {n} labelled posts {r['diff_vs_labels']:+.2f} "
                    f"[{r['diff_vs_labels_ci_low']:+.2f}, {r['diff_vs_labels_ci_high']:+.2f}]: "
                    + _verdict(
                        r["diff_vs_labels"],
                        r["diff_vs_labels_ci_low"],
                        r["diff_vs_labels_ci_high"],
                        "pairs do better",
                        "labels do better",
                    )
                )
            lines.append(line)
        lines.append(f"  cost ({target}):")
        for n in sorted({n for a, n in own.index if a == "pairs" and n > 0}):
            if ("labels", n) not in own.index:
                continue
            lab, pair = own.loc[("labels", n)], own.loc[("pairs", n)]
            equal = lab["steps"] == pair["steps"] and lab["examples_seen"] == pair["examples_seen"]
            shared = (
                f"equal steps and examples read ({lab['steps']:.0f} steps, "
                f"{lab['examples_seen']:.0f} examples each)"
                if equal
                else f"NOT equal steps and examples read (labels {lab['steps']:.0f} steps / "
                f"{lab['examples_seen']:.0f} examples, pairs {pair['steps']:.0f} / "
                f"{pair['examples_seen']:.0f})"
            )
            ratio = pair["tokens_seen"] / lab["tokens_seen"]
            lines.append(
                f"    n = {n}: {shared}; tokens: a pairs run read {pair['tokens_seen']:,.0f} "
                f"against {lab['tokens_seen']:,.0f} for labels ({ratio:.2f}x, "
                f"{100 * (ratio - 1):+.0f}%), and its loss fell on "
                f"{pair['loss_tokens_seen']:,.0f} tokens against {lab['loss_tokens_seen']:,.0f}"
            )
        other = mine[(mine["eval_lang"] != target) & (mine["axis"] == "pairs")]
        top = other[other["n"] == other["n"].max()].dropna(subset=["diff_vs_labels"])
        if len(top):
            clear = top[~top["within_noise_vs_labels"].astype(bool)]
            moved = ", ".join(f"{r.eval_lang} {r.diff_vs_labels:+.2f}" for r in clear.itertuples())
            lines.append(
                f"  other languages, {int(top['n'].iloc[0])} pairs against as many labelled "
                f"posts: {len(top) - len(clear)} of {len(top)} with no difference we can detect"
                + (f"; beyond noise: {moved}" if moved else "")
                + f"; mean pairs minus labels {top['diff_vs_labels'].mean():+.3f}"
            )
    return lines


def describe_curve(gains: pd.DataFrame) -> list[str]:
    """Sentences on each target language's own test posts, written from the numbers."""
    lines = []
    own = gains[gains["target_lang"] == gains["eval_lang"]]
    for r in own.sort_values(["target_lang", "k"]).itertuples():
        verdict = (
            "within noise (the interval holds 0)"
            if r.within_noise
            else ("a clear gain" if r.diff > 0 else "a clear loss")
        )
        lines.append(
            f"{r.target_lang}: {r.k} posts of it move accuracy on its own {r.n_posts} test "
            f"posts from {r.acc_k0:.2f} (English alone) to {r.acc_k:.2f}, "
            f"{r.diff:+.2f} [{r.diff_ci_low:+.2f}, {r.diff_ci_high:+.2f}]: {verdict}; "
            f"{r.seeds_better} of {r.n_seeds} seeds improved (always answering the commonest "
            f"label scores {r.majority:.2f})"
        )
    return lines


def describe_transfer(gains: pd.DataFrame) -> list[str]:
    """Sentences on the other languages: where adding a target language's posts moved accuracy
    beyond noise (largest k only)."""
    lines = []
    other = gains[gains["target_lang"] != gains["eval_lang"]]
    for target, g in other.groupby("target_lang"):
        top = g[g["k"] == g["k"].max()]
        clear = top[~top["within_noise"]].sort_values("diff")
        moved = ", ".join(f"{r.eval_lang} {r.diff:+.2f}" for r in clear.itertuples()) or "none"
        lines.append(
            f"{target} (k = {int(top['k'].iloc[0])}): other languages moved beyond noise: "
            f"{moved}; {int(top['within_noise'].sum())} of {len(top)} within noise, mean "
            f"change {top['diff'].mean():+.3f}"
        )
    return lines


def describe_diversity(table: pd.DataFrame) -> list[str]:
    """Sentences on diversity against volume, from diversity.csv."""
    if table.empty:
        return []
    r = table.set_index("eval_lang").loc["all"]
    verdict = (
        "within noise"
        if r["within_noise"]
        else ("diversity helps" if r["diff"] > 0 else "the control does better")
    )
    lines = [
        f"all {int(r['n_posts'])} evaluation posts: multilingual {r['acc_multi']:.3f} against "
        f"the English+Spanish control {r['acc_control']:.3f}, difference {r['diff']:+.3f} "
        f"[{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]: {verdict}",
        f"matching: {int(r['posts_multi'])} posts / {int(r['tokens_multi'])} tokens "
        f"(multilingual, {int(r['distinct_multi'])} distinct) against "
        f"{int(r['posts_control'])} / {int(r['tokens_control'])} "
        f"(control, {int(r['distinct_control'])} distinct)",
    ]
    per = table[table["eval_lang"] != "all"]
    clear = per[~per["within_noise"]]
    lines.append(
        f"per language: {len(clear)} of {len(per)} beyond noise"
        + (
            ": " + ", ".join(f"{r.eval_lang} {r.diff:+.2f}" for r in clear.itertuples())
            if len(clear)
            else ""
        )
    )
    return lines


# --------------------------------------------------------------------------------------------
# Running the plan
# --------------------------------------------------------------------------------------------


def training_set_for(
    run: Run,
    posts: pd.DataFrame,
    base_langs: list[str],
    multi_langs: list[str],
    control_langs: list[str],
    n_tokens: dict[str, int],
    train_split: str = "per_language",
    base_posts: int | None = None,
) -> pd.DataFrame:
    """The training posts of one run (a post repeated where the control repeats it), with the
    ``n_tokens`` of each (prompt and answer, as trained) and ``pair``: whether the post is
    trained as a translation pair (``n_tokens`` keys pairs as ``pair:<post_id>``)."""
    from xling.data.audit import training_posts

    if run.kind in ("curve", "pairs"):
        if run.kind == "curve":
            chosen = curve_training_set(posts, base_langs, run.target, run.k, run.seed, train_split)
        else:
            chosen = pairs_training_set(posts, base_langs, run.target, run.m, run.seed, train_split)
        if base_posts is not None:
            base = chosen[chosen["lang"].isin(base_langs)]
            keep = set(nested_order(base, run.seed, "base")[:base_posts])
            chosen = chosen[~chosen["lang"].isin(base_langs) | chosen["post_id"].isin(keep)]
    elif run.variant == "multi":
        chosen = training_posts(posts, multi_langs, train_split)
    elif run.variant == "control":
        multi = training_posts(posts, multi_langs, train_split)
        pool = training_posts(posts, control_langs, train_split).sort_values("post_id")
        target_tokens = int(multi["post_id"].map(n_tokens).sum())
        idx = token_matched_control(
            pool["post_id"].map(n_tokens).to_numpy(), len(multi), target_tokens, run.seed
        )
        chosen = pool.iloc[idx]
    else:
        raise ValueError(f"unknown run {run}")
    chosen = chosen.reset_index(drop=True)
    if "pair" not in chosen.columns:
        chosen = chosen.assign(pair=False)
    chosen["pair"] = chosen["pair"].fillna(False).astype(bool)
    keys = [
        f"pair:{p}" if pair else p
        for p, pair in zip(chosen["post_id"], chosen["pair"], strict=True)
    ]
    return chosen.assign(n_tokens=[int(n_tokens[key]) for key in keys])


def run_data_size(
    posts: pd.DataFrame,
    plan: list[Run],
    evaluate: pd.DataFrame,
    base,
    tokenizer,
    prompt,
    settings,
    out_dir: Path,
    base_langs: list[str],
    multi_langs: list[str],
    control_langs: list[str],
    train_split: str = "per_language",
    base_posts: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    prompt_format: str = "plain",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (or reuse) and evaluate every run of ``plan``; returns the predictions of every run
    on ``evaluate`` (one row per run and post) and one row per run (training posts, distinct
    posts, translation pairs, tokens of the set, what the run reads: examples, tokens and loss
    tokens (:func:`xling.finetune.batch_tokens`, checked against the tokens the training
    counted), wall time, reused). ``prompt_format`` is the pairs' prompt format (that of
    ``prompt``)."""
    from dataclasses import replace

    from tqdm import tqdm

    from xling.data.audit import training_posts
    from xling.data.tables import posts_fingerprint
    from xling.models.finetune import (
        batch_tokens,
        encode_examples,
        encode_pairs,
        finetune_lora,
        has_reference,
    )

    langs = sorted(
        {*base_langs, *multi_langs, *control_langs, *(r.target for r in plan if r.target)}
    )
    pool = training_posts(posts, langs, train_split)
    examples = {e.post_id: e for e in encode_examples(pool, prompt, tokenizer, settings.max_length)}
    pair_langs = sorted({r.target for r in plan if r.kind == "pairs"})
    pair_pool = training_posts(posts, pair_langs, train_split) if pair_langs else pool.iloc[:0]
    pair_pool = pair_pool[has_reference(pair_pool)]
    pair_examples = (
        {}
        if pair_pool.empty
        else {
            e.post_id: e
            for e in encode_pairs(
                pair_pool, tokenizer, settings.max_length, prompt_format, prompt.task
            )
        }
    )
    n_tokens = {pid: len(e.input_ids) for pid, e in examples.items()}
    n_tokens.update({f"pair:{pid}": len(e.input_ids) for pid, e in pair_examples.items()})
    # every training set is drawn (and checked) before the first run trains
    sets = {
        run.run_id: training_set_for(
            run, posts, base_langs, multi_langs, control_langs, n_tokens, train_split, base_posts
        )
        for run in plan
    }
    preds, rows = [], []
    for run in tqdm(plan, desc="runs", disable=not progress):
        train = sets[run.run_id]
        folder = out_dir / "runs" / run.run_id
        run_settings = replace(settings, seed=run.seed)
        run_examples = [
            (pair_examples if pair else examples)[pid]
            for pid, pair in zip(train["post_id"], train["pair"], strict=True)
        ]
        reads = batch_tokens(run_examples, run_settings)
        result = finetune_lora(
            base.folder,
            run_examples,
            folder,
            run_settings,
            base_sha=base.sha256,
            pad_id=tokenizer.pad_token_id or 0,
            progress=progress,
            desc=run.run_id,
            extra_meta={"run": run.__dict__, "posts_sha256": posts_fingerprint(train)},
            device=device,
        )
        table = evaluate_adapter(
            base.folder,
            result.adapter,
            evaluate,
            prompt,
            tokenizer,
            run_settings,
            base_sha=base.sha256,
            out=folder / "eval.csv",
            device=device,
        )
        preds.append(
            table.assign(
                run_id=run.run_id,
                kind=run.kind,
                seed=run.seed,
                target_lang=run.target,
                k=run.k,
                m=run.m,
                variant=run.variant or None,
            )
        )
        if result.meta.get("tokens") is not None and result.meta["tokens"] != reads["tokens_seen"]:
            raise RuntimeError(
                f"{run.run_id}: training counted {result.meta['tokens']} tokens, the batch "
                f"order gives {reads['tokens_seen']}"
            )
        rows.append(
            {
                "run_id": run.run_id,
                "kind": run.kind,
                "seed": run.seed,
                "target_lang": run.target,
                "k": run.k,
                "m": run.m,
                "variant": run.variant or None,
                "posts": len(train),
                "distinct_posts": train["post_id"].nunique(),
                "pairs": int(train["pair"].sum()),
                "tokens": int(train["n_tokens"].sum()),
                "examples_seen": reads["examples_seen"],
                "tokens_seen": reads["tokens_seen"],
                "loss_tokens_seen": reads["loss_tokens_seen"],
                "languages": " ".join(sorted(train["lang"].unique())),
                "steps": result.meta["steps"],
                "wall_seconds": result.meta["wall_seconds"],
                "final_loss": round(result.meta["final_loss"], 3),
                "accuracy": float((table["prediction"] == table["label"]).mean()),
                "reused": result.reused,
            }
        )
    return pd.concat(preds, ignore_index=True), pd.DataFrame(rows)
