"""SIGTERM on a real service process: health turns NOT_SERVING, in-flight calls finish."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.tls import channel_credentials
from novamind.twin.v1 import twin_pb2
from tests.conftest import free_port
from tests.integration.probe_service import PROBE_SERVICE
from tests.integration.process_helpers import service_env, start_process, wait_healthy


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_in_flight_call_finish_and_turns_health_not_serving(
    tmp_path, pki_dir, workers
):
    port = free_port()
    env = service_env(tmp_path, pki_dir, port, NOVAMIND_GRACE_SECONDS="5", NOVAMIND_WORKERS=workers)
    proc = start_process("tests.integration.probe_service", env, tmp_path / "probe.log")
    try:
        wait_healthy(port + 1000)
        creds = channel_credentials(pki_dir, "operator")
        channel = grpc.secure_channel(f"localhost:{port}", creds)
        slow = channel.unary_unary(
            f"/{PROBE_SERVICE}/Slow",
            request_serializer=twin_pb2.GenerateInsightsRequest.SerializeToString,
            response_deserializer=twin_pb2.GenerateInsightsResponse.FromString,
        )
        future = slow.future(twin_pb2.GenerateInsightsRequest(), timeout=10)
        time.sleep(0.4)  # the call is now in flight on the server
        proc.send_signal(signal.SIGTERM)

        statuses: list[int] = []

        def watch_health() -> None:
            end = time.monotonic() + 1.0
            with grpc.insecure_channel(f"127.0.0.1:{port + 1000}") as health_channel:
                stub = health_pb2_grpc.HealthStub(health_channel)
                while time.monotonic() < end:
                    try:
                        statuses.append(
                            stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5).status
                        )
                    except grpc.RpcError:
                        break
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        reply = future.result(timeout=10)
        watcher.join()
        assert reply.snapshot_id == "slow-finished"
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        assert proc.wait(timeout=15) == 0
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
