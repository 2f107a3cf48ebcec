"""Risk periods: runs of forecast days where P(score >= a clinical threshold) is high."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from forecasting_svc.domain import RiskPeriod
from forecasting_svc.instruments import ClinicalThreshold, InstrumentSpec
from forecasting_svc.models.conformal import exceedance_probability

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def threshold_probabilities(
    tau_scores: FloatArray, threshold: ClinicalThreshold, spec: InstrumentSpec
) -> FloatArray:
    """P(score >= threshold) per day from calibrated quantiles in score points (H, K).

    Whole-number instruments get a continuity correction: ``>= 15`` is read as
    ``> 14.5`` of the continuous forecast distribution.
    """
    cut = threshold.value - 0.5 if spec.whole_numbers else threshold.value
    return exceedance_probability(tau_scores, cut)


def find_risk_periods(
    dates: Sequence[datetime],
    probabilities: FloatArray,
    threshold: ClinicalThreshold,
    min_probability: float,
) -> list[RiskPeriod]:
    """Each maximal run of consecutive days with probability above ``min_probability``."""
    periods: list[RiskPeriod] = []
    above = probabilities > min_probability
    day = 0
    while day < len(above):
        if not above[day]:
            day += 1
            continue
        end = day
        while end + 1 < len(above) and above[end + 1]:
            end += 1
        peak = day + int(np.argmax(probabilities[day : end + 1]))
        periods.append(
            RiskPeriod(
                start_date=dates[day],
                end_date=dates[end],
                threshold=threshold.value,
                threshold_label=threshold.label,
                peak_probability=float(probabilities[peak]),
                peak_date=dates[peak],
            )
        )
        day = end + 1
    return periods
