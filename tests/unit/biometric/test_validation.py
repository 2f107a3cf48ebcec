"""Bad input gets INVALID_ARGUMENT naming the field and the rule, or an explicit
insufficient-data answer — never a crash, never the offending value in the message."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from biometric_svc.domain import (
    AnomalyRequest,
    CorrelationRequest,
    IndicatorObservations,
    MonitoringPlanRequest,
    Reliability,
)
from biometric_svc.service import BiometricService
from common.errors import InvalidArgumentError
from tests.unit.biometric.patients import PSEUDONYM, sample_arrays

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
NO_INDICATORS = IndicatorObservations.empty()


@pytest.fixture
def service() -> BiometricService:
    return BiometricService(early_warning=None)


def _fields(error: InvalidArgumentError) -> dict[str, str]:
    return {v.field: v.rule for v in error.violations}


async def _correlate(service: BiometricService, samples, **kwargs) -> object:
    return await service.analyze_correlations(
        CorrelationRequest(PSEUDONYM, samples, kwargs.pop("indicators", NO_INDICATORS), **kwargs)
    )


@pytest.mark.parametrize("bpm", [-60.0, 400.0, 0.0, float("nan")])
async def test_impossible_heart_rate_names_the_value_field(service, bpm):
    samples = sample_arrays(
        [
            ("resting_heart_rate", DAY, 62.0, "day"),
            ("resting_heart_rate", DAY + dt.timedelta(days=1), bpm, "day"),
        ]
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    fields = _fields(raised.value)
    assert list(fields) == ["biometrics[1].value"]
    assert str(bpm) not in raised.value.message and "400" not in raised.value.message


async def test_thirty_hours_of_sleep_in_one_sample_is_rejected(service):
    samples = sample_arrays([("sleep_duration", DAY, 30.0, "day")])
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    assert "biometrics[0].value" in _fields(raised.value)
    assert "30" not in raised.value.message


async def test_thirty_hours_of_sleep_summed_over_a_day_names_the_sample_that_crosses(service):
    # Two day-level samples of the same UTC day: 16 h then 14 h = 30 h.
    samples = sample_arrays(
        [
            ("sleep_duration", DAY + dt.timedelta(hours=1), 16.0, "day"),
            ("steps", DAY, 9000.0, "day"),
            ("sleep_duration", DAY + dt.timedelta(hours=13), 14.0, "day"),
        ]
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    fields = _fields(raised.value)
    assert list(fields) == ["biometrics[2].value"]
    assert "24" in fields["biometrics[2].value"]


async def test_future_timestamps_are_rejected(service):
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    samples = sample_arrays([("steps", DAY, 5000.0, "day"), ("steps", future, 5000.0, "day")])
    with pytest.raises(InvalidArgumentError) as raised:
        await service.detect_anomalies(AnomalyRequest(PSEUDONYM, samples))
    assert _fields(raised.value) == {"biometrics[1].measured_at": "must not be in the future"}


async def test_duplicate_timestamps_of_one_metric_are_rejected(service):
    samples = sample_arrays(
        [
            ("hrv_rmssd", DAY, 41.0, "day"),
            ("steps", DAY, 8000.0, "day"),  # same time, other metric: fine
            ("hrv_rmssd", DAY, 44.0, "day"),
        ]
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    assert list(_fields(raised.value)) == ["biometrics[2].measured_at"]


async def test_unknown_metric_and_granularity_are_named(service):
    samples = sample_arrays(
        [("steps", DAY, 100.0, "day"), ("blood_oxygen", DAY, 97.0, "day"), ("steps", DAY, 1, "x")]
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    fields = _fields(raised.value)
    assert "biometrics[1].metric" in fields and "biometrics[2].granularity" in fields


async def test_unset_timestamp_is_rejected(service):
    samples = sample_arrays([("steps", dt.datetime(1970, 1, 1, tzinfo=dt.UTC), 100.0, "day")])
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    assert list(_fields(raised.value)) == ["biometrics[0].measured_at"]


async def test_mixed_granularity_in_one_day_is_rejected(service):
    samples = sample_arrays(
        [("steps", DAY, 7000.0, "day"), ("steps", DAY + dt.timedelta(hours=9), 800.0, "hour")]
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    assert list(_fields(raised.value)) == ["biometrics[1].granularity"]


async def test_minute_sample_cannot_hold_more_than_a_minute_of_activity(service):
    samples = sample_arrays([("active_minutes", DAY, 2.0, "minute")])
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, samples)
    assert list(_fields(raised.value)) == ["biometrics[0].value"]


async def test_every_broken_rule_is_reported_in_one_error(service):
    indicators = IndicatorObservations(
        instrument=np.array([0, 1, 7], np.int64),
        observed_at_ns=np.full(3, int(DAY.timestamp()) * 10**9, np.int64),
        score=np.array([28.0, 2.5, 3.0]),
    )
    with pytest.raises(InvalidArgumentError) as raised:
        await service.analyze_correlations(
            CorrelationRequest(
                "MRN-123",
                sample_arrays([("steps", DAY, -3.0, "day")]),
                indicators,
                lookback_days=5,
                max_lag_days=31,
                fdr_alpha=0.7,
            )
        )
    fields = _fields(raised.value)
    assert set(fields) == {
        "patient_pseudonym",
        "biometrics[0].value",
        "indicators[0].score",
        "indicators[1].score",
        "indicators[2].instrument",
        "lookback_days",
        "max_lag_days",
        "fdr_alpha",
    }
    assert "MRN-123" not in raised.value.message


@pytest.mark.parametrize("days", [-1, 3, 181])
async def test_baseline_window_out_of_range(service, days):
    with pytest.raises(InvalidArgumentError) as raised:
        await service.detect_anomalies(
            AnomalyRequest(PSEUDONYM, sample_arrays([]), baseline_window_days=days)
        )
    assert list(_fields(raised.value)) == ["baseline_window_days"]


async def test_many_bad_samples_are_summarised_not_listed(service):
    rows = [("resting_heart_rate", DAY + dt.timedelta(days=i), 400.0, "day") for i in range(50)]
    with pytest.raises(InvalidArgumentError) as raised:
        await _correlate(service, sample_arrays(rows))
    assert len(raised.value.violations) == 4
    assert "47 more" in raised.value.violations[-1].rule


async def test_a_single_sample_gives_an_explicit_insufficient_result(service):
    samples = sample_arrays([("steps", DAY, 5200.0, "day")])
    report = await _correlate(service, samples)
    assert report.reliability is Reliability.INSUFFICIENT
    assert report.correlations == () and report.key_indicators == ()
    assert report.coverage.window_days == 1
    anomalies = await service.detect_anomalies(AnomalyRequest(PSEUDONYM, samples))
    assert anomalies.insufficient_data and anomalies.anomalies == ()
    plan = await service.recommend_monitoring_plan(
        MonitoringPlanRequest(PSEUDONYM, samples, NO_INDICATORS)
    )
    assert [m.metric for m in plan.metrics] == ["steps"]
    assert plan.metrics[0].alert_below is None and plan.metrics[0].alert_above is None


async def test_no_samples_at_all_is_insufficient_not_an_error(service):
    report = await _correlate(service, sample_arrays([]))
    assert report.reliability is Reliability.INSUFFICIENT
    anomalies = await service.detect_anomalies(AnomalyRequest(PSEUDONYM, sample_arrays([])))
    assert anomalies.insufficient_data
