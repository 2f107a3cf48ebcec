"""NOVAMIND_WORKERS=2: two server processes share the port, the audit chain and the shutdown."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import grpc

from common.audit import AuditLog
from common.settings import Settings
from common.tls import channel_credentials
from novamind.twin.v1 import twin_pb2
from tests.conftest import free_port
from tests.integration.probe_service import PROBE_SERVICE
from tests.integration.process_helpers import service_env, start_process, wait_healthy

CALLS = 24


def _workers_of(parent: int) -> list[int]:
    """Pids of the spawned worker processes of ``parent`` (not multiprocessing's helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _whoami(port: int, pki_dir: Path, patient_id: str) -> str:
    """One call on its own connection (a new channel), so the kernel may pick any worker."""
    creds = channel_credentials(pki_dir, "operator")
    with grpc.secure_channel(f"localhost:{port}", creds) as channel:
        call = channel.unary_unary(
            f"/{PROBE_SERVICE}/Whoami",
            request_serializer=twin_pb2.GenerateInsightsRequest.SerializeToString,
            response_deserializer=twin_pb2.GenerateInsightsResponse.FromString,
        )
        reply = call(twin_pb2.GenerateInsightsRequest(patient_id=patient_id), timeout=10)
    return str(reply.snapshot_id)


def test_two_workers_share_port_audit_chain_and_graceful_stop(tmp_path, pki_dir):
    port = free_port()
    env = service_env(tmp_path, pki_dir, port, NOVAMIND_WORKERS="2", NOVAMIND_GRACE_SECONDS="3")
    proc = start_process("tests.integration.probe_service", env, tmp_path / "probe.log")
    try:
        wait_healthy(port + 1000, timeout=120)
        assert _wait_until(lambda: len(_workers_of(proc.pid)) == 2, 30)
        workers = _workers_of(proc.pid)

        served = {_whoami(port, pki_dir, f"MRN-{i:04d}") for i in range(CALLS)}
        # Both workers answered (all 24 connections on one of two: p = 2**-23).
        assert served == {str(pid) for pid in workers}

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert _wait_until(lambda: not any(_alive(pid) for pid in workers), 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The port is free again: a plain bind (no SO_REUSEPORT) succeeds.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))

    # Both processes appended to one audit file; the hash chain is one valid chain.
    settings = Settings.from_env("orchestrator", env=env)
    log = AuditLog(settings.audit_log, settings.secret("audit", env=env))
    try:
        every = log.records()  # verifies the whole chain first
    finally:
        log.close()
    assert [r.seq for r in every] == list(range(1, len(every) + 1))
    whoami = [r for r in every if r.rpc.endswith("Whoami")]
    assert len(whoami) == CALLS and len({r.pseudonym for r in whoami}) == CALLS


def test_workers_die_with_a_killed_supervisor(tmp_path, pki_dir):
    port = free_port()
    env = service_env(tmp_path, pki_dir, port, NOVAMIND_WORKERS="2")
    proc = start_process("tests.integration.probe_service", env, tmp_path / "probe.log")
    try:
        wait_healthy(port + 1000, timeout=120)
        assert _wait_until(lambda: len(_workers_of(proc.pid)) == 2, 30)
        workers = _workers_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # No orphan keeps serving the port.
        assert _wait_until(lambda: not any(_alive(pid) for pid in workers), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_a_channel_pool_spreads_one_clients_calls_over_the_workers(tmp_path, pki_dir):
    from common.channel_pool import ChannelPool
    from common.channels import mesh_channel

    port = free_port()
    env = service_env(tmp_path, pki_dir, port, NOVAMIND_WORKERS="2")
    proc = start_process("tests.integration.probe_service", env, tmp_path / "probe.log")
    try:
        wait_healthy(port + 1000, timeout=120)
        assert _wait_until(lambda: len(_workers_of(proc.pid)) == 2, 30)
        workers = {str(pid) for pid in _workers_of(proc.pid)}
        async with ChannelPool.open(
            16, lambda: mesh_channel(f"localhost:{port}", tls_dir=pki_dir, identity="operator")
        ) as pool:
            whoami = pool.unary_unary(
                f"/{PROBE_SERVICE}/Whoami",
                request_serializer=twin_pb2.GenerateInsightsRequest.SerializeToString,
                response_deserializer=twin_pb2.GenerateInsightsResponse.FromString,
            )
            served = [
                (await whoami(twin_pb2.GenerateInsightsRequest(), timeout=10)).snapshot_id
                for _ in range(32)
            ]
        # One client, every worker busy (16 connections on one of two workers: p = 2**-15).
        assert set(served) == workers
    finally:
        proc.terminate()
        proc.wait(timeout=20)
