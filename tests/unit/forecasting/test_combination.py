"""The per-patient ensemble: weights from the patient's own backtests, scale and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from forecasting_svc.models.combination import (
    DAILY,
    MEMBERS,
    CalibrationUnit,
    CombinationPrior,
    SeriesBacktest,
    fit_prior,
    uniform_prior,
)
from forecasting_svc.models.conformal import values_at

M = len(MEMBERS)


def _backtest(
    errors: list[float], pairs: int = 40, rng_seed: int = 0, shared_sign: bool = False
) -> SeriesBacktest:
    """Backtests where member m errs by errors[m] on every pair, in a random direction
    (the same for every member of a pair when ``shared_sign``)."""
    rng = np.random.default_rng(rng_seed)
    target = rng.uniform(0.3, 0.6, pairs)
    signs = rng.choice([-1.0, 1.0], (1 if shared_sign else M, pairs))
    forecasts = target[None, :] + np.asarray(errors)[:, None] * signs
    days = np.tile(np.arange(1, 31), pairs // 30 + 1)[:pairs]
    return SeriesBacktest(forecasts=forecasts, target=target, days=days.astype(np.int64))


def test_the_member_that_did_best_on_this_patient_gets_the_most_weight() -> None:
    prior = uniform_prior(4)
    weights = prior.weights(_backtest([0.10, 0.10, 0.02, 0.10, 0.10]), DAILY)
    assert weights.shape == (3, M)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert (weights.argmax(axis=1) == MEMBERS.index("ets")).all()
    final = np.vstack([np.full(10, v) for v in (0.1, 0.1, 0.5, 0.1, 0.1)])
    combined = prior.combine(final, _backtest([0.10, 0.10, 0.02, 0.10, 0.10]), 0, DAILY)
    equal_weights = final.mean(axis=0)
    assert (combined.median > equal_weights + 0.05).all()


def test_without_backtests_the_prior_decides() -> None:
    prior = uniform_prior(4)
    rel = prior.rel_error.copy()
    rel[DAILY, :, :, MEMBERS.index("recent_mean")] = 0.5
    prior = CombinationPrior(rel, prior.mae, prior.z_table)
    empty = SeriesBacktest(np.zeros((M, 0)), np.zeros(0), np.zeros(0, np.int64))
    weights = prior.weights(empty, DAILY)
    assert (weights.argmax(axis=1) == MEMBERS.index("recent_mean")).all()
    combined = prior.combine(np.full((M, 5), 0.4), empty, 0, DAILY)
    assert combined.scale == 1.0 and combined.evidence == 0


def test_a_patient_with_larger_backtest_errors_gets_wider_intervals() -> None:
    prior = uniform_prior(4)
    final = np.full((M, 30), 0.4)
    calm = prior.combine(final, _backtest([0.02] * M, 60, shared_sign=True), 0, DAILY)
    erratic = prior.combine(final, _backtest([0.2] * M, 60, shared_sign=True), 0, DAILY)
    calm_q = prior.quantile_function(calm, DAILY)
    erratic_q = prior.quantile_function(erratic, DAILY)
    calm_width = np.ptp(values_at(calm_q, [0.1, 0.9]), axis=-1)
    erratic_width = np.ptp(values_at(erratic_q, [0.1, 0.9]), axis=-1)
    assert (erratic_width > 3 * calm_width).all()
    assert (np.diff(calm_q, axis=-1) >= 0).all()


def _growing_backtest(near: float, far: float, seed: int = 0) -> SeriesBacktest:
    """Backtests whose combined error is ``near`` at 1-7 days and ``far`` beyond 14 days."""
    rng = np.random.default_rng(seed)
    days = np.tile(np.arange(1, 31), 3).astype(np.int64)
    target = rng.uniform(0.3, 0.6, len(days))
    size = np.where(days <= 7, near, np.where(days <= 14, (near + far) / 2, far))
    signs = rng.choice([-1.0, 1.0], len(days))
    forecasts = np.tile(target + size * signs, (M, 1))
    return SeriesBacktest(forecasts=forecasts, target=target, days=days)


def test_intervals_grow_with_the_horizon_as_this_patients_own_errors_did() -> None:
    """Two patients with the same overall backtest error: the one whose errors grew with
    the horizon gets the wider far interval and the narrower near one."""
    prior = uniform_prior(4)
    final = np.full((M, 30), 0.4)
    flat = prior.combine(final, _growing_backtest(0.06, 0.06), 0, DAILY)
    growing = prior.combine(final, _growing_backtest(0.02, 0.09), 0, DAILY)
    assert growing.sigma[0] < flat.sigma[0]
    assert growing.sigma[29] > flat.sigma[29]
    assert growing.sigma[29] / growing.sigma[0] > 2.0 * flat.sigma[29] / flat.sigma[0]


def test_the_prior_a_short_history_falls_back_on_is_its_own_evidence_bins() -> None:
    """Units with few backtest pairs teach the few-pairs prior; with many, the many-pairs one."""
    rng = np.random.default_rng(4)
    units = []
    for k in range(400):
        pairs = 4 if k % 2 else 60  # evidence bins 0 and 2
        days = np.tile(np.arange(1, 31), 2)[:pairs].astype(np.int64)
        target = rng.uniform(0.3, 0.6, pairs)
        backtest = SeriesBacktest(np.tile(target, (M, 1)), target, days)
        future = rng.uniform(0.3, 0.6, 30)
        final = np.tile(future, (M, 1)) + 0.1
        # Short histories: the recent mean is the one close to the future; long: ETS.
        best = MEMBERS.index("recent_mean" if pairs == 4 else "ets")
        final[best] = future + 0.01
        units.append(CalibrationUnit(0, DAILY, backtest, final, future))
    prior = fit_prior(units, 4, (0.8, 0.95))
    assert (prior.rel_error[DAILY, 0].argmin(axis=1) == MEMBERS.index("recent_mean")).all()
    assert (prior.rel_error[DAILY, 2].argmin(axis=1) == MEMBERS.index("ets")).all()
    few = SeriesBacktest(np.zeros((M, 0)), np.zeros(0), np.zeros(0, np.int64))
    assert (prior.weights(few, DAILY).argmax(axis=1) == MEMBERS.index("recent_mean")).all()


def _units(n: int, noise: float, seed: int) -> list[CalibrationUnit]:
    """Units whose future is the members' forecast plus noise scaled like their backtests."""
    rng = np.random.default_rng(seed)
    units = []
    for _ in range(n):
        sd = noise * rng.uniform(0.5, 2.0)  # patients differ in how predictable they are
        level = rng.uniform(0.2, 0.7)
        target = level + rng.normal(0, sd, 40)
        forecasts = np.full((M, 40), level) + rng.normal(0, sd * 0.1, (M, 40))
        days = np.tile(np.arange(1, 11), 4).astype(np.int64)
        final = np.full((M, 30), level)
        future = level + rng.normal(0, sd, 30)
        future[rng.random(30) < 0.1] = np.nan
        units.append(
            CalibrationUnit(0, DAILY, SeriesBacktest(forecasts, target, days), final, future)
        )
    return units


