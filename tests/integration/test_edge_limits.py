"""The orchestrator checks every limit before it fans out, and errors stay deliverable.

Real servers on loopback (the whole mesh with tiny trained models): requests
that a section would refuse are refused at the edge as INVALID_ARGUMENT naming
the field (no downstream call is made: the ML services' audit logs stay
empty), absurd dates never become INTERNAL, and an error with many violations
stays under gRPC's 16 KiB metadata limit instead of turning into
RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from common.audit import AuditLog
from common.errors import ERROR_TEXT_BUDGET
from common.limits import MAX_VARIANT_CALLS
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc as pgx_grpc
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to
from tests.integration.mesh import running_mesh
from tests.integration.test_orchestrator_mesh import request_bundle  # noqa: F401 - fixture

OK = common_pb2.SECTION_STATUS_OK
#: gRPC's default limit on the metadata (headers + trailers) a client accepts.
METADATA_LIMIT = 16 * 1024


def _audit_count(server) -> int:
    path = server.settings.audit_log
    if not path.exists():
        return 0
    return AuditLog(path, server.settings.secret("audit")).verify()


def _assert_deliverable(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert len(error.details().encode()) <= ERROR_TEXT_BUDGET
    # grpc-message plus grpc-status-details-bin (base64 of the status, message included).
    assert len(status.SerializeToString()) * 4 // 3 + len(error.details()) < METADATA_LIMIT * 3 // 4
    return bad_request


async def test_the_edge_refuses_what_a_section_would_refuse(
    tmp_path,
    pki_dir,
    trained_models,
    request_bundle,  # noqa: F811
):
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)

            async def refused(request, field: str) -> grpc.aio.AioRpcError:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GenerateInsights(request, timeout=30)
                bad_request = _assert_deliverable(err.value)
                assert field in [v.field for v in bad_request.field_violations], err.value.details()
                return err.value

            # More rsID calls than pharmacogenomics accepts.
            request = twin_pb2.GenerateInsightsRequest()
            request.CopyFrom(request_bundle)
            for i in range(MAX_VARIANT_CALLS + 1):
                request.data.genotype.variant_calls.add(rsid=f"rs{1000 + i}", genotype="A/G")
            await refused(request, "data.genotype.variant_calls")

            # A biometric sample dated 9999-12-31 (was OverflowError -> INTERNAL).
            request.CopyFrom(request_bundle)
            request.data.biometrics[0].measured_at.FromDatetime(datetime(9999, 12, 31, tzinfo=UTC))
            await refused(request, "data.biometrics[0].measured_at")

            # A biometric sample before 2000, which the biometric service refuses.
            request.CopyFrom(request_bundle)
            request.data.biometrics[1].measured_at.FromDatetime(datetime(1999, 1, 1, tzinfo=UTC))
            await refused(request, "data.biometrics[1].measured_at")

            # 10,000 malformed medication names: one bounded error, not a 1 MB reply.
            request.CopyFrom(request_bundle)
            request.data.candidate_medications.extend(["$bad name"] * 10_000)
            error = await refused(request, "data.candidate_medications")
            assert "more violation" in error.details() or "at most" in error.details()

            # GetPatientProgress with since = 2^62 seconds (was ValueError -> INTERNAL).
            progress = twin_pb2.GetPatientProgressRequest(patient_id="MRN-0042917")
            progress.since.seconds = 2**62
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetPatientProgress(progress, timeout=10)
            assert _assert_deliverable(err.value).field_violations[0].field == "since"

        # Nothing was sent on: the ML services saw no call at all.
        for name, server in mesh.ml_servers.items():
            assert _audit_count(server) == 0, name


async def test_watch_streams_of_another_identity_do_not_fail_the_biometric_section(
    tmp_path,
    pki_dir,
    trained_models,
    request_bundle,  # noqa: F811
):
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        foreign = channel_to(mesh.biometric, pki_dir, identity="forecasting")
        async with foreign, channel_to(mesh.orchestrator, pki_dir) as channel:
            health = health_pb2_grpc.HealthStub(foreign)
            watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(64)]
            await asyncio.sleep(0.5)
            try:
                stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
                for _ in range(2):
                    response = await stub.GenerateInsights(request_bundle, timeout=60)
                    assert response.biometric.result.status == OK, response.biometric.result.detail
            finally:
                for call in watches:
                    call.cancel()


async def test_many_violations_from_a_service_stay_under_the_metadata_limit(make_settings, pki_dir):
    from pharmacogenomics_svc.bootstrap import build
    from tests.conftest import running
    from tests.unit.pharmacogenomics.trained_model import write_model

    settings = make_settings("pharmacogenomics")
    write_model(settings.model_dir, settings.secret("artifact"))
    request = pgx_pb2.AnalyzeGeneMedicationInteractionsRequest(patient_pseudonym="psn_" + "7" * 32)
    # 100 names (the service's limit), each breaking the name rule: 100 violations.
    request.candidate_medications.extend([f"{'%' * 40} drug {i}" for i in range(100)])
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = pgx_grpc.PharmacogenomicsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.AnalyzeGeneMedicationInteractions(request, timeout=30)
    bad_request = _assert_deliverable(err.value)
    reported = [v for v in bad_request.field_violations if v.field != "request"]
    assert 0 < len(reported) <= 20
    omitted = 100 - len(reported)
    assert f"and {omitted} more violations" in err.value.details()
    assert bad_request.field_violations[-1].description == f"and {omitted} more violations"
