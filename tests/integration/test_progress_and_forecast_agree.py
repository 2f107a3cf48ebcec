"""Progress and forecast tell the same trend: the demo's patient through the real mesh."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from common.synthetic import generate_cohort
from novamind.forecasting.v1 import forecasting_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to
from tests.integration.mesh import running_mesh
from twin_orchestrator.demo import DEMO_COHORT, DEMO_PATIENT_ID, choose_patient, visit_days
from twin_orchestrator.patient_bundle import patient_data


async def test_progress_and_forecast_agree_on_the_demo_patients_trends(
    tmp_path, pki_dir, trained_models
):
    cohort = generate_cohort(DEMO_COHORT)
    patient = choose_patient(cohort)
    start = datetime.combine(cohort.config.start_date, time(), tzinfo=UTC)
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            for day in visit_days(cohort, patient):
                data = patient_data(cohort, patient, start + timedelta(days=day))
                request = twin_pb2.GenerateInsightsRequest(patient_id=DEMO_PATIENT_ID, data=data)
                request.options.forecast_horizon_days = 30
                last = await stub.GenerateInsights(request, timeout=60)
            progress = await stub.GetPatientProgress(
                twin_pb2.GetPatientProgressRequest(patient_id=DEMO_PATIENT_ID), timeout=30
            )
    forecast_trends = {f.instrument: f.trend for f in last.forecast.forecast.forecasts}
    progress_trends = {t.instrument: t for t in progress.symptom_trends}
    assert forecast_trends and set(forecast_trends) <= set(progress_trends)
    for instrument, forecast_trend in forecast_trends.items():
        summary = progress_trends[instrument]
        assert forecast_trend.direction != forecasting_pb2.TREND_DIRECTION_UNSPECIFIED
        assert summary.direction == forecast_trend.direction
        assert summary.trend.scores == forecast_trend.scores
        assert summary.slope_per_week == pytest.approx(forecast_trend.slope_per_week, abs=1e-9)
        assert summary.trend.slope_lower_per_week == pytest.approx(
            forecast_trend.slope_lower_per_week, abs=1e-9
        )
    # change is measured between the snapshots' latest scores, as the proto defines it.
    latest = {o.instrument: o.score for o in progress.timeline[0].latest_scores}
    final = {o.instrument: o.score for o in progress.timeline[-1].latest_scores}
    for instrument, summary in progress_trends.items():
        assert summary.change == pytest.approx(final[instrument] - latest[instrument])
