"""How much data backs an analysis, and the reliability grade that follows from it.

Grades follow the contract (biometric.proto, ReliabilityGrade): HIGH needs 60+
paired days (a biometric and an indicator on the same day) and more than half
of the supplied metrics over 80 % coverage; MODERATE 30+ paired days; LOW
14+; below that INSUFFICIENT and no correlations are reported. 14 paired days
is also the fewest pairs a lag is tested on (``correlation.MIN_PAIRS``).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from biometric_svc.aggregation import DailySeries
from biometric_svc.domain import DataCoverage, MetricCoverage, Reliability
from common.biometric_metrics import METRICS

HIGH_PAIRED_DAYS: Final = 60
MODERATE_PAIRED_DAYS: Final = 30
LOW_PAIRED_DAYS: Final = 14
HIGH_METRIC_COVERAGE: Final = 0.8


def data_coverage(daily: DailySeries) -> DataCoverage:
    window = daily.days
    has_metric = np.isfinite(daily.biometrics)
    any_biometric = has_metric.any(axis=1)
    any_indicator = np.isfinite(daily.indicators).any(axis=1)
    metrics = tuple(
        MetricCoverage(
            metric=name,
            days_with_data=int(has_metric[:, j].sum()),
            fraction=float(has_metric[:, j].sum() / window) if window else 0.0,
        )
        for j, name in enumerate(METRICS)
    )
    return DataCoverage(
        window_days=window,
        indicator_days=int(any_indicator.sum()),
        paired_days=int((any_biometric & any_indicator).sum()),
        metrics=metrics,
    )


def reliability_grade(coverage: DataCoverage) -> Reliability:
    supplied = [m for m in coverage.metrics if m.days_with_data > 0]
    well_covered = sum(m.fraction > HIGH_METRIC_COVERAGE for m in supplied)
    if coverage.paired_days >= HIGH_PAIRED_DAYS and supplied and well_covered * 2 > len(supplied):
        return Reliability.HIGH
    if coverage.paired_days >= MODERATE_PAIRED_DAYS:
        return Reliability.MODERATE
    if coverage.paired_days >= LOW_PAIRED_DAYS:
        return Reliability.LOW
    return Reliability.INSUFFICIENT