def test_fitted_intervals_cover_new_patients_at_the_nominal_rate() -> None:
    prior = fit_prior(_units(300, 0.05, 0), 4, (0.8, 0.95))
    assert prior.coverage_for(0.8) == pytest.approx(0.8, abs=0.03)
    test_units = _units(200, 0.05, 1)
    inside80, inside95 = [], []
    for unit in test_units:
        combined = prior.combine(unit.final, unit.backtest, unit.instrument, unit.cadence)
        bounds = values_at(prior.quantile_function(combined, DAILY), [0.1, 0.9, 0.025, 0.975])
        seen = np.isfinite(unit.future)
        y = unit.future[seen]
        inside80.append((y >= bounds[seen, 0]) & (y <= bounds[seen, 1]))
        inside95.append((y >= bounds[seen, 2]) & (y <= bounds[seen, 3]))
    assert np.concatenate(inside80).mean() == pytest.approx(0.8, abs=0.03)
    assert np.concatenate(inside95).mean() == pytest.approx(0.95, abs=0.02)
    # Normal noise: the z table is close to the standard normal's quantiles.
    assert prior.z_table[DAILY, 0, 2, 89] == pytest.approx(norm.ppf(0.9), abs=0.35)


def test_round_trip_and_refusal_of_another_layout() -> None:
    prior = fit_prior(_units(80, 0.05, 2), 4, (0.8, 0.95))
    again = CombinationPrior.from_json(prior.to_json())
    assert np.allclose(again.z_table, prior.z_table, atol=1e-6)
    assert again.empirical_coverage == pytest.approx(prior.empirical_coverage)
    raw = prior.to_json()
    raw["members"] = ["transformer", "xgboost"]
    with pytest.raises(ValueError, match="members"):
        CombinationPrior.from_json(raw)
