"""Figures: one module per notebook, shared helpers in ``common``. Every function takes tables and
returns a matplotlib Figure; :func:`save_figure` (from :mod:`xling.artifacts`) writes PNG and PDF
under figures/<run>/, records them and shows the PNG in the notebook.

Layer 6. May import: the layers below (constants of :mod:`xling.analysis` for labels and
orders, :mod:`xling.schema`, :mod:`xling.paths`, :mod:`xling.artifacts`); nothing below imports
plots.
"""

from __future__ import annotations

from xling.artifacts import save_figure  # noqa: F401
from xling.plots.archive import (  # noqa: F401
    plot_archive_summary,
)
from xling.plots.common import (  # noqa: F401
    LABEL_COLORS,
    trained_on,
)
from xling.plots.data import (  # noqa: F401
    plot_form_gap,
    plot_label_counts,
    plot_unrelated_share,
)
from xling.plots.datasize import (  # noqa: F401
    plot_diversity,
    plot_learning_curve,
    plot_pairs,
)
from xling.plots.evaluation import (  # noqa: F401
    plot_accuracy_heatmap,
    plot_answer_shares,
    plot_confusion_matrices,
    plot_topic_stance,
)
from xling.plots.finetune import (  # noqa: F401
    plot_loss_curves,
)
from xling.plots.quantize import (  # noqa: F401
    plot_quantization,
)
from xling.plots.regression import (  # noqa: F401
    plot_distance_regression,
    plot_share_coefficients,
    plot_share_regression,
)
from xling.plots.representations import (  # noqa: F401
    plot_abx,
    plot_lens,
    plot_pca_grid,
    plot_probes,
)
from xling.plots.translation import (  # noqa: F401
    COMPARISON_COLORS,
    SIDE_COLORS,
    plot_gap_by_quality,
    plot_translation_accuracy,
)
