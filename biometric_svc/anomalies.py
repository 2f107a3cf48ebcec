"""Days whose biometrics depart from the patient's own baseline.

Two detectors, one report:

* univariate: a metric's weekday-aware robust z-score (``baseline.py``) of
  magnitude ``Z_THRESHOLD`` (3) or more — the conventional cut for robust
  outlier rules (Leys et al. 2013 recommend 2.5-3; 3 keeps daily false alarms
  near 0.3 % per metric for normal data);
* multivariate: a per-patient IsolationForest over the day's z-scores
  (``models/isolation_forest.py``), flagging scores of ``FOREST_THRESHOLD`` or more.

Missing data is never an anomaly: a day without a metric has no z-score for
it, counts as "at baseline" for the forest, and is reported in ``missing``
as part of a run of missing days instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from biometric_svc.baseline import current_baselines, daily_baseline
from biometric_svc.domain import (
    Anomaly,
    AnomalyReport,
    AnomalySeverity,
    DetectionMethod,
    MetricDeviation,
    MissingSpan,
)
from biometric_svc.models.isolation_forest import MIN_DAYS as FOREST_MIN_DAYS
from biometric_svc.models.isolation_forest import isolation_scores
from common.biometric_metrics import METRICS

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

Z_THRESHOLD: Final = 3.0
#: A deviation is listed with an anomaly from this |z| on.
LISTED_Z: Final = 2.0
#: IsolationForest score that flags a day (s of Liu et al.; 0.5 is an average day).
FOREST_THRESHOLD: Final = 0.58
#: Score of a strong multivariate outlier (moderate severity on its own).
FOREST_STRONG: Final = 0.65
MODERATE_Z: Final = 4.0
HIGH_Z: Final = 6.0
#: Days with any biometric needed before anything is called anomalous.
MIN_DAYS_WITH_DATA: Final = 14


def missing_spans(biometrics: FloatArray, dates: pd.DatetimeIndex) -> tuple[MissingSpan, ...]:
    """Runs of days without a metric, between the first and the last day with any data.

    A metric the patient never supplied has no gaps, only absence: a wearable
    without an SDNN reading is not a wearable with a 180-day SDNN outage.
    """
    spans: list[MissingSpan] = []
    for j, name in enumerate(METRICS):
        missing = ~np.isfinite(biometrics[:, j])
        if not missing.any() or missing.all():
            continue
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        spans.extend(
            MissingSpan(metric=name, start=dates[s].date(), end=dates[e].date())
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        )
    spans.sort(key=lambda span: (span.start, METRICS.index(span.metric)))
    return tuple(spans)


def _z_score_to_unit(max_abs_z: FloatArray) -> FloatArray:
    """Map |z| to (0, 1): 0.5 at the threshold 3, 0.67 at 6, approaching 1."""
    return max_abs_z / (max_abs_z + Z_THRESHOLD)


def _severity(
    max_abs_z: float, n_over: int, method: DetectionMethod, forest: float
) -> AnomalySeverity:
    if method is DetectionMethod.BOTH or max_abs_z > HIGH_Z:
        return AnomalySeverity.HIGH
    if max_abs_z >= MODERATE_Z or n_over >= 2:
        return AnomalySeverity.MODERATE
    if method is DetectionMethod.ISOLATION_FOREST and forest >= FOREST_STRONG:
        return AnomalySeverity.MODERATE
    return AnomalySeverity.LOW


def _deviations(
    row: int, robust_z: FloatArray, values: FloatArray, medians: FloatArray
) -> tuple[MetricDeviation, ...]:
    z = robust_z[row]
    finite = np.flatnonzero(np.isfinite(z))
    if finite.size == 0:
        return ()
    listed = [j for j in finite.tolist() if abs(z[j]) >= LISTED_Z]
    if not listed:
        listed = [int(finite[np.argmax(np.abs(z[finite]))])]
    listed.sort(key=lambda j: -abs(z[j]))
    return tuple(
        MetricDeviation(
            metric=METRICS[j],
            value=float(values[row, j]),
            baseline_median=float(medians[row, j]),
            robust_z=float(z[j]),
        )
        for j in listed
    )


def detect_anomalies(
    biometrics: FloatArray, dates: pd.DatetimeIndex, window_days: int
) -> AnomalyReport:
    """Anomalies, missing spans and current baselines of daily biometrics (days x METRICS)."""
    missing = missing_spans(biometrics, dates)
    baselines = current_baselines(biometrics, window_days)
    days_with_data = int(np.isfinite(biometrics).any(axis=1).sum())
    if days_with_data < MIN_DAYS_WITH_DATA:
        return AnomalyReport((), missing, baselines, insufficient_data=True)

    baseline = daily_baseline(biometrics, dates, window_days)
    robust_z = baseline.robust_z
    scored = np.isfinite(robust_z).any(axis=1)
    abs_z = np.where(np.isfinite(robust_z), np.abs(robust_z), 0.0)
    max_abs_z = abs_z.max(axis=1)
    z_flag = scored & (max_abs_z >= Z_THRESHOLD)

    forest = np.zeros(len(dates))
    forest_flag = np.zeros(len(dates), dtype=np.bool_)
    if scored.sum() >= FOREST_MIN_DAYS:
        supplied = np.isfinite(robust_z[scored]).any(axis=0)
        features = np.nan_to_num(robust_z[scored][:, supplied], nan=0.0)
        forest[scored] = isolation_scores(features)
        forest_flag = scored & (forest >= FOREST_THRESHOLD)

    anomalies: list[Anomaly] = []
    for row in np.flatnonzero(z_flag | forest_flag).tolist():
        if z_flag[row] and forest_flag[row]:
            method = DetectionMethod.BOTH
        elif z_flag[row]:
            method = DetectionMethod.ROBUST_Z
        else:
            method = DetectionMethod.ISOLATION_FOREST
        score = max(float(forest[row]), float(_z_score_to_unit(max_abs_z[row : row + 1])[0]))
        n_over = int((abs_z[row] >= Z_THRESHOLD).sum())
        anomalies.append(
            Anomaly(
                date=_as_date(dates[row]),
                deviations=_deviations(row, robust_z, biometrics, baseline.median),
                score=min(score, 1.0),
                severity=_severity(float(max_abs_z[row]), n_over, method, float(forest[row])),
                method=method,
            )
        )
    return AnomalyReport(tuple(anomalies), missing, baselines, insufficient_data=False)


def _as_date(stamp: pd.Timestamp) -> dt.date:
    return dt.date(stamp.year, stamp.month, stamp.day)
