"""Inside the model, layer by layer (notebook 07_representations): does fine-tuning on one or two
languages teach a representation of the *topic* that other languages reach too?

Four readings of the hidden states :mod:`xling.models.hidden` extracts, for test posts of every
language and their English reference translations:

- **logit lens**: per layer, the gold label's probability among the four answers and its rank, for
  languages a variant trained on versus languages it never saw;
- **ABX discrimination** (cosine distance, triplets drawn with the seed): is X closer to A than
  to B? ``language`` (A same language and label as X, B another language, same label),
  ``label`` (A same label in another language, B another label in X's language) and ``meaning``
  (A the English reference of X, B the reference of another post of the same label). The error is
  the share of triplets where X is closer to B (ties count half); 0.5 is chance. Its interval
  resamples the X posts (each with all its triplets);
- **linear probes** (logistic regression): the label (four classes) and the topic (about
  immigration or not) trained on English posts and tested on every other language, and the
  language of a post (cross-validated);
- **PCA** coordinates per layer.

:func:`describe` writes the findings as sentences from these tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xling.models.hidden import HiddenStates, hidden_states, lens_probabilities, model_source
from xling.schema import LABELS, POSITIONS

#: The ABX tasks, and what each one's low error means.
ABX_TASKS = {
    "language": "the representation tells languages apart (same label)",
    "label": "the label wins over the language (A same label, other language; B other label)",
    "meaning": "a post is closer to its own English translation than to another same-label one",
}
#: The probes: what each predicts.
PROBES = ("label", "topic", "language")


# --------------------------------------------------------------------------------------------
# Items: posts of every language and their English references
# --------------------------------------------------------------------------------------------


def _balanced(group: pd.DataFrame, cap: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``cap`` posts of one language, labels taken in turn (each label's posts in an order
    drawn by ``rng``), so the labels are as balanced as the posts allow."""
    if cap is None or len(group) <= cap:
        return group
    queues = {
        label: list(rng.permutation(g.index.to_numpy()))
        for label, g in group.groupby("label", sort=False)
    }
    order = [label for label in LABELS if label in queues] + sorted(set(queues) - set(LABELS))
    chosen: list = []
    while len(chosen) < cap:
        for label in order:
            if queues[label] and len(chosen) < cap:
                chosen.append(queues[label].pop(0))
    return group.loc[chosen]


