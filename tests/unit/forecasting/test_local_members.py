"""Per-patient statistical members: ETS, seasonal naive, recent mean, and their backtests."""

from __future__ import annotations

import numpy as np

from forecasting_svc.models.local import (
    LOCAL_MEMBERS,
    choose_backtest_origins,
    is_sparse,
    local_forecasts,
)

ETS, NAIVE, RECENT = (LOCAL_MEMBERS.index(m) for m in ("ets", "seasonal_naive", "recent_mean"))


def _members(values: np.ndarray, horizon: int = 30):
    return local_forecasts(values, 0, horizon, choose_backtest_origins(values), 30)


def test_ets_follows_a_drift_that_a_mean_would_miss() -> None:
    rng = np.random.default_rng(1)
    days = np.arange(120)
    values = 0.2 + 0.004 * days + rng.normal(0, 0.01, 120)  # +0.12 a month, no reversion
    forecasts = _members(values)
    assert forecasts.final[ETS, 29] > values[-7:].mean() + 0.05
    assert abs(forecasts.final[RECENT, 29] - values[-7:].mean()) < 1e-9
    # Its backtests err less than the recent mean's on this series.
    error = np.abs(forecasts.backtest - forecasts.backtest_target).mean(axis=1)
    assert error[ETS] < error[RECENT]


def test_seasonal_naive_repeats_the_weekday_and_backtests_stay_in_the_past() -> None:
    week = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    values = np.tile(week, 12)
    forecasts = _members(values, horizon=14)
    expected = np.tile(week, 14)[len(values) : len(values) + 14]
    assert np.allclose(forecasts.final[NAIVE], expected)
    assert (forecasts.backtest_origin < len(values) - 1).all()
    assert (forecasts.backtest_origin + forecasts.backtest_days <= len(values) - 1).all()
    assert forecasts.backtest_days.min() >= 1 and forecasts.backtest_days.max() <= 30
    # Every backtest forecast of the naive member uses only days up to its origin.
    expected_bt = week[(forecasts.backtest_origin + forecasts.backtest_days) % 7]
    assert np.allclose(forecasts.backtest[NAIVE], expected_bt)


def test_days_before_the_first_score_are_not_history() -> None:
    rng = np.random.default_rng(2)
    observed = 0.5 + rng.normal(0, 0.02, 40)
    padded = np.concatenate([np.full(99, np.nan), observed])
    plain, shifted = (
        _members(observed),
        local_forecasts(padded, (0 - 99) % 7, 30, choose_backtest_origins(padded), 30),
    )
    assert np.allclose(plain.final, shifted.final)
    assert np.array_equal(plain.backtest_origin + 99, shifted.backtest_origin)


def test_weekly_visits_are_a_visit_series_and_four_scores_are_enough() -> None:
    values = np.full(22, np.nan)
    values[[0, 7, 14, 21]] = np.array([5, 11, 16, 22]) / 27
    assert is_sparse(values)
    forecasts = _members(values)
    assert forecasts.sparse
    assert np.isfinite(forecasts.final).all() and forecasts.final.shape == (3, 30)
    assert np.allclose(forecasts.final[NAIVE], 22 / 27)
    # Backtests from the visits that have two visits before them, to later visits.
    assert set(forecasts.backtest_origin.tolist()) == {14}
    assert forecasts.backtest_days.tolist() == [7]


def test_one_score_or_a_constant_series_never_fails() -> None:
    one = np.array([0.4])
    assert np.allclose(_members(one).final, 0.4)
    constant = np.full(60, 0.3)
    assert np.allclose(_members(constant).final, 0.3, atol=1e-6)


def test_a_visit_series_takes_the_ets_form_aicc_picks_among_additive_and_multiplicative() -> None:
    """The visit member is statsforecast's own AutoETS over error A/M and trend N/A/Ad:
    its forecast is the one a user fitting AutoETS to the visits would get."""
    import warnings

    from statsforecast.models import AutoETS

    rng = np.random.default_rng(5)
    level = 0.35 + np.cumsum(rng.normal(0.0, 0.02, 30))
    visits = np.clip(level * np.exp(rng.normal(0.0, 0.15, 30)), 0.02, 1.0)
    values = np.full(7 * 29 + 1, np.nan)
    values[::7] = visits
    forecasts = _members(values, horizon=28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = AutoETS(season_length=1, model="ZZN").forecast(y=visits, h=4)["mean"]
    # 7, 14, 21 and 28 days ahead are 1..4 visits ahead.
    assert np.allclose(forecasts.final[ETS, [6, 13, 20, 27]], np.clip(reference, 0, 1), atol=1e-6)
