"""The authors' modelling analysis (their Models 1-6), reproduced term by term.

The authors fit six logistic regressions of "prediction correct" on one table with a row per
model output, built from the released per-tweet files by their R helpers. This module rebuilds
that table by the same rules (:func:`build_table`), builds design matrices the way R's
``model.matrix`` does (treatment contrasts, the formula's term order, interaction columns with the
first factor varying fastest: :func:`design`), aliases the columns R's ``glm`` aliases (each column
that is a linear combination of the columns before it: :func:`r_aliased`), fits with statsmodels
(:func:`fit_glm`), and audits which coefficients are identified at all
(:func:`identification`): where the design is rank-deficient, which column R drops is an accident
of the formula's order, and a term whose estimate changes with that choice says nothing.

The rules of the table (from the authors' helpers, MIT; the code here is ours):

- only files with ``Q4`` in their name, never one with ``full`` in its path below the data
  folder; the four folders ``test_dataset_raw`` and ``train_dataset_raw`` (CSV, ``Translation``
  0, quality "Not Translated") and ``test_dataset_translation`` and ``train_dataset_translation``
  (xlsx, ``Translation`` 1; "Good"/"Bad" from ``translation_check``, "Unknown" where the file has
  no such column). The pooled ``mig-multi`` files are not read (their helpers never list them);
- CSV cells are read as text, "" and "NA" are missing, whitespace around a cell is trimmed (as
  ``readr`` does); the language is the ``tweet_lang`` column for raw files and ``lang`` for
  translations, mapped to an English name;
- ``Correct`` is 1 where ``label_llama`` equals ``label`` as written (before the relabelling
  below, as in the helpers), then ``Neutral`` becomes ``neutral`` and nothing else is normalised;
- rows missing a language, a text or a prediction are dropped; one row is kept per model, text
  and translation flag, the first in reading order (raw test, raw train, translated test,
  translated train; files in name order);
- ``Share_Unrelated`` is the share of gold "unrelated" rows per language and split,
  ``LangShare`` the LLaMA 2 share (percent) with languages missing from that table set to 0,
  ``DatasetSize`` the number of distinct texts per language, split, translation flag and quality.

Layer: analysis (imports the foundation only).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xling.data.validate import PostsError
from xling.schema import LANG_ALIASES

#: The authors' language names for the codes in the released files.
LANGUAGE_NAMES = {
    "ar": "Arabic",
    "es": "Spanish",
    "pt": "Portuguese",
    "fr": "French",
    "it": "Italian",
    "de": "German",
    "hi": "Hindi",
    "hu": "Hungarian",
    "in": "Indonesian",
    "tr": "Turkish",
    "pl": "Polish",
    "ko": "Korean",
    "en": "English",
}
#: The same names by our language codes (ours write Indonesian as ``id``, the authors ``in``).
NAMES_BY_OUR_CODE = {LANG_ALIASES.get(c, c): n for c, n in LANGUAGE_NAMES.items()}
#: The model prefixes of the released file names and the authors' names for them.
MODEL_NAMES = {
    "llama-32-3B-en-Q4": "English",
    "llama-32-3B-es-Q4": "Spanish",
    "llama-32-3B-en-es-Q4": "English-Spanish",
    "llama-32-3B-multi-Q4": "Multilanguage",
    "llama32-3B-mig-en-Q4": "English",
    "llama32-3B-mig-es-Q4": "Spanish",
    "llama32-3B-mig-en-es-Q4": "English-Spanish",
    "llama32-3B-mig-multi-Q4": "Multilanguage",
}
#: The folders the authors' helpers read, with the split and the translation flag of each.
FOLDERS = (
    ("test_dataset_raw", "csv", "Test", 0),
    ("train_dataset_raw", "csv", "Train", 0),
    ("test_dataset_translation", "xlsx", "Test", 1),
    ("train_dataset_translation", "xlsx", "Train", 1),
)
#: Reference levels (the first level of each factor; the others follow in sorted order).
REFERENCE = {
    "Model": "English",
    "Language": "English",
    "Train_Test": "Train",
    "label": "neutral",
    "TranslationQuality": "Not Translated",
}
MODEL_ORDER = ("English", "Spanish", "English-Spanish", "Multilanguage")
TABLE_COLUMNS = [
    "message_id",
    "newId",
    "Model",
    "Language",
    "Train_Test",
    "Translation",
    "TranslationQuality",
    "label",
    "label_llama",
    "Correct",
    "Share_Unrelated",
    "LangShare",
    "DatasetSize",
    "plaintext",
    "file",
]

#: The six models as the authors write them (R formula syntax: ``a * b`` is ``a + b + a:b``).
FORMULAS = {
    "M1": "Correct ~ Model + Language + Train_Test + TranslationQuality + label",
    "M2": "Correct ~ Model * Language + label + Train_Test + TranslationQuality",
    "M3": (
        "Correct ~ Model * Language + Model * Share_Unrelated + Train_Test + TranslationQuality"
    ),
    "M4": "Correct ~ Model * label + Language + Train_Test + TranslationQuality",
    "M5": "Correct ~ Model * LangShare + Language + label + Train_Test + TranslationQuality",
    "M6": "Correct ~ Model + Language + Train_Test + TranslationQuality + label + DatasetSize",
}
FACTORS = ("Model", "Language", "Train_Test", "TranslationQuality", "label")
MODEL_COLUMNS = [
    "model",
    "term",
    "estimate",
    "std_err",
    "z",
    "p_value",
    "ci_low",
    "ci_high",
    "aliased",
    "n",
]


# ---------------------------------------------------------------------------------------------
# The modelling table


def model_name(filename: str) -> str:
    """The authors' model name from a file name: the name's parts before the first part that is
    ``K``, starts with ``mig-`` or is ``test``, mapped through :data:`MODEL_NAMES`."""
    parts = Path(filename).name.removesuffix(".csv").removesuffix(".xlsx").split("_")
    stops = [i for i, p in enumerate(parts) if p == "K" or p.startswith("mig-") or p == "test"]
    prefix = "_".join(parts[: stops[0]]) if stops else "_".join(parts)
    return MODEL_NAMES.get(prefix, prefix)


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV as readr reads it with every column as text: "" and "NA" missing, cells trimmed."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    for col in df.columns:
        s = df[col].str.strip()
        df[col] = s.where(~s.isin(["", "NA"]))
    return df


def _read_xlsx(path: Path) -> pd.DataFrame:
    """A workbook as readxl reads it: types guessed per column, empty cells missing, text cells
    trimmed."""
    df = pd.read_excel(path)
    for col in df.columns:
        if not pd.api.types.is_numeric_dtype(df[col]):
            s = df[col].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
            df[col] = s.where(s != "")
    return df


def _message_id(values: pd.Series) -> pd.Series:
    """The id as text; a numeric column printed without trailing zeros (as the helpers do)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: np.nan if pd.isna(v) else f"{v:f}".rstrip("0").rstrip("."))
    return values.astype("string").astype(object)


