"""The orchestrator checks which service answered (issue 13, item 8).

Every mesh certificate is valid for ``localhost``, so checking the target's
host name alone let a server presenting the *biometric* certificate answer on
the forecasting address. The orchestrator now requires the forecasting
certificate name (NOVAMIND_FORECASTING_SERVER_NAME, default ``forecasting``).
"""

from __future__ import annotations

import pytest

from common.server import create_server
from forecasting_svc.bootstrap import build as build_forecasting
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to, free_port, running
from tests.unit.twin import builders as b
from twin_orchestrator.bootstrap import build as build_orchestrator


def _forecast_only_request() -> twin_pb2.GenerateInsightsRequest:
    request = twin_pb2.GenerateInsightsRequest(patient_id="MRN-0088123")
    for days_ago in range(60, 0, -1):
        request.data.symptoms.append(b.phq9(12.0 + (days_ago % 5), days_ago=days_ago))
    request.options.sections.append(twin_pb2.SECTION_FORECAST)
    request.options.forecast_horizon_days = 7
    return request


@pytest.mark.parametrize(
    ("presented", "expected_status"),
    [
        ("biometric", common_pb2.SECTION_STATUS_UNAVAILABLE),
        ("forecasting", common_pb2.SECTION_STATUS_OK),
    ],
)
async def test_forecasting_address_must_present_the_forecasting_certificate(
    make_settings, trained_models, pki_dir, presented, expected_status
):
    model_dir, key_dir = trained_models
    forecasting_settings = make_settings(
        "forecasting", identity=presented, model_dir=model_dir, key_dir=key_dir
    )
    async with running(forecasting_settings, build_forecasting(forecasting_settings)) as impostor:
        dead = free_port()
        orchestrator_settings = make_settings(
            "orchestrator",
            key_dir=key_dir,
            forecasting_addr=f"localhost:{impostor.port}",
            biometric_addr=f"localhost:{dead}",
            pharmacogenomics_addr=f"localhost:{dead}",
        )
        orchestrator = create_server(
            orchestrator_settings, build_orchestrator(orchestrator_settings)
        )
        await orchestrator.start()
        try:
            async with channel_to(orchestrator, pki_dir) as channel:
                response = await twin_pb2_grpc.DigitalTwinServiceStub(channel).GenerateInsights(
                    _forecast_only_request(), timeout=30
                )
        finally:
            await orchestrator.stop(0.2)
    assert response.forecast.result.status == expected_status, response.forecast.result.detail
    if expected_status == common_pb2.SECTION_STATUS_OK:
        assert response.forecast.forecast.forecasts
