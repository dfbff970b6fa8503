"""Contextual calibration of label scores (Zhao et al. 2021, *Calibrate Before Use*).

A model's answer distribution carries a prior of its own: the untuned demo model answers
"1" (the first label's number) to nearly everything, and a short fine-tune moves it off that
prior on posts like its training posts, not on others. Zhao et al. estimate the prior from
*content-free* inputs (``N/A``, the empty string, ``[MASK]``) put through the very same prompt:
whatever the model prefers there, it prefers for reasons that are not the post. Dividing each
post's label probabilities by that prior (their W = diag(p_cf)^-1, b = 0) and renormalizing
removes it. Here the probabilities are the four labels' answer probabilities renormalized
over the labels (:func:`label_probabilities`), so the
calibrated scores are again log-probabilities over the labels.

Method ``calibrated`` of :func:`xling.infer.classify` is method ``score`` read this way: it
costs the content-free inputs (three prompts per model), nothing more, as every post's score is
cached.

Layer 3. May import: numpy only.
"""

from __future__ import annotations

import numpy as np

#: Zhao et al.'s content-free inputs, put through the prompt in place of a post.
CONTENT_FREE = ("N/A", "", "[MASK]")


def label_probabilities(logp: np.ndarray) -> np.ndarray:
    """Rows of label log-scores -> probabilities over the labels (each row sums to 1): the one
    renormalization of the four answers' log-probabilities that the scorers, the playground and
    calibration share."""
    logp = np.asarray(logp, dtype=np.float64)
    if logp.ndim != 2:
        raise ValueError(f"label scores must be a 2-d array (posts x labels), not {logp.shape}")
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def content_free_prior(logp_content_free: np.ndarray) -> np.ndarray:
    """The model's prior over the labels: the mean, over the content-free inputs, of each
    input's label distribution (Zhao et al.'s p_cf). One row per content-free input."""
    p = label_probabilities(logp_content_free)
    if len(p) == 0:
        raise ValueError("no content-free input was scored: the prior needs at least one")
    prior = p.mean(axis=0)
    return prior / prior.sum()


def calibrate(logp: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Each post's label distribution divided by ``prior`` and renormalized, as log-probabilities
    over the labels (same shape as ``logp``)."""
    p = label_probabilities(logp)
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != (p.shape[1],):
        raise ValueError(f"a prior over {p.shape[1]} labels is needed, not shape {prior.shape}")
    if not np.all(np.isfinite(prior)) or np.any(prior <= 0):
        raise ValueError(f"the prior must be positive for every label, got {prior.tolist()}")
    q = p / prior
    q /= q.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(q)