def read_prediction_file(path: Path, split: str, translated: int) -> pd.DataFrame:
    """One released prediction file as rows of the authors' table (before the table-wide rules).
    Raises :class:`PostsError` naming the file and the column when a needed column is missing."""
    df = _read_xlsx(path) if path.suffix == ".xlsx" else _read_csv(path)
    if "text" in df.columns and "plaintext" not in df.columns:
        df = df.rename(columns={"text": "plaintext"})
    lang_col = "lang" if translated else "tweet_lang"
    for col in ("plaintext", "label", "label_llama", "message_id", lang_col):
        if col not in df.columns:
            raise PostsError(path, None, col, "missing column (the authors' helpers read it)")
    if "translation_check" in df.columns:
        check = pd.to_numeric(df["translation_check"], errors="coerce")
        # R's ifelse(check == 1, "Good", "Bad") is missing where the check is missing
        quality = np.where(check.isna(), None, np.where(check == 1, "Good", "Bad"))
    elif translated:
        quality = "Unknown"
    else:
        quality = "Not Translated"
    codes = df[lang_col].astype(object)
    label = df["label"].astype(object)
    pred = df["label_llama"].astype(object)
    correct = (pred == label) & pred.notna() & label.notna()
    out = pd.DataFrame(
        {
            "message_id": _message_id(df["message_id"]),
            "Model": model_name(path.name),
            "Language": codes.map(lambda c: LANGUAGE_NAMES.get(c, c) if isinstance(c, str) else c),
            "Translation": translated,
            "TranslationQuality": quality,
            "Train_Test": split,
            # NA where the prediction is missing (those rows are dropped below)
            "Correct": correct.astype(int).where(pred.notna() & label.notna()),
            "label": label.where(label != "Neutral", "neutral"),
            "label_llama": pred,
            "plaintext": df["plaintext"].astype(object),
            "file": path.name,
        }
    )
    return out


