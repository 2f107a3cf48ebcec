"""One request's biometric data, aggregated once, with each statistic computed at most once.

The three analyses of a patient (correlations with the early warning,
anomalies, the monitoring plan) start from the same daily series, and the
correlations and the plan from the same lagged correlation grid. A
``PatientAnalysis`` holds the series and memoizes the correlation analysis
per (lookback, max lag, FDR alpha), so AnalyzePatient aggregates and
correlates once, and the single-purpose RPCs run the very same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biometric_svc.aggregation import DailySeries, daily_series
from biometric_svc.correlation import key_indicators, lagged_correlations
from biometric_svc.coverage import data_coverage, reliability_grade
from biometric_svc.domain import (
    BiometricSamples,
    DataCoverage,
    IndicatorObservations,
    KeyIndicator,
    LaggedCorrelation,
    Reliability,
)


@dataclass(frozen=True)
class CorrelationAnalysis:
    """The lagged correlations over a lookback window, and what they rest on."""

    window: DailySeries
    coverage: DataCoverage
    reliability: Reliability
    correlations: tuple[LaggedCorrelation, ...]
    key_indicators: tuple[KeyIndicator, ...]


@dataclass
class PatientAnalysis:
    #: Biometrics and indicators on one calendar, first to last sample of either kind.
    series: DailySeries
    _correlations: dict[tuple[int, int, float], CorrelationAnalysis] = field(default_factory=dict)

    @classmethod
    def of(
        cls, biometrics: BiometricSamples, indicators: IndicatorObservations | None = None
    ) -> PatientAnalysis:
        return cls(series=daily_series(biometrics, indicators))

    def biometric_series(self) -> DailySeries:
        """The calendar from the first to the last day with a biometric sample.

        Anomaly detection judges biometrics alone, so indicator-only days at
        either end are not part of its calendar.
        """
        has_sample = np.isfinite(self.series.biometrics).any(axis=1)
        if not has_sample.any():
            return self.series.tail(0)
        days = np.flatnonzero(has_sample)
        first, last = int(days[0]), int(days[-1]) + 1
        return DailySeries(
            dates=self.series.dates[first:last],
            biometrics=self.series.biometrics[first:last],
            indicators=self.series.indicators[first:last],
        )

    def correlations(
        self, lookback_days: int, max_lag_days: int, fdr_alpha: float
    ) -> CorrelationAnalysis:
        key = (lookback_days, max_lag_days, fdr_alpha)
        if key not in self._correlations:
            window = self.series.tail(lookback_days)
            coverage = data_coverage(window)
            grade = reliability_grade(coverage)
            found = (
                ()
                if grade is Reliability.INSUFFICIENT
                else lagged_correlations(window, max_lag_days, fdr_alpha)
            )
            self._correlations[key] = CorrelationAnalysis(
                window, coverage, grade, found, key_indicators(found)
            )
        return self._correlations[key]
