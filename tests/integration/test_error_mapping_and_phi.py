"""Error mapping and PHI safety of the shared runtime, on a real server.

A request carrying a patient id, a name and a date of birth goes through every
path (success, validation error, unexpected exception); every log record and
every exported span is captured and searched for them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.audit import AuditLog
from common.logs import JsonFormatter
from common.phi import install_phi_filter
from common.tracing import configure_tracing, shutdown_tracing
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from tests.conftest import channel_to, running
from tests.integration.probe_service import probe_definition, probe_stub

PATIENT_ID = "MRN-00482913"
PATIENT_NAME = "Johanna Q. Testperson"
DATE_OF_BIRTH = "1961-04-17"
PHI_STRINGS = (PATIENT_ID, "00482913", PATIENT_NAME, "Testperson", DATE_OF_BIRTH)


def _phi_request() -> twin_pb2.GenerateInsightsRequest:
    request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID)
    request.data.candidate_medications.append(f"{PATIENT_NAME} dob {DATE_OF_BIRTH}")
    observation = request.data.symptoms.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=23)
    observation.observed_at.FromDatetime(datetime(1961, 4, 17, tzinfo=UTC))
    return request


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        # The raw record too: a filter that only fixed the formatted line would not do.
        self.lines.append(str(record.__dict__))


@pytest.fixture
def captured():
    exporter = InMemorySpanExporter()
    configure_tracing("orchestrator", exporter, synchronous=True)
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    install_phi_filter(root)
    try:
        yield handler, exporter
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        shutdown_tracing()


async def test_no_phi_in_logs_spans_or_errors(make_settings, pki_dir, captured):
    handler, exporter = captured
    settings = make_settings("orchestrator")
    async with running(settings, probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            reply = await probe_stub(channel, "Echo")(_phi_request(), timeout=5)
            assert reply.snapshot_id == "echo"

            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await probe_stub(channel, "Fail")(_phi_request(), timeout=5)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
            assert "request id" in failed.value.details()

            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await probe_stub(channel, "Invalid")(_phi_request(), timeout=5)

    spans = exporter.get_finished_spans()
    kinds = sorted(span.kind.name for span in spans)
    assert kinds == ["CLIENT"] * 3 + ["SERVER"] * 3, "one client and one server span per RPC"
    span_text = " ".join(
        f"{span.name} {dict(span.attributes or {})} {list(span.events)}" for span in spans
    )
    audit_text = settings.audit_log.read_text()
    for text, where in (
        ("\n".join(handler.lines), "logs"),
        (span_text, "spans"),
        (failed.value.details(), "error details"),
        (invalid.value.details(), "error details"),
        (audit_text, "audit log"),
    ):
        for phi in PHI_STRINGS:
            assert phi not in text, f"{phi!r} leaked into {where}"
    # The capture did see the traffic, so the absence above means something.
    assert any('"rpc": "Fail"' in line for line in handler.lines)
    assert any("RuntimeError" in line for line in handler.lines)
    assert audit_text.count("psn_") == 3


async def test_invalid_argument_carries_bad_request_field_violations(make_settings, pki_dir):
    async with running(make_settings("orchestrator"), probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe_stub(channel, "Invalid")(_phi_request(), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "options.forecast_horizon_days" in err.value.details()
    status = rpc_status.from_call(err.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("options.forecast_horizon_days", "must be between 1 and 90")
    ]


async def test_request_id_is_random_and_returned(make_settings, pki_dir):
    async with running(make_settings("orchestrator"), probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            ids = []
            for _ in range(2):
                call = probe_stub(channel, "Echo")(_phi_request(), timeout=5)
                await call
                metadata = dict(await call.initial_metadata())
                ids.append(metadata["x-request-id"])
    assert ids[0] != ids[1]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_audit_chain_records_each_access(make_settings, pki_dir):
    settings = make_settings("orchestrator")
    async with running(settings, probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            for _ in range(3):
                await probe_stub(channel, "Echo")(_phi_request(), timeout=5)
    log = AuditLog(settings.audit_log, settings.secret("audit"))
    assert log.verify() == 3


async def test_ml_service_refuses_a_raw_patient_id_as_pseudonym(make_settings, pki_dir, tmp_path):
    from common.artifacts import ArtifactStore
    from forecasting_svc.server import service_definition
    from forecasting_svc.service import ForecastingService
    from novamind.forecasting.v1 import forecasting_pb2, forecasting_pb2_grpc

    service = ForecastingService.from_store(ArtifactStore(tmp_path / "models", b"k" * 32))
    settings = make_settings("forecasting")
    request = forecasting_pb2.ForecastSymptomsRequest(patient_pseudonym=PATIENT_ID, horizon_days=7)
    async with running(settings, service_definition(service)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await forecasting_pb2_grpc.SymptomForecastingServiceStub(channel).ForecastSymptoms(
                    request, timeout=5
                )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("patient_pseudonym:")
    assert PATIENT_ID not in err.value.details()
    # The raw id reached neither the audit log nor anything else on disk.
    assert PATIENT_ID not in settings.audit_log.read_text()


async def test_unwritable_audit_log_fails_closed(make_settings, pki_dir, monkeypatch):
    # A full or failing disk cannot be produced safely here, so the append raises as it would.
    async def broken_append(self, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(AuditLog, "append_async", broken_append)
    async with running(make_settings("orchestrator"), probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe_stub(channel, "Echo")(_phi_request(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "audit log unavailable" in err.value.details()
