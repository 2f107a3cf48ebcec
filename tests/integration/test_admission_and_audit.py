"""Admission per caller identity and an audit record for every outcome, on real servers.

A probe service on the real bootstrap (mTLS, interceptor, audit log) is called
by several mesh identities: long-lived health Watch streams from one identity
must not take the capacity another needs; calls cut short by a deadline or a
cancel, and bodies that are not protobuf, still leave an audit record and an
access-log line.
"""

from __future__ import annotations

import asyncio
import json
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.audit import AuditLog
from common.logs import JsonFormatter
from common.tls import channel_credentials
from tests.conftest import channel_to, running
from tests.integration.probe_service import PROBE_SERVICE, probe_definition, probe_stub
from tests.integration.test_error_mapping_and_phi import _phi_request


def _records(settings) -> list:
    if not settings.audit_log.exists():
        return []
    return AuditLog(settings.audit_log, settings.secret("audit")).records()


async def _wait_for_records(settings, count: int, seconds: float = 5.0) -> list:
    """The records, once there are ``count`` (the server writes them as calls end)."""
    records = _records(settings)
    for _ in range(int(seconds / 0.05)):
        if len(records) >= count:
            break
        await asyncio.sleep(0.05)
        records = _records(settings)
    return records


async def _open_watches(channel: grpc.aio.Channel, count: int) -> list:
    """``count`` Watch streams, each waiting after its first message, as a prober would."""
    stub = health_pb2_grpc.HealthStub(channel)
    calls = [stub.Watch(health_pb2.HealthCheckRequest(service="")) for _ in range(count)]
    await asyncio.sleep(0.5)  # let the server start every stream it admits
    return calls


async def test_watch_streams_of_one_identity_leave_other_callers_their_capacity(
    make_settings, pki_dir
):
    settings = make_settings("orchestrator", max_concurrent_rpcs=8)
    async with running(settings, probe_definition()) as mesh:
        foreign = channel_to(mesh, pki_dir, identity="biometric")
        operator = channel_to(mesh, pki_dir, identity="operator")
        async with foreign, operator:
            watches = await _open_watches(foreign, 64)
            try:
                # The operator's calls and health checks are served while 64 streams are held.
                for _ in range(3):
                    reply = await probe_stub(operator, "Echo")(_phi_request(), timeout=5)
                    assert reply.snapshot_id == "echo"
                health = health_pb2_grpc.HealthStub(operator)
                answer = await health.Check(
                    health_pb2.HealthCheckRequest(service=PROBE_SERVICE), timeout=5
                )
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            finally:
                for call in watches:
                    call.cancel()
            # The foreign identity got a bounded number of streams, not all 64.
            refused = 0
            for call in watches:
                try:
                    await call.read()
                except grpc.aio.AioRpcError as err:
                    refused += err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                except asyncio.CancelledError:
                    pass
            assert refused > 0


async def test_plaintext_health_port_checks_survive_open_watch_streams(make_settings):
    settings = make_settings("orchestrator")
    async with running(settings, probe_definition()) as mesh:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{mesh.health_port}") as channel:
            watches = await _open_watches(channel, 16)
            try:
                stub = health_pb2_grpc.HealthStub(channel)
                for _ in range(3):
                    answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                    assert answer.status == health_pb2.HealthCheckResponse.SERVING
            finally:
                for call in watches:
                    call.cancel()


async def test_each_identity_has_its_own_limit_of_calls_in_flight(make_settings, pki_dir):
    settings = make_settings("orchestrator", max_concurrent_rpcs=2)
    async with running(settings, probe_definition()) as mesh:
        operator = channel_to(mesh, pki_dir, identity="operator")
        other = channel_to(mesh, pki_dir, identity="biometric")
        async with operator, other:
            slow = [probe_stub(operator, "Slow")(_phi_request(), timeout=10) for _ in range(2)]
            await asyncio.sleep(0.4)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await probe_stub(operator, "Echo")(_phi_request(), timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Another identity is not affected by the operator's full quota.
            reply = await probe_stub(other, "Echo")(_phi_request(), timeout=5)
            assert reply.snapshot_id == "echo"
            assert [r.snapshot_id for r in await asyncio.gather(*slow)] == ["slow-finished"] * 2


async def test_calls_cut_short_by_deadline_or_cancel_are_audited(make_settings, pki_dir):
    settings = make_settings("orchestrator")
    async with running(settings, probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await probe_stub(channel, "Slow")(_phi_request(), timeout=0.4)
                assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # A channel without the tracing interceptor, whose cancel reaches the server at once.
        creds = channel_credentials(pki_dir, "operator")
        async with grpc.aio.secure_channel(f"localhost:{mesh.port}", creds) as plain:
            await plain.channel_ready()
            call = probe_stub(plain, "Slow")(_phi_request(), timeout=10)
            await asyncio.sleep(0.6)  # the server is running it (the call takes 1.5 s)
            call.cancel()
            records = await _wait_for_records(settings, 4)
    outcomes = sorted(r.outcome for r in records)
    assert outcomes == ["CANCELLED"] + ["DEADLINE_EXCEEDED"] * 3
    assert all(r.pseudonym.startswith("psn_") and r.caller == "operator" for r in records)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\x0f", b"not protobuf at all", b"\x08" * 7],
    ids=["varint-garbage", "truncated-length", "text", "unterminated-varint"],
)
async def test_a_body_that_is_not_protobuf_is_invalid_argument_audited_and_logged(
    make_settings, pki_dir, body
):
    settings = make_settings("orchestrator")
    capture = _Capture()
    logger = logging.getLogger("common.interceptors")
    logger.addHandler(capture)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with running(settings, probe_definition()) as mesh:
            async with channel_to(mesh, pki_dir) as channel:
                raw = channel.unary_unary(f"/{PROBE_SERVICE}/Echo")
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await raw(body, timeout=5)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details()
    assert details.startswith("request: ")
    for internal in ("DecodeError", "Exception", "Traceback", "google.protobuf", "_pb2"):
        assert internal not in details
    records = _records(settings)
    assert [(r.outcome, r.pseudonym, r.caller) for r in records] == [
        ("INVALID_ARGUMENT", "", "operator")
    ]
    access = [line for line in capture.lines if line.get("message") == "rpc finished"]
    assert [(a["rpc"], a["code"], a["request_bytes"]) for a in access] == [
        ("Echo", "INVALID_ARGUMENT", len(body))
    ]


async def test_a_service_whose_audit_log_has_a_torn_tail_starts_and_records_the_repair(
    make_settings, pki_dir
):
    settings = make_settings("orchestrator")
    async with running(settings, probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            await probe_stub(channel, "Echo")(_phi_request(), timeout=5)
    with settings.audit_log.open("ab") as handle:
        handle.write(b'{"caller":"operator","hash":"3a7bd3e2')  # power cut mid-append
    async with running(settings, probe_definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            reply = await probe_stub(channel, "Echo")(_phi_request(), timeout=5)
            assert reply.snapshot_id == "echo"
    records = _records(settings)
    assert [(r.rpc, r.outcome) for r in records] == [
        ("orchestrator.Echo", "OK"),
        ("audit.recovery", "TORN_TAIL_MOVED_ASIDE"),
        ("orchestrator.Echo", "OK"),
    ]
