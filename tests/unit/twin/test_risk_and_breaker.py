from __future__ import annotations

from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import builders as b
from twin_orchestrator.circuit_breaker import BreakerState, CircuitBreaker
from twin_orchestrator.prioritization import load_rules
from twin_orchestrator.risk import overall_risk

THRESHOLDS = load_rules().overall_risk


def _risk(response, data=None):
    return overall_risk(b.context(response, data), THRESHOLDS)


def test_no_data_is_unspecified():
    assert _risk(b.empty_response()) == (common_pb2.RISK_LEVEL_UNSPECIFIED, [])


def test_latest_phq9_sets_level_by_kroenke_bands():
    for score, expected in (
        (8, common_pb2.RISK_LEVEL_LOW),
        (16, common_pb2.RISK_LEVEL_ELEVATED),
        (22, common_pb2.RISK_LEVEL_HIGH),
    ):
        # An older, different score must not count: only the latest does.
        data = twin_pb2.PatientData(symptoms=[b.phq9(27 - score, days_ago=10), b.phq9(score)])
        level, drivers = _risk(b.empty_response(), data)
        assert level == expected, score
        assert (f"latest PHQ-9 {score}" in " ".join(drivers)) == (score >= 15)


def test_severe_forecast_with_high_warning_is_critical():
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8)
    b.set_warning(response, common_pb2.RISK_LEVEL_HIGH, 0.7)
    level, drivers = _risk(response)
    assert level == common_pb2.RISK_LEVEL_CRITICAL
    assert drivers[0] == "severe forecast together with a high early warning"


def test_moderate_forecast_alone_is_elevated():
    response = b.empty_response()
    b.add_risk_period(response, threshold=15, label="PHQ-9 >= 15", peak=0.6)
    assert _risk(response)[0] == common_pb2.RISK_LEVEL_ELEVATED


def test_breaker_opens_after_threshold_and_half_opens_after_reset():
    now = [0.0]
    breaker = CircuitBreaker("x", failure_threshold=2, reset_seconds=5, clock=lambda: now[0])
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # one trial call
    assert not breaker.allow()  # only one
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    now[0] = 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_fragmented_risk_periods_give_one_driver_with_the_highest_peak():
    response = b.empty_response()
    for start, peak in ((2, 0.52), (4, 0.61), (7, 0.55)):
        b.add_risk_period(
            response, threshold=15, label="PHQ-9 >= 15", start_in_days=start, peak=peak
        )
    level, drivers = _risk(response)
    assert level == common_pb2.RISK_LEVEL_ELEVATED
    assert drivers == ["forecast: a 61% chance of PHQ-9 >= 15 within 14 days"]


def test_open_breaker_lets_a_trial_through_within_a_second():
    now = [0.0]
    breaker = CircuitBreaker("x", failure_threshold=1, clock=lambda: now[0])
    breaker.record_failure()
    assert not breaker.allow()
    now[0] = 1.0
    assert breaker.allow()


def test_open_breaker_half_opens_as_soon_as_the_probe_sees_the_service():
    now = [0.0]
    up = [False]
    breaker = CircuitBreaker(
        "x", failure_threshold=1, reset_seconds=60, clock=lambda: now[0], probe=lambda: up[0]
    )
    breaker.record_failure()
    now[0] = 0.1
    assert not breaker.allow()
    up[0] = True
    assert breaker.allow()  # the trial call, long before reset_seconds
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_probe_that_raises_keeps_the_breaker_open():
    def broken() -> bool:
        raise RuntimeError("channel closed")

    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=60, probe=broken)
    breaker.record_failure()
    assert not breaker.allow()
