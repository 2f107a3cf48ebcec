"""Deterioration labels for data that carries no relapse onsets (the CSV path).

The synthetic cohort knows its relapse onsets (``common.synthetic``). Real
data does not, so onsets are derived from PHQ-9 with a documented rule: a
day is an onset when its PHQ-9 is at least 15 (moderately severe; Kroenke et
al. 2001, PMID 11556941) and at least 5 points above the median of the
previous 28 days (5 points is the PHQ-9's minimal clinically important change;
Löwe et al. 2004, PMID 15550799), and no onset was found in the 28 days before
(one episode is one onset, matching the cohort's refractory period). A day is
labelled 1 when an onset falls in the following ``horizon_days``; days whose
horizon runs past the last PHQ-9 observation are unknown (-1) and not trained on.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ONSET_MIN_SCORE: Final = 15.0
ONSET_MIN_RISE: Final = 5.0
LOOKBACK_DAYS: Final = 28
REFRACTORY_DAYS: Final = 28
MIN_PRIOR_SCORES: Final = 2
UNKNOWN_LABEL: Final = -1


def phq9_onsets(phq9: FloatArray) -> IntArray:
    """Day indices of onsets in a daily PHQ-9 series (NaN = not observed)."""
    onsets: list[int] = []
    for day in np.flatnonzero(np.isfinite(phq9) & (phq9 >= ONSET_MIN_SCORE)).tolist():
        if onsets and day - onsets[-1] <= REFRACTORY_DAYS:
            continue
        prior = phq9[max(0, day - LOOKBACK_DAYS) : day]
        prior = prior[np.isfinite(prior)]
        if prior.size >= MIN_PRIOR_SCORES and phq9[day] - np.median(prior) >= ONSET_MIN_RISE:
            onsets.append(day)
    return np.array(onsets, dtype=np.int64)


def labels_from_onsets(days: int, onsets: IntArray, horizon_days: int, last_known: int) -> IntArray:
    """1 if an onset falls in (t, t + horizon]; UNKNOWN_LABEL where t + horizon > last_known."""
    counts = np.zeros(days + horizon_days + 1, dtype=np.int64)
    np.add.at(counts, onsets, 1)
    cumulative = np.cumsum(counts)
    t = np.arange(days)
    ahead = cumulative[t + horizon_days] - cumulative[t]
    labels = (ahead > 0).astype(np.int64)
    labels[t + horizon_days > last_known] = UNKNOWN_LABEL
    return labels


def phq9_deterioration_labels(phq9: FloatArray, horizon_days: int = 7) -> IntArray:
    observed = np.flatnonzero(np.isfinite(phq9))
    if observed.size == 0:
        return np.full(phq9.shape[0], UNKNOWN_LABEL, dtype=np.int64)
    return labels_from_onsets(
        phq9.shape[0], phq9_onsets(phq9), horizon_days, last_known=int(observed[-1])
    )
