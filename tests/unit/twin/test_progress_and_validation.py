from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import InvalidArgumentError
from common.limits import MAX_MEDICATIONS, MAX_VARIANT_CALLS
from common.proto_convert import to_timestamp
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import builders as b
from twin_orchestrator.progress import build_progress
from twin_orchestrator.store import Snapshot
from twin_orchestrator.validation import validate_generate_insights, validate_progress

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _obs(day: int, score: float) -> common_pb2.SymptomObservation:
    obs = common_pb2.SymptomObservation(instrument=common_pb2.INSTRUMENT_PHQ9, score=score)
    obs.observed_at.CopyFrom(to_timestamp(T0 + timedelta(days=day, hours=9)))
    return obs


def _snapshot(sid: str, day: int, scores: dict[int, float], meds: list[str], forecast=None):
    data = twin_pb2.PatientData(symptoms=[_obs(d, s) for d, s in scores.items()])
    for name in meds:
        data.current_medications.add(name=name)
    response = b.empty_response()
    response.overall_risk = common_pb2.RISK_LEVEL_ELEVATED
    if forecast is not None:
        response.forecast.forecast.forecasts.append(forecast)
    return Snapshot(sid, "psn_" + "a" * 32, T0 + timedelta(days=day), data, response)


def test_progress_timeline_trend_accuracy_and_medication_changes():
    forecast = forecasting_pb2.InstrumentForecast(instrument=common_pb2.INSTRUMENT_PHQ9)
    for day, point in ((3, 14.0), (4, 13.0), (5, 12.0)):
        p = forecast.points.add(point=point, lower=point - 2, upper=point + 2)
        p.date.CopyFrom(to_timestamp(T0 + timedelta(days=day)))
    first = _snapshot("s1", 2, {0: 18, 1: 17, 2: 16}, ["sertraline"], forecast)
    # Later observations on forecast days 3, 4 and 5: errors 1, 3, 0; day 4 outside the interval.
    second = _snapshot("s2", 6, {0: 18, 1: 17, 2: 16, 3: 15, 4: 10, 5: 12}, ["bupropion"])
    progress = build_progress([first, second])

    assert [p.snapshot_id for p in progress.timeline] == ["s1", "s2"]
    assert [p.latest_scores[0].score for p in progress.timeline] == [16, 12]
    (accuracy,) = progress.forecast_accuracy
    assert accuracy.snapshot_id == "s1" and accuracy.days_compared == 3
    assert accuracy.mae == pytest.approx((1 + 3 + 0) / 3)
    assert accuracy.interval_coverage == pytest.approx(2 / 3)
    (trend,) = progress.symptom_trends
    assert trend.direction == forecasting_pb2.TREND_DIRECTION_IMPROVING
    assert trend.trend.direction == trend.direction and trend.trend.scores == 6
    # From the first snapshot's latest score (16 on day 2), not the first ever (18).
    assert trend.slope_per_week < 0 and trend.change == pytest.approx(12 - 16)
    changes = {(c.medication, c.change) for c in progress.medication_changes}
    assert changes == {
        ("bupropion", common_pb2.MEDICATION_EVENT_TYPE_START),
        ("sertraline", common_pb2.MEDICATION_EVENT_TYPE_STOP),
    }


def test_weekly_phq9_from_5_to_22_is_worsening_in_progress():
    scores = {0: 5.0, 7: 10.0, 14: 16.0, 21: 22.0}
    snapshots = [
        _snapshot(f"s{day}", day, {d: s for d, s in scores.items() if d <= day}, [])
        for day in scores
    ]
    (trend,) = build_progress(snapshots).symptom_trends
    assert trend.direction == forecasting_pb2.TREND_DIRECTION_WORSENING
    assert trend.change == pytest.approx(22 - 5)
    assert trend.trend.significant and trend.trend.slope_lower_per_week > 0


def test_progress_trend_covers_the_last_six_weeks_only():
    # Twenty weeks: a fall to 8 over the first twelve, then flat with noise.
    old = {7 * w: 26.0 - 1.5 * w for w in range(12)}
    recent = {7 * w: 8.0 + (w % 3) - 1 for w in range(12, 21)}
    snapshot = _snapshot("s1", 140, {**old, **recent}, [])
    (trend,) = build_progress([snapshot]).symptom_trends
    assert trend.trend.scores == 7  # days 98..140: weeks 14..20
    assert trend.direction == forecasting_pb2.TREND_DIRECTION_STABLE
    assert trend.change == 0.0  # one snapshot


def test_fewer_than_four_scores_are_not_assessed_but_change_is_given():
    first = _snapshot("s1", 0, {0: 9.0}, [])
    second = _snapshot("s2", 14, {0: 9.0, 14: 15.0}, [])
    (trend,) = build_progress([first, second]).symptom_trends
    assert trend.direction == forecasting_pb2.TREND_DIRECTION_UNSPECIFIED
    assert trend.change == pytest.approx(6.0)


