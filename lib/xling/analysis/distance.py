"""Language distance as a regressor beside pretraining share (issue 22, part 1).

The paper regresses accuracy on one property of a language, its share of the pretraining corpus.
A second candidate is how far the language is from the ones the variant was fine-tuned on. URIEL+
(PyPI ``urielplus``, its data shipped in the package) gives angular distances between languages
under several feature types; for each evaluation language and variant we take the distance to the
*nearest* training language, then fit, per variant and over languages, accuracy on share alone,
on distance alone and on both.

URIEL+ is used as shipped: its own ISO 639-3 feature tables, no database integration and no
imputation (integrating every database switches it to Glottocodes and took minutes here; its
imputation strategies need optional packages). Where a pair of languages shares no feature of a
type, URIEL+ refuses the distance: the pair is left empty and the reason kept in ``note``, and the
fits of that type use only the languages with a value (their ``n`` says how many).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

#: URIEL+'s distance types used here (its morphological type covers too few of the languages)
TYPES = ("genetic", "syntactic", "phonological", "inventory", "geographic", "featural", "script")

#: ISO 639-1 (the posts table's codes) to the ISO 639-3 codes URIEL+ keys its features by.
#: Arabic is Modern Standard Arabic (arb), the variety of the posts' script and press.
ISO3 = {
    "ar": "arb",
    "de": "deu",
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "hi": "hin",
    "hu": "hun",
    "id": "ind",
    "it": "ita",
    "ko": "kor",
    "pl": "pol",
    "pt": "por",
    "tr": "tur",
}

DISTANCE_COLUMNS = ["lang", "variant", "type", "distance", "nearest", "note"]
MODEL_COLUMNS = [
    "variant",
    "type",
    "model",
    "term",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "r2",
    "adj_r2",
    "aic",
    "note",
]


class DistanceError(ValueError):
    """A language URIEL+ cannot be asked about (no ISO 639-3 code known for it)."""


def _iso3(lang: str) -> str:
    try:
        return ISO3[lang]
    except KeyError:
        raise DistanceError(
            f"language {lang!r} has no ISO 639-3 code in xling.analysis.distance.ISO3 "
            f"(known: {', '.join(sorted(ISO3))}); add it to compute URIEL+ distances"
        ) from None


def open_uriel():
    """URIEL+ as shipped (``urielplus.URIELPlus()``), its per-call INFO logging silenced."""
    try:
        from urielplus import urielplus
    except ImportError as err:  # a pinned dependency: only a broken install lands here
        raise ImportError(
            "urielplus is not installed (pip install -e . installs it; see pyproject.toml)"
        ) from err
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    return urielplus.URIELPlus()


def pair_distance(uriel, a: str, b: str, kind: str) -> tuple[float, str]:
    """URIEL+'s ``kind`` distance between two languages (ISO 639-1), and a note: empty, or why
    URIEL+ gave none (no shared features of that type)."""
    if a == b:
        return 0.0, ""
    try:
        value = uriel.new_distance(kind, [_iso3(a), _iso3(b)])
    except DistanceError:
        raise
    except ValueError as err:
        return np.nan, str(err).splitlines()[0]
    return float(value), ""


def language_distances(
    langs, variants: dict[str, list[str]], types=TYPES, uriel=None
) -> pd.DataFrame:
    """For each evaluation language, variant and distance type: the distance to the nearest of
    the variant's training languages (0 for a language it trained on), that language, and a note
    where URIEL+ had no distance for some pair (the nearest is then taken over the pairs it
    had; no pair at all leaves the distance empty)."""
    for lang in list(langs) + [x for v in variants.values() for x in v]:
        _iso3(lang)
    uriel = uriel if uriel is not None else open_uriel()
    cache: dict[tuple[str, str, str], tuple[float, str]] = {}
    rows = []
    for variant, trained in variants.items():
        if not trained:
            continue
        for kind in types:
            for lang in sorted(set(langs)):
                found, notes = [], []
                for t in trained:
                    key = (kind, *sorted((lang, t)))
                    if key not in cache:
                        cache[key] = pair_distance(uriel, lang, t, kind)
                    d, note = cache[key]
                    if np.isnan(d):
                        notes.append(f"{lang}-{t}: {note}")
                    else:
                        found.append((d, t))
                if found:
                    d, t = min(found)
                    rows.append((lang, variant, kind, d, t, "; ".join(notes)))
                else:
                    rows.append((lang, variant, kind, np.nan, "", "; ".join(notes)))
    return pd.DataFrame(rows, columns=DISTANCE_COLUMNS)


def _tidy(result, variant, kind, model, note="", ols: bool = True) -> list[dict]:
    """Every slope of a fit (the intercept left out), with R² for an OLS (none for a GLM)."""
    ci = result.conf_int()
    out = []
    for term in result.params.index:
        if term == "Intercept":
            continue
        out.append(
            dict(
                variant=variant,
                type=kind,
                model=model,
                term=term,
                estimate=float(result.params[term]),
                ci_low=float(ci.loc[term, 0]),
                ci_high=float(ci.loc[term, 1]),
                p_value=float(result.pvalues[term]),
                n=int(result.nobs),
                r2=float(result.rsquared) if ols else np.nan,
                adj_r2=float(result.rsquared_adj) if ols else np.nan,
                aic=float(result.aic),
                note=note,
            )
        )
    return out


def _skip(variant, kind, model, n, why) -> dict:
    row = {c: np.nan for c in MODEL_COLUMNS}
    row.update(variant=variant, type=kind, model=model, term="", n=n, note=why)
    return row


def fit_distance_models(lang_acc: pd.DataFrame, distances: pd.DataFrame, x: str) -> pd.DataFrame:
    """Per variant and distance type, over languages (``lang_acc``: variant, lang, accuracy and
    the share regressor ``x``): OLS ``accuracy ~ x`` (share alone, on the same languages as the
    distance fits), ``accuracy ~ distance`` and ``accuracy ~ x + distance``. A fit with fewer
    languages than parameters + 2, or no spread in a regressor, is skipped with the reason (the
    multilingual variant trained on all but one language: its distances are 0 but Korean's)."""
    import statsmodels.formula.api as smf

    rows = []
    for (variant, kind), dist in distances.groupby(["variant", "type"], sort=False):
        acc = lang_acc[lang_acc["variant"] == variant]
        if acc.empty:
            continue
        table = acc.merge(dist[["lang", "distance"]], on="lang", how="left")
        table = table.dropna(subset=["distance", "accuracy", x])
        n = len(table)
        specs = [
            ("share", f"accuracy ~ {x}", [x]),
            ("distance", "accuracy ~ distance", ["distance"]),
        ]
        specs.append(("share+distance", f"accuracy ~ {x} + distance", [x, "distance"]))
        for model, formula, regs in specs:
            flat = [r for r in regs if table[r].nunique() < 2]
            if n < len(regs) + 3 or flat:
                why = (
                    f"{n} languages with a {kind} distance"
                    if n < len(regs) + 3
                    else f"no spread in {', '.join(flat)} over the {n} languages"
                )
                rows.append(_skip(variant, kind, model, n, why))
                continue
            result = smf.ols(formula, table).fit()
            rows.extend(_tidy(result, variant, kind, model))
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def fit_distance_glms(table: pd.DataFrame, distances: pd.DataFrame, x: str) -> pd.DataFrame:
    """The post-level version: per variant and distance type, binomial GLMs of ``correct`` (one
    row per prediction, ``table`` as regression.post_table builds it) on share, on distance and
    on both, over the posts of the languages with a distance. Logit slopes; ``aic`` compares the
    three on the same posts. The posts of one language share its share and distance, so these
    intervals treat posts as independent where languages are the unit: read them with the
    language-level fits beside them."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rows = []
    for (variant, kind), dist in distances.groupby(["variant", "type"], sort=False):
        sub = table[table["variant"].astype(str) == variant]
        if sub.empty:
            continue
        sub = sub.merge(dist[["lang", "distance"]], on="lang", how="left")
        sub = sub.dropna(subset=["distance", x])
        n_langs = sub["lang"].nunique()
        specs = [
            ("glm_share", f"correct ~ {x}", [x]),
            ("glm_distance", "correct ~ distance", ["distance"]),
        ]
        specs.append(("glm_share+distance", f"correct ~ {x} + distance", [x, "distance"]))
        for model, formula, regs in specs:
            flat = [r for r in regs if sub[r].nunique() < 2]
            if n_langs < len(regs) + 2 or flat or sub["correct"].nunique() < 2:
                why = f"{n_langs} languages" + (f"; no spread in {', '.join(flat)}" if flat else "")
                rows.append(_skip(variant, kind, model, len(sub), why))
                continue
            result = smf.glm(formula, sub, family=sm.families.Binomial()).fit()
            rows.extend(_tidy(result, variant, kind, model, f"{n_langs} languages", ols=False))
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def compare_models(models: pd.DataFrame) -> pd.DataFrame:
    """Per variant and distance type: which of share alone and distance alone explains more of
    the variance across languages (adjusted R²), and whether share's slope still excludes zero
    once distance is in the model. One row each: variant, type, n, adj_r2_share, adj_r2_distance,
    better, distance_slope with its 95% interval (accuracy per unit of distance, alone),
    share_alone_p, share_with_distance_p, share_survives."""
    rows = []
    fitted = models[models["term"] != ""]
    for (variant, kind), g in fitted.groupby(["variant", "type"], sort=False):
        alone = g[g["model"] == "share"]
        dist = g[g["model"] == "distance"]
        both = g[(g["model"] == "share+distance") & (g["term"] != "distance")]
        if alone.empty or dist.empty:
            continue
        a, d = float(alone["adj_r2"].iloc[0]), float(dist["adj_r2"].iloc[0])
        slope = dist[dist["term"] == "distance"].iloc[0]
        survives = np.nan
        p_both = np.nan
        if not both.empty:
            p_both = float(both["p_value"].iloc[0])
            low, high = float(both["ci_low"].iloc[0]), float(both["ci_high"].iloc[0])
            survives = bool(low > 0 or high < 0)
        rows.append(
            dict(
                variant=variant,
                type=kind,
                n=int(alone["n"].iloc[0]),
                adj_r2_share=a,
                adj_r2_distance=d,
                better="distance" if d > a else "share",
                distance_slope=float(slope["estimate"]),
                distance_ci_low=float(slope["ci_low"]),
                distance_ci_high=float(slope["ci_high"]),
                share_alone_p=float(alone["p_value"].iloc[0]),
                share_with_distance_p=p_both,
                share_survives=survives,
            )
        )
    return pd.DataFrame(rows)


def best_distance(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per variant, the distance type whose fit alone has the highest adjusted R². Chosen on the
    same languages it is judged on: a best-of-seven that flatters distance; say so beside it."""
    if comparison.empty:
        return comparison
    idx = comparison.groupby("variant", sort=False)["adj_r2_distance"].idxmax()
    return comparison.loc[idx].reset_index(drop=True)


def sentences(comparison: pd.DataFrame) -> list[str]:
    """What the comparison shows, per variant, written from its numbers."""
    out = []
    for variant, g in comparison.groupby("variant", sort=False):
        wins = g[g["better"] == "distance"]
        n = int(g["n"].max())
        best = g.loc[g["adj_r2_distance"].idxmax()]
        share_p = float(g["share_alone_p"].iloc[0])
        kept = g["share_survives"].dropna()
        line = (
            f"{variant}: over at most {n} languages, distance alone explains more than share "
            f"alone under {len(wins)} of {len(g)} distance types; the best, {best['type']}, "
            f"has adjusted R² {best['adj_r2_distance']:.2f} against share's "
            f"{best['adj_r2_share']:.2f} (share alone: p = {share_p:.2g}), accuracy "
            f"{best['distance_slope']:+.2f} per unit of distance (95% CI "
            f"{best['distance_ci_low']:+.2f} to {best['distance_ci_high']:+.2f})"
        )
        if len(kept):
            line += (
                f"; share's slope still excludes zero beside distance under {int(kept.sum())} "
                f"of {len(kept)} types"
            )
        out.append(line + ".")
    return out


__all__ = [
    "DISTANCE_COLUMNS",
    "ISO3",
    "MODEL_COLUMNS",
    "TYPES",
    "DistanceError",
    "best_distance",
    "compare_models",
    "fit_distance_glms",
    "fit_distance_models",
    "language_distances",
    "open_uriel",
    "pair_distance",
    "sentences",
]
