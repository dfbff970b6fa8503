"""Every path of the project, built from the repository root in one place, and the contract files.

Notebooks and library code ask this module for paths instead of writing them, so a layout change
happens here only (showyourwork's ``paths.py`` does the same). :data:`CONTRACT` names every file a
run writes under ``runs/RUN/`` and the one notebook (or tool) that writes it; :data:`FIGURES_BY`
does the same for ``figures/RUN/``. :func:`artifact` refuses a path the contract does not name,
and :mod:`xling.artifacts` refuses a write by anyone but the file's writer.

Layer: the bottom (imports nothing from xling).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

#: The repository root: lib/xling/paths.py -> three levels up. ``XLING_ROOT`` overrides it, which
#: lets tests run the library against a scratch copy of the tree.
ROOT = Path(os.environ.get("XLING_ROOT", Path(__file__).resolve().parents[2])).resolve()

LIB = ROOT / "lib" / "xling"
PARAMS = ROOT / "params"
#: Task files: labels, their numbers, the instruction of each prompt format (xling.tasks).
TASKS = ROOT / "tasks"
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
DEMO_DATA = DATA / "demo"
DEMO_POSTS = DEMO_DATA / "posts"
PAPER_DATA_DEFAULT = DATA / "paper"
PAPER_MANIFEST = DATA / "paper_manifest.sha256"
PRETRAINING_SHARES = DATA / "pretraining_shares.csv"
#: Outputs: ``XLING_RUNS`` and ``XLING_FIGURES`` move them (the tests point them at a scratch
#: folder, so a test never writes into the real runs/ or figures/).
RUNS = Path(os.environ.get("XLING_RUNS", ROOT / "runs")).resolve()
FIGURES = Path(os.environ.get("XLING_FIGURES", ROOT / "figures")).resolve()
#: Models shared by every profile: the assembled embedded GGUF and its dequantized copy.
MODEL_CACHE = RUNS / "cache" / "models"

# --------------------------------------------------------------------------------------------
# The contract: every file under runs/RUN/ and its one writer
# --------------------------------------------------------------------------------------------

#: Path under runs/RUN/ (``*`` matches one name, a trailing ``/`` a folder and all it holds) ->
#: the notebook that writes it. Readers find these files through :func:`artifact` and the named
#: helpers below; docs/ARCHITECTURE.md lists them with what they hold.
CONTRACT: dict[str, str] = {
    "posts.csv": "00_data",
    "posts_counts.csv": "00_data",
    "split_audit.csv": "00_data",
    "form_gap.csv": "00_data",
    "data_card.md": "00_data",
    "adapters/": "01_finetune",
    "merged/": "02_quantize",
    "gguf/": "02_quantize",
    "quantize/comparison.csv": "02_quantize",
    "quantize/cost.csv": "02_quantize",
    "quantize/finetune_gains.csv": "02_quantize",
    "predictions.csv": "03_crosslingual_eval",
    "metrics/by_evalset.csv": "03_crosslingual_eval",
    "metrics/per_class.csv": "03_crosslingual_eval",
    "metrics/topic_stance.csv": "03_crosslingual_eval",
    "metrics/accuracy_unseen.csv": "03_crosslingual_eval",
    "metrics/eval_files.csv": "03_crosslingual_eval",
    "metrics/priors.csv": "03_crosslingual_eval",
    "metrics/answer_shares.csv": "03_crosslingual_eval",
    "metrics/pairs_gain.csv": "03_crosslingual_eval",
    "metrics/released_vs_recomputed.csv": "03_crosslingual_eval",
    "translation/translations.csv": "04_translation_ablation",
    "translation/quality.csv": "04_translation_ablation",
    "translation/predictions.csv": "04_translation_ablation",
    "translation/ablation.csv": "04_translation_ablation",
    "regression/coefficients.csv": "05_pretraining_bias",
    "regression/language_accuracy.csv": "05_pretraining_bias",
    "regression/codings.csv": "05_pretraining_bias",
    "regression/summary.txt": "05_pretraining_bias",
    "regression/authors_models.csv": "05_pretraining_bias",
    "regression/identification.csv": "05_pretraining_bias",
    "regression/authors_sensitivity.csv": "05_pretraining_bias",
    "regression/distances.csv": "05_pretraining_bias",
    "regression/distance_models.csv": "05_pretraining_bias",
    "regression/distance_comparison.csv": "05_pretraining_bias",
    "representations/lens.csv": "07_representations",
    "representations/abx.csv": "07_representations",
    "representations/probes.csv": "07_representations",
    "representations/pca.csv": "07_representations",
    "representations/items.csv": "07_representations",
    "claims/claims.csv": "08_claims",
    "data_size/runs/": "06_data_size",
    "data_size/predictions.csv": "06_data_size",
    "data_size/runs.csv": "06_data_size",
    "data_size/curve.csv": "06_data_size",
    "data_size/curve_gains.csv": "06_data_size",
    "data_size/diversity.csv": "06_data_size",
    "data_size/pairs.csv": "06_data_size",
    "archive/input/": "09_classify_archive",
    "archive/parts/": "09_classify_archive",
    "archive/run.json": "09_classify_archive",
    "archive/summary.csv": "09_classify_archive",
    "archive/errors.parquet": "09_classify_archive",
    "notebooks/": "run_all.sh",
    "report.html": "run_all.sh",
    "manifest.json": "xling.artifacts",
}

#: Figures under figures/RUN/ (PNG and PDF) by the notebook that draws them.
FIGURES_BY: dict[str, tuple[str, ...]] = {
    "00_data": (
        "posts_by_language_split_label",
        "unrelated_share_by_evalset",
        "form_beside_authors_tweets",
    ),
    "01_finetune": ("finetune_loss_curves",),
    "02_quantize": ("quantization_agreement_kl_size",),
    "03_crosslingual_eval": (
        "accuracy_heatmap_variant_by_language",
        "confusion_matrices_by_variant",
        "answer_shares_raw_and_calibrated",
        "topic_vs_stance_by_language",
    ),
    "04_translation_ablation": (
        "translation_accuracy_original_vs_translated",
        "translation_gap_by_quality",
    ),
    "05_pretraining_bias": (
        "accuracy_vs_pretraining_share_by_variant",
        "share_slopes_by_coding",
        *(f"authors_m{i}_coefficients" for i in range(1, 7)),
        "authors_m2_heatmap",
        "authors_m3_share_unrelated",
        "authors_m5_langshare",
        "accuracy_vs_language_distance",
    ),
    "06_data_size": (
        "data_size_learning_curve",
        "data_size_diversity_vs_volume",
        "data_size_pairs_vs_labels",
    ),
    "07_representations": (
        "representations_logit_lens",
        "representations_abx_by_layer",
        "representations_probe_transfer",
        "representations_pca_grid",
    ),
    "08_claims": ("claims_forest",),
    "09_classify_archive": ("archive_label_shares",),
}


class ContractError(KeyError):
    """A path the contract does not name, or a write by a notebook that does not own the file."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


