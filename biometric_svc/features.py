"""Input windows of the early-warning model, the same for training and serving.

A window ends on day t and covers the ``WINDOW_DAYS`` days up to and
including t. Each metric is expressed as a robust z-score against the
patient's own baseline: median and MAD over the ``BASELINE_DAYS`` days that end
``RECENT_DAYS`` days before t, so a change of the last two weeks stands out
against what came before. z-scores are signed so that positive always means
"in the direction that accompanies worsening" (resting HR up; HRV, sleep and
activity down; sources in docs/biometric.md), which lets one model serve
patients in whom different metrics carry the signal.

Per day the model sees, in this order:

* ``len(METRICS)`` signed metric z-scores (0 where missing), clipped to ±6;
* ``len(METRICS)`` missing-data flags (1 = no value that day);
* the mean signed z-score of the available symptom indicators (mood counts
  with its sign reversed) and its missing flag. Symptoms give the context
  "already unwell" versus "still well", which a rise in the biometrics alone
  cannot tell apart.
"""

from __future__ import annotations

import warnings
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from biometric_svc.baseline import LOG_SCALE_METRICS, MAD_FLOOR, MAD_TO_SD, nan_median
from biometric_svc.domain import INSTRUMENT_WORSENING
from common.synthetic import INSTRUMENTS, METRICS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WINDOW_DAYS: Final = 28
RECENT_DAYS: Final = 14
BASELINE_DAYS: Final = 42
#: Days of history a window needs: its baseline plus the recent days.
HISTORY_DAYS: Final = BASELINE_DAYS + RECENT_DAYS
#: Days with data a metric's baseline needs; with fewer the metric counts as missing.
MIN_BASELINE_VALUES: Final = 14
Z_CLIP: Final = 6.0

#: Sign of each metric's change when symptoms worsen (physiology, see module doc).
METRIC_WORSENING: Final[dict[str, int]] = {
    "resting_heart_rate": 1,
    "hrv_rmssd": -1,
    "sleep_duration": -1,
    "sleep_efficiency": -1,
    "steps": -1,
    "active_minutes": -1,
}
#: Smallest MAD of each instrument's daily score (one scale point or a tenth of 10).
INSTRUMENT_MAD_FLOOR: Final[dict[str, float]] = {
    "phq9": 1.0,
    "gad7": 1.0,
    "mood": 0.3,
    "anxiety": 0.3,
}

N_METRICS: Final = len(METRICS)
FEATURE_NAMES: Final = (
    *(f"z_{m}" for m in METRICS),
    *(f"missing_{m}" for m in METRICS),
    "z_symptoms",
    "missing_symptoms",
)
N_FEATURES: Final = len(FEATURE_NAMES)


def transform_metrics(biometrics: FloatArray) -> FloatArray:
    """Log1p where the baseline works on a log scale; any leading shape, METRICS last."""
    out = biometrics.astype(np.float64, copy=True)
    for j, name in enumerate(METRICS):
        if name in LOG_SCALE_METRICS:
            out[..., j] = np.log1p(np.clip(out[..., j], 0.0, None))
    return out


def _baseline_stats(
    values: FloatArray, ends: IntArray, floors: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Median and floored MAD over each end's baseline days; values (days, channels)."""
    windows = sliding_window_view(values, BASELINE_DAYS, axis=0)  # (days-B+1, channels, B)
    chosen = windows[ends - HISTORY_DAYS + 1]
    # nan_median equals np.nanmedian (NaN when a window has no value, handled below).
    median = nan_median(chosen)
    mad = nan_median(np.abs(chosen - median[..., None]))
    enough = np.isfinite(chosen).sum(axis=-1) >= MIN_BASELINE_VALUES
    median = np.where(enough, median, np.nan)
    return median, np.maximum(np.where(enough, mad, np.nan), floors)


def patient_windows(
    biometrics: FloatArray, indicators: FloatArray, ends: IntArray
) -> npt.NDArray[np.float32]:
    """Windows (len(ends), WINDOW_DAYS, N_FEATURES) for one patient's daily arrays.

    ``biometrics`` is (days, METRICS) in natural units, ``indicators`` (days,
    INSTRUMENTS); each end must be >= HISTORY_DAYS - 1.
    """
    if ends.size == 0:
        return np.zeros((0, WINDOW_DAYS, N_FEATURES), dtype=np.float32)
    if int(ends.min()) < HISTORY_DAYS - 1:
        raise ValueError(f"ends: every window needs {HISTORY_DAYS} days of history")
    metric_values = transform_metrics(biometrics)
    metric_floor = np.array([MAD_FLOOR[m] for m in METRICS])
    metric_median, metric_mad = _baseline_stats(metric_values, ends, metric_floor)
    symptom_floor = np.array([INSTRUMENT_MAD_FLOOR[i] for i in INSTRUMENTS])
    symptom_median, symptom_mad = _baseline_stats(indicators, ends, symptom_floor)

    offsets = ends[:, None] - np.arange(WINDOW_DAYS - 1, -1, -1)[None, :]  # (n, W)
    metric_sign = np.array([METRIC_WORSENING[m] for m in METRICS], dtype=np.float64)
    metric_z = (
        (metric_values[offsets] - metric_median[:, None, :])
        / (MAD_TO_SD * metric_mad[:, None, :])
        * metric_sign
    )
    symptom_sign = np.array([INSTRUMENT_WORSENING[i] for i in INSTRUMENTS], dtype=np.float64)
    symptom_z = (
        (indicators[offsets] - symptom_median[:, None, :])
        / (MAD_TO_SD * symptom_mad[:, None, :])
        * symptom_sign
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a day without any indicator -> NaN
        symptom_mean = np.nanmean(symptom_z, axis=-1)
    metric_missing = ~np.isfinite(metric_z)
    symptom_missing = ~np.isfinite(symptom_mean)
    features = np.concatenate(
        [
            np.clip(np.nan_to_num(metric_z, nan=0.0), -Z_CLIP, Z_CLIP),
            metric_missing.astype(np.float64),
            np.clip(np.nan_to_num(symptom_mean, nan=0.0), -Z_CLIP, Z_CLIP)[..., None],
            symptom_missing.astype(np.float64)[..., None],
        ],
        axis=-1,
    )
    return features.astype(np.float32)


def valid_ends(days: int) -> IntArray:
    """Every day that has a full history, as window end indices."""
    return np.arange(HISTORY_DAYS - 1, days, dtype=np.int64)
