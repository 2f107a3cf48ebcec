"""Does a patient's recent data look like anything the early-warning model was trained on?

A model scored on inputs unlike its training data answers with the same
confidence as on familiar ones; this check says when not to trust it. Each
window the model scores is summarised by ``SUMMARY_NAMES``: per metric, its
usual level and its day-to-day spread over the baseline days (median and MAD,
on the log scale where the baseline works on one), its shift over the last
week in robust SDs, and its share of missing days; and the symptom shift and
missingness. At training, the 0.5th and 99.5th percentiles of every summary
over the training windows are stored in the signed artifact. At serving, a
summary's *distance* is how far it lies outside that range, in units of the
range's width (0 inside). The window is out of distribution when its largest
distance exceeds ``threshold``: the 99th percentile of that largest distance
over the validation patients' windows (patients the range was not built
from), so about 1 % of windows like the training data are flagged.

What it cannot see: data that look familiar but mean something else (a
cohort whose relapses come without prodromes has ordinary-looking inputs;
the per-world benchmark in docs/benchmarks/biometric.md shows the cost).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from biometric_svc.baseline import LOG_SCALE_METRICS
from biometric_svc.domain import METRIC_LABELS
from biometric_svc.features import (
    BASELINE_DAYS,
    HISTORY_DAYS,
    N_METRICS,
    transform_metrics,
)
from common.synthetic import METRICS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Days at the end of a window whose mean z-score is the recent shift.
SHIFT_DAYS: Final = 7
LOW_QUANTILE: Final = 0.005
HIGH_QUANTILE: Final = 0.995
#: Share of in-distribution (validation) windows allowed over the threshold.
FLAG_RATE: Final = 0.01

_KINDS: Final = ("level", "spread", "shift", "missing")
SUMMARY_NAMES: Final = (
    *(f"{kind}_{metric}" for kind in _KINDS for metric in METRICS),
    "shift_symptoms",
    "missing_symptoms",
)
_DESCRIPTIONS: Final = {
    "level": "usual level",
    "spread": "day-to-day spread",
    "shift": "change over the last week",
    "missing": "share of days without data",
}


def window_summaries(
    biometrics: FloatArray, windows: npt.NDArray[np.float32], ends: IntArray
) -> FloatArray:
    """(len(ends), len(SUMMARY_NAMES)) summaries; NaN where a summary has no data.

    ``biometrics`` is the patient's (days, METRICS) array in natural units and
    ``windows`` the model inputs ending at ``ends`` (features.patient_windows).
    """
    if ends.size == 0:
        return np.zeros((0, len(SUMMARY_NAMES)))
    values = transform_metrics(biometrics)
    baseline = sliding_window_view(values, BASELINE_DAYS, axis=0)[ends - HISTORY_DAYS + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric without data -> NaN
        level = np.nanmedian(baseline, axis=-1)
        spread = np.nanmedian(np.abs(baseline - level[..., None]), axis=-1)
        z = windows[:, -SHIFT_DAYS:, :N_METRICS].astype(np.float64)
        seen = windows[:, -SHIFT_DAYS:, N_METRICS : 2 * N_METRICS] < 0.5
        shift = np.where(seen.any(axis=1), (z * seen).sum(axis=1) / seen.sum(axis=1), np.nan)
        missing = windows[:, :, N_METRICS : 2 * N_METRICS].mean(axis=1, dtype=np.float64)
        symptoms_seen = windows[:, -SHIFT_DAYS:, 2 * N_METRICS + 1] < 0.5
        symptom_z = windows[:, -SHIFT_DAYS:, 2 * N_METRICS].astype(np.float64)
        symptom_shift = np.where(
            symptoms_seen.any(axis=1),
            (symptom_z * symptoms_seen).sum(axis=1) / symptoms_seen.sum(axis=1),
            np.nan,
        )
    symptom_missing = windows[:, :, 2 * N_METRICS + 1].mean(axis=1, dtype=np.float64)
    return np.concatenate(
        [level, spread, shift, missing, symptom_shift[:, None], symptom_missing[:, None]], axis=1
    )


@dataclass(frozen=True)
class DistributionCheck:
    out_of_distribution: bool
    #: Largest distance beyond the training range, in units of the range's width.
    distance: float
    reason: str


@dataclass(frozen=True)
class TrainingDistribution:
    """The training windows' range of every summary, and the flagging threshold."""

    low: FloatArray
    high: FloatArray
    threshold: float
    windows: int

    @classmethod
    def fit(cls, training: FloatArray, validation: FloatArray) -> TrainingDistribution:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a summary never seen -> NaN
            low = np.nanquantile(training, LOW_QUANTILE, axis=0)
            high = np.nanquantile(training, HIGH_QUANTILE, axis=0)
        fitted = cls(low=low, high=high, threshold=0.0, windows=int(training.shape[0]))
        distances = fitted.distances(validation).max(axis=1, initial=0.0)
        threshold = float(np.quantile(distances, 1.0 - FLAG_RATE)) if distances.size else 0.0
        return cls(low=low, high=high, threshold=threshold, windows=fitted.windows)

    def distances(self, summaries: FloatArray) -> FloatArray:
        """Per summary, how far outside [low, high] in units of its width; 0 inside or unknown."""
        width = np.maximum(self.high - self.low, 1e-6)
        beyond = np.maximum(summaries - self.high, self.low - summaries) / width
        return np.nan_to_num(np.maximum(beyond, 0.0), nan=0.0)

    def check(self, summary: FloatArray) -> DistributionCheck:
        distances = self.distances(summary[None, :])[0]
        worst = int(np.argmax(distances))
        distance = float(distances[worst])
        if distance <= self.threshold:
            return DistributionCheck(False, distance, "")
        name = SUMMARY_NAMES[worst]
        side = "above" if summary[worst] > self.high[worst] else "below"
        return DistributionCheck(
            True,
            distance,
            f"{_describe(name)} is {side} the range of the {self.windows:,} training windows "
            f"(by {distance:.1f} times that range's width); the early warning was not trained "
            "on data like this patient's",
        )

    def to_json(self) -> dict[str, object]:
        return {
            "summaries": list(SUMMARY_NAMES),
            "low": [_finite_or_none(v) for v in self.low],
            "high": [_finite_or_none(v) for v in self.high],
            "threshold": self.threshold,
            "windows": self.windows,
        }

    @classmethod
    def from_json(cls, raw: Any) -> TrainingDistribution:
        """ValueError/TypeError/KeyError when malformed (the caller maps them)."""
        if tuple(raw["summaries"]) != SUMMARY_NAMES:
            raise ValueError("summaries differ from this code's")
        low = np.array([np.nan if v is None else float(v) for v in raw["low"]])
        high = np.array([np.nan if v is None else float(v) for v in raw["high"]])
        if low.shape != (len(SUMMARY_NAMES),) or high.shape != low.shape:
            raise ValueError("low/high have the wrong length")
        return cls(low, high, float(raw["threshold"]), int(raw["windows"]))


def _describe(name: str) -> str:
    if name == "shift_symptoms":
        return "the symptoms' change over the last week"
    if name == "missing_symptoms":
        return "the share of days without symptom scores"
    kind, metric = name.split("_", 1)
    scale = " (log scale)" if kind in ("level", "spread") and metric in LOG_SCALE_METRICS else ""
    return f"{METRIC_LABELS[metric]} {_DESCRIPTIONS[kind]}{scale}"


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


__all__ = [
    "SUMMARY_NAMES",
    "DistributionCheck",
    "TrainingDistribution",
    "window_summaries",
]
