"""Retention in a running orchestrator process, on either store backend.

NOVAMIND_SNAPSHOT_RETENTION_DAYS=30 with a short NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS:
the background task deletes the snapshots past retention at start and again after
new ones arrive, keeps each patient's newest (GetPatientProgress still has a
baseline), logs counts and no pseudonym, and the process stops cleanly on SIGTERM.
A malformed retention setting stops start-up with a message naming the variable.

The ML services are not running: sections are UNAVAILABLE and the insights call
still stores its snapshot, which is all retention needs.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest

from common.launcher import clean_env, start_service, wait_healthy
from common.proto_convert import to_timestamp
from common.pseudonym import Pseudonymizer
from common.tls import channel_credentials
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import free_port
from tests.integration.mesh import REPO_ROOT
from twin_orchestrator.postgres_store import PostgresSnapshotStore
from twin_orchestrator.sqlite_store import SqliteSnapshotStore
from twin_orchestrator.store import SnapshotStore

PATIENT_A = "MRN-4410293"  # re-scored until 40 days ago, then once more during the test
PATIENT_B = "MRN-4410377"  # re-scored yesterday
STORE_KEY = secrets.token_bytes(32)
PSEUDONYM_KEY = secrets.token_bytes(32)


def _data(score: float, when: datetime) -> twin_pb2.PatientData:
    data = twin_pb2.PatientData()
    obs = data.symptoms.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=score)
    obs.observed_at.CopyFrom(to_timestamp(when))
    return data


class Store:
    """The test's own connection to the orchestrator's store (seeding and counting)."""

    def __init__(self, backend: str, tmp_path, database) -> None:
        self.backend = backend
        self.path = tmp_path / "store" / "twin.sqlite"
        self.database = database

    def env(self) -> dict[str, str]:
        if self.backend == "sqlite":
            return {"NOVAMIND_STORE_PATH": str(self.path)}
        return {
            "NOVAMIND_STORE_URL": self.database.url,
            "NOVAMIND_STORE_PASSWORD_FILE": str(self.database.password_file),
        }

    def _run(self, use: Callable[[SnapshotStore], object]) -> object:
        async def run() -> object:
            store: SnapshotStore
            if self.backend == "sqlite":
                store = SqliteSnapshotStore(self.path, STORE_KEY)
            else:
                store = PostgresSnapshotStore.connect(
                    self.database.url, STORE_KEY, password=self.database.password, wait_seconds=5
                )
            try:
                return await use(store)  # type: ignore[misc]
            finally:
                await store.close()

        return asyncio.run(run())

    def save(self, patient_id: str, days_ago: int) -> str:
        when = datetime.now(UTC) - timedelta(days=days_ago)
        psn = Pseudonymizer(PSEUDONYM_KEY).pseudonymize(patient_id)
        empty = twin_pb2.GenerateInsightsResponse()
        return str(self._run(lambda s: s.save(psn, when, _data(10 + days_ago % 7, when), empty)))

    def ids(self) -> list[str]:
        """Every stored snapshot id, sorted (reads the clear column only)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                return sorted(row[0] for row in conn.execute("SELECT snapshot_id FROM snapshots"))
            finally:
                conn.close()
        with psycopg.connect(self.database.admin_url()) as conn:
            return sorted(row[0] for row in conn.execute("SELECT snapshot_id FROM snapshots"))

    def count(self) -> int:
        return int(self._run(lambda s: s.count()))  # type: ignore[call-overload]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Store:
    database = request.getfixturevalue("postgres_database") if request.param != "sqlite" else None
    return Store(request.param, tmp_path, database)


def _logged_removed(log_path: Path) -> int:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return sum(int(line.get("removed", 0)) for line in lines)