def writer_of(relpath: str) -> str | None:
    """The writer :data:`CONTRACT` names for a path under runs/RUN/, or None."""
    relpath = relpath.replace(os.sep, "/")
    for pattern, writer in CONTRACT.items():
        if pattern.endswith("/"):
            if relpath == pattern[:-1] or relpath.startswith(pattern):
                return writer
        elif fnmatch.fnmatchcase(relpath, pattern):
            return writer
    return None


def figure_writer(name: str) -> str | None:
    """The notebook :data:`FIGURES_BY` names for a figure, or None."""
    return next((nb for nb, names in FIGURES_BY.items() if name in names), None)


def profile_file(profile: str) -> Path:
    """The YAML file holding a profile's parameters."""
    return PARAMS / f"{profile}.yaml"


def run_dir(profile: str) -> Path:
    """Artifacts of one run: runs/<run>/ (created on demand)."""
    path = RUNS / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(profile: str) -> Path:
    """Figures of one run: figures/<run>/ (created on demand)."""
    path = FIGURES / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifact(profile: str, relpath: str) -> Path:
    """runs/<run>/<relpath> for a file the contract names (its folder created); ContractError
    for any other, so a typo never writes a file no reader looks for."""
    if writer_of(relpath) is None:
        raise ContractError(
            f"runs/{profile}/{relpath} is not a contract file (xling.paths.CONTRACT names them: "
            f"{', '.join(CONTRACT)})"
        )
    path = run_dir(profile) / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def posts_csv(profile: str) -> Path:
    """The posts table written by notebook 00_data (a contract other notebooks read)."""
    return artifact(profile, "posts.csv")


def predictions_csv(profile: str) -> Path:
    """03's predictions table (original posts, and the authors' translated rows in ``paper``)."""
    return artifact(profile, "predictions.csv")


def translated_predictions_csv(profile: str) -> Path:
    """04's predictions on translated posts; :func:`xling.data.read_predictions` joins both."""
    return artifact(profile, "translation/predictions.csv")


def adapters_dir(profile: str) -> Path:
    """01's LoRA adapters, one folder per variant."""
    return artifact(profile, "adapters/")


def data_size_dir(profile: str) -> Path:
    """06's folder: its tables and, under runs/, one folder per training run."""
    path = run_dir(profile) / "data_size"
    path.mkdir(parents=True, exist_ok=True)
    return path


def executed_notebooks(profile: str) -> Path:
    """Executed copies of the notebooks, one per notebook, written by run_all.sh."""
    path = run_dir(profile) / "notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def display(path: str | os.PathLike[str]) -> str:
    """A path as messages show it: relative to the repository root when inside it."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def resolve(path: str | os.PathLike[str]) -> Path:
    """A user-given path: absolute as given, relative paths taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (ROOT / p).resolve()
