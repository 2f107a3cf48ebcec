"""Two orchestrator processes on one real PostgreSQL store: one history.

- snapshots written through either replica appear in GetPatientProgress from
  both, and the rows are in PostgreSQL (pseudonym in clear, nothing clinical);
- SIGKILL of a replica in the middle of a stream of writes loses no snapshot
  that was acknowledged to the caller.

The ML services are not running: every section is UNAVAILABLE and the call
still succeeds and stores its snapshot, which is all the store needs.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import grpc
import psycopg

from common.launcher import clean_env, start_service, wait_healthy
from common.proto_convert import to_timestamp
from common.pseudonym import Pseudonymizer
from common.settings import Settings
from common.tls import channel_credentials
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import free_port
from tests.integration.mesh import REPO_ROOT

PATIENT_ID = "MRN-6620481"


def _request(i: int, patient_id: str = PATIENT_ID) -> twin_pb2.GenerateInsightsRequest:
    request = twin_pb2.GenerateInsightsRequest(patient_id=patient_id)
    obs = request.data.symptoms.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=5 + i % 20)
    obs.observed_at.CopyFrom(to_timestamp(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=i)))
    return request


def _start_replicas(tmp_path, pki_dir, database, n: int = 2):
    dead = free_port()
    replicas = []
    for i in range(n):
        port = free_port()
        env = clean_env(
            NOVAMIND_HOST="127.0.0.1",
            NOVAMIND_PORT=str(port),
            NOVAMIND_HEALTH_PORT=str(free_port()),
            NOVAMIND_TLS_DIR=str(pki_dir),
            NOVAMIND_KEY_DIR=str(tmp_path / "keys"),  # shared: same pseudonym and store keys
            NOVAMIND_AUDIT_LOG=str(tmp_path / f"audit-{i}.jsonl"),
            NOVAMIND_STORE_URL=database.url,
            NOVAMIND_STORE_PASSWORD_FILE=str(database.password_file),
            NOVAMIND_FORECASTING_ADDR=f"localhost:{dead}",
            NOVAMIND_BIOMETRIC_ADDR=f"localhost:{dead}",
            NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{dead}",
            PYTHONPATH=str(REPO_ROOT),
        )
        replicas.append(
            start_service("twin_orchestrator", env, tmp_path / f"orchestrator-{i}.log", REPO_ROOT)
        )
    for replica in replicas:
        wait_healthy(replica.health_port, process=replica.process, timeout=90)
    return replicas


def _stub(pki_dir, port: int) -> tuple[grpc.Channel, twin_pb2_grpc.DigitalTwinServiceStub]:
    channel = grpc.secure_channel(f"localhost:{port}", channel_credentials(pki_dir, "operator"))
    return channel, twin_pb2_grpc.DigitalTwinServiceStub(channel)


def _progress_ids(stub, patient_id: str = PATIENT_ID) -> list[str]:
    reply = stub.GetPatientProgress(
        twin_pb2.GetPatientProgressRequest(patient_id=patient_id), timeout=10
    )
    return [point.snapshot_id for point in reply.timeline]


def _stop(replicas) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.stop(timeout=20)


def test_two_orchestrators_share_one_history(tmp_path, pki_dir, postgres_database):
    replicas = _start_replicas(tmp_path, pki_dir, postgres_database)
    channels = []
    try:
        stubs = []
        for replica in replicas:
            channel, stub = _stub(pki_dir, replica.port)
            channels.append(channel)
            stubs.append(stub)
        written = []
        for i in range(5):  # A, B, A, B, A
            reply = stubs[i % 2].GenerateInsights(_request(i), timeout=20)
            assert reply.forecast.result.status == common_pb2.SECTION_STATUS_UNAVAILABLE
            written.append(reply.snapshot_id)
        assert _progress_ids(stubs[0]) == written
        assert _progress_ids(stubs[1]) == written
    finally:
        for channel in channels:
            channel.close()
        _stop(replicas)

    settings = Settings.from_env("orchestrator", env={"NOVAMIND_KEY_DIR": str(tmp_path / "keys")})
    pseudonym = Pseudonymizer(settings.secret("pseudonym")).pseudonymize(PATIENT_ID)
    with psycopg.connect(postgres_database.admin_url()) as conn:
        rows = conn.execute(
            "SELECT snapshot_id, pseudonym, payload FROM snapshots ORDER BY generated_at"
        ).fetchall()
    assert [row[0] for row in rows] == written
    assert {row[1] for row in rows} == {pseudonym}
    assert all(PATIENT_ID.encode() not in bytes(row[2]) for row in rows)


def test_sigkill_of_a_replica_mid_write_loses_no_acknowledged_snapshot(
    tmp_path, pki_dir, postgres_database
):
    victim, survivor = _start_replicas(tmp_path, pki_dir, postgres_database)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        channel, stub = _stub(pki_dir, victim.port)
        with channel:
            i = 0
            while not stop.is_set():
                try:
                    reply = stub.GenerateInsights(_request(i), timeout=5)
                except grpc.RpcError:
                    return  # the replica died mid-call: that one was never acknowledged
                acknowledged.append(reply.snapshot_id)
                i += 1

    try:
        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        stop.set()
        thread.join(timeout=10)
        assert len(acknowledged) >= 15, victim.log_path.read_text()[-2000:]

        channel, stub = _stub(pki_dir, survivor.port)
        with channel:
            stored = set(_progress_ids(stub))
    finally:
        stop.set()
        _stop([victim, survivor])
    assert [sid for sid in acknowledged if sid not in stored] == []
