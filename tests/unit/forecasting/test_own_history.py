"""The own-history check: how the ensemble did on the patient's own earlier scores."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting_svc.domain import ModelChoice
from forecasting_svc.instruments import Instrument
from forecasting_svc.models.combination import MAX_BACKTEST_DAYS, MEMBERS, UNWEIGHTED_MEMBERS
from forecasting_svc.models.local import choose_backtest_origins
from tests.unit.forecasting.requests import daily, request


def _noisy(days: int, sd: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(np.clip(np.round(12 + rng.normal(0, sd, days)), 0, 27))


def _seasonal_naive_mae(scores: list[float]) -> tuple[int, float]:
    """Pairs and MAE of the weekly seasonal naive at the series' backtest origins,
    computed here from the scores alone (every day observed)."""
    values = np.asarray(scores, dtype=np.float64)
    errors = []
    for origin in choose_backtest_origins(values / 27.0):
        for target in range(origin + 1, min(origin + MAX_BACKTEST_DAYS, len(values) - 1) + 1):
            # The last score on the target's weekday at or before the origin.
            same_weekday = origin - ((origin - target) % 7)
            errors.append(abs(values[same_weekday] - values[target]))
    return len(errors), float(np.mean(errors))


async def test_ensemble_reports_its_own_history_errors_in_points(service):
    scores = _noisy(80, sd=2.0, seed=3)
    result = await service.forecast(request(daily(Instrument.PHQ9, scores), horizon_days=14))
    check = result.forecasts[0].own_history
    assert check is not None
    pairs, naive_mae = _seasonal_naive_mae(scores)
    assert check.pairs == pairs
    assert check.seasonal_naive_mae == pytest.approx(naive_mae, rel=1e-6)
    # An ensemble median of these members errs on noisy scores, but by points, not tens.
    assert 0.3 < check.ensemble_mae < 6.0
    weights = dict(check.member_weights)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert [w for _, w in check.member_weights] == sorted(weights.values(), reverse=True)
    assert set(weights) <= set(MEMBERS) - set(UNWEIGHTED_MEMBERS)
    assert all(w > 0 for w in weights.values())


async def test_erratic_patient_is_flagged_unfamiliar_and_a_calm_one_is_not(service):
    calm = _noisy(120, sd=0.7, seed=5)
    # Alternating extremes: nothing like any training patient.
    erratic = [0.0 if day % 2 else 27.0 for day in range(120)]
    checks = {}
    for name, scores in (("calm", calm), ("erratic", erratic)):
        result = await service.forecast(request(daily(Instrument.PHQ9, scores), horizon_days=14))
        checks[name] = result.forecasts[0].own_history
    assert checks["erratic"].interval_scale > checks["calm"].interval_scale
    assert checks["erratic"].unfamiliar
    assert not checks["calm"].unfamiliar
    assert checks["erratic"].ensemble_mae > 3 * checks["calm"].ensemble_mae


async def test_a_single_score_has_no_own_history_to_check(service):
    result = await service.forecast(request(daily(Instrument.GAD7, [9.0]), horizon_days=7))
    check = result.forecasts[0].own_history
    assert check is not None
    assert check.pairs == 0
    assert check.ensemble_mae == 0.0 and check.seasonal_naive_mae == 0.0
    assert not check.unfamiliar
    assert sum(w for _, w in check.member_weights) == pytest.approx(1.0)


@pytest.mark.parametrize("choice", [ModelChoice.TRANSFORMER, ModelChoice.XGBOOST])
async def test_single_model_forecasts_carry_no_check(service, choice):
    scores = _noisy(60, sd=2.0, seed=1)
    result = await service.forecast(
        request(daily(Instrument.PHQ9, scores), horizon_days=7, model=choice)
    )
    assert result.forecasts[0].own_history is None
