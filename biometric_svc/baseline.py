"""A patient's own robust, weekday-aware baseline per metric.

For each day the baseline is the median and MAD of the same metric over the
trailing window *before* that day, taken only over days of the same type
(weekday or weekend): sleep, activity and resting heart rate differ
systematically at weekends, and a Saturday judged against Tuesdays would be
flagged every week. With fewer than ``MIN_SAME_TYPE`` same-type days the
whole window is used. The robust z-score is ``(value - median) / (1.4826 *
MAD)`` (1.4826 makes the MAD a consistent SD estimate for normal data;
Rousseeuw & Croux, JASA 1993; Leys et al., J Exp Soc Psychol 2013). The MAD is
floored at a small per-metric resolution so a very regular patient (MAD ~ 0)
does not turn every ordinary wobble into an anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from biometric_svc.domain import MetricBaseline
from common.biometric_metrics import METRICS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAD_TO_SD: Final = 1.4826
#: Same-type (weekday / weekend) days a baseline needs before it ignores the other type.
MIN_SAME_TYPE: Final = 4
#: Days of any type a baseline needs at all.
MIN_BASELINE_DAYS: Final = 7
#: The MAD looks back this many baseline windows (see ``trailing_baseline``).
SCALE_WINDOWS: Final = 3
#: Metrics whose z-scores are computed on log1p values.
LOG_SCALE_METRICS: Final = frozenset({"hrv_rmssd", "hrv_sdnn", "steps", "active_minutes"})
#: Smallest MAD used for z-scores: in the metric's unit, or in log units for LOG_SCALE_METRICS.
MAD_FLOOR: Final[dict[str, float]] = {
    "resting_heart_rate": 1.0,
    "hrv_rmssd": 0.03,
    "sleep_duration": 0.25,
    "sleep_efficiency": 0.01,
    "steps": 0.03,
    "active_minutes": 0.05,
    "heart_rate": 1.0,
    "hrv_sdnn": 0.03,
}
#: Smallest MAD used for thresholds on the natural scale (monitoring plan).
NATURAL_MAD_FLOOR: Final[dict[str, float]] = {
    "resting_heart_rate": 1.0,
    "hrv_rmssd": 2.0,
    "sleep_duration": 0.25,
    "sleep_efficiency": 0.01,
    "steps": 250.0,
    "active_minutes": 3.0,
    "heart_rate": 1.0,
    "hrv_sdnn": 2.0,
}


@dataclass(frozen=True)
class DailyBaseline:
    """Per day and metric: the trailing baseline's median, MAD and the robust z of the day."""

    median: FloatArray  # (days, metrics), natural units
    mad: FloatArray  # log units for LOG_SCALE_METRICS
    robust_z: FloatArray  # NaN where the day has no value or no baseline


def is_weekend(dates: pd.DatetimeIndex) -> BoolArray:
    return np.asarray(dates.dayofweek >= 5, dtype=np.bool_)


