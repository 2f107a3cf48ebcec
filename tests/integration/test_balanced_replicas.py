"""Two biometric replicas (real processes) behind one ``ipv4:`` target.

The orchestrator spreads the biometric section's calls over both replicas;
after one is killed with SIGKILL, every following call still gets an OK
biometric section from the survivor. Which replica served a call is read from
each replica's own audit log (one record per RPC, with the forwarded request id).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from common.launcher import clean_env, start_service, wait_healthy
from common.server import create_server
from common.synthetic import CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to, free_port
from tests.integration.mesh import REPO_ROOT
from twin_orchestrator.bootstrap import build as build_orchestrator
from twin_orchestrator.patient_bundle import patient_data

OK = common_pb2.SECTION_STATUS_OK


@pytest.fixture(scope="module")
def biometric_request() -> twin_pb2.GenerateInsightsRequest:
    cohort = generate_cohort(CohortConfig(n_patients=6, n_days=120, seed=11))
    data = patient_data(cohort, str(cohort.patients.patient_id.iloc[2]))
    request = twin_pb2.GenerateInsightsRequest(patient_id="MRN-0031337", data=data)
    request.options.sections.append(twin_pb2.SECTION_BIOMETRIC)
    return request


def _records(audit_log: Path) -> list[dict]:
    if not audit_log.exists():
        return []
    return [json.loads(line) for line in audit_log.read_text().splitlines() if line.strip()]


async def test_two_replicas_share_calls_and_survive_sigkill_of_one(
    tmp_path, pki_dir, trained_models, make_settings, biometric_request
):
    model_dir, key_dir = trained_models
    replicas = []
    audit_logs = []
    try:
        for i in range(2):
            port = free_port()
            audit_logs.append(tmp_path / f"biometric-{i}.jsonl")
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1",
                NOVAMIND_PORT=str(port),
                NOVAMIND_HEALTH_PORT=str(free_port()),
                NOVAMIND_TLS_DIR=str(pki_dir),
                NOVAMIND_MODEL_DIR=str(model_dir),
                NOVAMIND_KEY_DIR=str(key_dir),
                NOVAMIND_AUDIT_LOG=str(audit_logs[-1]),
                PYTHONPATH=str(REPO_ROOT),
            )
            replicas.append(
                start_service("biometric_svc", env, tmp_path / f"biometric-{i}.log", REPO_ROOT)
            )
        for replica in replicas:
            wait_healthy(replica.health_port, process=replica.process, timeout=120)

        dead = free_port()
        settings = make_settings(
            "orchestrator",
            key_dir=key_dir,
            biometric_addr="ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas),
            forecasting_addr=f"localhost:{dead}",
            pharmacogenomics_addr=f"localhost:{dead}",
        )
        orchestrator = create_server(settings, build_orchestrator(settings))
        await orchestrator.start()
        try:
            async with channel_to(orchestrator, pki_dir) as channel:
                stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
                first = [
                    await stub.GenerateInsights(biometric_request, timeout=30) for _ in range(30)
                ]
                assert [r.biometric.result.status for r in first] == [OK] * 30, [
                    r.biometric.result.detail for r in first if r.biometric.result.status != OK
                ]
                per_replica = [_records(log) for log in audit_logs]
                served = [len(records) for records in per_replica]
                shares = [n / sum(served) for n in served]
                assert all(0.25 <= share <= 0.75 for share in shares), served
                seen = {record["request_id"] for records in per_replica for record in records}
                assert {r.request_id for r in first} <= seen

                replicas[0].process.send_signal(signal.SIGKILL)
                replicas[0].process.wait(timeout=10)
                after = [
                    await stub.GenerateInsights(biometric_request, timeout=30) for _ in range(10)
                ]
                assert [r.biometric.result.status for r in after] == [OK] * 10, [
                    r.biometric.result.detail for r in after
                ]
                survivor = {record["request_id"] for record in _records(audit_logs[1])}
                assert {r.request_id for r in after} <= survivor
        finally:
            await orchestrator.stop(0.2)
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait(timeout=10)
