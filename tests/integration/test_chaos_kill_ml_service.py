"""Chaos: kill -9 the biometric service (a real process) while callers keep the
orchestrator busy, then start it again on the same port.

Every GenerateInsights call answers (the call itself never fails); while the
service is dead its section is UNAVAILABLE and the other sections stay OK;
after the restart the section is OK again: every call started 2 s or more
after the service serves again has it (the circuit breaker half-opens on the
reconnected channel, and channels reconnect within about a second).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import grpc
import pytest

from common.launcher import wait_healthy
from common.server import create_server
from common.settings import Settings
from forecasting_svc.bootstrap import build as build_forecasting
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2_grpc
from pharmacogenomics_svc.bootstrap import build as build_pharmacogenomics
from tests.conftest import channel_to, free_port
from tests.integration.process_helpers import service_env, start_process
from tests.integration.test_orchestrator_mesh import request_bundle  # noqa: F401 - fixture
from twin_orchestrator.bootstrap import build as build_orchestrator

OK = common_pb2.SECTION_STATUS_OK
UNAVAILABLE = common_pb2.SECTION_STATUS_UNAVAILABLE
CALLERS = 4
#: The issue's bound: the first OK section at most this long after the service serves again.
RECOVERY_BOUND_SECONDS = 2.0

pytestmark = pytest.mark.slow


def _settings(service: str, tmp_path, pki_dir, model_dir, key_dir) -> Settings:
    return dataclasses.replace(
        Settings.from_env(service, env={}),
        host="127.0.0.1",
        port=0,
        health_port=0,
        tls_dir=pki_dir,
        model_dir=model_dir,
        key_dir=key_dir,
        audit_log=tmp_path / "audit" / f"{service}.jsonl",
        store_path=tmp_path / "store" / "twin.sqlite",
        grace_seconds=1.0,
    )


def _start_biometric(tmp_path, pki_dir, model_dir, key_dir, port, health_port, run):
    env = service_env(tmp_path, pki_dir, port)
    env.update(
        NOVAMIND_HEALTH_PORT=str(health_port),
        NOVAMIND_MODEL_DIR=str(model_dir),
        NOVAMIND_KEY_DIR=str(key_dir),
        NOVAMIND_AUDIT_LOG=str(tmp_path / "audit" / "biometric.jsonl"),
    )
    process = start_process("biometric_svc", env, tmp_path / f"biometric-{run}.log")
    wait_healthy(health_port, process=process, timeout=120)
    return process


async def test_killing_an_ml_service_under_load(
    tmp_path,
    pki_dir,
    trained_models,
    request_bundle,  # noqa: F811
):
    model_dir, key_dir = trained_models
    port, health_port = free_port(), free_port()
    biometric = _start_biometric(tmp_path, pki_dir, model_dir, key_dir, port, health_port, 1)
    servers = []
    try:
        for name, build in (
            ("forecasting", build_forecasting),
            ("pharmacogenomics", build_pharmacogenomics),
        ):
            settings = _settings(name, tmp_path, pki_dir, model_dir, key_dir)
            server = create_server(settings, build(settings))
            await server.start()
            servers.append(server)
        orchestrator_settings = dataclasses.replace(
            _settings("orchestrator", tmp_path, pki_dir, model_dir, key_dir),
            forecasting_addr=f"localhost:{servers[0].port}",
            biometric_addr=f"localhost:{port}",
            pharmacogenomics_addr=f"localhost:{servers[1].port}",
        )
        orchestrator = create_server(
            orchestrator_settings, build_orchestrator(orchestrator_settings)
        )
        await orchestrator.start()
        servers.append(orchestrator)

        # (time answered, biometric status, other statuses, time started) of every call.
        answers: list[tuple[float, int, tuple[int, int], float]] = []
        failures: list[grpc.StatusCode] = []
        stop = asyncio.Event()
        warmed_up = asyncio.Event()
        recovered = asyncio.Event()
        serving_at = float("inf")

        async def caller() -> None:
            async with channel_to(orchestrator, pki_dir) as channel:
                stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        reply = await stub.GenerateInsights(request_bundle, timeout=30)
                    except grpc.aio.AioRpcError as err:
                        failures.append(err.code())
                        continue
                    answered = time.monotonic()
                    status = reply.biometric.result.status
                    others = (reply.forecast.result.status, reply.pharmacogenomics.result.status)
                    answers.append((answered, status, others, started))
                    if sum(1 for a in answers if a[1] == OK) >= CALLERS:
                        warmed_up.set()
                    if started > serving_at + RECOVERY_BOUND_SECONDS and status == OK:
                        recovered.set()
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(caller()) for _ in range(CALLERS)]
        try:
            await asyncio.wait_for(warmed_up.wait(), timeout=120)
            biometric.send_signal(signal.SIGKILL)
            biometric.wait(timeout=10)
            killed_at = time.monotonic()
            await asyncio.sleep(3.0)  # calls keep coming while the service is dead
            restarted_at = time.monotonic()
            biometric = await asyncio.to_thread(
                _start_biometric, tmp_path, pki_dir, model_dir, key_dir, port, health_port, 2
            )
            serving_at = time.monotonic()
            await asyncio.wait_for(recovered.wait(), timeout=30)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

        assert failures == [], "every GenerateInsights call must answer"
        dead = [a for a in answers if killed_at + 0.5 < a[0] < restarted_at]
        assert len(dead) >= CALLERS, "callers kept calling while the service was dead"
        assert {a[1] for a in dead} == {UNAVAILABLE}
        assert {a[2] for a in dead} == {(OK, OK)}, "the other sections are unaffected"
        # Every call that started 2 s or more after the service served again had it back.
        late = [a for a in answers if a[3] > serving_at + RECOVERY_BOUND_SECONDS]
        assert late and {a[1] for a in late} == {OK}, [(a[3] - serving_at, a[1]) for a in late]
    finally:
        for server in reversed(servers):
            await server.stop(0.2)
        if biometric.poll() is None:
            biometric.terminate()
            biometric.wait(timeout=20)