def table_files(folder: str | Path) -> list[tuple[Path, str, int]]:
    """(file, split, translation flag) of every file the authors' helpers read, in their
    reading order; raises :class:`PostsError` when none of the four folders is there."""
    folder = Path(folder)
    found, seen = [], False
    for sub, ext, split, translated in FOLDERS:
        d = folder / sub
        if not d.is_dir():
            continue
        seen = True
        for path in sorted(d.glob(f"*.{ext}")):
            rel = path.relative_to(folder).as_posix().lower()
            if "full" in rel or "Q4" not in path.name:
                continue
            found.append((path, split, translated))
    if not seen:
        raise PostsError(
            folder,
            None,
            None,
            "none of the authors' folders (" + ", ".join(f for f, *_ in FOLDERS) + ") is here; "
            "fetch the data with data/fetch_paper_data.sh or pass --paper-data DIR",
        )
    return found


def build_table(folder: str | Path) -> pd.DataFrame:
    """The authors' modelling table from the released files in ``folder``."""
    files = table_files(folder)
    if not files:
        raise PostsError(folder, None, None, "no Q4 prediction files in the authors' folders")
    rows = pd.concat([read_prediction_file(*f) for f in files], ignore_index=True)
    return finish_table(rows)


def finish_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The table-wide rules on rows read file by file (or built from our own predictions): the
    text key, missing values dropped, one row per model, text and translation flag, and the
    derived columns."""
    rows = rows.copy()
    rows["newId"] = rows.groupby("plaintext", sort=True, dropna=False).ngroup() + 1
    keep = rows["Language"].notna() & rows["plaintext"].notna() & rows["label_llama"].notna()
    rows = rows[keep]
    rows = rows.drop_duplicates(["Model", "newId", "Translation"], keep="first")
    rows["Correct"] = rows["Correct"].astype(int)
    unrelated = rows["label"].eq("unrelated").astype(float)
    rows["Share_Unrelated"] = unrelated.groupby([rows["Language"], rows["Train_Test"]]).transform(
        "mean"
    )
    rows["LangShare"] = rows["Language"].map(lang_shares()).fillna(0.0)
    cell = ["Language", "Train_Test", "Translation", "TranslationQuality"]
    rows["DatasetSize"] = rows.groupby(cell, dropna=False)["newId"].transform("nunique")
    return rows.reset_index(drop=True)[TABLE_COLUMNS]


def lang_shares() -> dict[str, float]:
    """LLaMA 2 pretraining share (percent of tokens) by the authors' language name, from
    data/pretraining_shares.csv (the LLaMA 2 paper's table); languages below its cut-off are
    missing here and 0 in the table, as in the authors' helpers."""
    from xling.analysis.regression import load_shares

    shares = load_shares().dropna(subset=["share_percent"])
    by_code = dict(zip(shares["language"], shares["share_percent"], strict=True))
    out = {}
    for code, name in LANGUAGE_NAMES.items():
        share = by_code.get(LANG_ALIASES.get(code, code))
        if share is not None:
            out[name] = float(share)
    return out


def with_levels(table: pd.DataFrame) -> pd.DataFrame:
    """The factors as pandas categoricals with the authors' reference level first and the other
    levels in sorted order (R's ``factor`` then ``relevel``)."""
    out = table.copy()
    for col in FACTORS:
        values = sorted(str(v) for v in out[col].dropna().unique())
        ref = REFERENCE[col]
        levels = ([ref] if ref in values else []) + [v for v in values if v != ref]
        out[col] = pd.Categorical(out[col].astype(object), categories=levels)
    return out


def our_table(
    predictions: pd.DataFrame,
    posts: pd.DataFrame | None = None,
    backend: str | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """The same table from our own, corrected predictions table
    (:func:`xling.data.read_predictions`): labels as our reader normalised them, our split (the
    ``extra`` sets are test posts), our post id as the key (so the same text in two data sets
    stays two posts), one backend and method (default: the Q4_K_M one, or the only one), the four
    variants, the pooled ``multi`` set left out (the authors' helpers never read it), the
    translation check from the posts table. Share, size and reference levels as in the authors'
    table."""
    p = predictions
    if backend is None:
        backends = sorted(p["backend"].unique())
        q4 = [b for b in backends if "q4_k_m" in b]
        backend = q4[0] if q4 else backends[0]
    p = p[(p["backend"] == backend) & (p["evalset"] != "multi")]
    if method is not None:
        p = p[p["method"] == method]
    names = {"en": "English", "es": "Spanish", "en-es": "English-Spanish", "multi": "Multilanguage"}
    p = p[p["variant"].isin(names)]
    if p.empty:
        raise ValueError(f"no predictions of the four variants with backend {backend!r}")
    ok = pd.Series(np.nan, index=p.index)
    if posts is not None and "translation_ok" in posts:
        checks = posts.drop_duplicates("post_id").set_index("post_id")["translation_ok"]
        ok = pd.to_numeric(p["post_id"].map(checks), errors="coerce").astype(float)
    translated = p["input"].eq("translated").astype(int).to_numpy()
    quality = np.where(translated == 0, "Not Translated", "Unknown").astype(object)
    ok = ok.to_numpy(dtype=float)
    quality = np.where((translated == 1) & (ok == 1), "Good", quality)
    quality = np.where((translated == 1) & (ok == 0), "Bad", quality)
    rows = pd.DataFrame(
        {
            "message_id": p["post_id"].astype(str),
            "Model": p["variant"].map(names),
            "Language": p["lang"].map(lambda c: NAMES_BY_OUR_CODE.get(c, c)),
            "Translation": translated,
            "TranslationQuality": quality,
            "Train_Test": np.where(p["split"].eq("train"), "Train", "Test"),
            "Correct": (p["prediction"] == p["label"]).astype(int),
            "label": p["label"],
            "label_llama": p["prediction"],
            "plaintext": p["post_id"].astype(str),
            "file": p["evalset"],
        }
    )
    return finish_table(rows)


def predict(fit: Fit, grid: pd.DataFrame) -> np.ndarray:
    """Predicted probabilities of ``fit`` on new rows (factors as categoricals with the fit's
    levels; an aliased coefficient counts as 0, as R's ``predict`` treats it)."""
    d = design(grid.assign(Correct=0.0), fit.formula)
    beta = fit.table["estimate"].fillna(0.0).to_numpy()
    if d.names != list(fit.table["term"]):
        raise ValueError(f"{fit.model}: the grid's design has other columns than the fit's")
    return 1 / (1 + np.exp(-(d.matrix @ beta)))


def share_grid(fit: Fit, data: pd.DataFrame, points: int = 60) -> pd.DataFrame:
    """Model 3's prediction grid as the authors draw it: share of unrelated posts over its
    observed range, every model and language, the train split, untranslated posts."""
    data = with_levels(data)
    shares = np.linspace(data["Share_Unrelated"].min(), data["Share_Unrelated"].max(), points)
    rows = list(
        itertools.product(shares, data["Model"].cat.categories, data["Language"].cat.categories)
    )
    grid = pd.DataFrame(rows, columns=["Share_Unrelated", "Model", "Language"])
    grid["Train_Test"] = "Train"
    grid["TranslationQuality"] = "Not Translated"
    for col in ("Model", "Language", "Train_Test", "TranslationQuality"):
        grid[col] = pd.Categorical(grid[col], categories=data[col].cat.categories)
    grid["Accuracy"] = predict(fit, grid)
    return grid


# ---------------------------------------------------------------------------------------------
# Formulas and designs as R builds them


def parse_formula(formula: str) -> list[tuple[str, ...]]:
    """The right-hand side's terms in R's order: every main effect in order of first appearance,
    then the two-way interactions in order of appearance (``a * b`` is ``a + b + a:b``);
    a term written twice counts once."""
    rhs = formula.split("~", 1)[1]
    mains: list[tuple[str, ...]] = []
    inter: list[tuple[str, ...]] = []
    for part in rhs.split("+"):
        part = part.strip()
        if "*" in part:
            names = tuple(x.strip() for x in part.split("*"))
            for n in names:
                if (n,) not in mains:
                    mains.append((n,))
            for k in range(2, len(names) + 1):
                for combo in itertools.combinations(names, k):
                    if combo not in inter:
                        inter.append(combo)
        elif ":" in part:
            combo = tuple(x.strip() for x in part.split(":"))
            if combo not in inter:
                inter.append(combo)
        elif (part,) not in mains:
            mains.append((part,))
    return mains + inter


@dataclass
class Design:
    """A model matrix with R's column names, the term each column belongs to and the rows used."""

    matrix: np.ndarray
    names: list[str]
    terms: list[str]
    y: np.ndarray
    rows: pd.Index


def _columns(data: pd.DataFrame, var: str) -> tuple[list[str], list[np.ndarray]]:
    col = data[var]
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = list(col.cat.categories)
        codes = col.cat.codes.to_numpy()
        names = [f"{var}{lv}" for lv in levels[1:]]
        return names, [(codes == i).astype(float) for i in range(1, len(levels))]
    return [var], [col.to_numpy(dtype=float)]


def design(data: pd.DataFrame, formula: str) -> Design:
    """R's ``model.matrix`` for ``formula`` on ``data`` (factors as categoricals whose first
    level is the reference): intercept, then each term's columns; an interaction's columns are
    the products of its variables' columns with the first variable varying fastest. Rows with
    a missing value in any variable of the formula are dropped, as ``glm`` drops them."""
    terms = parse_formula(formula)
    response = formula.split("~", 1)[0].strip()
    used = [response] + sorted({v for t in terms for v in t})
    data = data[data[used].notna().all(axis=1)]
    names, cols, owners = ["(Intercept)"], [np.ones(len(data))], ["(Intercept)"]
    for term in terms:
        parts = [_columns(data, v) for v in term]
        # the first variable varies fastest: iterate over the others in the outer loops
        for combo in itertools.product(*[range(len(p[0])) for p in reversed(parts)]):
            idx = list(reversed(combo))
            names.append(":".join(parts[i][0][j] for i, j in enumerate(idx)))
            cols.append(np.prod([parts[i][1][j] for i, j in enumerate(idx)], axis=0))
            owners.append(":".join(term))
    y = data[response].to_numpy(dtype=float)
    return Design(np.column_stack(cols), names, owners, y, data.index)


def r_aliased(x: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Indices of the columns R aliases (reports as NA): going through the columns in order, a
    column is aliased when what is left of it after projecting out the columns kept before it is
    below ``tol`` of its length (the rule of R's pivoting QR, ``dqrdc2``: a column found to be a
    linear combination of earlier ones is moved to the end and its coefficient is NA).
    Gram-Schmidt against the kept columns, each projection done twice for accuracy."""
    x = np.asarray(x, dtype=float)
    basis = np.empty((x.shape[0], 0))
    aliased = []
    for j in range(x.shape[1]):
        v = x[:, j]
        norm = np.linalg.norm(v)
        r = v - basis @ (basis.T @ v)
        r = r - basis @ (basis.T @ r)
        left = np.linalg.norm(r)
        if norm == 0 or left <= tol * norm:
            aliased.append(j)
        else:
            basis = np.column_stack([basis, r / left])
    return aliased


@dataclass
class Fit:
    """One fitted model: its tidy table, deviance and the design behind it."""

    model: str
    formula: str
    table: pd.DataFrame
    deviance: float
    design: Design
    aliased: list[str] = field(default_factory=list)
    note: str = ""


def _glm(x: np.ndarray, y: np.ndarray):
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return sm.GLM(y, x, family=sm.families.Binomial()).fit(tol=1e-12, maxiter=100)


def _tidy(
    model: str,
    names: Sequence[str],
    kept: Sequence[int],
    params,
    bse,
    n: int,
    alpha: float = 0.05,
    dist: str = "normal",
    df_resid: int | None = None,
) -> pd.DataFrame:
    from scipy import stats

    est = np.full(len(names), np.nan)
    se = np.full(len(names), np.nan)
    est[list(kept)] = params
    se[list(kept)] = bse
    stat = est / se
    if dist == "t":
        p = 2 * stats.t.sf(np.abs(stat), df_resid)
        crit = stats.t.ppf(1 - alpha / 2, df_resid)
    else:
        p = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.ppf(1 - alpha / 2)
    aliased = np.ones(len(names), dtype=bool)
    aliased[list(kept)] = False
    return pd.DataFrame(
        {
            "model": model,
            "term": list(names),
            "estimate": est,
            "std_err": se,
            "z": stat,
            "p_value": p,
            "ci_low": est - crit * se,
            "ci_high": est + crit * se,
            "aliased": aliased,
            "n": n,
        }
    )


def fit_glm(data: pd.DataFrame, formula: str, model: str, drop: Sequence[int] | None = None) -> Fit:
    """Fit a logistic ``formula`` as R's ``glm`` does: design in R's column order, the aliased
    columns (R's rule, or ``drop`` when given: the audit's alternative choices) left out and
    reported with NaN. Standard errors from the Fisher information (R's ``summary.glm``), Wald
    z, p and 95% intervals."""
    d = design(data, formula)
    aliased = r_aliased(d.matrix) if drop is None else list(drop)
    kept = [j for j in range(len(d.names)) if j not in set(aliased)]
    result = _glm(d.matrix[:, kept], d.y)
    table = _tidy(model, d.names, kept, result.params, result.bse, len(d.y))
    return Fit(model, formula, table, float(result.deviance), d, [d.names[j] for j in aliased])


def model4_formula(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Model 4's data and formula by the authors' switch: translated rows only, factors' unused
    levels dropped (so the quality reference becomes the first remaining level); with one model
    in that subset, no model term."""
    sub = table[table["Translation"].astype(int) == 1].copy()
    for col in FACTORS:
        sub[col] = sub[col].cat.remove_unused_categories()
    formula = FORMULAS["M4"]
    if len(sub["Model"].cat.categories) <= 1:
        formula = "Correct ~ label + Language + Train_Test + TranslationQuality"
    return sub, formula


def simplify(data: pd.DataFrame, formula: str) -> tuple[str, list[str]]:
    """``formula`` without the terms of factors that have one level in ``data`` (the demo has no
    translation quality, for instance); returns the formula and the variables left out."""
    dropped = [
        v
        for v in sorted({v for t in parse_formula(formula) for v in t})
        if (
            isinstance(data[v].dtype, pd.CategoricalDtype)
            and len(data[v].cat.remove_unused_categories().cat.categories) < 2
        )
        or (not isinstance(data[v].dtype, pd.CategoricalDtype) and data[v].nunique() < 2)
    ]
    if not dropped:
        return formula, []
    lhs, rhs = formula.split("~", 1)
    parts = []
    for part in rhs.split("+"):
        names = [x.strip() for x in part.replace("*", ":").split(":")]
        keep = [n for n in names if n not in dropped]
        if keep:
            parts.append((" * " if "*" in part else ":").join(keep))
    return f"{lhs.strip()} ~ " + " + ".join(dict.fromkeys(parts)), dropped


def fit_models(table: pd.DataFrame) -> dict[str, Fit]:
    """Models 1-6 on a modelling table (:func:`build_table` or :func:`our_table`). A model whose
    data cannot carry one of its factors (one level only) is fitted without it, and the note
    says so; a model with no rows at all is left out."""
    data = with_levels(table)
    fits: dict[str, Fit] = {}
    for model, formula in FORMULAS.items():
        sub = data
        if model == "M4":
            sub, formula = model4_formula(data)
        if sub.empty:
            continue
        formula, dropped = simplify(sub, formula)
        fit = fit_glm(sub, formula, model)
        if dropped:
            fit.note = "without " + ", ".join(dropped) + " (one level in these data)"
        fits[model] = fit
    return fits


def share_ols(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model 5's per-model OLS as the authors run it: accuracy per language and model (English
    left out, gold "unrelated" rows left out, splits and translated rows pooled) regressed on
    ``LangShare``, one regression per model. Returns (the per-language accuracies, the tidy
    table with terms ``<Model>:(Intercept)`` and ``<Model>:LangShare``; the ``z`` column holds
    the t statistic, p-values from t with n-2 degrees of freedom)."""
    import statsmodels.api as sm

    d = table[(table["Language"] != "English") & (table["label"] != "unrelated")]
    acc = (
        d.groupby(["Language", "Model", "LangShare"], observed=True)["Correct"]
        .mean()
        .rename("accuracy")
        .reset_index()
    )
    parts = []
    for model in [m for m in MODEL_ORDER if m in set(acc["Model"])]:
        a = acc[acc["Model"] == model]
        if len(a) < 3 or a["LangShare"].nunique() < 2:
            continue
        x = sm.add_constant(a["LangShare"].to_numpy(dtype=float), has_constant="add")
        res = sm.OLS(a["accuracy"].to_numpy(dtype=float), x).fit()
        names = [f"{model}:(Intercept)", f"{model}:LangShare"]
        parts.append(
            _tidy(
                "M5-OLS",
                names,
                [0, 1],
                res.params,
                res.bse,
                len(a),
                dist="t",
                df_resid=int(res.df_resid),
            )
        )
    return acc, pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=MODEL_COLUMNS
    )


def models_table(fits: dict[str, Fit], ols: pd.DataFrame) -> pd.DataFrame:
    """Every model's terms in one table (``authors_models.csv``)."""
    parts = [f.table for f in fits.values()] + ([ols] if len(ols) else [])
    return pd.concat(parts, ignore_index=True)[MODEL_COLUMNS]


# ---------------------------------------------------------------------------------------------
# Identification


def dependencies(x: np.ndarray, aliased: Sequence[int]) -> dict[int, list[int]]:
    """For each aliased column, the kept columns its linear combination uses (non-zero
    coefficients): dropping any one of those instead leaves the fitted values unchanged."""
    kept = [j for j in range(x.shape[1]) if j not in set(aliased)]
    out = {}
    for a in aliased:
        coef, *_ = np.linalg.lstsq(x[:, kept], x[:, a], rcond=None)
        scale = np.abs(coef).max() if len(coef) else 0.0
        out[a] = [kept[i] for i, c in enumerate(coef) if abs(c) > 1e-8 * max(scale, 1.0)]
    return out


def identification(fit: Fit, data: pd.DataFrame, tol: float = 1e-6) -> pd.DataFrame:
    """Refit ``fit``'s model once for every other choice of aliased column that leaves the fit
    unchanged (for each column R aliased, drop instead each column its combination uses, keep
    the rest as R chose); an aliased coefficient counts as 0 (the term left out). Per term: the
    smallest and largest estimate over R's fit and the alternatives, and ``identified`` when
    they agree within ``tol`` (relative to the coefficient's size). Empty for a full-rank model.
    Raises RuntimeError when an alternative fit's deviance differs (the swap was not neutral)."""
    d = fit.design
    aliased = [d.names.index(a) for a in fit.aliased]
    if not aliased:
        return pd.DataFrame(columns=["model", "term", "estimate_min", "estimate_max", "identified"])
    sub = data.loc[d.rows]
    estimates = [fit.table["estimate"].fillna(0.0).to_numpy()]
    for a, uses in dependencies(d.matrix, aliased).items():
        for k in uses:
            drop = [j for j in aliased if j != a] + [k]
            alt = fit_glm(sub, fit.formula, fit.model, drop=drop)
            if abs(alt.deviance - fit.deviance) > 1e-6 * max(1.0, abs(fit.deviance)):
                raise RuntimeError(
                    f"{fit.model}: dropping {d.names[k]} instead of {d.names[a]} changed the "
                    f"deviance ({fit.deviance:.6f} -> {alt.deviance:.6f})"
                )
            estimates.append(alt.table["estimate"].fillna(0.0).to_numpy())
    est = np.vstack(estimates)
    lo, hi = est.min(axis=0), est.max(axis=0)
    size = np.maximum(np.abs(est).max(axis=0), 1.0)
    return pd.DataFrame(
        {
            "model": fit.model,
            "term": d.names,
            "estimate_min": lo,
            "estimate_max": hi,
            "identified": (hi - lo) <= tol * size,
        }
    )


def identification_table(fits: dict[str, Fit], table: pd.DataFrame) -> pd.DataFrame:
    """The audit for every rank-deficient model (``identification.csv``)."""
    data = with_levels(table)
    parts = []
    for name, fit in fits.items():
        if fit.aliased:
            sub = model4_formula(data)[0] if name == "M4" else data
            parts.append(identification(fit, sub))
    cols = ["model", "term", "estimate_min", "estimate_max", "identified"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


# ---------------------------------------------------------------------------------------------
# Sensitivity: the authors' table against ours


def verdict(estimate: float, p_value: float, alpha: float = 0.05) -> str:
    """A term's verdict: ``+`` or ``-`` where significant at ``alpha`` (its sign), else ``n.s.``;
    ``aliased`` where the term was not estimated."""
    if not np.isfinite(estimate) or not np.isfinite(p_value):
        return "aliased"
    if p_value >= alpha:
        return "n.s."
    return "+" if estimate > 0 else "-"


def sensitivity(
    authors: pd.DataFrame, ours: pd.DataFrame, identified: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every term of Models 1-6 (and Model 5's OLS) on the authors' table and on ours, side by
    side, with each verdict (sign and significance at 5%) and whether it changes (our table's
    95% interval kept for notebook 08). ``identified`` (the audit) adds whether the term is
    identified in the authors' fit."""
    keys = ["model", "term"]
    a = authors[keys + ["estimate", "p_value"]].rename(
        columns={"estimate": "estimate_authors", "p_value": "p_authors"}
    )
    o = ours[keys + ["estimate", "p_value", "ci_low", "ci_high"]].rename(
        columns={
            "estimate": "estimate_ours",
            "p_value": "p_ours",
            "ci_low": "ci_low_ours",
            "ci_high": "ci_high_ours",
        }
    )
    t = a.merge(o, on=keys, how="outer")
    t["verdict_authors"] = [
        verdict(e, p) for e, p in zip(t["estimate_authors"], t["p_authors"], strict=True)
    ]
    t["verdict_ours"] = [
        verdict(e, p) for e, p in zip(t["estimate_ours"], t["p_ours"], strict=True)
    ]
    t["changed"] = t["verdict_authors"] != t["verdict_ours"]
    if identified is not None and len(identified):
        flag = identified.set_index(keys)["identified"]
        t["identified"] = [
            bool(flag.get((m, x), True)) for m, x in zip(t["model"], t["term"], strict=True)
        ]
    else:
        t["identified"] = True
    order = {m: i for i, m in enumerate([*FORMULAS, "M5-OLS"])}
    t["_o"] = t["model"].map(order)
    return t.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def table_differences(authors: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """How the authors' modelling table and ours differ, in counts: rows, distinct posts, rows per
    translation flag, predictions that are not one of the four labels (counted wrong in theirs;
    ours were normalised when read), and overall accuracy."""
    from xling.schema import LABELS

    def describe(t: pd.DataFrame) -> dict[str, float]:
        return {
            "rows": len(t),
            "distinct posts (key)": t["newId"].nunique(),
            "translated rows": int((t["Translation"].astype(int) == 1).sum()),
            "test rows": int((t["Train_Test"] == "Test").sum()),
            "predictions not one of the four labels": int((~t["label_llama"].isin(LABELS)).sum()),
            "gold labels not one of the four": int((~t["label"].isin(LABELS)).sum()),
            "accuracy": float(t["Correct"].mean()),
        }

    return pd.DataFrame({"authors": describe(authors), "ours": describe(ours)})


def summary_lines(
    table: pd.DataFrame,
    fits: dict[str, Fit],
    audit: pd.DataFrame,
    sens: pd.DataFrame | None = None,
    source: str = "the authors' table",
) -> list[str]:
    """The notebook's sentences about Models 1-6, written from the numbers."""
    lines = [
        f"{source}: {len(table):,} rows, {table['Model'].nunique()} models, "
        f"{table['Language'].nunique()} languages, {table['newId'].nunique():,} distinct posts, "
        f"accuracy {table['Correct'].mean():.3f}."
    ]
    for name, fit in fits.items():
        t = fit.table
        line = f"{name}: {fit.formula.split('~')[1].strip()}; n={int(t['n'].iloc[0]):,}, "
        line += f"{len(t)} columns"
        if fit.aliased:
            line += f", aliased as R aliases them: {', '.join(fit.aliased)}"
        if fit.note:
            line += f"; {fit.note}"
        lines.append(line + ".")
    if len(audit):
        for name, rows in audit.groupby("model", sort=False):
            bad = rows[~rows["identified"]]
            est = fits[name].table.set_index("term")
            sig = [x for x in bad["term"] if x in est.index and est.loc[x, "p_value"] < 0.05]
            lines.append(
                f"{name}: {len(bad)} of {len(rows)} terms not identified (their estimate depends "
                f"on which column R dropped): {', '.join(bad['term'])}"
                + (f"; of these, significant at 5% in R's fit: {', '.join(sig)}" if sig else "")
                + "."
            )
        for name, rows in audit.groupby("model", sort=False):
            for cov in ("LangShare", "Share_Unrelated", "DatasetSize"):
                own = rows[rows["term"].str.contains(cov, regex=False)]
                if own.empty:
                    continue
                main = own[own["term"] == cov]
                inter = own[own["term"] != cov]
                parts = []
                for _, r in main.iterrows():
                    parts.append(
                        f"its main effect {cov} is "
                        + (
                            "identified"
                            if r["identified"]
                            else f"not identified (from {r['estimate_min']:.4g} to "
                            f"{r['estimate_max']:.4g} with the same fit)"
                        )
                    )
                if len(inter):
                    n_ok = int(inter["identified"].sum())
                    parts.append(f"{n_ok} of {len(inter)} model x {cov} terms are identified")
                lines.append(f"{name}, the {cov} terms: " + "; ".join(parts) + ".")
    else:
        lines.append("Every model is of full rank: every term is identified.")
    if sens is not None and len(sens):
        both = sens.dropna(subset=["estimate_authors", "estimate_ours"])
        for ident, what in ((True, "identified"), (False, "not identified")):
            part = both[both["identified"] == ident]
            if part.empty:
                continue
            changed = part[part["changed"]]
            listed = ", ".join(
                f"{m} {t} ({a} -> {o})"
                for m, t, a, o in zip(
                    changed["model"],
                    changed["term"],
                    changed["verdict_authors"],
                    changed["verdict_ours"],
                    strict=True,
                )
            )
            lines.append(
                f"Between the authors' table and ours, {len(changed)} of {len(part)} {what} "
                "terms change verdict (sign and significance at 5%)"
                + (f": {listed}" if 0 < len(changed) <= 12 else "")
                + "."
            )
    return lines