def select_items(
    posts: pd.DataFrame,
    splits: list[str],
    posts_per_lang: int | None,
    english_posts: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The items to represent: posts of ``splits`` (every language), at most ``posts_per_lang``
    per language (``english_posts`` for English, whose posts train the probes), labels balanced
    as far as the posts allow; then, for each non-English post, its English reference
    (``text_en``) as an item of its own.

    Columns: ``item`` (0..n-1, the row of the hidden-state arrays), ``post_id``, ``lang`` (the
    post's language, for references too), ``label``, ``kind`` (``post`` or ``reference``),
    ``text`` and ``ref_item`` (a post's reference item; an English post is its own). Non-English
    posts without a reference are left out (a language left with none is an error naming it).
    """
    chosen = posts[posts["split"].isin(splits)].copy()
    if chosen.empty:
        raise ValueError(f"no posts in the splits {', '.join(splits)}")
    has_ref = "text_en" in chosen.columns
    ref = chosen["text_en"] if has_ref else pd.Series("", index=chosen.index)
    ok = (chosen["lang"] == "en") | (ref.notna() & (ref.astype(str).str.strip() != ""))
    langs_before = set(chosen["lang"])
    chosen = chosen[ok]
    lost = sorted(langs_before - set(chosen["lang"]))
    if lost:
        raise ValueError(
            f"no English reference translation (text_en) for any {'/'.join(splits)} post in "
            f"{', '.join(lost)}: the meaning comparison needs one per post"
        )
    parts = []
    for lang, group in chosen.sort_values("post_id").groupby("lang", sort=True):
        cap = english_posts if lang == "en" and english_posts is not None else posts_per_lang
        rng = np.random.default_rng([seed, sum(map(ord, f"items-{lang}"))])
        parts.append(_balanced(group, cap, rng))
    picked = pd.concat(parts).sort_values(["lang", "post_id"]).reset_index(drop=True)
    rows = [
        {
            "post_id": str(p.post_id),
            "lang": p.lang,
            "label": p.label,
            "kind": "post",
            "text": str(p.text),
        }
        for p in picked.itertuples()
    ]
    refs = [
        {"post_id": str(p.post_id), "lang": p.lang, "label": p.label, "kind": "reference"}
        | {"text": str(p.text_en)}
        for p in picked.itertuples()
        if p.lang != "en"
    ]
    items = pd.DataFrame(rows + refs)
    items.insert(0, "item", np.arange(len(items)))
    post_item = items[items["kind"] == "post"].set_index("post_id")["item"]
    ref_item = items[items["kind"] == "reference"].set_index("post_id")["item"]
    items["ref_item"] = [
        int(ref_item.get(pid, post_item[pid])) for pid in items["post_id"]
    ]  # an English post is its own reference
    return items


def describe_items(items: pd.DataFrame) -> pd.DataFrame:
    """Posts per language and label (references: one per non-English post)."""
    posts = items[items["kind"] == "post"]
    table = posts.groupby(["lang", "label"]).size().unstack(fill_value=0)
    table = table.reindex(columns=[lab for lab in LABELS if lab in table.columns])
    table["posts"] = table.sum(axis=1)
    refs = items[items["kind"] == "reference"].groupby("lang").size()
    table["references"] = refs.reindex(table.index, fill_value=0)
    return table


def read_states(
    items: pd.DataFrame,
    names: list[str],
    base,
    adapters_dir,
    prompt,
    training: dict[str, list[str]],
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, HiddenStates]:
    """Every item's hidden states and lens through each model of ``names``: ``base`` (the untuned
    model) or a variant of ``training`` (its adapter from 01_finetune under ``adapters_dir``).
    Cached per model files, prompt and text (:mod:`xling.models.hidden`)."""
    unknown = [n for n in names if n != "base" and n not in training]
    if unknown:
        raise ValueError(
            f"read_variants: {', '.join(unknown)} not among the profile's variants "
            f"({', '.join(training)}) or 'base'"
        )
    if not names:
        raise ValueError("read_variants is empty: name base and/or variants to read")
    texts = items["text"].astype(str).tolist()
    out = {}
    for name in names:
        source = model_source(name, base, adapters_dir)
        out[name] = hidden_states(source, prompt, texts, device, dtype, batch_size, progress)
    return out


# --------------------------------------------------------------------------------------------
# Logit lens
# --------------------------------------------------------------------------------------------


def lens_table(
    items: pd.DataFrame, states: dict[str, HiddenStates], training: dict[str, list[str]]
) -> pd.DataFrame:
    """Per model, language and layer: the posts' mean probability of the gold label among the
    four answers (``p_gold``), the share where it ranks first (``top1``: what the layer would
    answer), its mean rank, and whether the model trained on the language (``seen``; the base
    model trained on none)."""
    posts = items[items["kind"] == "post"]
    gold = posts["label"].map({label: i for i, label in enumerate(LABELS)}).to_numpy()
    rows = []
    for model, st in states.items():
        p_gold, rank = lens_probabilities(st.lens[posts["item"].to_numpy()], gold)
        seen_langs = set(training.get(model, []))
        for lang in sorted(posts["lang"].unique()):
            m = (posts["lang"] == lang).to_numpy()
            for layer in range(p_gold.shape[1]):
                rows.append(
                    {
                        "model": model,
                        "lang": lang,
                        "seen": lang in seen_langs,
                        "layer": layer,
                        "p_gold": float(p_gold[m, layer].mean()),
                        "top1": float((rank[m, layer] == 1).mean()),
                        "rank": float(rank[m, layer].mean()),
                        "n": int(m.sum()),
                    }
                )
    return pd.DataFrame(rows)


def lens_by_group(lens: pd.DataFrame) -> pd.DataFrame:
    """The lens pooled over posts of the languages each model trained on (``seen``) and of those
    it never saw, per layer (weighted by posts)."""
    lens = lens.assign(w_p=lens["p_gold"] * lens["n"], w_t=lens["top1"] * lens["n"])
    g = lens.groupby(["model", "seen", "layer"], as_index=False)[["w_p", "w_t", "n"]].sum()
    g["p_gold"] = g["w_p"] / g["n"]
    g["top1"] = g["w_t"] / g["n"]
    return g.drop(columns=["w_p", "w_t"])


def emergence_layer(
    curve: pd.Series, chance: float = 1 / len(LABELS), margin: float = 0.05
) -> int | None:
    """The first layer from which the gold label's probability stays at or above halfway between
    chance and its final value; None when the final value is not at least ``margin`` above
    chance (an untuned model whose last layer gives the gold label 0.2504 has no answer to
    emerge)."""
    curve = curve.sort_index()
    final = float(curve.iloc[-1])
    if final < chance + margin:
        return None
    level = chance + 0.5 * (final - chance)
    above = (curve >= level).to_numpy()
    for i in range(len(above)):
        if above[i:].all():
            return int(curve.index[i])
    return None


# --------------------------------------------------------------------------------------------
# ABX
# --------------------------------------------------------------------------------------------


def sample_triplets(items: pd.DataFrame, task: str, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` (a, b, x) item triplets for one ABX task, drawn with ``seed`` (X uniformly among the
    posts that have both an A and a B; see :data:`ABX_TASKS`). Empty when no post has both."""
    if task not in ABX_TASKS:
        raise ValueError(f"ABX task {task!r}: one of {', '.join(ABX_TASKS)}")
    posts = items[items["kind"] == "post"].reset_index(drop=True)
    refs = items[items["kind"] == "reference"].reset_index(drop=True)
    lang, label, item = (posts[c].to_numpy() for c in ("lang", "label", "item"))
    pools = []
    for i in range(len(posts)):
        if task == "language":
            a = item[(lang == lang[i]) & (label == label[i]) & (item != item[i])]
            b = item[(lang != lang[i]) & (label == label[i])]
        elif task == "label":
            a = item[(lang != lang[i]) & (label == label[i])]
            b = item[(lang == lang[i]) & (label != label[i])]
        else:
            if lang[i] == "en":
                continue
            own = refs.loc[refs["post_id"] == posts.loc[i, "post_id"], "item"].to_numpy()
            a = own
            b = refs.loc[
                (refs["label"] == label[i]) & (refs["post_id"] != posts.loc[i, "post_id"]), "item"
            ].to_numpy()
        if len(a) and len(b):
            pools.append((item[i], a, b))
    if not pools:
        return pd.DataFrame({"a": [], "b": [], "x": []}, dtype=int)
    rng = np.random.default_rng([seed, sum(map(ord, f"abx-{task}"))])
    picks = rng.integers(0, len(pools), size=n)
    rows = [(rng.choice(pools[k][1]), rng.choice(pools[k][2]), pools[k][0]) for k in picks]
    return pd.DataFrame(rows, columns=["a", "b", "x"]).astype(int)


def _unit(reps: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(reps, axis=-1, keepdims=True)
    return reps / np.where(norm == 0, 1, norm)


def abx_errors(reps: np.ndarray, triplets: pd.DataFrame) -> np.ndarray:
    """Per triplet and layer: 1 when X is farther (cosine distance) from A than from B, 0 when
    closer, 0.5 on a tie. ``reps`` is (items, layers, d) or (items, d)."""
    u = _unit(np.asarray(reps, dtype=np.float64))
    a, b, x = (triplets[c].to_numpy(dtype=int) for c in ("a", "b", "x"))
    d_ax = 1 - (u[a] * u[x]).sum(axis=-1)
    d_bx = 1 - (u[b] * u[x]).sum(axis=-1)
    return (d_ax > d_bx) + 0.5 * np.isclose(d_ax, d_bx, rtol=0, atol=1e-12)


def _cluster_bootstrap(errors: np.ndarray, x: np.ndarray, n_boot: int, seed: int):
    """Mean error per layer and its 95% interval, resampling the X items (with all their
    triplets). ``errors`` is (triplets, layers)."""
    xs, inverse = np.unique(x, return_inverse=True)
    sums = np.zeros((len(xs), errors.shape[1]))
    np.add.at(sums, inverse, errors)
    counts = np.bincount(inverse, minlength=len(xs)).astype(float)
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(xs), size=(n_boot, len(xs)))
    boot = sums[draw].sum(axis=1) / counts[draw].sum(axis=1)[:, None]  # (n_boot, layers)
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
    return errors.mean(axis=0), lo, hi


def abx_table(
    items: pd.DataFrame,
    states: dict[str, HiddenStates],
    n_triplets: int,
    n_boot: int = 1000,
    seed: int = 0,
    positions=POSITIONS,
    base: str = "base",
) -> pd.DataFrame:
    """ABX error per model, position, task and layer with its bootstrap interval; the same
    triplets for every model and layer, their number and the number of distinct X posts stated
    in each row. When ``base`` is among the models, each other model's row also holds its
    difference from the base model (``diff``) with the paired interval (``diff_low``,
    ``diff_high``: the same X posts resampled for both)."""
    rows = []
    for task in ABX_TASKS:
        trip = sample_triplets(items, task, n_triplets, seed)
        if trip.empty:
            continue
        x = trip["x"].to_numpy()
        for position in positions:
            errs = {m: abx_errors(st.at(position), trip) for m, st in states.items()}
            for model, err in errs.items():
                mean, lo, hi = _cluster_bootstrap(err, x, n_boot, seed)
                if base in errs and model != base:
                    diff = _cluster_bootstrap(err - errs[base], x, n_boot, seed)
                else:
                    diff = (np.full(err.shape[1], np.nan),) * 3
                for layer in range(err.shape[1]):
                    rows.append(
                        {
                            "model": model,
                            "position": position,
                            "task": task,
                            "layer": layer,
                            "error": float(mean[layer]),
                            "low": float(lo[layer]),
                            "high": float(hi[layer]),
                            "diff": float(diff[0][layer]),
                            "diff_low": float(diff[1][layer]),
                            "diff_high": float(diff[2][layer]),
                            "n_triplets": len(trip),
                            "n_x": int(trip["x"].nunique()),
                        }
                    )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Linear probes
# --------------------------------------------------------------------------------------------


def _probe(seed: int):
    from sklearn.linear_model import LogisticRegression

    # classes weighted by their inverse frequency: the topic is 1 unrelated to 3 about
    # immigration in a label-balanced sample, and an unweighted probe learns the commoner class
    return LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)


def standardize(x: np.ndarray) -> np.ndarray:
    """Each feature centred and scaled over all the given points (no labels are used). The
    probes' features are standardized over every language's posts, not the English training
    posts alone: scaled by English statistics, a dimension that is nearly constant in English
    but shifted in another language (a language offset) is blown up by the scaling and swamps
    the transfer (a planted test showed it)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd == 0, 1, sd)


def fit_probe(x, y, seed: int = 0):
    """A logistic-regression probe (L2-regularized, C = 1, classes weighted by inverse frequency)
    fitted to (x, y); None when y has a single class (nothing to tell apart)."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return _probe(seed).fit(np.asarray(x), y)


def probe_accuracy(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
    """Accuracy on (test_x, test_y) of the probe :func:`fit_probe` trains on (train_x,
    train_y); NaN when the training labels have one class."""
    probe = fit_probe(train_x, train_y, seed)
    if probe is None:
        return float("nan")
    return float((probe.predict(np.asarray(test_x)) == np.asarray(test_y)).mean())


def _majority(y) -> float:
    y = pd.Series(np.asarray(y))
    return float(y.value_counts(normalize=True).iloc[0]) if len(y) else float("nan")


def balanced_accuracy(pred, y) -> float:
    """The mean over the classes present in ``y`` of the share of their posts predicted right:
    1 / (number of classes) for any probe that ignores its input."""
    pred, y = np.asarray(pred), np.asarray(y)
    if not len(y):
        return float("nan")
    return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def _cv_predict(x: np.ndarray, y: np.ndarray, folds: int, seed: int):
    """Cross-validated predictions (stratified ``folds``-fold, fewer when a class is smaller);
    None when a class has a single post."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    smallest = pd.Series(y).value_counts().min()
    k = int(min(folds, smallest))
    if k < 2:
        return None
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return cross_val_predict(_probe(seed), x, y, cv=cv)


def probe_table(
    items: pd.DataFrame,
    states: dict[str, HiddenStates],
    seed: int = 0,
    positions=POSITIONS,
    train_lang: str = "en",
    folds: int = 5,
    progress: bool = True,
) -> pd.DataFrame:
    """Per model, position and layer: the ``label`` (four classes) and ``topic`` (about
    immigration or not) probes trained on ``train_lang`` posts, accuracy on each other language
    (``test_lang``) and on all of them pooled (``others``); and the ``language`` probe, accuracy
    over all posts by stratified ``folds``-fold cross-validation (``test_lang`` ``all``).
    ``accuracy`` against ``chance`` (the commonest class's share of the test posts), and
    ``balanced_accuracy`` (the mean recall over classes) against ``chance_balanced`` (1 over the
    number of classes): the figures and sentences read the balanced one.

    The fits run with one BLAS thread: these problems are tiny (a few hundred posts), and
    OpenBLAS's threads waiting on each other made each fit 15-50x slower on 2 busy cores here
    (0.65 s against 0.04 s for one 13-language fit). The solvers are imported first: a BLAS
    library loaded after the limit is set (scipy's, by L-BFGS-B) escapes it."""
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _probe_table(items, states, seed, positions, train_lang, folds, progress)


def _probe_table(items, states, seed, positions, train_lang, folds, progress) -> pd.DataFrame:
    from tqdm import tqdm

    posts = items[items["kind"] == "post"].reset_index(drop=True)
    if not (posts["lang"] == train_lang).any():
        raise ValueError(f"no {train_lang} posts among the items to train the probes on")
    idx = posts["item"].to_numpy()
    label = posts["label"].to_numpy()
    topic = np.where(label == "unrelated", "unrelated", "immigration")
    lang = posts["lang"].to_numpy()
    train = lang == train_lang
    others = sorted(set(lang) - {train_lang})
    rows = []
    jobs = [(m, p) for m in states for p in positions]
    for model, position in tqdm(jobs, desc="probes", disable=not progress):
        reps = states[model].at(position)[idx]
        for layer in range(reps.shape[1]):
            x = standardize(reps[:, layer])
            for name, y in (("label", label), ("topic", topic)):
                probe = fit_probe(x[train], y[train], seed)
                pred = probe.predict(x) if probe is not None else np.full(len(y), None)
                for test in [*others, "others"]:
                    m = ~train if test == "others" else lang == test
                    rows.append(
                        _probe_row(model, position, layer, name, test, pred, y, m, train.sum())
                    )
            pred = _cv_predict(x, lang, folds, seed)
            rows.append(
                {
                    "model": model,
                    "position": position,
                    "layer": layer,
                    "probe": "language",
                    "train_lang": "cv",
                    "test_lang": "all",
                    "accuracy": float("nan") if pred is None else float((pred == lang).mean()),
                    "chance": _majority(lang),
                    "balanced_accuracy": (
                        float("nan") if pred is None else balanced_accuracy(pred, lang)
                    ),
                    "chance_balanced": 1 / len(set(lang)),
                    "n_train": int(len(lang) * (1 - 1 / folds)),
                    "n_test": len(lang),
                }
            )
    return pd.DataFrame(rows)


def _probe_row(model, position, layer, name, test, pred, y, m, n_train) -> dict:
    return {
        "model": model,
        "position": position,
        "layer": layer,
        "probe": name,
        "train_lang": "en",
        "test_lang": test,
        "accuracy": float((pred[m] == y[m]).mean()),
        "chance": _majority(y[m]),
        "balanced_accuracy": balanced_accuracy(pred[m], y[m]),
        "chance_balanced": 1 / len(set(y[m])) if m.any() else float("nan"),
        "n_train": int(n_train),
        "n_test": int(m.sum()),
    }


# --------------------------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------------------------


def pca_table(
    items: pd.DataFrame, states: dict[str, HiddenStates], position: str = "mean"
) -> pd.DataFrame:
    """The posts' first two principal components per model and layer (fitted on that model and
    layer's posts), with each component's share of the variance."""
    import scipy.linalg  # noqa: F401  (loaded before the limit: see probe_table)
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _pca_table(items, states, position, PCA)


def _pca_table(items, states, position, PCA) -> pd.DataFrame:
    posts = items[items["kind"] == "post"].reset_index(drop=True)
    idx = posts["item"].to_numpy()
    parts = []
    for model, st in states.items():
        reps = st.at(position)[idx]
        for layer in range(reps.shape[1]):
            pca = PCA(n_components=2, random_state=0)
            xy = pca.fit_transform(reps[:, layer].astype(np.float64))
            parts.append(
                posts[["item", "post_id", "lang", "label"]].assign(
                    model=model,
                    position=position,
                    layer=layer,
                    pc1=xy[:, 0],
                    pc2=xy[:, 1],
                    var1=pca.explained_variance_ratio_[0],
                    var2=pca.explained_variance_ratio_[1],
                )
            )
    cols = ["model", "position", "layer", "item", "post_id", "lang", "label"]
    return pd.concat(parts, ignore_index=True)[cols + ["pc1", "pc2", "var1", "var2"]]


def panel_layers(n_layers: int, panels: int) -> list[int]:
    """``panels`` layers evenly spread from the embedding (0) to the last layer."""
    panels = max(2, min(panels, n_layers + 1))
    return sorted({round(i * n_layers / (panels - 1)) for i in range(panels)})


# --------------------------------------------------------------------------------------------
# The findings, in words
# --------------------------------------------------------------------------------------------


def _ci(row) -> str:
    return f"{row['error']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def _paired(row) -> str:
    """A row's difference from the base model with its paired interval, and whether it is beyond
    noise (the interval excludes 0)."""
    beyond = row["diff_low"] > 0 or row["diff_high"] < 0
    return f"{row['diff']:+.2f} [{row['diff_low']:+.2f}, {row['diff_high']:+.2f}], " + (
        "beyond noise" if beyond else "within noise"
    )


def describe(
    lens: pd.DataFrame,
    abx: pd.DataFrame,
    probes: pd.DataFrame,
    position: str = "mean",
    base: str = "base",
) -> list[str]:
    """Sentences from the tables: where the cross-language label discrimination (ABX ``label``)
    peaks per model and how fine-tuning moves it, how language discrimination behaves along the
    layers, how far the English label probe transfers, and at which layer the answer emerges in
    the logit lens for seen versus unseen languages. Every number comes from the tables."""
    out: list[str] = []
    ab = abx[abx["position"] == position]
    models = list(dict.fromkeys(ab["model"])) or list(dict.fromkeys(lens["model"]))
    tuned = [m for m in models if m != base]
    n_layers = int(ab["layer"].max()) if len(ab) else int(lens["layer"].max())

    lab = ab[ab["task"] == "label"]
    if len(lab):
        n = int(lab["n_triplets"].iloc[0])
        nx = int(lab["n_x"].iloc[0])
        for m in models:
            g = lab[lab["model"] == m].set_index("layer")
            best = g["error"].idxmin()
            out.append(
                f"Label across languages ({position} of the post's tokens, {n} triplets over "
                f"{nx} posts): {m} tells labels apart best at layer {best} of {n_layers}, ABX "
                f"error {_ci(g.loc[best])} (0.5 is chance); at the last layer "
                f"{_ci(g.loc[n_layers])}."
            )
        if base in models:
            for m in tuned:
                g = lab[lab["model"] == m].set_index("layer")
                best = g["error"].idxmin()
                out.append(
                    f"Fine-tuning ({m}) changes that error against the base model by "
                    f"{_paired(g.loc[best])} at layer {best}, and by "
                    f"{_paired(g.loc[n_layers])} at the last layer (paired intervals)."
                )

    lg = ab[ab["task"] == "language"]
    if len(lg):
        for m in models:
            g = lg[lg["model"] == m].set_index("layer")
            best = g["error"].idxmin()
            out.append(
                f"Language ({m}): ABX error {_ci(g.loc[best])} at its lowest (layer {best}), "
                f"{_ci(g.loc[n_layers])} at the last layer, between {g['error'].min():.2f} and "
                f"{g['error'].max():.2f} over the layers: "
                + (
                    "language stays plainly readable at every layer."
                    if g["high"].max() < 0.5
                    else "at some layer it is no longer told apart beyond chance."
                )
            )
        if base in models:
            for m in tuned:
                row = lg[lg["model"] == m].set_index("layer").loc[n_layers]
                if row["diff_low"] > 0:
                    verdict = "language is less separable after fine-tuning"
                elif row["diff_high"] < 0:
                    verdict = "language is more separable after fine-tuning"
                else:
                    verdict = "no change in language separability beyond noise"
                out.append(
                    f"At the last layer fine-tuning ({m}) moves the language ABX error by "
                    f"{_paired(row)}: {verdict}."
                )

    mn = ab[ab["task"] == "meaning"]
    if len(mn):
        for m in models:
            g = mn[mn["model"] == m].set_index("layer")
            best = g["error"].idxmin()
            out.append(
                f"Meaning ({m}): a post is nearer its own English translation than another "
                f"same-label one with ABX error {_ci(g.loc[best])} at layer {best} (last layer "
                f"{_ci(g.loc[n_layers])})."
            )

    pr = probes[(probes["position"] == position) & (probes["test_lang"] == "others")]
    for name in ("label", "topic"):
        p = pr[pr["probe"] == name]
        for m in models:
            g = p[p["model"] == m].set_index("layer")
            if g.empty:
                continue
            best = g["balanced_accuracy"].idxmax()
            out.append(
                f"The {name} probe trained on English ({m}) reaches a balanced accuracy of "
                f"{g.loc[best, 'balanced_accuracy']:.2f} on the other languages at layer {best} "
                f"(chance {g.loc[best, 'chance_balanced']:.2f}), "
                f"{g.loc[n_layers, 'balanced_accuracy']:.2f} at the last layer."
            )
    lp = probes[(probes["position"] == position) & (probes["probe"] == "language")]
    for m in models:
        g = lp[lp["model"] == m].set_index("layer")
        if g.empty:
            continue
        out.append(
            f"The language probe ({m}) identifies a post's language with a balanced accuracy "
            f"between {g['balanced_accuracy'].min():.2f} and {g['balanced_accuracy'].max():.2f} "
            f"over the layers (last {g.loc[n_layers, 'balanced_accuracy']:.2f}; chance "
            f"{g['chance_balanced'].iloc[0]:.2f})."
        )

    groups = lens_by_group(lens)
    for m in dict.fromkeys(lens["model"]):
        parts = []
        for seen in (True, False):
            g = groups[(groups["model"] == m) & (groups["seen"] == seen)].set_index("layer")
            if g.empty:
                continue
            where = "trained-on languages" if seen else "never-seen languages"
            layer = emergence_layer(g["p_gold"])
            when = (
                f"emerges at layer {layer}"
                if layer is not None
                else "does not emerge (its last-layer probability is not 0.05 above chance)"
            )
            parts.append(
                f"in {where} ({int(g['n'].iloc[0])} posts) the gold answer {when} "
                f"(final probability {g['p_gold'].iloc[-1]:.2f} among the four, "
                f"ranked first for {g['top1'].iloc[-1]:.0%})"
            )
        if parts:
            out.append(f"Logit lens ({m}): " + "; ".join(parts) + ".")
    return out