def nan_median(values: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN (NaN for a row without values), by one sort.

    ``np.sort`` puts NaN last, so a row's k finite values are its first k: the
    median is the mean of the middle two (or the middle one, taken twice,
    which is exact). Same result as ``np.nanmedian(values, axis=-1)``, which
    goes through masked arrays and is several times slower on windows.
    """
    ordered = np.sort(values, axis=-1)
    count = np.isfinite(values).sum(axis=-1)
    last = max(values.shape[-1] - 1, 0)
    low = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, last)[..., None], axis=-1)
    high = np.take_along_axis(ordered, np.clip(count // 2, 0, last)[..., None], axis=-1)
    result: FloatArray = np.where(count > 0, (low[..., 0] + high[..., 0]) / 2.0, np.nan)
    return result


def _windows(values: npt.NDArray[Any], window_days: int, fill: float | bool) -> npt.NDArray[Any]:
    """Along the last axis, row t holds the ``window_days`` values before day t (padded
    with ``fill``): (..., days) -> (..., days, window_days)."""
    pad = np.full((*values.shape[:-1], window_days), fill, dtype=values.dtype)
    padded = np.concatenate([pad, values], axis=-1)
    result: npt.NDArray[Any] = sliding_window_view(padded, window_days, axis=-1)[
        ..., : values.shape[-1], :
    ]
    return result


def trailing_baseline(
    values: FloatArray, weekend: BoolArray, window_days: int
) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of the days before each day (NaN where too few days).

    ``values`` is (days,) or (days, metrics); every metric is computed at once.
    The median is that of the day's own type (weekday or weekend) over the
    ``window_days`` before it, when the window holds ``MIN_SAME_TYPE`` such
    days, else over all of them. The MAD is the median absolute distance of
    earlier days from *their own* trailing medians, over ``SCALE_WINDOWS``
    times as many days: day-to-day variability changes more slowly than the
    level, and a MAD from a few weeks of autocorrelated data is noisy enough
    to double the rate of spurious |z| >= 3 days.
    """
    series = values.T  # days last: (days,) or (metrics, days)
    windows = _windows(series, window_days, np.nan)
    window_types = _windows(weekend, window_days, False)
    all_median = nan_median(windows)
    all_count = np.isfinite(windows).sum(axis=-1)
    type_median = {}
    for kind in (False, True):
        of_kind = np.where(window_types == kind, windows, np.nan)
        enough = np.isfinite(of_kind).sum(axis=-1) >= MIN_SAME_TYPE
        type_median[kind] = np.where(enough, nan_median(of_kind), all_median)
    own_type = np.where(weekend, type_median[True], type_median[False])
    median = np.where(all_count >= MIN_BASELINE_DAYS, own_type, np.nan)
    residual = np.abs(series - median)
    scale_windows = _windows(residual, window_days * SCALE_WINDOWS, np.nan)
    mad = nan_median(scale_windows)
    mad = np.where(np.isfinite(scale_windows).sum(axis=-1) >= MIN_BASELINE_DAYS, mad, np.nan)
    return median.T, mad.T


def daily_baseline(
    biometrics: FloatArray, dates: pd.DatetimeIndex, window_days: int
) -> DailyBaseline:
    log_scale = [name in LOG_SCALE_METRICS for name in METRICS]
    values = np.column_stack(
        [
            np.log1p(np.clip(biometrics[:, j], 0.0, None)) if log else biometrics[:, j]
            for j, log in enumerate(log_scale)
        ]
    ).reshape(biometrics.shape)
    median, mad = trailing_baseline(values, is_weekend(dates), window_days)
    mad = np.maximum(mad, np.array([MAD_FLOOR[name] for name in METRICS]))
    robust_z = (values - median) / (MAD_TO_SD * mad)
    medians = np.column_stack(
        [np.expm1(median[:, j]) if log else median[:, j] for j, log in enumerate(log_scale)]
    ).reshape(biometrics.shape)
    return DailyBaseline(median=medians, mad=mad, robust_z=robust_z)


def current_baselines(biometrics: FloatArray, window_days: int) -> tuple[MetricBaseline, ...]:
    """Median and MAD over the most recent ``window_days`` days, per metric with enough data."""
    recent = biometrics[-window_days:]
    baselines = []
    for j, name in enumerate(METRICS):
        values = recent[:, j][np.isfinite(recent[:, j])]
        if values.size < MIN_BASELINE_DAYS:
            continue
        median = float(np.median(values))
        scaled = np.log1p(np.clip(values, 0.0, None)) if name in LOG_SCALE_METRICS else values
        scale_median = float(np.median(scaled))
        baselines.append(
            MetricBaseline(
                metric=name,
                median=median,
                mad=float(np.median(np.abs(values - median))),
                days=int(values.size),
                scale_median=scale_median,
                scale_mad=float(np.median(np.abs(scaled - scale_median))),
            )
        )
    return tuple(baselines)


def robust_sd(baseline: MetricBaseline) -> float:
    """The baseline's SD estimate, 1.4826 * MAD with the metric's floor."""
    return MAD_TO_SD * max(baseline.mad, NATURAL_MAD_FLOOR[baseline.metric])


def alert_limit(baseline: MetricBaseline, robust_sds: float) -> float:
    """The value ``robust_sds`` robust SD from the median (signed), in natural units.

    Computed on the z-score scale, so an alert fires on the days anomaly
    detection calls the same departure, and a limit below the median of a
    log-scale metric stays positive however wide its spread.
    """
    if baseline.metric not in LOG_SCALE_METRICS:
        return baseline.median + robust_sds * robust_sd(baseline)
    spread = MAD_TO_SD * max(baseline.scale_mad, MAD_FLOOR[baseline.metric])
    return float(np.expm1(baseline.scale_median + robust_sds * spread))
