"""mTLS, caller authorization and the plaintext health-only port, on real servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.artifacts import ArtifactStore
from forecasting_svc.server import SERVICE_NAME, service_definition
from forecasting_svc.service import ForecastingService
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2, forecasting_pb2_grpc
from tests.conftest import channel_to, running


def _valid_forecast_request() -> forecasting_pb2.ForecastSymptomsRequest:
    request = forecasting_pb2.ForecastSymptomsRequest(patient_pseudonym="psn_" + "a" * 32)
    request.horizon_days = 7
    for day in range(30):
        point = request.history.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=10 + day % 3)
        point.observed_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day))
    return request


def _forecasting(tmp_path: Path) -> ForecastingService:
    return ForecastingService.from_store(ArtifactStore(tmp_path / "models", b"k" * 32))


async def test_operator_cert_gets_serving_health_for_service_and_overall(
    make_settings, pki_dir, tmp_path
):
    async with (
        running(make_settings("forecasting"), service_definition(_forecasting(tmp_path))) as mesh,
        channel_to(mesh, pki_dir) as channel,
    ):
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_client_without_certificate_is_refused(make_settings, pki_dir, tmp_path):
    async with running(
        make_settings("forecasting"), service_definition(_forecasting(tmp_path))
    ) as mesh:
        creds = grpc.ssl_channel_credentials(root_certificates=(pki_dir / "ca.pem").read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{mesh.port}", creds) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_certificate_of_wrong_identity_gets_permission_denied(
    make_settings, pki_dir, tmp_path
):
    async with running(
        make_settings("forecasting"), service_definition(_forecasting(tmp_path))
    ) as mesh:
        # "biometric" holds a valid mesh certificate but may not call the forecasting service.
        async with channel_to(mesh, pki_dir, identity="biometric") as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetModelInfo(forecasting_pb2.GetModelInfoRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The orchestrator identity is allowed.
        async with channel_to(mesh, pki_dir, identity="orchestrator") as channel:
            stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
            reply = await stub.GetModelInfo(forecasting_pb2.GetModelInfoRequest(), timeout=5)
            assert list(reply.models) == []


async def test_plaintext_refused_on_main_port_health_port_serves_only_health(
    make_settings, pki_dir, tmp_path
):
    async with running(
        make_settings("forecasting"), service_definition(_forecasting(tmp_path))
    ) as mesh:
        assert mesh.health_port not in (0, mesh.port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=3
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.health_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=3
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            # No data RPCs on the health-only port.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await forecasting_pb2_grpc.SymptomForecastingServiceStub(channel).GetModelInfo(
                    forecasting_pb2.GetModelInfoRequest(), timeout=3
                )
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # No reflection either.
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            responses = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=3
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in responses:
                    pass
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_reflection_lists_service_over_mtls(make_settings, pki_dir, tmp_path):
    async with (
        running(make_settings("forecasting"), service_definition(_forecasting(tmp_path))) as mesh,
        channel_to(mesh, pki_dir) as channel,
    ):
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: list[str] = []
        async for reply in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        ):
            names.extend(s.name for s in reply.list_services_response.service)
        assert SERVICE_NAME in names
        assert "grpc.health.v1.Health" in names


async def test_missing_model_is_failed_precondition_naming_model_and_command(
    make_settings, pki_dir, tmp_path
):
    async with (
        running(make_settings("forecasting"), service_definition(_forecasting(tmp_path))) as mesh,
        channel_to(mesh, pki_dir) as channel,
    ):
        stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ForecastSymptoms(_valid_forecast_request(), timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "forecasting.ensemble" in err.value.details()
        assert "python -m forecasting_svc.train" in err.value.details()
