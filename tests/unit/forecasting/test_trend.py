"""Trend direction, slope and Mann-Kendall significance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from forecasting_svc.domain import TrendDirection
from forecasting_svc.instruments import SPECS, Instrument
from forecasting_svc.trend import compute_trend, mann_kendall, ols_slope
from tests.unit.forecasting.requests import daily, request


def test_mann_kendall_matches_kendall_tau_on_independent_data():
    rng = np.random.default_rng(5)
    days = np.arange(40, dtype=float)
    values = 0.05 * days + rng.normal(0, 1, 40)  # continuous: no ties
    _, p_value = mann_kendall(days, values)
    tau = stats.kendalltau(days, values, method="asymptotic")
    # Same test; ours adds the continuity correction and (if any) autocorrelation inflation.
    assert p_value == pytest.approx(tau.pvalue, rel=0.25)


def test_autocorrelation_makes_the_test_more_cautious():
    rng = np.random.default_rng(8)
    days = np.arange(28, dtype=float)
    noise = np.zeros(28)
    for t in range(1, 28):
        noise[t] = 0.9 * noise[t - 1] + rng.normal()
    values = noise + 0.02 * days
    _, corrected = mann_kendall(days, values)
    naive = stats.kendalltau(days, values, method="asymptotic").pvalue
    assert corrected >= naive


def test_ols_slope_is_least_squares():
    days = np.array([0.0, 1.0, 3.0, 7.0])
    values = np.array([1.0, 2.0, 2.5, 6.0])
    expected = np.polyfit(days, values, 1)[0]
    assert ols_slope(days, values) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "higher_is_worse", "direction"),
    [
        (0.4, True, TrendDirection.WORSENING),
        (-0.4, True, TrendDirection.IMPROVING),
        (0.1, False, TrendDirection.IMPROVING),
        (-0.1, False, TrendDirection.WORSENING),
    ],
)
def test_direction_follows_clinical_meaning(step, higher_is_worse, direction):
    rng = np.random.default_rng(1)
    days = np.arange(-27, 1, dtype=float)
    values = 10 + step * (days + 27) + rng.normal(0, 0.3, len(days))
    forecast = values[-1] + step * np.arange(1, 8)
    trend = compute_trend(days, values, forecast, higher_is_worse=higher_is_worse)
    assert trend.direction is direction
    assert trend.significant and trend.p_value < 0.05
    assert np.sign(trend.slope_per_week) == np.sign(step)


def test_flat_noise_is_stable():
    rng = np.random.default_rng(2)
    days = np.arange(-27, 1, dtype=float)
    values = 12 + rng.normal(0, 1.0, len(days)).round()
    trend = compute_trend(days, values, np.full(14, 12.0), higher_is_worse=True)
    assert trend.direction is TrendDirection.STABLE
    assert not trend.significant


async def test_injected_upward_phq9_trend_is_reported_worsening(service):
    rng = np.random.default_rng(4)
    flat = 7 + rng.normal(0, 1, 60)
    rising = 7 + 0.4 * np.arange(1, 36) + rng.normal(0, 1, 35)
    scores = np.clip(np.round(np.concatenate([flat, rising])), 0, 27)
    result = await service.forecast(request(daily(Instrument.PHQ9, scores), horizon_days=14))
    trend = result.forecasts[0].trend
    assert trend.direction is TrendDirection.WORSENING
    assert trend.significant
    assert trend.slope_per_week > 0


async def test_falling_mood_is_worsening_and_flat_mood_stable(service):
    rng = np.random.default_rng(6)
    falling = np.clip(np.round(8 - 0.12 * np.arange(50) + rng.normal(0, 0.3, 50), 1), 0, 10)
    result = await service.forecast(request(daily(Instrument.MOOD, falling), horizon_days=7))
    assert result.forecasts[0].trend.direction is TrendDirection.WORSENING
    flat = np.clip(np.round(6 + rng.normal(0, 0.4, 50), 1), 0, 10)
    result = await service.forecast(request(daily(Instrument.MOOD, flat), horizon_days=7))
    assert result.forecasts[0].trend.direction is TrendDirection.STABLE


def test_a_significant_but_clinically_negligible_drift_is_stable():
    # Mood falls 0.01 points a day (0.07 a week) with almost no noise: significant,
    # but under the 1-point-in-12-weeks minimum (0.083 a week) for the 0-10 ratings.
    rng = np.random.default_rng(2)
    days = np.arange(-27, 1, dtype=float)
    values = 7.0 - 0.01 * (days + 27) + rng.normal(0, 0.02, len(days))
    forecast = values[-1] - 0.01 * np.arange(1, 15)
    spec = SPECS[Instrument.MOOD]
    trend = compute_trend(
        days,
        values,
        forecast,
        higher_is_worse=spec.higher_is_worse,
        meaningful_change_per_week=spec.meaningful_change_per_week,
    )
    assert trend.significant and trend.slope_per_week == pytest.approx(-0.07, abs=0.01)
    assert trend.direction is TrendDirection.STABLE
    steeper = compute_trend(
        days,
        7.0 - 0.02 * (days + 27) + rng.normal(0, 0.02, len(days)),
        forecast - 0.01 * np.arange(1, 15),
        higher_is_worse=spec.higher_is_worse,
        meaningful_change_per_week=spec.meaningful_change_per_week,
    )
    assert steeper.direction is TrendDirection.WORSENING


def test_minimum_trends_are_one_mcid_over_twelve_weeks():
    assert SPECS[Instrument.PHQ9].meaningful_change_per_week == pytest.approx(5 / 12)
    assert SPECS[Instrument.GAD7].meaningful_change_per_week == pytest.approx(4 / 12)
