"""ForecastSymptoms output: shape, non-crossing quantiles, intervals, dates, provenance."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from common.synthetic import generate_cohort
from forecasting_svc.domain import ImportanceSource, ModelChoice
from forecasting_svc.instruments import SPECS, Instrument
from forecasting_svc.models.bundle import (
    ENSEMBLE_ARTIFACT,
    TRANSFORMER_ARTIFACT,
    XGBOOST_ARTIFACT,
)
from tests.unit.forecasting.requests import daily, from_cohort, request
from tests.unit.forecasting.tiny_models import TRAINING_COHORT

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


@pytest.fixture(scope="module")
def cohort():
    # Patients the tiny models never saw: another seed.
    return generate_cohort(TRAINING_COHORT.__class__(n_patients=6, n_days=120, seed=77))


@pytest.mark.parametrize("choice", list(ModelChoice))
async def test_shape_levels_and_non_crossing(service, cohort, choice):
    patient = cohort.patients["patient_id"].iloc[0]
    instruments = (Instrument.PHQ9, Instrument.GAD7, Instrument.MOOD)
    req = from_cohort(
        cohort,
        patient,
        last_day=100,
        instruments=instruments,
        horizon_days=21,
        quantile_levels=LEVELS,
        interval_coverage=0.9,
        model=choice,
    )
    result = await service.forecast(req)
    assert [f.instrument for f in result.forecasts] == list(instruments)
    last_day = max(o.observed_at for o in req.history).date()
    for forecast in result.forecasts:
        spec = SPECS[forecast.instrument]
        assert forecast.model is choice
        assert len(forecast.points) == 21
        assert [p.horizon_day for p in forecast.points] == list(range(1, 22))
        assert [p.date.date() for p in forecast.points] == [
            last_day + timedelta(days=h) for h in range(1, 22)
        ]
        for point in forecast.points:
            levels = [level for level, _ in point.quantiles]
            values = np.array([value for _, value in point.quantiles])
            assert levels == list(LEVELS)
            assert np.all(np.diff(values) >= 0), "quantiles cross"
            assert values[0] >= 0.0 and values[-1] <= spec.max_score
            # The point is the median; the 90 % interval lies between the 5 % and 95 % quantiles.
            assert point.point == pytest.approx(values[2])
            assert point.lower == pytest.approx(values[0])
            assert point.upper == pytest.approx(values[-1])
        observed = {
            o.observed_at.date() for o in req.history if o.instrument is forecast.instrument
        }
        assert forecast.observed_days == len([d for d in observed if (last_day - d).days < 90])
    sources = {d.source for f in result.forecasts for d in f.feature_importance}
    expected = {
        ModelChoice.ENSEMBLE: {ImportanceSource.SHAP, ImportanceSource.ATTENTION},
        ModelChoice.TRANSFORMER: {ImportanceSource.ATTENTION},
        ModelChoice.XGBOOST: {ImportanceSource.SHAP},
    }[choice]
    assert sources == expected
    for forecast in result.forecasts:
        for source in sources:
            shares = [d.importance for d in forecast.feature_importance if d.source is source]
            assert sum(shares) == pytest.approx(1.0)
            assert shares[:-1] == sorted(shares[:-1], reverse=True)
    names = {m.name for m in result.models}
    assert ENSEMBLE_ARTIFACT in names
    assert (TRANSFORMER_ARTIFACT in names) == (choice is not ModelChoice.XGBOOST)
    assert (XGBOOST_ARTIFACT in names) == (choice is not ModelChoice.TRANSFORMER)
    assert 0.0 < result.validation_interval_coverage <= 1.0


async def test_wider_coverage_gives_wider_intervals(service):
    history = daily(Instrument.PHQ9, [12, 13, 11, 14, 12, 13, 12, 11, 14, 13] * 4)
    narrow = await service.forecast(request(history, interval_coverage=0.5))
    wide = await service.forecast(request(history, interval_coverage=0.95))
    narrow_width = [p.upper - p.lower for p in narrow.forecasts[0].points]
    wide_width = [p.upper - p.lower for p in wide.forecasts[0].points]
    assert all(w >= n for w, n in zip(wide_width, narrow_width, strict=True))
    assert sum(wide_width) > sum(narrow_width)


async def test_sparse_irregular_history_with_gaps(service):
    scores = [np.nan] * 60
    for day in (0, 9, 10, 25, 40, 52, 59):
        scores[day] = 8.0 + day % 5
    result = await service.forecast(request(daily(Instrument.GAD7, scores), horizon_days=90))
    forecast = result.forecasts[0]
    assert forecast.observed_days == 7
    assert len(forecast.points) == 90
    assert all(0 <= p.lower <= p.point <= p.upper <= 21 for p in forecast.points)


async def test_single_observation_is_enough(service):
    result = await service.forecast(request(daily(Instrument.MOOD, [6.5]), horizon_days=1))
    assert len(result.forecasts[0].points) == 1


@pytest.mark.parametrize("choice", [ModelChoice.XGBOOST, ModelChoice.ENSEMBLE])
async def test_intervals_widen_for_a_patient_the_models_recently_got_wrong(
    service, monkeypatch, choice
):
    rng = np.random.default_rng(0)
    calm = 12 + np.round(rng.normal(0, 1, 140))
    erratic = np.clip(12 + np.round(rng.normal(0, 5, 140)), 0, 27)
    widths = {}
    for name, scores in (("calm", calm), ("erratic", erratic)):
        result = await service.forecast(request(daily(Instrument.PHQ9, scores), model=choice))
        widths[name] = np.mean([p.upper - p.lower for p in result.forecasts[0].points])
    # The same requests with every patient scale forced to 1.
    models = service.models
    monkeypatch.setattr(
        models, "_backtest_scales", lambda panel, features, series, *_: np.ones(len(series))
    )
    monkeypatch.setattr("forecasting_svc.models.combination.SCALE_RANGE", (1.0, 1.0))
    unscaled = {}
    for name, scores in (("calm", calm), ("erratic", erratic)):
        result = await service.forecast(request(daily(Instrument.PHQ9, scores), model=choice))
        unscaled[name] = np.mean([p.upper - p.lower for p in result.forecasts[0].points])
    assert widths["erratic"] > widths["calm"]
    # The patient's own backtest errors, not only the models' spread, set the width.
    assert widths["erratic"] / widths["calm"] > 1.3 * unscaled["erratic"] / unscaled["calm"]


def _visits(instrument: Instrument, scores: list[float], every_days: int) -> list:
    """One score every ``every_days`` days (a clinic's questionnaire), from START."""
    series = [np.nan] * ((len(scores) - 1) * every_days + 1)
    for k, score in enumerate(scores):
        series[k * every_days] = score
    return daily(instrument, series)


@pytest.mark.parametrize("every_days", [7, 14])
async def test_weekly_and_fortnightly_scores_forecast_from_four_scores(service, every_days):
    history = _visits(Instrument.PHQ9, [5, 11, 16, 22], every_days) + _visits(
        Instrument.GAD7, [4, 8, 13, 18], every_days
    )
    result = await service.forecast(request(history, horizon_days=30))
    assert [f.instrument for f in result.forecasts] == [Instrument.PHQ9, Instrument.GAD7]
    for forecast in result.forecasts:
        assert len(forecast.points) == 30
        top = SPECS[forecast.instrument].max_score
        assert all(0 <= p.lower <= p.point <= p.upper <= top for p in forecast.points)
        assert all(np.isfinite([p.lower, p.point, p.upper]).all() for p in forecast.points)


async def test_short_and_sparse_histories_get_wider_intervals_than_long_daily_ones(service):
    rng = np.random.default_rng(4)
    long_daily = list(np.clip(np.round(12 + rng.normal(0, 1.5, 180)), 0, 27))
    widths = {}
    cases = {
        "180 daily": daily(Instrument.PHQ9, long_daily),
        "10 daily": daily(Instrument.PHQ9, long_daily[-10:]),
        "5 weekly": _visits(Instrument.PHQ9, long_daily[-29::7], 7),
    }
    for name, history in cases.items():
        result = await service.forecast(request(history, horizon_days=28))
        points = result.forecasts[0].points
        widths[name] = np.mean([p.upper - p.lower for p in points])
    assert widths["10 daily"] > widths["180 daily"]
    assert widths["5 weekly"] > widths["180 daily"]
