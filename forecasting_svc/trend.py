"""Trend of an instrument: least-squares slope of history plus forecast, Mann-Kendall significance.

The slope (points per week) is fitted to the observed daily scores of the
last 28 days followed by the forecast medians, so it describes the whole
trajectory. Significance comes from the observed days only: a test on model
outputs would only measure how smooth the model is. The test is Mann-Kendall
with the Hamed & Rao (J Hydrol 1998;204:182-196) variance correction for
autocorrelation (daily symptom scores are strongly autocorrelated, which
makes the uncorrected test far too eager). A trend is reported as worsening or
improving only when it is significant, the test's direction agrees with the
slope, and the slope is clinically meaningful (at least the instrument's
``meaningful_change_per_week``, see forecasting_svc/instruments.py): a
significant drift of 0.02 mood points a week is stable to a clinician. For
mood, where a higher score is better, a rise is improving.
"""

from __future__ import annotations

import logging
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from forecasting_svc.domain import Trend, TrendDirection

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

TREND_DAYS: Final = 28
SIGNIFICANCE_LEVEL: Final = 0.05
_MIN_POINTS: Final = 4


def ols_slope(days: FloatArray, values: FloatArray) -> float:
    if len(days) < 2 or np.ptp(days) == 0:
        return 0.0
    centered = days - days.mean()
    return float((centered * (values - values.mean())).sum() / (centered**2).sum())


def sen_slope(days: FloatArray, values: FloatArray) -> float:
    i, j = np.triu_indices(len(days), k=1)
    dt = days[j] - days[i]
    usable = dt != 0
    if not usable.any():
        return 0.0
    return float(np.median((values[j] - values[i])[usable] / dt[usable]))


def _ranks(values: FloatArray) -> FloatArray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    # Average the ranks of ties.
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def _hamed_rao_factor(days: FloatArray, values: FloatArray) -> float:
    """n / n*: variance inflation from significant autocorrelation of detrended ranks."""
    n = len(values)
    detrended = values - sen_slope(days, values) * days
    ranks = _ranks(detrended)
    centered = ranks - ranks.mean()
    denominator = float((centered**2).sum())
    if denominator == 0:
        return 1.0
    bound = 1.96 / math.sqrt(n)
    total = 0.0
    for k in range(1, n - 2):
        rho = float((centered[:-k] * centered[k:]).sum() / denominator)
        if abs(rho) > bound:
            total += (n - k) * (n - k - 1) * (n - k - 2) * rho
    return max(1.0 + 2.0 * total / (n * (n - 1) * (n - 2)), 1.0)


def mann_kendall(days: FloatArray, values: FloatArray) -> tuple[float, float]:
    """(S statistic, two-sided p-value) with tie and autocorrelation corrections."""
    n = len(values)
    if n < _MIN_POINTS:
        return 0.0, 1.0
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(values[j] - values[i]).sum())
    _, tie_counts = np.unique(values, return_counts=True)
    ties = float((tie_counts * (tie_counts - 1) * (2 * tie_counts + 5)).sum())
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    variance *= _hamed_rao_factor(days, values)
    if variance <= 0 or s == 0:
        return s, 1.0
    z = (s - math.copysign(1.0, s)) / math.sqrt(variance)
    return s, float(math.erfc(abs(z) / math.sqrt(2.0)))


def compute_trend(
    observed_days: FloatArray,
    observed_values: FloatArray,
    forecast_values: FloatArray,
    *,
    higher_is_worse: bool,
    meaningful_change_per_week: float = 0.0,
) -> Trend:
    """``observed_days`` are offsets <= 0 from the last observed day; forecasts follow at 1..H."""
    recent = observed_days > -TREND_DAYS
    days_obs, values_obs = observed_days[recent], observed_values[recent]
    days_all = np.concatenate([days_obs, np.arange(1, len(forecast_values) + 1, dtype=np.float64)])
    values_all = np.concatenate([values_obs, forecast_values])
    slope_per_week = ols_slope(days_all, values_all) * 7.0
    statistic, p_value = mann_kendall(days_obs, values_obs)
    significant = p_value < SIGNIFICANCE_LEVEL
    direction = TrendDirection.STABLE
    if (
        significant
        and slope_per_week != 0
        and abs(slope_per_week) >= meaningful_change_per_week
        and math.copysign(1, statistic) == math.copysign(1, slope_per_week)
    ):
        rising = slope_per_week > 0
        direction = (
            TrendDirection.WORSENING if rising == higher_is_worse else TrendDirection.IMPROVING
        )
    return Trend(
        direction=direction,
        slope_per_week=slope_per_week,
        p_value=p_value,
        significant=significant,
    )
