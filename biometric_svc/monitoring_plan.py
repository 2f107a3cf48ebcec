"""A personal monitoring plan: which metrics to watch, how often, and when to alert.

Rules, in priority order:

1. Key indicators (biometrics that significantly lead a symptom indicator)
   come first, in their rank order. The alert is one-sided, in the direction
   that precedes worsening, at 2 robust SD (2 x 1.4826 x MAD) from the
   patient's 28-day median (on a log scale for HRV, steps and active
   minutes, as in anomaly detection, so a limit can never go negative): a z
   of 2 is already unusual for that patient, and a leading signal is worth
   acting on early. A lead of 2 days or less leaves
   no time for a daily review, so such metrics are watched continuously with
   automatic alerts; longer leads are reviewed daily.
2. Other metrics with data on at least half of the days are reviewed weekly,
   with two-sided alerts at 3 robust SD (the anomaly threshold).
3. Metrics with data on fewer than half of the days are reviewed weekly
   without thresholds: a baseline from sparse data would alert at random.
   Metrics never supplied are left out.

Thresholds outside the metric's physical range are left unset.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from biometric_svc.baseline import LOG_SCALE_METRICS, alert_limit, current_baselines
from biometric_svc.domain import (
    INSTRUMENT_LABELS,
    METRIC_LABELS,
    DataCoverage,
    KeyIndicator,
    LaggedCorrelation,
    MetricBaseline,
    MonitoredMetric,
    MonitoringFrequency,
    MonitoringPlan,
    Reliability,
)
from biometric_svc.validation import DEFAULT_BASELINE_WINDOW_DAYS
from common.biometric_metrics import METRICS

KEY_ALERT_SD: Final = 2.0
OTHER_ALERT_SD: Final = 3.0
CONTINUOUS_MAX_LEAD_DAYS: Final = 2
MIN_COVERAGE_FOR_THRESHOLDS: Final = 0.5

#: Open physical range of a daily value; thresholds outside it are meaningless.
_PHYSICAL_RANGE: Final[dict[str, tuple[float, float]]] = {
    "resting_heart_rate": (25.0, 250.0),
    "hrv_rmssd": (1.0, 500.0),
    "sleep_duration": (0.0, 24.0),
    "sleep_efficiency": (0.0, 1.0),
    "steps": (0.0, 100_000.0),
    "active_minutes": (0.0, 1_440.0),
    "heart_rate": (25.0, 250.0),
    "hrv_sdnn": (1.0, 500.0),
}
_DECIMALS: Final[dict[str, int]] = {
    "resting_heart_rate": 1,
    "hrv_rmssd": 1,
    "sleep_duration": 2,
    "sleep_efficiency": 3,
    "steps": 0,
    "active_minutes": 0,
    "heart_rate": 1,
    "hrv_sdnn": 1,
}
_UNITS: Final[dict[str, str]] = {
    "resting_heart_rate": " bpm",
    "hrv_rmssd": " ms",
    "sleep_duration": " h",
    "sleep_efficiency": "",
    "steps": " steps",
    "active_minutes": " min",
    "heart_rate": " bpm",
    "hrv_sdnn": " ms",
}


def _threshold(metric: str, value: float) -> float | None:
    low, high = _PHYSICAL_RANGE[metric]
    if not low < value < high:
        return None
    return round(value, _DECIMALS[metric])


def _fmt(metric: str, value: float) -> str:
    decimals = _DECIMALS[metric]
    return f"{value:,.{decimals}f}{_UNITS[metric]}"


def _key_metric(
    key: KeyIndicator, baseline: MetricBaseline | None, correlation: LaggedCorrelation | None
) -> tuple[MonitoringFrequency, float | None, float | None, str]:
    frequency = (
        MonitoringFrequency.CONTINUOUS
        if key.lead_days <= CONTINUOUS_MAX_LEAD_DAYS
        else MonitoringFrequency.DAILY
    )
    evidence = f"r = {key.strength:.2f}" + (
        f", q = {correlation.q_value:.3f}" if correlation is not None else ""
    )
    reason = (
        f"Key indicator: {key.reading} ({evidence}); "
        f"{INSTRUMENT_LABELS[key.indicator]} is the indicator it leads."
    )
    if baseline is None:
        return frequency, None, None, reason + " Too few recent days for a personal threshold."
    limit = alert_limit(baseline, key.worsening_direction * KEY_ALERT_SD)
    threshold = _threshold(key.metric, limit)
    if threshold is None:
        return frequency, None, None, reason + " The 2-SD threshold falls outside the valid range."
    side = "below" if key.worsening_direction < 0 else "above"
    reason += (
        f" Alert {side} {_fmt(key.metric, threshold)}: 2 robust SD"
        f"{' on a log scale' if key.metric in LOG_SCALE_METRICS else ''} {side} the 28-day "
        f"median of {_fmt(key.metric, baseline.median)}."
    )
    if key.worsening_direction < 0:
        return frequency, threshold, None, reason
    return frequency, None, threshold, reason


def _other_metric(
    metric: str, baseline: MetricBaseline | None, fraction: float
) -> tuple[float | None, float | None, str]:
    label = METRIC_LABELS[metric]
    if baseline is None or fraction < MIN_COVERAGE_FOR_THRESHOLDS:
        return (
            None,
            None,
            f"{label.capitalize()} has data on only {fraction:.0%} of days: too sparse for a "
            "personal baseline; more consistent wear would make it usable.",
        )
    below = _threshold(metric, alert_limit(baseline, -OTHER_ALERT_SD))
    above = _threshold(metric, alert_limit(baseline, OTHER_ALERT_SD))
    bounds = " and ".join(
        text
        for text in (
            f"below {_fmt(metric, below)}" if below is not None else "",
            f"above {_fmt(metric, above)}" if above is not None else "",
        )
        if text
    )
    reason = (
        f"No significant lead on symptoms; reviewed weekly for large departures from the "
        f"28-day median of {_fmt(metric, baseline.median)}"
    )
    scale = " on a log scale" if metric in LOG_SCALE_METRICS else ""
    reason += f" (alert {bounds}: 3 robust SD{scale})." if bounds else "."
    return below, above, reason


def monitoring_plan(
    biometrics_daily: npt.NDArray[np.float64],
    correlations: tuple[LaggedCorrelation, ...],
    key_indicators: tuple[KeyIndicator, ...],
    coverage: DataCoverage,
    reliability: Reliability,
) -> MonitoringPlan:
    """Build the plan; ``biometrics_daily`` is the (days, METRICS) array of the window."""
    baselines = {
        b.metric: b for b in current_baselines(biometrics_daily, DEFAULT_BASELINE_WINDOW_DAYS)
    }
    fractions = {m.metric: m.fraction for m in coverage.metrics}
    supplied = {m.metric for m in coverage.metrics if m.days_with_data > 0}
    by_pair = {(c.metric, c.indicator): c for c in correlations}

    planned: list[MonitoredMetric] = []
    for key in key_indicators:
        frequency, below, above, reason = _key_metric(
            key, baselines.get(key.metric), by_pair.get((key.metric, key.indicator))
        )
        planned.append(
            MonitoredMetric(len(planned) + 1, key.metric, frequency, below, above, reason)
        )
    keyed = {k.metric for k in key_indicators}
    for metric in METRICS:
        if metric in keyed or metric not in supplied:
            continue
        below, above, reason = _other_metric(metric, baselines.get(metric), fractions[metric])
        planned.append(
            MonitoredMetric(
                len(planned) + 1, metric, MonitoringFrequency.WEEKLY, below, above, reason
            )
        )
    return MonitoringPlan(
        metrics=tuple(planned), summary=_summary(key_indicators, planned, coverage, reliability)
    )


def _summary(
    key_indicators: tuple[KeyIndicator, ...],
    planned: list[MonitoredMetric],
    coverage: DataCoverage,
    reliability: Reliability,
) -> str:
    grade = f"{reliability.value} reliability, {coverage.paired_days} paired days"
    if not planned:
        return f"No biometric data to plan from ({grade})."
    if not key_indicators:
        return (
            f"No biometric significantly leads this patient's symptom indicators ({grade}); "
            f"{len(planned)} metric(s) are reviewed weekly against the patient's own baseline."
        )
    leads = "; ".join(
        f"{METRIC_LABELS[k.metric]} ({k.lead_days}-day lead on {INSTRUMENT_LABELS[k.indicator]})"
        for k in key_indicators
    )
    others = len(planned) - len(key_indicators)
    text = f"Watch {len(key_indicators)} leading biometric(s) closely: {leads}."
    if others:
        text += f" {others} other metric(s) are reviewed weekly for large departures."
    return f"{text} Based on {grade}."
