"""Scores of probabilistic predictions: Brier score, expected calibration error, AUROC."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ECE_BINS: Final = 10


def brier_score(probability: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Mean squared difference between probability and the 0/1 outcome (lower is better)."""
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(
    probability: npt.ArrayLike, outcome: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """ECE with ``bins`` equal-width bins: sum over bins of (share of rows) x |mean p - rate|.

    The last bin is closed on the right, so a probability of exactly 1 is counted.
    """
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if p.size == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        count = int(in_bin.sum())
        if count:
            total += count / p.size * abs(float(p[in_bin].mean()) - float(y[in_bin].mean()))
    return total


def auroc(score: npt.ArrayLike, outcome: npt.ArrayLike) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties count one half)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.bool_)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_scores = s[order]
    # Average ranks over ties.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [s.size]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    rank_sum = float(ranks[y].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
