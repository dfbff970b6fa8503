"""Pretraining-bias regression: does accuracy follow a language's share of pretraining data?

Everything here reads the predictions table (DESIGN.md) and ``data/pretraining_shares.csv`` (the
LLaMA 2 language table, Touvron et al. 2023, Table 10), so the authors' released predictions and
our own go through the same models (statsmodels formulas):

1. ``glm_post``: a binomial GLM per post, ``correct ~ variant * share + label (+ split)
   (+ translation_bad)``, standard errors clustered by language. With about a dozen languages
   there are only a dozen clusters, so intervals and p-values use a t distribution with
   (clusters - 1) degrees of freedom rather than the normal one.
2. ``authors_glm``: the authors' specification (docs/FACTS.md), ``correct ~ variant * share +
   language + label + split + translation quality``, for comparison with their analysis.
3. ``ols_lang[VARIANT]``: per variant, ordinary least squares of language-level accuracy
   (English and unrelated posts excluded, as the authors did) on share.
4. ``slope_diff[A-B]``: the test the paper's claim needs: is variant A's share slope smaller than
   variant B's? The per-language accuracy difference A - B regressed on share; its slope equals
   the interaction of a stacked OLS, with the pairing of the two accuracies of a language kept.

The table lists languages with at least 0.005% of the tokens; a language it does not list (ar, hi,
tr among the paper's) has a share below that, not zero. ``coding`` says what to do with them:
``authors`` sets them to 0 and uses the share in percent, untransformed (as the authors did: a log
of 0 does not exist); ``half_threshold`` puts them at 0.0025% and uses log10 share; ``drop``
leaves them out and uses log10 share. :func:`compare_codings` shows how the conclusions move.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xling import paths
from xling.schema import CODINGS

#: The table's cut-off (percent of tokens): listed languages have at least this much.
THRESHOLD = 0.005
TIDY_COLUMNS = [
    "model",
    "term",
    "estimate",
    "std_err",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "coding",
]
SHARES_CSV = paths.PRETRAINING_SHARES


# --------------------------------------------------------------------------------------------
# Shares
# --------------------------------------------------------------------------------------------


def load_shares(path=None) -> pd.DataFrame:
    """The share table: language, share_percent (NaN below the threshold), below_threshold,
    source, note. A row without a share must say ``below_threshold`` in its note."""
    path = paths.resolve(path) if path else SHARES_CSV
    shares = pd.read_csv(path, dtype={"language": str}, keep_default_na=False, na_values=[""])
    missing = {"language", "share_percent", "source", "note"} - set(shares.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    shares["note"] = shares["note"].fillna("")
    shares["below_threshold"] = shares["share_percent"].isna()
    bad = shares["below_threshold"] & ~shares["note"].str.startswith("below_threshold")
    if bad.any():
        lang = shares.loc[bad, "language"].iloc[0]
        raise ValueError(f"{path}: {lang} has no share and no 'below_threshold' note")
    twice = shares["language"][shares["language"].duplicated()]
    if len(twice):
        raise ValueError(f"{path}: language {twice.iloc[0]} appears twice")
    return shares


def regressor(coding: str) -> str:
    """The share column a coding regresses on: ``share_percent`` or ``log10_share``."""
    if coding not in CODINGS:
        raise ValueError(f"coding {coding!r}: one of {', '.join(CODINGS)}")
    return "share_percent" if coding == "authors" else "log10_share"


def code_shares(shares: pd.DataFrame, coding: str, langs=None) -> pd.DataFrame:
    """One row per language (index: lang): ``share_percent`` as coded, ``below_threshold`` and
    the regressor (``share_percent`` or ``log10_share``). ``langs`` not in the table count as
    below its threshold (the table lists every language above it), with a warning; ``drop``
    leaves the below-threshold languages out."""
    x = regressor(coding)
    table = shares.set_index("language")[["share_percent", "below_threshold"]].copy()
    if langs is not None:
        unknown = sorted(set(langs) - set(table.index))
        if unknown:
            warnings.warn(
                f"languages not in the share table, taken as below its {THRESHOLD}% threshold: "
                + ", ".join(unknown),
                stacklevel=2,
            )
            extra = pd.DataFrame(
                {"share_percent": np.nan, "below_threshold": True}, index=pd.Index(unknown)
            )
            table = pd.concat([table, extra])
        table = table.loc[sorted(set(langs))]
    below = table["below_threshold"]
    if coding == "authors":
        table.loc[below, "share_percent"] = 0.0
    elif coding == "half_threshold":
        table.loc[below, "share_percent"] = THRESHOLD / 2
    else:
        table = table[~below]
    if x == "log10_share":
        table[x] = np.log10(table["share_percent"].astype(float))
    table.index.name = "lang"
    return table


def unit_phrase(regressor_name: str) -> str:
    """How a slope on this regressor reads in words."""
    if regressor_name == "log10_share":
        return "per tenfold share"
    return "per percentage point of share"


# --------------------------------------------------------------------------------------------
# The data the models see
# --------------------------------------------------------------------------------------------


def select_predictions(
    predictions: pd.DataFrame,
    backend: str,
    method: str,
    input_kind: str = "original",
    splits=("test",),
    include_extra: bool = False,
    variants=None,
) -> pd.DataFrame:
    """The rows of one backend, method and input, on the per-language evaluation sets of
    ``splits`` (never the pooled ``multi`` set, which repeats per-language posts); the extra test
    sets (``ko-extra`` ...) only with ``include_extra``. Raises naming what the table holds when
    nothing is left."""
    keep = (
        (predictions["backend"] == backend)
        & (predictions["method"] == method)
        & (predictions["input"] == input_kind)
    )
    sets = predictions["split"].isin(list(splits)) & (predictions["evalset"] == predictions["lang"])
    if include_extra:
        sets |= (predictions["split"] == "extra") & (
            predictions["evalset"] == predictions["lang"] + "-extra"
        )
    out = predictions[keep & sets]
    if variants is not None:
        out = out[out["variant"].isin(list(variants))]
    if out.empty:
        held = predictions.groupby(["backend", "method", "input"]).size()
        raise ValueError(
            f"no predictions for backend {backend!r}, method {method!r}, input {input_kind!r}, "
            f"splits {list(splits)}; the table holds: "
            + "; ".join(f"{b} / {m} / {i} ({n} rows)" for (b, m, i), n in held.items())
        )
    return out.reset_index(drop=True)


def constant_variants(selected: pd.DataFrame) -> list[str]:
    """Variants that gave the same answer to every post: they say nothing about languages (the
    demo's untuned base model answers one label whatever the post)."""
    answers = selected.groupby("variant")["prediction"].nunique()
    return sorted(answers[answers <= 1].index)


def variant_order(variants, reference: str | None = None) -> list[str]:
    known = ["base", "en", "es", "en-es", "multi", "en-es-full"]
    present = list(dict.fromkeys(variants))
    order = [v for v in known if v in present] + [v for v in present if v not in known]
    if reference in order:
        order.remove(reference)
        order.insert(0, reference)
    return order


def post_table(
    selected: pd.DataFrame,
    shares: pd.DataFrame,
    coding: str,
    posts: pd.DataFrame | None = None,
    exclude_langs=("en",),
    reference: str = "en",
) -> pd.DataFrame:
    """One row per prediction: ``correct`` (0/1; a ``failed`` output is wrong), the coded share
    and its regressor, and from ``posts`` the human translation check: ``translation_ok`` (1, 0
    or NaN) and ``translation_bad`` (1 where a human marked the translation bad, else 0: unchecked
    languages are not turned into a language indicator). ``variant`` is categorical with
    ``reference`` first (the formulas' baseline)."""
    table = selected[~selected["lang"].isin(list(exclude_langs))].copy()
    coded = code_shares(shares, coding, langs=table["lang"].unique())
    table = table[table["lang"].isin(coded.index)]
    x = regressor(coding)
    table["share_percent"] = table["lang"].map(coded["share_percent"]).astype(float)
    table["below_threshold"] = table["lang"].map(coded["below_threshold"]).astype(bool)
    if x != "share_percent":
        table[x] = table["lang"].map(coded[x]).astype(float)
    table["correct"] = (table["prediction"] == table["label"]).astype(int)
    if posts is not None and "translation_ok" in posts.columns:
        check = posts.drop_duplicates("post_id").set_index("post_id")["translation_ok"]
        check = pd.to_numeric(check, errors="coerce").astype(float)  # nullable ints -> NaN
        table["translation_ok"] = table["post_id"].map(check)
    else:
        table["translation_ok"] = np.nan
    table["translation_bad"] = (table["translation_ok"] == 0).astype(int)
    order = variant_order(table["variant"], reference)
    table["variant"] = pd.Categorical(table["variant"], categories=order)
    return table.reset_index(drop=True)


def language_accuracy(table: pd.DataFrame, exclude_labels=("unrelated",)) -> pd.DataFrame:
    """Accuracy per variant and language over the posts whose gold label is not in
    ``exclude_labels``: variant, lang, n, accuracy, share_percent, below_threshold (+ the
    regressor column when it is log10_share)."""
    kept = table[~table["label"].isin(list(exclude_labels))]
    cols = [c for c in ("share_percent", "log10_share", "below_threshold") if c in kept.columns]
    out = (
        kept.groupby(["variant", "lang"], observed=True)
        .agg(n=("correct", "size"), accuracy=("correct", "mean"), **{c: (c, "first") for c in cols})
        .reset_index()
    )
    out["variant"] = out["variant"].astype(str)
    return out


# --------------------------------------------------------------------------------------------
# Tidy results
# --------------------------------------------------------------------------------------------


def _pretty_term(term: str) -> str:
    """``C(variant)[T.multi]:log10_share`` -> ``variant[multi]:log10_share``."""
    import re

    return re.sub(r"C\((\w+)\)\[T\.([^\]]+)\]", r"\1[\2]", term)


def tidy(result, model: str, coding: str, alpha: float = 0.05, aliased=()) -> pd.DataFrame:
    """One row per coefficient: model, term, estimate, std_err, ci_low, ci_high, p_value, n,
    coding. ``aliased`` terms (not identified) get a row with NaN estimates."""
    ci = np.asarray(result.conf_int(alpha=alpha))
    names = list(result.model.exog_names)
    rows = pd.DataFrame(
        {
            "model": model,
            "term": [_pretty_term(t) for t in names],
            "estimate": np.asarray(result.params, dtype=float),
            "std_err": np.asarray(result.bse, dtype=float),
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "p_value": np.asarray(result.pvalues, dtype=float),
            "n": int(result.nobs),
            "coding": coding,
        }
    )
    if aliased:
        nan = pd.DataFrame(
            {"model": model, "term": [_pretty_term(t) for t in aliased], "n": int(result.nobs)}
        ).assign(coding=coding)
        rows = pd.concat([rows, nan], ignore_index=True)
    return rows[TIDY_COLUMNS]


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


def glm_formula(table: pd.DataFrame, x: str) -> str:
    """The post-level formula, with only the terms the data can carry: variant and its
    interaction when there are two or more variants, label / split when they vary, the
    translation flag when some translation was marked bad."""
    rhs = [f"C(variant) * {x}" if table["variant"].nunique() > 1 else x]
    if table["label"].nunique() > 1:
        rhs.append("C(label)")
    if table["split"].nunique() > 1:
        rhs.append("C(split)")
    if table["translation_bad"].nunique() > 1:
        rhs.append("translation_bad")
    return "correct ~ " + " + ".join(rhs)


def fit_post_glm(table: pd.DataFrame, coding: str, alpha: float = 0.05):
    """Model 1: the post-level binomial GLM, standard errors clustered by language (t with
    G - 1 degrees of freedom). Returns (statsmodels result, tidy table)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    x = regressor(coding)
    formula = glm_formula(table, x)
    groups = pd.factorize(table["lang"])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        result = smf.glm(formula, table, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
        )
    return result, tidy(result, "glm_post", coding, alpha)


def _aliased_columns(exog: np.ndarray, tol: float = 1e-8) -> list[int]:
    """Columns that are linear combinations of the columns before them, found in order (what R's
    ``glm`` reports as NA; the authors' language dummies and share are such a case)."""
    gram = exog.T @ exog
    scale = np.sqrt(np.clip(np.diag(gram), 1e-300, None))
    gram = gram / np.outer(scale, scale)
    kept: list[int] = []
    aliased = []
    for j in range(exog.shape[1]):
        trial = kept + [j]
        rank = np.linalg.matrix_rank(gram[np.ix_(trial, trial)], tol=tol * len(trial))
        if rank == len(trial):
            kept.append(j)
        else:
            aliased.append(j)
    return aliased


def fit_authors_glm(table: pd.DataFrame, alpha: float = 0.05):
    """Model 2: the authors' specification, ``correct ~ variant * share_percent + C(lang) +
    C(label) + C(split) + translation_ok`` on a table coded ``authors`` (below-threshold shares
    0, English included). Rows without a translation check are dropped, as a formula library does
    with a missing regressor; model-based (not clustered) standard errors, as a plain GLM gives.

    The share is constant within a language, so ``share_percent`` is a combination of the
    language dummies: its main effect is not identified. A column that is a combination of the
    columns before it (in the design's column order, where statsmodels puts the categorical
    terms first) is dropped and reported with NaN: here the share main effect. (R orders the
    columns as the formula is written and would drop a language dummy instead, printing a share
    "effect" that is really one language contrast.) Only the variant x share interactions carry
    information. Returns (result, tidy table, aliased term names)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = table.copy()
    rhs = ["C(variant) * share_percent" if data["variant"].nunique() > 1 else "share_percent"]
    rhs.append("C(lang)")
    for term, col in (("C(label)", "label"), ("C(split)", "split")):
        if data[col].nunique() > 1:
            rhs.append(term)
    if data["translation_ok"].notna().any():
        data = data[data["translation_ok"].notna()]
        if data["translation_ok"].nunique() > 1:
            rhs.append("translation_ok")
    data["variant"] = data["variant"].cat.remove_unused_categories()
    formula = "correct ~ " + " + ".join(rhs)
    design = smf.glm(formula, data, family=sm.families.Binomial())
    names = list(design.exog_names)
    aliased = _aliased_columns(design.exog)
    kept = [j for j in range(len(names)) if j not in aliased]
    exog = pd.DataFrame(design.exog[:, kept], columns=[names[j] for j in kept])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        result = sm.GLM(design.endog, exog, family=sm.families.Binomial()).fit()
    aliased_names = [names[j] for j in aliased]
    return result, tidy(result, "authors_glm", "authors", alpha, aliased_names), aliased_names


@dataclass
class ShareFits:
    """Per-variant OLS fits of language-level accuracy on share (model 3)."""

    coding: str
    regressor: str
    results: dict = field(default_factory=dict)
    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: dict = field(default_factory=dict)


def fit_share_regression(lang_acc: pd.DataFrame, coding: str, alpha: float = 0.05) -> ShareFits:
    """Model 3: per variant, OLS ``accuracy ~ share`` over languages (n = languages). A variant
    with fewer than three languages, or no spread in share, is skipped with the reason."""
    import statsmodels.formula.api as smf

    x = regressor(coding)
    fits = ShareFits(coding, x)
    parts = []
    for variant in variant_order(lang_acc["variant"]):
        sub = lang_acc[lang_acc["variant"] == variant]
        if len(sub) < 3 or sub[x].nunique() < 2:
            fits.skipped[variant] = f"{len(sub)} languages, {sub[x].nunique()} distinct shares"
            continue
        result = smf.ols(f"accuracy ~ {x}", sub).fit()
        fits.results[variant] = result
        parts.append(tidy(result, f"ols_lang[{variant}]", coding, alpha))
    fits.coefficients = pd.concat(parts, ignore_index=True) if parts else _empty()
    return fits


def fit_slope_difference(
    lang_acc: pd.DataFrame, coding: str, variant: str = "multi", reference: str = "en", alpha=0.05
):
    """Model 4: ``(accuracy[variant] - accuracy[reference]) ~ share`` over the languages both
    were evaluated on. The slope is variant's share slope minus reference's (negative: the
    variant's accuracy depends less on share). Returns (result or None, tidy table)."""
    import statsmodels.formula.api as smf

    x = regressor(coding)
    wide = lang_acc.pivot_table(index="lang", columns="variant", values="accuracy")
    if variant not in wide.columns or reference not in wide.columns:
        return None, _empty()
    shares = lang_acc.drop_duplicates("lang").set_index("lang")[x]
    diff = (wide[variant] - wide[reference]).dropna().rename("difference").to_frame()
    diff[x] = shares.reindex(diff.index)
    if len(diff) < 3 or diff[x].nunique() < 2:
        return None, _empty()
    result = smf.ols(f"difference ~ {x}", diff).fit()
    return result, tidy(result, f"slope_diff[{variant}-{reference}]", coding, alpha)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=TIDY_COLUMNS)


@dataclass
class CodingFit:
    """Every model of one coding: the tables they were fit on and their coefficients."""

    coding: str
    regressor: str
    table: pd.DataFrame
    lang_acc: pd.DataFrame
    glm: object
    ols: ShareFits
    diff: object
    coefficients: pd.DataFrame


def fit_share_models(
    selected: pd.DataFrame,
    shares: pd.DataFrame,
    coding: str,
    posts: pd.DataFrame | None = None,
    exclude_langs=("en",),
    exclude_labels=("unrelated",),
    compare=("en", "multi"),
    alpha: float = 0.05,
) -> CodingFit:
    """Models 1, 3 and 4 under one coding. ``compare`` is (reference, variant) for model 4 and
    the reference level of model 1."""
    reference, variant = compare
    if selected.empty:
        raise ValueError(
            "no predictions to model: every variant was left out or none was selected (a model "
            "whose answers all failed to parse, or that gives one answer for every post, says "
            "nothing about languages; model its scores instead: method score)"
        )
    table = post_table(selected, shares, coding, posts, exclude_langs, reference)
    lang_acc = language_accuracy(table, exclude_labels)
    glm, glm_coefs = fit_post_glm(table, coding, alpha)
    ols = fit_share_regression(lang_acc, coding, alpha)
    diff, diff_coefs = fit_slope_difference(lang_acc, coding, variant, reference, alpha)
    parts = [c for c in (glm_coefs, ols.coefficients, diff_coefs) if not c.empty]
    return CodingFit(
        coding,
        regressor(coding),
        table,
        lang_acc,
        glm,
        ols,
        diff,
        pd.concat(parts, ignore_index=True),
    )


def share_bands(fits: ShareFits, lang_acc: pd.DataFrame, points: int = 60, alpha=0.05):
    """Fitted line and its confidence band per variant over the observed share range: variant,
    x (the regressor), fit, ci_low, ci_high."""
    x = fits.regressor
    rows = []
    for variant, result in fits.results.items():
        sub = lang_acc[lang_acc["variant"] == variant]
        grid = pd.DataFrame({x: np.linspace(sub[x].min(), sub[x].max(), points)})
        frame = result.get_prediction(grid).summary_frame(alpha=alpha)
        rows.append(
            pd.DataFrame(
                {
                    "variant": variant,
                    "x": grid[x].to_numpy(),
                    "fit": frame["mean"].to_numpy(),
                    "ci_low": frame["mean_ci_lower"].to_numpy(),
                    "ci_high": frame["mean_ci_upper"].to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


# --------------------------------------------------------------------------------------------
# Codings compared, and the words
# --------------------------------------------------------------------------------------------


def _verdict(low: float, high: float) -> str:
    if np.isnan(low) or np.isnan(high):
        return "no interval"
    if low > 0:
        return "positive"
    if high < 0:
        return "negative"
    return "not distinguishable from 0"


def share_terms(coefficients: pd.DataFrame, fits: dict[str, CodingFit]) -> pd.DataFrame:
    """The share slopes of every coding side by side: one row per (coding, model, term) that
    involves the share, with ``range_effect`` (estimate x the observed spread of the regressor:
    the difference it implies between the lowest- and highest-share language, comparable across
    codings; in the model's own units: accuracy for OLS, log-odds for the GLM), ``verdict`` (the
    sign the 95% interval supports) and ``slope`` (the term with the regressor written
    ``share``, so that rows of different codings line up)."""
    rows = []
    for coding, fit in fits.items():
        x = fit.regressor
        spread = float(fit.lang_acc[x].max() - fit.lang_acc[x].min())
        coefs = coefficients[(coefficients["coding"] == coding)]
        coefs = coefs[coefs["term"].str.contains(x, regex=False)]
        for r in coefs.itertuples(index=False):
            rows.append(
                {
                    "coding": coding,
                    "regressor": x,
                    "model": r.model,
                    "term": r.term,
                    "estimate": r.estimate,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "p_value": r.p_value,
                    "n": r.n,
                    "n_langs": int(fit.lang_acc["lang"].nunique()),
                    "range_effect": r.estimate * spread,
                    "verdict": _verdict(r.ci_low, r.ci_high),
                    "slope": r.term.replace(x, "share"),
                }
            )
    return pd.DataFrame(rows)


def compare_codings(
    selected: pd.DataFrame, shares: pd.DataFrame, codings=CODINGS, **kw
) -> tuple[pd.DataFrame, dict[str, CodingFit]]:
    """Fit models 1, 3 and 4 under every coding. Returns (all coefficients with their
    ``coding``, the fits by coding)."""
    fits = {c: fit_share_models(selected, shares, c, **kw) for c in codings}
    coefs = pd.concat([f.coefficients for f in fits.values()], ignore_index=True)
    return coefs, fits


def conclusions(terms: pd.DataFrame) -> pd.DataFrame:
    """How the verdicts move between codings: one row per (model, slope), one verdict column
    per coding, and ``stable`` (the same verdict under every coding)."""
    wide = terms.pivot_table(
        index=["model", "slope"], columns="coding", values="verdict", aggfunc="first"
    )
    wide = wide[[c for c in CODINGS if c in wide.columns]]
    wide["stable"] = wide.nunique(axis=1) == 1
    return wide.reset_index()


def _fmt_p(p: float) -> str:
    if np.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def summarize(coefficients: pd.DataFrame, level: float = 0.95) -> list[str]:
    """One sentence per model and coding, written from the numbers."""
    lines = []
    pct = f"{level:.0%}"
    for (model, coding), g in coefficients.groupby(["model", "coding"], sort=False):
        x = "log10_share" if g["term"].str.contains("log10_share").any() else "share_percent"
        unit = unit_phrase(x)
        n = int(g["n"].iloc[0])
        if model.startswith("ols_lang["):
            variant = model[len("ols_lang[") : -1]
            r = g[g["term"] == x].iloc[0]
            lines.append(
                f"[{coding}] {variant}: accuracy on related posts changes by {r.estimate:+.3f} "
                f"{unit} ({pct} CI {r.ci_low:+.3f} to {r.ci_high:+.3f}, {_fmt_p(r.p_value)}, "
                f"{n} languages): {_verdict(r.ci_low, r.ci_high)}."
            )
        elif model.startswith("slope_diff["):
            pair = model[len("slope_diff[") : -1]
            variant, reference = pair.split("-", 1) if pair.count("-") == 1 else (pair, "")
            r = g[g["term"] == x].iloc[0]
            if r.ci_high < 0:
                what = f"{variant}'s slope is smaller than {reference}'s"
            elif r.ci_low > 0:
                what = f"{variant}'s slope is larger than {reference}'s"
            else:
                what = f"the data cannot tell {variant}'s slope from {reference}'s"
            lines.append(
                f"[{coding}] slope of {variant} minus slope of {reference}: {r.estimate:+.3f} "
                f"{unit} ({pct} CI {r.ci_low:+.3f} to {r.ci_high:+.3f}, {_fmt_p(r.p_value)}, "
                f"{n} languages): {what}."
            )
        elif model == "glm_post":
            main = g[g["term"] == x]
            parts = []
            if not main.empty:
                r = main.iloc[0]
                parts.append(
                    f"reference variant: odds of a correct answer x{np.exp(r.estimate):.2f} {unit} "
                    f"({pct} CI x{np.exp(r.ci_low):.2f} to x{np.exp(r.ci_high):.2f}, "
                    f"{_fmt_p(r.p_value)})"
                )
            for r in g[g["term"].str.endswith(":" + x)].itertuples():
                variant = r.term.split("[", 1)[1].split("]", 1)[0]
                parts.append(
                    f"{variant} differs in slope by {r.estimate:+.2f} log-odds ({pct} CI "
                    f"{r.ci_low:+.2f} to {r.ci_high:+.2f}, {_fmt_p(r.p_value)})"
                )
            lines.append(
                f"[{coding}] post-level GLM ({n} predictions, SEs clustered by language): "
                + "; ".join(parts)
                + "."
            )
        elif model == "authors_glm":
            aliased = g[g["estimate"].isna()]["term"].tolist()
            parts = []
            for r in g[g["term"].str.endswith(":" + x)].itertuples():
                variant = r.term.split("[", 1)[1].split("]", 1)[0]
                parts.append(
                    f"{variant} x share {r.estimate:+.2f} log-odds per percentage point "
                    f"({pct} CI {r.ci_low:+.2f} to {r.ci_high:+.2f}, {_fmt_p(r.p_value)})"
                )
            text = f"[authors] the authors' specification ({n} predictions): " + (
                "; ".join(parts) if parts else "no variant x share term"
            )
            if aliased:
                text += (
                    f". Not identified (aliased with the language dummies, left out): "
                    f"{', '.join(aliased)}; the share main effect that remains only contrasts "
                    "languages the dummies already separate, so it is not read here"
                )
            lines.append(text + ".")
    return lines


def coding_table(shares: pd.DataFrame, langs) -> pd.DataFrame:
    """What each coding makes of each language's share: listed share (NaN below the threshold),
    then per coding the value regressed on (NaN where the coding drops the language)."""
    out = shares.set_index("language").reindex(sorted(set(langs)))[["share_percent"]]
    out = out.rename(columns={"share_percent": "listed_percent"})
    for coding in CODINGS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coded = code_shares(shares, coding, langs=langs)
        out[f"{coding} ({regressor(coding)})"] = coded[regressor(coding)].reindex(out.index)
    out.index.name = "lang"
    return out
