"""The authors' released per-tweet answers and metrics, imported and checked against each other.

Every released accuracy and F1 is recomputed from the released answers (``label_llama``), so a
reviewer sees which of the paper's numbers follow from its files and, where one does not, why.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from xling.data.readers import PaperFile, paper_files, read_paper_file
from xling.data.validate import PostsError, normalize_labels
from xling.schema import CAT_CODES, FAILED, LABELS, LANG_ALIASES, PREDICTION_COLUMNS

RELEASED_METRIC_COLUMNS = (
    "variant",
    "backend",
    "split",
    "evalset",
    "released_accuracy",
    "released_weighted_f1",
    "released_n",
    "source",
)
COMPARISON_COLUMNS = (
    "variant",
    "backend",
    "split",
    "evalset",
    "released_accuracy",
    "released_weighted_f1",
    "accuracy",
    "weighted_f1",
    "n",
    "released_n",
    "matches",
    "reason",
)
#: How close a recomputed number must be to the released one to count as the same.
TOLERANCE = 1e-4
#: Backend names: the authors' ``-Q4_K_M`` files come from llama.cpp, the others from the
#: unquantized model in transformers.
BACKEND_Q4 = "llamacpp-q4_k_m"
BACKEND_FULL = "transformers-unquantized"

_MODEL = re.compile(
    r"^(?:llama-32-3B-(?P<variant>en-es|en|es|multi)|llama32-3B-mig-(?P<variant2>en-es-full))"
    r"(?P<q>-Q4_K_M)?$"
)
_DATASET = re.compile(r"^(?:andreanasuto/)?mig-(?P<dataset>[a-z]+)-L3(?P<extra>-extra)?$")
_TXT_BLOCK = re.compile(
    r"Model:\s*(?P<model>\S+)\s*\|\s*Dataset:\s*(?P<dataset>\S+)\s*\n\s*Accuracy:\s*(?P<acc>\S+)"
    r"\s*\n\s*F1[^:\n]*:\s*(?P<f1>\S+)"
)


# --------------------------------------------------------------------------------------------
# Raw answers -> labels
# --------------------------------------------------------------------------------------------


def prediction_from_raw(raw: object) -> str:
    """The label a released ``label_llama`` value stands for, or ``failed``.

    The authors wrote label names; a category number 1-4 (the prompt's answer format) is read
    through ``CAT_CODES``; names are compared ignoring case and spaces. Anything else, the
    authors' own ``failed`` and empty cells included, is ``failed``: an answer that names no
    label counts as wrong, as the paper counts it.
    """
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA:
        return FAILED
    text = str(raw).strip()
    if re.fullmatch(r"[1-4](?:\.0*)?", text):
        return CAT_CODES[int(float(text))]
    name = re.sub(r"[\s_-]+", "-", text.lower())
    return name if name in LABELS else FAILED


def raw_output_kind(raw: object) -> str:
    """What sort of answer a raw output is: ``label`` (a label name exactly as we write it),
    ``label-respelled`` (a name in other case or spacing), ``number``, ``failed`` (the authors'
    marker), ``empty`` or ``other``; used to report how clean the released answers are."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA:
        return "empty"
    text = str(raw)
    if text in LABELS:
        return "label"
    if not text.strip():
        return "empty"
    if text.strip().lower() == FAILED:
        return "failed"
    pred = prediction_from_raw(text)
    if pred == FAILED:
        return "other"
    return "number" if re.fullmatch(r"\s*[1-4](?:\.0*)?\s*", text) else "label-respelled"


def raw_output_kinds(predictions: pd.DataFrame) -> pd.Series:
    """How many raw outputs of each kind (:func:`raw_output_kind`) a predictions table holds."""
    kinds = predictions["raw_output"].map(raw_output_kind)
    order = ["label", "label-respelled", "number", "failed", "empty", "other"]
    return kinds.value_counts().reindex(order, fill_value=0).rename("rows")


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------


def _backend(quantized: bool) -> str:
    return BACKEND_Q4 if quantized else BACKEND_FULL


def _input_of(pf: PaperFile) -> str:
    # The workbooks in the *_translation folders hold the English model's answers on the machine
    # translation (they differ from the same model's answers in the *_raw CSVs on 7-56% of posts
    # while the gold labels agree); every CSV holds answers on the original text.
    return "translated" if pf.path.suffix == ".xlsx" else "original"


def _gold(df: pd.DataFrame, rel: Path) -> pd.Series:
    """Gold labels normalized as the posts loader does (it already warned about the spelling)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return normalize_labels(df["label"], rel, df["_row"])


class _PostIndex:
    """Ways to find a post's id: by (lang, split, text, occurrence), as the posts loader keys
    posts; by (lang, text) for the pooled files; by (lang, split, translation) for workbook rows
    whose text a spreadsheet altered."""

    def __init__(self, posts: pd.DataFrame):
        for col in ("post_id", "text", "lang", "label", "split"):
            if col not in posts.columns:
                raise PostsError("<posts table>", None, col, "missing column")
        # The occurrence number of a repeated text follows post_id order (the loader numbers
        # posts in the order it first met them in the files).
        ordered = posts.sort_values("post_id", kind="stable")
        occ = ordered.groupby(["lang", "split", "text"], sort=False).cumcount()
        self.by_key = {
            (lang, split, text, int(o)): pid
            for lang, split, text, o, pid in zip(
                ordered["lang"],
                ordered["split"],
                ordered["text"],
                occ,
                ordered["post_id"],
                strict=True,
            )
        }
        self.by_lang_text: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.by_text: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.by_translation: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        has_en = "text_en" in ordered.columns
        for row in ordered.itertuples(index=False):
            self.by_lang_text[(row.lang, row.text)].append(row.post_id)
            self.by_text[(row.lang, row.split, row.text)].append(row.post_id)
            text_en = row.text_en if has_en else None
            if isinstance(text_en, str) and text_en:
                self.by_translation[(row.lang, row.split, text_en.strip())].append(row.post_id)
        self.label = dict(zip(posts["post_id"], posts["label"], strict=True))
        self.lang = dict(zip(posts["post_id"], posts["lang"], strict=True))
        self.split = dict(zip(posts["post_id"], posts["split"], strict=True))


def _match_per_language(df: pd.DataFrame, pf: PaperFile, rel: Path, index: _PostIndex) -> list:
    """post_id of each row of a per-language CSV: the loader's key, which must exist."""
    ids = []
    for text, occ, row in zip(df["plaintext"], df["_occ"], df["_row"], strict=True):
        pid = index.by_key.get((pf.lang, pf.posts_split, text, int(occ)))
        if pid is None:
            raise PostsError(
                rel,
                int(row),
                "plaintext",
                f"no post in the posts table with this text (occurrence {int(occ) + 1}) in "
                f"{pf.lang} {pf.posts_split}",
            )
        ids.append(pid)
    return ids


def _match_workbook(
    df: pd.DataFrame, pf: PaperFile, rel: Path, index: _PostIndex
) -> tuple[list, np.ndarray]:
    """post_id of each workbook row, and which rows to keep.

    A workbook's texts were altered by the spreadsheet in places (a leading quote dropped, ``?``
    turned into cell references), so a row whose text is unknown is matched by its translation.
    The tr training workbook holds its 75 posts twice over with the same answers: a repeat of a
    post already seen in the file is dropped when its answer is the same, refused otherwise.
    """
    ids: list = []
    keep = np.ones(len(df), dtype=bool)
    seen: dict[str, tuple[object, int]] = {}
    has_tr = "translation" in df.columns
    for j, (text, occ, row, raw) in enumerate(
        zip(df["plaintext"], df["_occ"], df["_row"], df["label_llama"], strict=True)
    ):
        row = int(row)
        candidates = index.by_text.get((pf.lang, pf.posts_split, text), [])
        if not candidates and has_tr:
            tr = df["translation"].iloc[j]
            tr = tr.strip() if isinstance(tr, str) else ""
            candidates = index.by_translation.get((pf.lang, pf.posts_split, tr), [])
            if len(candidates) > 1:
                raise PostsError(
                    rel, row, "translation", f"{len(candidates)} posts have this translation"
                )
        if not candidates:
            raise PostsError(
                rel,
                row,
                "plaintext",
                f"no post in {pf.lang} {pf.posts_split} with this text or translation",
            )
        pid = candidates[int(occ) % len(candidates)]
        if pid in seen:
            first_raw, first_row = seen[pid]
            if str(first_raw) != str(raw):
                raise PostsError(
                    rel,
                    row,
                    "label_llama",
                    f"the post of row {first_row} again, with another answer "
                    f"({raw!r} against {first_raw!r})",
                )
            keep[j] = False
        else:
            seen[pid] = (raw, row)
        ids.append(pid)
    return ids, keep


def _match_pooled(df: pd.DataFrame, rel: Path, index: _PostIndex) -> tuple[list, list]:
    """post_id and language of each row of a pooled ``mig-multi`` file, found by the row's
    language and text (the pooled set splits the same posts differently, so its split cannot be
    part of the key). A text that two posts of a language share would be ambiguous: refused."""
    if "lang" not in df.columns:
        raise PostsError(rel, None, "lang", "missing column (needed to find a pooled row's post)")
    ids, langs = [], []
    for text, lang, row in zip(df["plaintext"], df["lang"], df["_row"], strict=True):
        code = str(lang).strip() if isinstance(lang, str) else ""
        code = LANG_ALIASES.get(code, code)
        # The pooled set is made of the training languages' train and test posts only.
        candidates = [
            c for c in index.by_lang_text.get((code, text), []) if index.split[c] != "extra"
        ]
        if len(candidates) != 1:
            what = "no post" if not candidates else f"{len(candidates)} posts"
            raise PostsError(rel, int(row), "plaintext", f"{what} in {code!r} with this text")
        ids.append(candidates[0])
        langs.append(code)
    return ids, langs


def load_released_predictions(
    folder: str | os.PathLike[str], posts: pd.DataFrame, keep_label_as_written: bool = False
) -> pd.DataFrame:
    """The authors' per-tweet answers as our predictions table, one row per file row.

    ``posts`` is ``data.load_paper_posts(folder)``; each row gets the id of its post there. The
    CSVs of the ``*_raw`` folders and ``extra/`` are answers on the original text (input
    ``original``); the workbooks of the ``*_translation`` folders are the English-only model's
    answers on the English machine translation (input ``translated``). Pooled ``mig-multi`` files
    become evalset ``multi`` with their own split; extra test sets keep the posts' split
    ``extra``. ``raw_output`` is ``label_llama`` as written, ``prediction`` its label
    (:func:`prediction_from_raw`). ``keep_label_as_written`` adds the gold label as the file spells
    it (``label_as_written``), which :func:`released_vs_recomputed` uses to test whether the
    authors counted a respelled label as a class of its own.
    """
    folder = Path(folder)
    index = _PostIndex(posts)
    parts = []
    for pf in paper_files(folder):
        rel = pf.path.relative_to(folder)
        df = read_paper_file(pf)
        if "label_llama" not in df.columns:
            raise PostsError(rel, None, "label_llama", "missing column")
        gold = _gold(df, rel)
        keep = np.ones(len(df), dtype=bool)
        if pf.dataset == "multi":
            ids, langs = _match_pooled(df, rel, index)
            split, evalset = pf.split, "multi"
        elif pf.path.suffix == ".xlsx":
            ids, keep = _match_workbook(df, pf, rel, index)
            langs = [pf.lang] * len(df)
            split, evalset = pf.posts_split, pf.evalset
        else:
            ids = _match_per_language(df, pf, rel, index)
            langs = [pf.lang] * len(df)
            split, evalset = pf.posts_split, pf.evalset
        for pid, label, row in zip(ids, gold, df["_row"], strict=True):
            if index.label[pid] != label:
                raise PostsError(
                    rel,
                    int(row),
                    "label",
                    f"gold label {label!r} but its post {pid} is {index.label[pid]!r}",
                )
        raw = df["label_llama"].astype(object).where(df["label_llama"].notna(), None)
        part = pd.DataFrame(
            {
                "post_id": ids,
                "lang": langs,
                "label": gold.to_numpy(),
                "split": split,
                "evalset": evalset,
                "variant": pf.variant,
                "backend": _backend(pf.quantized),
                "input": _input_of(pf),
                "method": "generate",
                "prediction": raw.map(prediction_from_raw).to_numpy(),
                "raw_output": raw.to_numpy(),
            }
        )
        if keep_label_as_written:
            part["label_as_written"] = df["label"].to_numpy()
        parts.append(part[keep])
    columns = list(PREDICTION_COLUMNS) + (["label_as_written"] if keep_label_as_written else [])
    return pd.concat(parts, ignore_index=True)[columns]


# --------------------------------------------------------------------------------------------
# Released metrics
# --------------------------------------------------------------------------------------------


def _parse_model(model: str, file: Path, row: int) -> tuple[str, str]:
    m = _MODEL.match(model.strip())
    if not m:
        raise PostsError(file, row, "Model", f"unknown model name {model!r}")
    return m["variant"] or m["variant2"], _backend(bool(m["q"]))


def _parse_dataset(dataset: str, file: Path, row: int) -> str:
    m = _DATASET.match(dataset.strip())
    if not m:
        raise PostsError(file, row, "Dataset", f"unknown data set name {dataset!r}")
    lang = LANG_ALIASES.get(m["dataset"], m["dataset"])
    return f"{lang}-extra" if m["extra"] else lang


def _read_metric_csv(path: Path, value_col: str, folder: Path) -> pd.DataFrame:
    rel = path.relative_to(folder)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    for col in ("Model", "Dataset", value_col, "Size"):
        if col not in df.columns:
            raise PostsError(rel, None, col, "missing column")
    records = []
    for i, r in df.iterrows():
        row = int(i) + 2
        variant, backend = _parse_model(r["Model"], rel, row)
        try:
            value = float(r[value_col])
        except ValueError as err:
            raise PostsError(rel, row, value_col, f"not a number: {r[value_col]!r}") from err
        try:
            size = int(float(r["Size"]))
        except ValueError as err:
            raise PostsError(rel, row, "Size", f"not a number: {r['Size']!r}") from err
        records.append(
            {
                "variant": variant,
                "backend": backend,
                "evalset": _parse_dataset(r["Dataset"], rel, row),
                "value": value,
                "n": size,
                "where": f"{rel}:{row}",
            }
        )
    out = pd.DataFrame(records)
    dup = out.duplicated(["variant", "backend", "evalset"])
    if dup.any():
        raise PostsError(rel, int(dup.idxmax()) + 2, "Dataset", "the same cell twice")
    return out


def _read_metric_txt(path: Path, folder: Path) -> pd.DataFrame:
    rel = path.relative_to(folder)
    text = path.read_text(encoding="utf-8")
    records = []
    for m in _TXT_BLOCK.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        variant, backend = _parse_model(m["model"], rel, line)
        records.append(
            {
                "variant": variant,
                "backend": backend,
                "evalset": _parse_dataset(m["dataset"], rel, line),
                "acc": float(m["acc"]),
                "f1": float(m["f1"]),
                "where": f"{rel}:{line}",
            }
        )
    if text.count("Model:") != len(records):
        raise PostsError(rel, None, None, "a block that is not Model / Accuracy / F1")
    return pd.DataFrame(records, columns=["variant", "backend", "evalset", "acc", "f1", "where"])


def load_released_metrics(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Every metric cell the authors released, one row per (variant, backend, split, evalset).

    Accuracy and weighted F1 come from ``*/metrics/accuracy_metrics_{split}.csv`` and
    ``f1_metrics_{split}.csv``; ``validation_metrics_{split}.txt`` repeats them rounded to four
    places and only adds a cell the CSVs lack (it adds none in the released repository).
    ``split`` is the file's (``test`` also for the extra test sets); ``source`` names the file
    rows.
    """
    folder = Path(folder)
    rows = []
    for split in ("train", "test"):
        accs = sorted(folder.glob(f"*/metrics/accuracy_metrics_{split}.csv"))
        for acc_path in accs:
            metrics_dir = acc_path.parent
            f1_path = metrics_dir / f"f1_metrics_{split}.csv"
            acc = _read_metric_csv(acc_path, "Accuracy", folder)
            f1 = _read_metric_csv(f1_path, "F1 Score", folder) if f1_path.exists() else acc.iloc[:0]
            both = acc.merge(
                f1, on=["variant", "backend", "evalset"], how="outer", suffixes=("_a", "_f")
            )
            for r in both.itertuples(index=False):
                sources = (r.where_a, r.where_f)
                if pd.notna(r.n_a) and pd.notna(r.n_f) and r.n_a != r.n_f:
                    raise PostsError(
                        f1_path.relative_to(folder),
                        int(r.where_f.rsplit(":", 1)[1]),
                        "Size",
                        f"{int(r.n_f)} posts but {r.where_a} says {int(r.n_a)}",
                    )
                rows.append(
                    {
                        "variant": r.variant,
                        "backend": r.backend,
                        "split": split,
                        "evalset": r.evalset,
                        "released_accuracy": r.value_a,
                        "released_weighted_f1": r.value_f,
                        "released_n": r.n_a if pd.notna(r.n_a) else r.n_f,
                        "source": "; ".join(w for w in sources if isinstance(w, str)),
                    }
                )
            txt_path = metrics_dir / f"validation_metrics_{split}.txt"
            if txt_path.exists():
                have = {(r.variant, r.backend, r.evalset) for r in both.itertuples()}
                for r in _read_metric_txt(txt_path, folder).itertuples(index=False):
                    if (r.variant, r.backend, r.evalset) in have:
                        continue
                    rows.append(
                        {
                            "variant": r.variant,
                            "backend": r.backend,
                            "split": split,
                            "evalset": r.evalset,
                            "released_accuracy": r.acc,
                            "released_weighted_f1": r.f1,
                            "released_n": np.nan,
                            "source": r.where,
                        }
                    )
    if not rows:
        raise PostsError(folder, None, None, "no released metrics (*/metrics/accuracy_metrics_*)")
    out = pd.DataFrame(rows, columns=list(RELEASED_METRIC_COLUMNS))
    out["released_n"] = out["released_n"].astype("Int64")
    return out


# --------------------------------------------------------------------------------------------
# Released against recomputed
# --------------------------------------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and abs(a - b) <= TOLERANCE)


def _confusion(gold: np.ndarray, pred: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(cm, ([index[g] for g in gold], [index[p] for p in pred]), 1)
    return cm


def _scores_from_confusion(cm: np.ndarray) -> tuple[float, float]:
    """Accuracy and weighted F1 from a confusion matrix (rows gold), as scikit-learn computes
    them: classes with no gold posts weigh nothing, an empty class's F1 is 0."""
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = support.sum()
    return float(tp.sum() / total), float((f1 * support).sum() / total)


def _one_answer_changes(
    gold: np.ndarray, pred: np.ndarray, post_ids: np.ndarray, target: tuple[float, float]
) -> list[tuple[str, str, str, int]]:
    """Every single-answer change (post_id of a first such post, old label, new label, how many
    posts allow it) after which accuracy and weighted F1 both equal ``target``.

    A change depends only on the post's gold label and its old and new answer, so the search runs
    over those triples rather than over posts.
    """
    classes = sorted(set(gold) | set(pred) | set(LABELS))
    cm = _confusion(gold, pred, classes)
    fits = []
    for gi, g in enumerate(classes):
        for pi, p in enumerate(classes):
            if cm[gi, pi] == 0:
                continue
            for qi, q in enumerate(classes):
                if qi == pi or q not in LABELS:
                    continue
                changed = cm.copy()
                changed[gi, pi] -= 1
                changed[gi, qi] += 1
                acc, f1 = _scores_from_confusion(changed)
                if _close(acc, target[0]) and _close(f1, target[1]):
                    first = post_ids[(gold == g) & (pred == p)][0]
                    fits.append((str(first), p, q, int(cm[gi, pi])))
    return fits


def _describe_changes(fits: list[tuple[str, str, str, int]]) -> str:
    n = sum(k for *_, k in fits)
    pid, old, new, _ = fits[0]
    return (
        f"one answer differed from the released file ({n} single-answer changes fit, "
        f"e.g. {pid}: {old} -> {new})"
    )


def _explain(
    group: pd.DataFrame,
    target: tuple[float, float],
    released_n: object,
    others: dict[tuple[str, str, str], pd.DataFrame],
) -> str:
    """Why a released cell differs from its recomputation: every candidate explanation is
    recomputed under its assumption, and those that then reproduce both released numbers are
    named (the simplest kind found; "unexplained" when none does)."""
    from sklearn.metrics import f1_score

    gold = group["label"].to_numpy(dtype=object)
    pred = group["prediction"].to_numpy(dtype=object)
    ids = group["post_id"].to_numpy(dtype=object)
    written = (
        group["label_as_written"].to_numpy(dtype=object)
        if "label_as_written" in group.columns
        else None
    )
    respelled = written is not None and bool((written != gold).any())

    def fits(acc_f1: tuple[float, float]) -> bool:
        return _close(acc_f1[0], target[0]) and _close(acc_f1[1], target[1])

    reasons = []
    if respelled:
        spelled = sorted({w for w, g in zip(written, gold, strict=True) if w != g})
        if fits(_sk_scores(written, pred)):
            names = ", ".join(repr(s) for s in spelled)
            reasons.append(f"matches when {names} is kept as its own class")
    acc = float((gold == pred).mean())
    macro = float(f1_score(gold, pred, average="macro", zero_division=0))
    if fits((acc, macro)):
        reasons.append("matches when the released F1 is macro F1 (not weighted)")
    failed = pred == FAILED
    if failed.any() and (~failed).any() and fits(_sk_scores(gold[~failed], pred[~failed])):
        reasons.append(f"matches when the {int(failed.sum())} failed answers are dropped")
    ours = _sk_scores(gold, pred)
    for places in (2, 3):
        rounded = (round(ours[0], places), round(ours[1], places))
        if all(abs(r - t) <= 1e-9 for r, t in zip(rounded, target, strict=True)):
            reasons.append(f"matches when our values are rounded to {places} places")
            break
    for (variant, backend, inp), other in others.items():
        if fits(_sk_scores(other["label"].to_numpy(object), other["prediction"].to_numpy(object))):
            reasons.append(f"matches the answers of variant {variant} ({backend}, {inp} input)")
    if reasons:
        return "; ".join(reasons)
    changes = _one_answer_changes(gold, pred, ids, target)
    if changes:
        return "matches if " + _describe_changes(changes)
    if respelled:
        changes = _one_answer_changes(written, pred, ids, target)
        if changes:
            names = ", ".join(repr(s) for s in sorted({w for w in written if w not in LABELS}))
            return f"matches when {names} is kept as its own class and " + _describe_changes(
                changes
            )
    if pd.notna(released_n) and int(released_n) != len(group):
        return f"unexplained; the file has {len(group)} rows, the release says {int(released_n)}"
    return "unexplained"


def _sk_scores(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    if len(gold) == 0:
        return float("nan"), float("nan")
    return (
        float(accuracy_score(gold, pred)),
        float(f1_score(gold, pred, average="weighted", zero_division=0)),
    )


def released_vs_recomputed(
    released_metrics: pd.DataFrame, predictions: pd.DataFrame
) -> pd.DataFrame:
    """Every released cell next to the accuracy and weighted F1 recomputed from the released
    answers (input ``original``, method ``generate``; scikit-learn, gold labels normalized).

    A released test cell of an extra set (``tr-extra``) is computed over the predictions whose
    split is ``extra``. ``matches`` holds when both numbers agree within 1e-4; otherwise
    ``reason`` names every tested explanation that reproduces both released numbers (see
    :func:`_explain`), or says "unexplained". A ``label_as_written`` column in ``predictions``
    (``load_released_predictions(..., keep_label_as_written=True)``) lets it test whether a
    respelled gold label was counted as a class of its own.
    """
    preds = predictions[predictions["input"] == "original"]
    if "method" in preds.columns:
        preds = preds[preds["method"] == "generate"]
    groups = {
        key: g for key, g in preds.groupby(["variant", "backend", "split", "evalset"], sort=False)
    }
    by_cell: dict[tuple[str, str], dict] = defaultdict(dict)
    for (variant, backend, inp, split, evalset), g in predictions.groupby(
        ["variant", "backend", "input", "split", "evalset"], sort=False
    ):
        by_cell[(split, evalset)][(variant, backend, inp)] = g
    rows = []
    for r in released_metrics.itertuples(index=False):
        split = "extra" if str(r.evalset).endswith("-extra") else r.split
        group = groups.get((r.variant, r.backend, split, r.evalset))
        if group is None:
            group = preds.iloc[:0]
        acc, f1 = _sk_scores(
            group["label"].to_numpy(dtype=object), group["prediction"].to_numpy(dtype=object)
        )
        target = (float(r.released_accuracy), float(r.released_weighted_f1))
        matches = _close(acc, target[0]) and _close(f1, target[1])
        if matches:
            reason = ""
        elif group.empty:
            reason = "no released predictions for this cell"
        else:
            others = {
                k: g
                for k, g in by_cell[(split, r.evalset)].items()
                if k != (r.variant, r.backend, "original")
            }
            reason = _explain(group, target, r.released_n, others)
        rows.append(
            {
                "variant": r.variant,
                "backend": r.backend,
                "split": r.split,
                "evalset": r.evalset,
                "released_accuracy": target[0],
                "released_weighted_f1": target[1],
                "accuracy": acc,
                "weighted_f1": f1,
                "n": len(group),
                "released_n": r.released_n,
                "matches": matches,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
