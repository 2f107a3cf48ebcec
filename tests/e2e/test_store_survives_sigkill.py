"""SIGKILL of the orchestrator in the middle of a stream of GenerateInsights calls
loses no snapshot that was acknowledged to the caller."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import grpc

from common.launcher import wait_healthy
from common.proto_convert import to_timestamp
from common.pseudonym import Pseudonymizer
from common.settings import Settings
from common.tls import channel_credentials
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import free_port
from tests.integration.process_helpers import service_env, start_process
from twin_orchestrator.sqlite_store import SqliteSnapshotStore

PATIENT_ID = "MRN-5550123"


def _request(i: int) -> twin_pb2.GenerateInsightsRequest:
    request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID)
    obs = request.data.symptoms.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=i % 27)
    obs.observed_at.CopyFrom(to_timestamp(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=i)))
    return request


def test_acknowledged_snapshots_survive_sigkill(tmp_path, pki_dir):
    port = free_port()
    dead = free_port()  # nothing listens: every section is UNAVAILABLE, the call still succeeds
    env = service_env(
        tmp_path,
        pki_dir,
        port,
        NOVAMIND_FORECASTING_ADDR=f"localhost:{dead}",
        NOVAMIND_BIOMETRIC_ADDR=f"localhost:{dead}",
        NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{dead}",
    )
    proc = start_process("twin_orchestrator", env, tmp_path / "orchestrator.log")
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        creds = channel_credentials(pki_dir, "operator")
        with grpc.secure_channel(f"localhost:{port}", creds) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            i = 0
            while not stop.is_set():
                try:
                    reply = stub.GenerateInsights(_request(i), timeout=5)
                except grpc.RpcError:
                    return  # the server died mid-call: that one was never acknowledged
                acknowledged.append(reply.snapshot_id)
                i += 1

    try:
        wait_healthy(port + 1000)
        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 25 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        thread.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acknowledged) >= 25, (tmp_path / "orchestrator.log").read_text()[-2000:]

    settings = Settings.from_env("orchestrator", env={"NOVAMIND_KEY_DIR": str(tmp_path / "keys")})
    store = SqliteSnapshotStore(tmp_path / "store.sqlite", settings.secret("store"))
    pseudonym = Pseudonymizer(settings.secret("pseudonym")).pseudonymize(PATIENT_ID)
    stored = {s.snapshot_id: s for s in store.history_sync(pseudonym)}
    missing = [sid for sid in acknowledged if sid not in stored]
    assert missing == []
    # Every stored snapshot decrypts to the request that produced it, all sections unavailable.
    first = stored[acknowledged[0]]
    assert first.data.symptoms[0].score == 0
    assert first.response.forecast.result.status == common_pb2.SECTION_STATUS_UNAVAILABLE