def _until(condition: Callable[[], bool], process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the orchestrator exited"
        assert time.monotonic() < deadline, "not reached before the timeout"
        time.sleep(0.1)


def _progress_ids(stub, patient_id: str) -> list[str]:
    reply = stub.GetPatientProgress(
        twin_pb2.GetPatientProgressRequest(patient_id=patient_id), timeout=10
    )
    return [point.snapshot_id for point in reply.timeline]


def test_running_orchestrator_prunes_keeps_newest_and_logs_no_pseudonym(tmp_path, pki_dir, store):
    a_old = [store.save(PATIENT_A, days) for days in (60, 45, 40)]
    store.save(PATIENT_B, 50)
    b_recent = store.save(PATIENT_B, 1)
    assert store.count() == 5

    dead = free_port()
    port = free_port()
    env = clean_env(
        NOVAMIND_HOST="127.0.0.1",
        NOVAMIND_PORT=str(port),
        NOVAMIND_HEALTH_PORT=str(free_port()),
        NOVAMIND_TLS_DIR=str(pki_dir),
        NOVAMIND_KEY_DIR=str(tmp_path / "keys"),
        NOVAMIND_STORE_KEY=STORE_KEY.hex(),
        NOVAMIND_PSEUDONYM_KEY=PSEUDONYM_KEY.hex(),
        NOVAMIND_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        NOVAMIND_SNAPSHOT_RETENTION_DAYS="30",
        NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS="0.3",
        NOVAMIND_FORECASTING_ADDR=f"localhost:{dead}",
        NOVAMIND_BIOMETRIC_ADDR=f"localhost:{dead}",
        NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{dead}",
        PYTHONPATH=str(REPO_ROOT),
        **store.env(),
    )
    replica = start_service("twin_orchestrator", env, tmp_path / "orchestrator.log", REPO_ROOT)
    channel = grpc.secure_channel(f"localhost:{port}", channel_credentials(pki_dir, "operator"))
    try:
        wait_healthy(replica.health_port, process=replica.process, timeout=90)
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        # At start: A's two oldest and B's old one go; A's newest stays as its baseline.
        _until(lambda: store.count() == 2, replica.process)
        assert _progress_ids(stub, PATIENT_A) == a_old[2:]
        assert _progress_ids(stub, PATIENT_B) == [b_recent]

        # A is re-scored now; B gets an old snapshot (an import, say). The next runs
        # remove A's 40-day-old snapshot (no longer its newest) and B's new old one.
        request = twin_pb2.GenerateInsightsRequest(
            patient_id=PATIENT_A, data=_data(12, datetime.now(UTC) - timedelta(hours=1))
        )
        a_new = stub.GenerateInsights(request, timeout=20).snapshot_id
        store.save(PATIENT_B, 35)
        _until(lambda: _progress_ids(stub, PATIENT_A) == [a_new], replica.process)
        _until(lambda: store.count() == 2, replica.process)
        assert _progress_ids(stub, PATIENT_B) == [b_recent]
        # A run logs its count just after its rows are gone: wait for the line before SIGTERM.
        _until(lambda: _logged_removed(replica.log_path) == 3 + 2, replica.process)
    finally:
        channel.close()
        code = replica.stop(timeout=20)
    assert code == 0

    log = replica.log_path.read_text()
    for secret in (PATIENT_A, PATIENT_B):
        assert secret not in log
    for patient in (PATIENT_A, PATIENT_B):
        assert Pseudonymizer(PSEUDONYM_KEY).pseudonymize(patient) not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    runs = [line for line in lines if "removed" in line]
    assert sum(line["removed"] for line in runs) == 3 + 2
    assert {line["retention_days"] for line in runs} == {30}
    assert not [line for line in lines if "retention run failed" in line["message"]]
    assert any(line["message"] == "stopped" for line in lines)


def test_malformed_retention_stops_start_up_naming_the_variable(tmp_path, pki_dir):
    env = clean_env(
        NOVAMIND_SNAPSHOT_RETENTION_DAYS="30 days",
        NOVAMIND_TLS_DIR=str(pki_dir),
        NOVAMIND_KEY_DIR=str(tmp_path / "keys"),
        PYTHONPATH=str(REPO_ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-m", "twin_orchestrator"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "NOVAMIND_SNAPSHOT_RETENTION_DAYS: must be a whole number of days" in result.stderr
    assert "30 days" not in result.stderr


def _prune_command(store: Store, tmp_path, *args: str, **env: str):
    return subprocess.run(
        [sys.executable, "-m", "twin_orchestrator.cli", "prune-snapshots", *args],
        cwd=REPO_ROOT,
        env=clean_env(
            PYTHONPATH=str(REPO_ROOT),
            NOVAMIND_KEY_DIR=str(tmp_path / "keys"),
            NOVAMIND_STORE_KEY=STORE_KEY.hex(),
            **store.env(),
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_prune_command_says_what_it_removed(tmp_path, store):
    kept = [store.save(PATIENT_A, 45), store.save(PATIENT_B, 1)]
    for days in (60, 50, 40):
        store.save(PATIENT_B, days)
    result = _prune_command(store, tmp_path, "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("removed 3 snapshot(s) generated before ")
    assert result.stdout.rstrip().endswith(
        f"(older than 30 day(s); each patient's newest kept); 2 remain in the {store.backend} store"
    )
    assert store.count() == 2
    assert store.ids() == sorted(kept)

    store.save(PATIENT_B, 100)
    # The default is the orchestrator's own setting.
    result = _prune_command(store, tmp_path, NOVAMIND_SNAPSHOT_RETENTION_DAYS="30")
    assert result.returncode == 0, result.stderr
    assert "removed 1 snapshot(s)" in result.stdout
    assert store.count() == 2


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "NOVAMIND_SNAPSHOT_RETENTION_DAYS is unset (keep forever)"),
        (("--older-than-days", "0"), {}, "--older-than-days: must be a whole number of days"),
        (("--older-than-days", "2w"), {}, "--older-than-days: must be a whole number of days"),
        ((), {"NOVAMIND_SNAPSHOT_RETENTION_DAYS": "-3"}, "NOVAMIND_SNAPSHOT_RETENTION_DAYS: must"),
    ],
)
def test_prune_command_refuses_without_a_retention(tmp_path, args, env, message):
    store = Store("sqlite", tmp_path, None)
    store.save(PATIENT_A, 60)
    store.save(PATIENT_A, 50)
    result = _prune_command(store, tmp_path, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert store.count() == 2


def test_prune_command_does_not_create_a_store_at_a_wrong_path(tmp_path):
    store = Store("sqlite", tmp_path, None)
    result = _prune_command(store, tmp_path, "--older-than-days", "30")
    assert result.returncode == 2
    assert "NOVAMIND_STORE_PATH: no store file there" in result.stderr
    assert not store.path.exists()