def test_empty_history_gives_empty_progress():
    assert build_progress([]) == twin_pb2.GetPatientProgressResponse()


def _request(**kwargs) -> twin_pb2.GenerateInsightsRequest:
    request = twin_pb2.GenerateInsightsRequest(patient_id="MRN-123456")
    request.data.symptoms.append(_obs(0, 10))
    for key, value in kwargs.items():
        setattr(request, key, value)
    return request


def _violations(request, max_points=100) -> list[str]:
    with pytest.raises(InvalidArgumentError) as err:
        validate_generate_insights(request, now=T0 + timedelta(days=30), max_points=max_points)
    assert "MRN-123456" not in str(err.value)
    return [v.field for v in err.value.violations]


def test_valid_request_passes():
    validate_generate_insights(_request(), now=T0 + timedelta(days=30), max_points=100)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: setattr(r, "patient_id", " "), "patient_id"),
        (
            lambda r: setattr(r.options, "forecast_horizon_days", 91),
            "options.forecast_horizon_days",
        ),
        (lambda r: r.options.sections.append(7), "options.sections[0]"),
        (lambda r: setattr(r.data.symptoms[0], "score", 28), "data.symptoms[0].score"),
        (lambda r: setattr(r.data.symptoms[0], "score", math.nan), "data.symptoms[0].score"),
        (lambda r: setattr(r.data.symptoms[0], "instrument", 0), "data.symptoms[0].instrument"),
        (
            lambda r: r.data.symptoms[0].observed_at.CopyFrom(
                to_timestamp(T0 + timedelta(days=99))
            ),
            "data.symptoms[0].observed_at",
        ),
        (
            lambda r: r.data.candidate_medications.append("<script>"),
            "data.candidate_medications[0]",
        ),
        (lambda r: r.data.biometrics.add(metric=1, value=math.inf), "data.biometrics[0].value"),
    ],
)
def test_each_rule_names_its_field(mutate, field):
    request = _request()
    mutate(request)
    assert field in _violations(request)


def test_size_limit_is_named():
    request = _request()
    for day in range(1, 200):
        request.data.symptoms.append(_obs(day % 20, 5))
    with pytest.raises(InvalidArgumentError, match="at most 100 observations"):
        validate_generate_insights(request, now=T0 + timedelta(days=30), max_points=100)


def _sample(moment_seconds: int, nanos: int = 0) -> common_pb2.BiometricSample:
    sample = common_pb2.BiometricSample(metric=common_pb2.BIOMETRIC_METRIC_STEPS, value=100)
    sample.measured_at.seconds = moment_seconds
    sample.measured_at.nanos = nanos
    return sample


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (253_402_214_400, 0),  # 9999-12-31: was OverflowError in risk.py (INTERNAL)
        (2**62, 0),
        (946_684_799, 0),  # 1999-12-31T23:59:59, before the biometric service's floor
        (int(T0.timestamp()), -1),  # a malformed Timestamp
        (int(T0.timestamp()), 1_000_000_000),
    ],
)
def test_absurd_biometric_dates_are_named(seconds, nanos):
    request = _request()
    request.data.biometrics.append(_sample(seconds, nanos))
    assert _violations(request) == ["data.biometrics[0].measured_at"]


def test_entry_counts_are_the_services_limits():
    request = _request()
    for i in range(MAX_VARIANT_CALLS):
        request.data.genotype.variant_calls.add(rsid=f"rs{i + 1}", genotype="A/G")
    validate_generate_insights(request, now=T0 + timedelta(days=30), max_points=100)
    request.data.genotype.variant_calls.add(rsid="rs99999", genotype="A/G")
    request.data.candidate_medications.extend(["sertraline"] * (MAX_MEDICATIONS + 1))
    assert _violations(request) == ["data.genotype.variant_calls", "data.candidate_medications"]


def test_patient_data_over_the_size_cap_is_refused_before_anything_else():
    request = _request()
    for i in range(32):  # within the count limit, but 32 x 200 kB of text
        request.data.genotype.diplotypes.add(gene=f"G{i}", diplotype="*1" * 100_000)
    with pytest.raises(InvalidArgumentError, match="data: must be at most 4 MiB"):
        validate_generate_insights(request, now=T0 + timedelta(days=30), max_points=100)


def test_progress_since_must_be_a_real_time():
    now = T0 + timedelta(days=30)
    request = twin_pb2.GetPatientProgressRequest(patient_id="MRN-123456")
    request.since.seconds = 2**62  # was ValueError in ToDatetime (INTERNAL)
    with pytest.raises(InvalidArgumentError) as err:
        validate_progress(request, now=now)
    assert [v.field for v in err.value.violations] == ["since"]
    request.since.CopyFrom(to_timestamp(T0))
    validate_progress(request, now=now)
