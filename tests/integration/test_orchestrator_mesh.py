"""GenerateInsights through all four real servers: happy path, a stopped service,
a slow service past its deadline, everything down, and concurrency of the fan-out."""

from __future__ import annotations

import time

import grpc
import pytest

from common.synthetic import CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to
from tests.integration.delay_interceptor import DelayInterceptor
from tests.integration.mesh import running_mesh
from twin_orchestrator.patient_bundle import patient_data

OK = common_pb2.SECTION_STATUS_OK
PATIENT_ID = "MRN-0042917"


@pytest.fixture(scope="module")
def request_bundle() -> twin_pb2.GenerateInsightsRequest:
    cohort = generate_cohort(CohortConfig(n_patients=12, n_days=150, seed=5))
    data = patient_data(cohort, str(cohort.patients.patient_id.iloc[3]))
    # A carbamazepine user who carries HLA-B*15:02: the guidance must reach the recommendations.
    del data.genotype.hla_results[:]
    data.genotype.hla_results.add(allele="HLA-B*15:02", status=common_pb2.HLA_STATUS_POSITIVE)
    data.current_medications.add(name="carbamazepine", daily_dose_mg=400)
    request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID, data=data)
    request.options.forecast_horizon_days = 21
    return request


def _statuses(response: twin_pb2.GenerateInsightsResponse) -> dict[str, int]:
    return {
        "forecast": response.forecast.result.status,
        "biometric": response.biometric.result.status,
        "pharmacogenomics": response.pharmacogenomics.result.status,
    }


async def _generate(mesh, pki_dir, request, deadline=30.0):
    async with channel_to(mesh.orchestrator, pki_dir) as channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        started = time.perf_counter()
        response = await stub.GenerateInsights(request, timeout=deadline)
        return response, time.perf_counter() - started


async def test_happy_path_all_sections_ok_and_progress(
    tmp_path, pki_dir, trained_models, request_bundle
):
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        response, _ = await _generate(mesh, pki_dir, request_bundle)
        assert _statuses(response) == {"forecast": OK, "biometric": OK, "pharmacogenomics": OK}
        forecasts = {f.instrument: f for f in response.forecast.forecast.forecasts}
        assert len(forecasts[common_pb2.INSTRUMENT_PHQ9].points) == 21
        assert response.biometric.correlations.correlations
        assert response.pharmacogenomics.interactions.phenotypes
        assert response.overall_risk != common_pb2.RISK_LEVEL_UNSPECIFIED
        rules = [r.rule_id for r in response.recommendations]
        assert "current-medication-avoid" in rules
        avoid = next(r for r in response.recommendations if r.rule_id == "current-medication-avoid")
        assert "carbamazepine" in avoid.text and avoid.evidence[0].pmid
        assert len(response.request_id) == 32 and len(response.snapshot_id) == 32

        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            progress = await stub.GetPatientProgress(
                twin_pb2.GetPatientProgressRequest(patient_id=PATIENT_ID), timeout=10
            )
        assert [p.snapshot_id for p in progress.timeline] == [response.snapshot_id]
        assert progress.timeline[0].overall_risk == response.overall_risk


async def test_stopped_service_is_unavailable_and_the_rest_ok(
    tmp_path, pki_dir, trained_models, request_bundle
):
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        await mesh.biometric.stop(0)
        response, _ = await _generate(mesh, pki_dir, request_bundle)
    assert _statuses(response) == {
        "forecast": OK,
        "biometric": common_pb2.SECTION_STATUS_UNAVAILABLE,
        "pharmacogenomics": OK,
    }
    assert "section-unavailable" in [r.rule_id for r in response.recommendations]


async def test_slow_service_past_deadline_returns_within_caller_deadline(
    tmp_path, pki_dir, trained_models, request_bundle
):
    model_dir, key_dir = trained_models
    deadline = 4.0
    async with running_mesh(
        tmp_path,
        pki_dir,
        model_dir,
        key_dir,
        interceptors={"pharmacogenomics": (DelayInterceptor(30.0),)},
    ) as mesh:
        response, elapsed = await _generate(mesh, pki_dir, request_bundle, deadline=deadline)
    statuses = _statuses(response)
    assert statuses["pharmacogenomics"] == common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
    assert statuses["forecast"] == OK and statuses["biometric"] == OK
    assert elapsed <= deadline + 0.05, f"took {elapsed:.3f}s for a {deadline}s deadline"


async def test_all_ml_services_down_still_answers(
    tmp_path, pki_dir, trained_models, request_bundle
):
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        for server in mesh.ml_servers.values():
            await server.stop(0)
        response, _ = await _generate(mesh, pki_dir, request_bundle)
    assert set(_statuses(response).values()) == {common_pb2.SECTION_STATUS_UNAVAILABLE}
    assert response.snapshot_id
    assert {r.rule_id for r in response.recommendations} == {"section-unavailable"}
    # The latest PHQ-9 still informs the overall risk.
    assert response.overall_risk != common_pb2.RISK_LEVEL_UNSPECIFIED


async def test_fan_out_is_concurrent(tmp_path, pki_dir, trained_models, request_bundle):
    model_dir, key_dir = trained_models
    delay = 1.0
    slow = {
        name: (DelayInterceptor(delay),)
        for name in ("forecasting", "biometric", "pharmacogenomics")
    }
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir, interceptors=slow) as mesh:
        response, elapsed = await _generate(mesh, pki_dir, request_bundle)
    latencies = [
        s.result.latency.ToNanoseconds() / 1e9
        for s in (response.forecast, response.biometric, response.pharmacogenomics)
    ]
    assert all(latency >= delay for latency in latencies)
    # Sequential calls would take at least the sum of the section latencies.
    assert elapsed < sum(latencies) * 0.7
    assert elapsed < max(latencies) + 1.0


async def test_invalid_request_is_invalid_argument_without_values(
    tmp_path, pki_dir, trained_models
):
    model_dir, key_dir = trained_models
    request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID)
    request.data.symptoms.add(
        instrument=common_pb2.INSTRUMENT_PHQ9, score=31
    ).observed_at.seconds = 1
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await twin_pb2_grpc.DigitalTwinServiceStub(channel).GenerateInsights(
                    request, timeout=10
                )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "data.symptoms[0].score" in err.value.details()
    assert PATIENT_ID not in err.value.details() and "31" not in err.value.details()
