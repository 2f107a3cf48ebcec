"""Lag, rolling, seasonal, covariate and calendar features at a forecast origin.

Both models predict the score ``h`` days after an origin day ``t`` relative to
an *anchor*: the mean of the observed scores in the 7 days up to ``t`` (or the
last observed score when that week is empty). Working in differences from the
anchor makes one model serve patients at every severity level.

The tabular features (XGBoost's input) are computed for every (series, day)
of a panel at once with cumulative sums, then gathered for the requested
(series, origin, horizon) rows. Everything is in 0..1 score units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from forecasting_svc.models.panel import MAX_DAYS_SINCE, MEDICATION_FEATURES, Panel

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

ANCHOR_DAYS: Final = 7
LAGS: Final = (0, 1, 2, 3, 4, 5, 6, 13)
_SEASONAL_WEEKS: Final = 4

ORIGIN_FEATURES: Final = (
    "instrument",
    "origin_weekday",
    "level_7d",
    "last_value",
    "days_since_observation",
    "observed_fraction_28d",
    *(f"lag_{k}" for k in LAGS),
    "rolling_mean_14",
    "rolling_mean_28",
    "rolling_std_7",
    "rolling_std_28",
    "slope_14",
    "slope_28",
    "sleep_hours_7d",
    "sleep_7d_vs_28d",
    "steps_7d_vs_28d",
    *MEDICATION_FEATURES,
)
HORIZON_FEATURES: Final = ("horizon", "target_weekday", "weekday_effect", "same_weekday_last")
FEATURE_NAMES: Final = (*ORIGIN_FEATURES, *HORIZON_FEATURES)


def _window_sum(x: FloatArray, window: int) -> FloatArray:
    """Sum over the ``window`` days ending at each day (fewer at the start)."""
    padded = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    t = np.arange(x.shape[1])
    low = np.maximum(t + 1 - window, 0)
    result: FloatArray = padded[:, t + 1] - padded[:, low]
    return result


def _window_mean(values: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """Mean of the observed values in each window, and the number observed."""
    observed = np.isfinite(values)
    count = _window_sum(observed.astype(np.float64), window)
    total = _window_sum(np.where(observed, values, 0.0), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return mean, count


def _window_std(values: FloatArray, window: int) -> FloatArray:
    observed = np.isfinite(values)
    count = _window_sum(observed.astype(np.float64), window)
    total = _window_sum(np.where(observed, values, 0.0), window)
    squares = _window_sum(np.where(observed, values**2, 0.0), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / np.maximum(count, 1.0)
        variance = np.maximum(squares / np.maximum(count, 1.0) - mean**2, 0.0)
        result: FloatArray = np.where(count >= 2, np.sqrt(variance), np.nan)
    return result


def _window_slope(values: FloatArray, window: int) -> FloatArray:
    """Least-squares slope per week of the observed values in each window."""
    observed = np.isfinite(values)
    day = np.broadcast_to(np.arange(values.shape[1], dtype=np.float64), values.shape)
    y = np.where(observed, values, 0.0)
    x = np.where(observed, day, 0.0)
    n = _window_sum(observed.astype(np.float64), window)
    sx, sy = _window_sum(x, window), _window_sum(y, window)
    sxx, sxy = _window_sum(x * x, window), _window_sum(x * y, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = n * sxx - sx * sx
        slope = (n * sxy - sx * sy) / denominator
        result: FloatArray = np.where((n >= 3) & (denominator > 0), slope * 7.0, np.nan)
    return result


def _forward_fill(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Last observed value up to each day, and the days since it (NaN/cap when none)."""
    observed = np.isfinite(values)
    t = np.arange(values.shape[1])
    last_index = np.maximum.accumulate(np.where(observed, t[None, :], -1), axis=1)
    has = last_index >= 0
    rows = np.arange(values.shape[0])[:, None]
    filled = np.where(has, values[rows, np.maximum(last_index, 0)], np.nan)
    since = np.where(has, np.minimum(t[None, :] - last_index, MAX_DAYS_SINCE), MAX_DAYS_SINCE)
    return filled, since.astype(np.float64)


def _shift(values: FloatArray, days: int) -> FloatArray:
    """values[:, t - days] at column t (NaN before the start)."""
    if days == 0:
        return values
    shifted = np.full_like(values, np.nan)
    shifted[:, days:] = values[:, :-days]
    return shifted


