"""The analysis stage: everything computed from the predictions table (and the experiments of
notebook 06 that train and score to get one).

Modules: ``metrics`` (accuracy, F1, bootstrap intervals, topic versus stance), ``released`` (the
authors' released predictions and metrics files), ``ablation`` (translated against original),
``regression`` (pretraining share), ``datasize`` (learning curve, diversity versus volume),
``cost`` (dollars per million posts), ``representations`` (notebook 07: logit lens, ABX, probes and
PCA on the hidden states of :mod:`xling.models.hidden`).

Layer 5. May import: the layers below (:mod:`xling.infer`, :mod:`xling.translate`,
:mod:`xling.models`, :mod:`xling.data` and the foundation).
"""

from __future__ import annotations
