"""Bad ForecastSymptoms input is refused naming the field and the rule, never the value."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from common.errors import InvalidArgumentError, ModelUnavailableError
from forecasting_svc.domain import (
    CovariateKind,
    CovariateObservation,
    ModelChoice,
    SymptomObservation,
)
from forecasting_svc.instruments import Instrument
from forecasting_svc.service import ForecastingService
from forecasting_svc.validation import validate_request
from tests.unit.forecasting.requests import START, daily, request

NOW = datetime(2026, 11, 28, tzinfo=UTC)
LIMIT = 500


def _violations(req, limit: int = LIMIT) -> dict[str, str]:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_request(req, max_history_points=limit, now=NOW)
    return {v.field: v.rule for v in caught.value.violations}


def _phq9(scores):
    return daily(Instrument.PHQ9, scores)


def test_valid_request_gets_documented_defaults():
    spec = validate_request(request(_phq9([10, 11, 12])), max_history_points=LIMIT, now=NOW)
    assert spec.quantile_levels == (0.1, 0.5, 0.9)
    assert spec.interval_coverage == 0.8
    assert spec.risk_probability == 0.5
    assert spec.model is ModelChoice.ENSEMBLE


def test_empty_history():
    assert "history" in _violations(request([]))


def test_nan_and_infinite_scores_name_the_index():
    history = _phq9([10, 11, 12, 13, 12])
    history[3] = replace(history[3], score=math.nan)
    assert "finite" in _violations(request(history))["history[3].score"]
    history[3] = replace(history[3], score=math.inf)
    assert "finite" in _violations(request(history))["history[3].score"]


@pytest.mark.parametrize("horizon", [-1, 91, 10_000])
def test_horizon_outside_1_to_90(horizon):
    rule = _violations(request(_phq9([10, 11]), horizon_days=horizon))["horizon_days"]
    assert "1..90" in rule and "0 (meaning 30)" in rule


def test_horizon_zero_means_the_documented_default_as_in_generate_insights():
    """One rule for zero across RPCs: 0 is unset and means 30 days, as on GenerateInsights."""
    spec = validate_request(
        request(_phq9([10, 11]), horizon_days=0), max_history_points=LIMIT, now=NOW
    )
    assert spec.horizon_days == 30


def test_unknown_instrument():
    history = _phq9([10, 11, 12])
    history[2] = replace(history[2], instrument=None)
    assert "history[2].instrument" in _violations(request(history))


@pytest.mark.parametrize(
    ("instrument", "score", "rule_part"),
    [
        (Instrument.PHQ9, 31.5, "0..27"),
        (Instrument.PHQ9, -3.0, "0..27"),
        (Instrument.GAD7, 22.0, "0..21"),
        (Instrument.MOOD, 10.5, "0..10"),
        (Instrument.PHQ9, 12.5, "whole number"),
    ],
)
def test_out_of_range_scores_never_echo_the_value(instrument, score, rule_part):
    history = daily(instrument, [5.0, 6.0, score])
    with pytest.raises(InvalidArgumentError) as caught:
        validate_request(request(history), max_history_points=LIMIT, now=NOW)
    found = {v.field: v.rule for v in caught.value.violations}
    assert rule_part in found["history[2].score"]
    assert f"{score:g}" not in str(caught.value)


def test_unsorted_and_duplicate_timestamps():
    history = _phq9([10, 11, 12, 13])
    history[2], history[3] = history[3], history[2]
    assert "sorted" in _violations(request(history))["history[3].observed_at"]
    duplicate = _phq9([10, 11])
    duplicate.append(SymptomObservation(Instrument.PHQ9, duplicate[1].observed_at, 12.0))
    assert "duplicate" in _violations(request(duplicate))["history[2].observed_at"]


def test_same_time_on_two_instruments_is_fine():
    history = [
        *_phq9([10, 11]),
        *daily(Instrument.MOOD, [5.0, 6.0]),
    ]
    validate_request(request(history), max_history_points=LIMIT, now=NOW)


def test_missing_and_future_timestamps():
    history = _phq9([10, 11])
    history[0] = replace(history[0], observed_at=None)
    assert _violations(request(history))["history[0].observed_at"] == "must be set"
    future = [*_phq9([10]), SymptomObservation(Instrument.PHQ9, NOW + timedelta(days=2), 9.0)]
    assert "future" in _violations(request(future))["history[1].observed_at"]


def test_history_over_the_limit_names_the_limit_and_nothing_else():
    found = _violations(request(_phq9([10.0] * 60)), limit=50)
    assert list(found) == ["history"]
    assert "50" in found["history"]
    assert "NOVAMIND_MAX_HISTORY_POINTS" in found["history"]


@pytest.mark.parametrize(
    ("levels", "field"),
    [
        ([0.5, 0.1], "quantile_levels[1]"),
        ([0.0, 0.5], "quantile_levels[0]"),
        ([0.5, 1.0], "quantile_levels[1]"),
        ([0.2, float("nan")], "quantile_levels[1]"),
        ([0.3, 0.3], "quantile_levels[1]"),
    ],
)
def test_quantile_levels(levels, field):
    assert field in _violations(request(_phq9([10, 11]), quantile_levels=levels))


def test_coverage_risk_probability_model_and_pseudonym():
    found = _violations(
        request(
            _phq9([10, 11]),
            interval_coverage=1.0,
            risk_probability=1.5,
            model=None,
            patient_pseudonym="MRN-0048291",
        )
    )
    assert {"interval_coverage", "risk_probability", "model", "patient_pseudonym"} <= set(found)
    assert "MRN" not in " ".join(found.values())


def test_covariate_rules_including_daily_totals():
    at = START + timedelta(hours=1)
    covariates = [
        CovariateObservation(None, at, 7.0),
        CovariateObservation(CovariateKind.SLEEP_HOURS, at, 25.0),
        CovariateObservation(CovariateKind.SLEEP_HOURS, at, 14.0),
        CovariateObservation(CovariateKind.SLEEP_HOURS, at + timedelta(hours=2), 12.0),
        CovariateObservation(CovariateKind.STEPS, at, float("nan")),
    ]
    found = _violations(request(_phq9([10, 11]), covariates=covariates))
    assert "covariates[0].kind" in found
    assert "0..24" in found["covariates[1].value"]
    assert "daily total" in found["covariates[3].value"]
    assert "covariates[2].value" not in found
    assert "finite" in found["covariates[4].value"]


def test_an_instrument_without_recent_data_is_named():
    history = [
        SymptomObservation(Instrument.GAD7, START, 8.0),
        *daily(Instrument.PHQ9, [10.0] * 5, START + timedelta(days=120)),
    ]
    assert "GAD-7" in _violations(request(history))["history"]


def test_all_violations_reported_at_once():
    history = _phq9([10, 40, 12])
    history[2] = replace(history[2], score=math.nan)
    found = _violations(request(history, horizon_days=-1))
    assert {"history[1].score", "history[2].score", "horizon_days"} <= set(found)


async def test_invalid_input_is_refused_before_the_model_is_needed():
    untrained = ForecastingService(None)
    with pytest.raises(InvalidArgumentError):
        await untrained.forecast(request(_phq9([10, 11]), horizon_days=-1))
    with pytest.raises(ModelUnavailableError):
        await untrained.forecast(request(_phq9([10, 11])))


async def test_random_requests_either_forecast_or_name_a_field(service):
    rng = np.random.default_rng(11)
    choices = [
        float("nan"),
        -1.0,
        0.0,
        3.0,
        27.0,
        28.0,
        1e308,
    ]
    for _ in range(25):
        n = int(rng.integers(0, 12))
        scores = [choices[i] for i in rng.integers(0, len(choices), n)]
        instruments = [Instrument.PHQ9, Instrument.GAD7, Instrument.MOOD, None]
        history = [
            SymptomObservation(
                instruments[int(rng.integers(0, 4))],
                START + timedelta(days=int(rng.integers(-3, 40))),
                score,
            )
            for score in scores
        ]
        req = request(
            history,
            horizon_days=int(rng.integers(-2, 100)),
            quantile_levels=list(rng.choice([0.0, 0.1, 0.5, 0.9, 1.0], int(rng.integers(0, 3)))),
        )
        try:
            result = await service.forecast(req)
        except InvalidArgumentError as error:
            assert error.violations
            assert all(v.field and v.rule for v in error.violations)
        else:
            assert result.forecasts
