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
    kind: str  # curve | diversity
    seed: int
    target: str | None = None  # curve: the target language (None for k = 0)
    k: int = 0
    variant: str = ""  # diversity: multi | control


def plan_runs(
    targets: list[str], ks: list[int], seeds: list[int], diversity: bool = True
) -> list[Run]:
    """Every run, each once: ``k = 0`` is English alone, one run per seed for all targets."""
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if len(set(ks)) != len(ks) or any(k < 0 for k in ks):
        raise ValueError(f"ks must be distinct numbers of posts, 0 or more; got {ks}")
    runs = []
    for seed in seeds:
        if 0 in ks:
            runs.append(Run(f"k0-s{seed}", "curve", seed))
        for target in targets:
            for k in sorted(k for k in ks if k > 0):
                runs.append(Run(f"{target}-k{k}-s{seed}", "curve", seed, target, k))
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
    ``n_tokens`` of each (prompt and answer, as trained)."""
    from xling.data.audit import training_posts

    if run.kind == "curve":
        chosen = curve_training_set(posts, base_langs, run.target, run.k, run.seed, train_split)
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
    return chosen.assign(n_tokens=chosen["post_id"].map(n_tokens).astype(int))


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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (or reuse) and evaluate every run of ``plan``; returns the predictions of every run
    on ``evaluate`` (one row per run and post) and one row per run (training posts, distinct
    posts, tokens, wall time, reused)."""
    from dataclasses import replace

    from tqdm import tqdm

    from xling.data.audit import training_posts
    from xling.data.tables import posts_fingerprint
    from xling.models.finetune import encode_examples, finetune_lora

    langs = sorted(
        {*base_langs, *multi_langs, *control_langs, *(r.target for r in plan if r.target)}
    )
    pool = training_posts(posts, langs, train_split)
    examples = {e.post_id: e for e in encode_examples(pool, prompt, tokenizer, settings.max_length)}
    n_tokens = {pid: len(e.input_ids) for pid, e in examples.items()}
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
        result = finetune_lora(
            base.folder,
            [examples[pid] for pid in train["post_id"]],
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
                variant=run.variant or None,
            )
        )
        rows.append(
            {
                "run_id": run.run_id,
                "kind": run.kind,
                "seed": run.seed,
                "target_lang": run.target,
                "k": run.k,
                "variant": run.variant or None,
                "posts": len(train),
                "distinct_posts": train["post_id"].nunique(),
                "tokens": int(train["n_tokens"].sum()),
                "languages": " ".join(sorted(train["lang"].unique())),
                "steps": result.meta["steps"],
                "wall_seconds": result.meta["wall_seconds"],
                "final_loss": round(result.meta["final_loss"], 3),
                "accuracy": float((table["prediction"] == table["label"]).mean()),
                "reused": result.reused,
            }
        )
    return pd.concat(preds, ignore_index=True), pd.DataFrame(rows)