def anchor_levels(values: FloatArray) -> FloatArray:
    """(N, T) anchor of every origin: 7-day observed mean, else last observed, else NaN."""
    mean7, count7 = _window_mean(values, ANCHOR_DAYS)
    filled, _ = _forward_fill(values)
    result: FloatArray = np.where(count7 > 0, mean7, filled)
    return result


def horizon_weekday_offset(horizons: IntArray) -> IntArray:
    """k such that day t - k has the weekday of day t + h."""
    return np.asarray((7 - horizons % 7) % 7, dtype=np.int64)


@dataclass(frozen=True)
class TabularFeatures:
    """Per-day feature arrays of a panel; ``rows`` gathers model input rows from them."""

    origin: Float32Array  # (N, T, len(ORIGIN_FEATURES))
    seasonal: Float32Array  # (N, T, 7): weekday effect by offset k
    same_weekday: Float32Array  # (N, T, 7): last value on the weekday t - k, minus anchor
    anchor: FloatArray  # (N, T)
    weekday: IntArray  # (N, T)

    @classmethod
    def build(cls, panel: Panel) -> TabularFeatures:
        values = panel.values
        anchor = anchor_levels(values)
        filled, since = _forward_fill(values)
        _, count28 = _window_mean(values, 28)
        mean14, _ = _window_mean(values, 14)
        mean28, _ = _window_mean(values, 28)
        sleep7, _ = _window_mean(panel.sleep, 7)
        sleep28, _ = _window_mean(panel.sleep, 28)
        log_steps = np.log1p(panel.steps)
        steps7, _ = _window_mean(log_steps, 7)
        steps28, _ = _window_mean(log_steps, 28)
        weekday = panel.weekdays()
        columns: list[FloatArray] = [
            np.broadcast_to(panel.instrument[:, None], values.shape).astype(np.float64),
            weekday.astype(np.float64),
            anchor,
            filled - anchor,
            since,
            count28 / 28.0,
            *(_shift(values, k) - anchor for k in LAGS),
            mean14 - anchor,
            mean28 - anchor,
            _window_std(values, 7),
            _window_std(values, 28),
            _window_slope(values, 14),
            _window_slope(values, 28),
            sleep7,
            sleep7 - sleep28,
            steps7 - steps28,
            *(panel.meds[:, :, j] for j in range(panel.meds.shape[2])),
        ]
        origin = np.stack(columns, axis=2).astype(np.float32)
        seasonal = np.empty((*values.shape, 7), dtype=np.float32)
        same_weekday = np.empty((*values.shape, 7), dtype=np.float32)
        for k in range(7):
            shifted = [_shift(values, k + 7 * j) for j in range(_SEASONAL_WEEKS)]
            stack = np.stack(shifted, axis=0)
            observed = np.isfinite(stack)
            count = observed.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(observed, stack, 0.0).sum(axis=0) / np.maximum(count, 1)
            seasonal[:, :, k] = np.where(count > 0, mean - mean28, np.nan)
            same_weekday[:, :, k] = _weekly_fill(_shift(values, k)) - anchor
        return cls(
            origin=origin,
            seasonal=seasonal,
            same_weekday=same_weekday,
            anchor=anchor,
            weekday=weekday,
        )

    def rows(self, series: IntArray, origins: IntArray, horizons: IntArray) -> Float32Array:
        """(M, len(FEATURE_NAMES)) input rows for (series, origin, horizon) triples."""
        k = horizon_weekday_offset(horizons)
        target_weekday = (self.weekday[series, origins] + horizons) % 7
        extra = np.stack(
            [
                horizons.astype(np.float32),
                target_weekday.astype(np.float32),
                self.seasonal[series, origins, k],
                self.same_weekday[series, origins, k],
            ],
            axis=1,
        )
        result: Float32Array = np.concatenate([self.origin[series, origins], extra], axis=1)
        return result


def _weekly_fill(values: FloatArray) -> FloatArray:
    """Forward fill along stride-7 chains: column t takes the latest of t, t - 7, t - 14, ...

    Applied to values shifted by k days, column t ends up holding the most
    recent observed value on the weekday of day t - k.
    """
    result = values.copy()
    for start in range(7):
        chain = result[:, start::7]
        filled, _ = _forward_fill(chain)
        result[:, start::7] = filled
    return result
