"""The forecast's trend: the shared definition applied to the request's observed scores."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from common.trend import TREND_RULES, symptom_trend
from forecasting_svc.domain import SymptomObservation, TrendDirection
from forecasting_svc.instruments import SPECS, Instrument
from tests.unit.forecasting.requests import START, daily, request


def weekly(instrument: Instrument, scores: list[float]) -> list[SymptomObservation]:
    return [
        SymptomObservation(instrument, START + timedelta(days=7 * week), float(score))
        for week, score in enumerate(scores)
    ]


@pytest.mark.parametrize(
    ("instrument", "scores"),
    [(Instrument.PHQ9, [5, 10, 16, 22]), (Instrument.GAD7, [4, 9, 13, 18])],
)
async def test_four_weekly_scores_rising_to_severe_are_worsening(service, instrument, scores):
    result = await service.forecast(request(weekly(instrument, scores), horizon_days=14))
    trend = result.forecasts[0].trend
    assert trend.direction is TrendDirection.WORSENING
    assert trend.significant and trend.scores == 4
    assert trend.slope_lower_per_week > 0


async def test_injected_upward_phq9_trend_is_reported_worsening(service):
    rng = np.random.default_rng(4)
    flat = 7 + rng.normal(0, 1, 60)
    rising = 7 + 0.4 * np.arange(1, 36) + rng.normal(0, 1, 35)
    scores = np.clip(np.round(np.concatenate([flat, rising])), 0, 27)
    result = await service.forecast(request(daily(Instrument.PHQ9, scores), horizon_days=14))
    trend = result.forecasts[0].trend
    assert trend.direction is TrendDirection.WORSENING
    assert trend.significant and trend.slope_per_week > 0


async def test_falling_mood_is_worsening_and_flat_mood_stable(service):
    rng = np.random.default_rng(6)
    falling = np.clip(np.round(8 - 0.12 * np.arange(50) + rng.normal(0, 0.3, 50), 1), 0, 10)
    result = await service.forecast(request(daily(Instrument.MOOD, falling), horizon_days=7))
    assert result.forecasts[0].trend.direction is TrendDirection.WORSENING
    flat = np.clip(np.round(6 + rng.normal(0, 0.4, 50), 1), 0, 10)
    result = await service.forecast(request(daily(Instrument.MOOD, flat), horizon_days=7))
    assert result.forecasts[0].trend.direction is TrendDirection.STABLE


async def test_the_forecast_trend_is_the_shared_definition_on_observed_scores(service):
    rng = np.random.default_rng(9)
    scores = np.clip(np.round(12 + 0.05 * np.arange(120) + rng.normal(0, 2, 120)), 0, 27)
    scores[::3] = np.nan  # gaps
    result = await service.forecast(request(daily(Instrument.PHQ9, scores), horizon_days=30))
    observed = np.flatnonzero(np.isfinite(scores)).astype(np.float64)
    expected = symptom_trend(observed, scores[np.isfinite(scores)], TREND_RULES["phq9"])
    trend = result.forecasts[0].trend
    assert (trend.direction, trend.scores, trend.significant) == (
        expected.direction,
        expected.scores,
        expected.significant,
    )
    for name in ("slope_per_week", "slope_lower_per_week", "slope_upper_per_week", "p_value"):
        assert getattr(trend, name) == pytest.approx(getattr(expected, name), rel=1e-9)


async def test_three_scores_are_not_assessed(service):
    result = await service.forecast(request(weekly(Instrument.PHQ9, [5, 12, 22]), horizon_days=7))
    assert result.forecasts[0].trend.direction is TrendDirection.NOT_ASSESSED


def test_the_forecasting_and_trend_tables_agree_on_which_way_is_worse():
    for instrument, spec in SPECS.items():
        assert TREND_RULES[instrument.value].higher_is_worse == spec.higher_is_worse
