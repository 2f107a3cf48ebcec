"""Small builders of section results for the orchestrator's rule and risk tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.proto_convert import to_timestamp
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.triggers import Context

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OK = common_pb2.SECTION_STATUS_OK


def empty_response() -> twin_pb2.GenerateInsightsResponse:
    response = twin_pb2.GenerateInsightsResponse(request_id="0" * 32)
    response.forecast.result.section = twin_pb2.SECTION_FORECAST
    response.biometric.result.section = twin_pb2.SECTION_BIOMETRIC
    response.pharmacogenomics.result.section = twin_pb2.SECTION_PHARMACOGENOMICS
    for section in (response.forecast, response.biometric, response.pharmacogenomics):
        section.result.status = common_pb2.SECTION_STATUS_SKIPPED
    return response


def add_risk_period(
    response: twin_pb2.GenerateInsightsResponse,
    *,
    instrument: int = common_pb2.INSTRUMENT_PHQ9,
    threshold: float = 20,
    label: str = "PHQ-9 >= 20 (severe)",
    start_in_days: int = 5,
    peak: float = 0.7,
) -> None:
    response.forecast.result.status = OK
    forecast = response.forecast.forecast.forecasts.add(instrument=instrument)
    period = forecast.risk_periods.add(
        threshold=threshold, threshold_label=label, peak_probability=peak
    )
    period.start_date.CopyFrom(to_timestamp(NOW + timedelta(days=start_in_days)))
    period.end_date.CopyFrom(to_timestamp(NOW + timedelta(days=start_in_days + 3)))
    period.peak_date.CopyFrom(to_timestamp(NOW + timedelta(days=start_in_days + 1)))


def set_trend(
    response: twin_pb2.GenerateInsightsResponse, direction: int, p_value: float, slope: float
) -> None:
    response.forecast.result.status = OK
    forecast = response.forecast.forecast.forecasts.add(instrument=common_pb2.INSTRUMENT_PHQ9)
    forecast.trend.direction = direction
    forecast.trend.p_value = p_value
    forecast.trend.significant = p_value < 0.10  # common/trend.py: a 90 % interval
    forecast.trend.slope_per_week = slope
    forecast.trend.fitted_change = slope * 6  # over a six-week window


def set_warning(
    response: twin_pb2.GenerateInsightsResponse, level: int, probability: float
) -> None:
    response.biometric.result.status = OK
    warning = response.biometric.correlations.early_warning
    warning.level = level
    warning.probability = probability
    warning.expected_lead_days = 4
    warning.drivers.add(metric=common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, weight=0.6)


def add_interaction(
    response: twin_pb2.GenerateInsightsResponse,
    *,
    medication: str,
    action: int,
    strength: int,
    current: bool,
    gene: str = "CYP2C19",
) -> None:
    response.pharmacogenomics.result.status = OK
    response.pharmacogenomics.interactions.interactions.add(
        medication=medication,
        gene=gene,
        action=action,
        strength=strength,
        is_current=current,
        recommendation="Consider an alternative.",
        rationale="Poor metabolizer.",
        evidence=common_pb2.Evidence(source="CPIC", strength="Strong", pmid="37032427"),
    )


def add_key_indicator(response: twin_pb2.GenerateInsightsResponse, strength: float) -> None:
    response.biometric.result.status = OK
    response.biometric.correlations.key_indicators.add(
        rank=1,
        metric=common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
        indicator=common_pb2.INSTRUMENT_MOOD,
        lead_days=3,
        strength=strength,
        reading="sleep duration falls ~3 days before mood drops",
    )


def add_anomaly(response: twin_pb2.GenerateInsightsResponse, days_ago: int, severity: int) -> None:
    response.biometric.result.status = OK
    anomaly = response.biometric.anomalies.anomalies.add(severity=severity, score=0.9)
    anomaly.date.CopyFrom(to_timestamp(NOW - timedelta(days=days_ago)))
    anomaly.deviations.add(metric=common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, robust_z=5)


def context(
    response: twin_pb2.GenerateInsightsResponse, data: twin_pb2.PatientData | None = None
) -> Context:
    return Context(response=response, data=data or twin_pb2.PatientData(), now=NOW)


def phq9(score: float, days_ago: int = 0) -> common_pb2.SymptomObservation:
    obs = common_pb2.SymptomObservation(instrument=common_pb2.INSTRUMENT_PHQ9, score=score)
    obs.observed_at.CopyFrom(to_timestamp(NOW - timedelta(days=days_ago)))
    return obs


__all__ = [
    "biometric_pb2",
    "forecasting_pb2",
    "pgx",
]
