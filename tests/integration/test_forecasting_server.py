"""The forecasting service on a real mTLS server with a real (tiny) trained model set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from forecasting_svc.server import service_definition
from forecasting_svc.service import ForecastingService
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2, forecasting_pb2_grpc
from tests.conftest import channel_to, running
from tests.unit.forecasting.tiny_models import tiny_store

START = datetime(2026, 2, 1, 19, tzinfo=UTC)
PSEUDONYM = "psn_" + "c" * 32


def _request(days: int = 60, seed: int = 0, **options: object):
    rng = np.random.default_rng(seed)
    request = forecasting_pb2.ForecastSymptomsRequest(patient_pseudonym=PSEUDONYM, **options)
    if not request.horizon_days:
        request.horizon_days = 14
    for day in range(days):
        moment = START + timedelta(days=day)
        phq9 = request.history.add(
            instrument=common_pb2.INSTRUMENT_PHQ9,
            score=float(np.clip(round(11 + rng.normal(0, 2)), 0, 27)),
        )
        phq9.observed_at.FromDatetime(moment)
        mood = request.history.add(
            instrument=common_pb2.INSTRUMENT_MOOD,
            score=round(float(np.clip(6 + rng.normal(0, 0.5), 0, 10)), 1),
        )
        mood.observed_at.FromDatetime(moment + timedelta(minutes=5))
        sleep = request.covariates.add(kind=forecasting_pb2.COVARIATE_KIND_SLEEP_HOURS, value=7.0)
        sleep.observed_at.FromDatetime(moment)
    event = request.medication_events.add(
        medication="sertraline", type=common_pb2.MEDICATION_EVENT_TYPE_START, daily_dose_mg=50
    )
    event.occurred_at.FromDatetime(START + timedelta(days=5))
    return request


@pytest.fixture
def forecasting():
    return ForecastingService.from_store(tiny_store(), max_history_points=1_000)


async def test_forecast_over_mtls(make_settings, pki_dir, forecasting):
    async with running(make_settings("forecasting"), service_definition(forecasting)) as mesh:
        async with channel_to(mesh, pki_dir, identity="orchestrator") as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            reply = await stub.ForecastSymptoms(
                _request(quantile_levels=[0.1, 0.5, 0.9], interval_coverage=0.8), timeout=20
            )
            info = await stub.GetModelInfo(forecasting_pb2.GetModelInfoRequest(), timeout=5)
    assert [f.instrument for f in reply.forecasts] == [
        common_pb2.INSTRUMENT_PHQ9,
        common_pb2.INSTRUMENT_MOOD,
    ]
    for forecast in reply.forecasts:
        assert forecast.model == forecasting_pb2.FORECAST_MODEL_ENSEMBLE
        assert len(forecast.points) == 14
        assert forecast.observed_days == 60
        assert forecast.trend.direction != forecasting_pb2.TREND_DIRECTION_UNSPECIFIED
        first = forecast.points[0]
        assert first.date.ToDatetime(tzinfo=UTC).date() == (START + timedelta(days=60)).date()
        for point in forecast.points:
            values = [q.value for q in point.quantiles]
            assert [q.level for q in point.quantiles] == pytest.approx([0.1, 0.5, 0.9])
            assert values == sorted(values)
            assert point.lower == pytest.approx(values[0]) and point.upper == pytest.approx(
                values[2]
            )
        # The own-history check travels with every ensemble forecast.
        check = forecast.own_history
        assert forecast.HasField("own_history") and check.pairs > 0
        assert 0 < check.ensemble_mae < 10 and 0 < check.seasonal_naive_mae < 10
        assert 1 / 3 <= check.interval_scale <= 3
        assert sum(w.weight for w in check.member_weights) == pytest.approx(1.0)
        assert {w.member for w in check.member_weights} <= {"xgboost", "ets", "recent_mean"}
        sources = {d.source for d in forecast.feature_importance}
        # Every driver carries clinical words besides its raw feature name.
        for driver in forecast.feature_importance:
            assert driver.feature and driver.label and "_" not in driver.label, driver
        attention = [
            d
            for d in forecast.feature_importance
            if d.source == forecasting_pb2.IMPORTANCE_SOURCE_ATTENTION
        ]
        assert all(d.label.startswith(("scores", "earlier scores")) for d in attention)
        assert sources == {
            forecasting_pb2.IMPORTANCE_SOURCE_SHAP,
            forecasting_pb2.IMPORTANCE_SOURCE_ATTENTION,
        }
    names = sorted(m.name for m in info.models)
    assert names == ["forecasting.ensemble", "forecasting.transformer", "forecasting.xgboost"]
    assert sorted(m.name for m in reply.models) == names
    for model in info.models:
        assert len(model.training_data_sha256) == 64
        assert model.signature_verified
        assert "val_mae_phq9_h1_7" in model.metrics
    assert 0 < reply.validation_interval_coverage <= 1


async def test_bad_input_is_invalid_argument_with_field_details(
    make_settings, pki_dir, forecasting
):
    request = _request(days=10)
    request.history[3].score = 31.5
    request.history[4].instrument = 99  # not a known instrument
    request.horizon_days = 10_000
    async with running(make_settings("forecasting"), service_definition(forecasting)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ForecastSymptoms(request, timeout=10)
            oversized = _request(days=600)
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await stub.ForecastSymptoms(oversized, timeout=10)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field for v in bad_request.field_violations}
    assert {"history[3].score", "history[4].instrument", "horizon_days"} <= fields
    assert "31.5" not in error.details()
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1000" in too_big.value.details()


async def test_concurrent_requests_are_batched_into_one_model_call(make_settings, pki_dir):
    # A collection window long enough that requests sent together land in one batch
    # even on a loaded machine; the assertion is on the batcher's counter, not on timing.
    forecasting = ForecastingService.from_store(tiny_store(), max_wait_seconds=0.2)
    async with running(make_settings("forecasting"), service_definition(forecasting)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            replies = await asyncio.gather(
                *(stub.ForecastSymptoms(_request(seed=s), timeout=30) for s in range(8))
            )
    assert len(replies) == 8
    assert all(len(r.forecasts) == 2 for r in replies)
    assert forecasting.batcher.stats.items == 8
    assert forecasting.batcher.stats.largest_batch > 1
    assert forecasting.batcher.stats.batches < 8


@pytest.mark.parametrize(
    ("instrument", "scores"),
    [(common_pb2.INSTRUMENT_PHQ9, (5, 10, 16, 22)), (common_pb2.INSTRUMENT_GAD7, (4, 9, 13, 18))],
)
async def test_four_weekly_scores_rising_to_severe_read_worsening(
    make_settings, pki_dir, forecasting, instrument, scores
):
    request = forecasting_pb2.ForecastSymptomsRequest(patient_pseudonym=PSEUDONYM, horizon_days=14)
    for week, score in enumerate(scores):
        observation = request.history.add(instrument=instrument, score=float(score))
        observation.observed_at.FromDatetime(START + timedelta(days=7 * week))
    async with running(make_settings("forecasting"), service_definition(forecasting)) as mesh:
        async with channel_to(mesh, pki_dir, identity="orchestrator") as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            reply = await stub.ForecastSymptoms(request, timeout=20)
    (forecast,) = reply.forecasts
    assert forecast.trend.direction == forecasting_pb2.TREND_DIRECTION_WORSENING
    assert forecast.trend.significant and forecast.trend.scores == 4
    assert forecast.trend.slope_lower_per_week > 0
    assert forecast.trend.fitted_change >= 4.0
