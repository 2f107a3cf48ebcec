"""The longitudinal store, one suite for both backends (SQLite file, real PostgreSQL):
encrypted, keyed by pseudonym, tamper-evident per row, concurrent writers, migrations.
Backend-specific checks follow: SQLite file permissions and WAL; PostgreSQL TLS,
password file and an unreachable server."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from common.certs import generate_dev_pki
from common.pseudonym import Pseudonymizer
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import builders as b
from twin_orchestrator.postgres_store import PostgresSnapshotStore
from twin_orchestrator.sqlite_store import SqliteSnapshotStore
from twin_orchestrator.store import SnapshotCipher, SnapshotStore, StoreError
from twin_orchestrator.store_migrations import load_migrations

PATIENT_ID = "MRN-7734120"
KEY = bytes(range(32))
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _data() -> twin_pb2.PatientData:
    data = twin_pb2.PatientData(symptoms=[b.phq9(23.0), b.phq9(19.0, days_ago=7)])
    data.current_medications.add(name="paroxetine", daily_dose_mg=20)
    data.genotype.diplotypes.add(gene="CYP2D6", diplotype="*4/*41")
    return data


def _psn(patient_id: str = PATIENT_ID) -> str:
    return Pseudonymizer(b"p" * 32).pseudonymize(patient_id)


class Backend:
    """Opens stores of one backend and reaches under them (raw rows, tampering)."""

    def __init__(self, name: str, tmp_path, database) -> None:
        self.name = name
        self.path = tmp_path / "store" / "twin.sqlite"
        self.database = database
        self.opened: list[SnapshotStore] = []

    def open(self, key: bytes = KEY) -> SnapshotStore:
        store: SnapshotStore
        if self.name == "sqlite":
            store = SqliteSnapshotStore(self.path, key)
        else:
            store = PostgresSnapshotStore.connect(
                self.database.url, key, password=self.database.password, wait_seconds=5
            )
        self.opened.append(store)
        return store

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.name == "sqlite":
            conn = sqlite3.connect(self.path)
            try:
                rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
                conn.commit()
            finally:
                conn.close()
            return rows
        with psycopg.connect(self.database.admin_url(), autocommit=True) as conn:
            cursor = conn.execute(sql.encode(), params)
            return cursor.fetchall() if cursor.description else []

    def raw_bytes(self) -> bytes:
        """Everything the backend holds for the snapshots, as bytes."""
        if self.name == "sqlite":
            return b"".join(p.read_bytes() for p in self.path.parent.iterdir())
        rows = self.execute(
            "SELECT snapshot_id, pseudonym, generated_at::text, nonce, payload FROM snapshots"
        )
        return b"".join(v if isinstance(v, bytes) else str(v).encode() for r in rows for v in r)


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request, tmp_path) -> AsyncIterator[Backend]:
    database = request.getfixturevalue("postgres_database") if request.param != "sqlite" else None
    backend = Backend(request.param, tmp_path, database)
    yield backend
    for store in backend.opened:
        await store.close()


async def test_round_trip_in_order_and_since(backend):
    store = backend.open()
    psn = _psn()
    ids = [
        await store.save(psn, T0 + timedelta(days=d), _data(), b.empty_response()) for d in (0, 14)
    ]
    other = await store.save("psn_" + "f" * 32, T0, _data(), b.empty_response())
    history = await store.history(psn)
    assert [s.snapshot_id for s in history] == ids and other not in ids
    assert history[0].data == _data()
    assert history[1].generated_at == T0 + timedelta(days=14)
    assert history[0].pseudonym == psn
    since = await store.history(psn, since=T0 + timedelta(days=1))
    assert [s.snapshot_id for s in since] == ids[1:]
    assert await store.count() == 3


async def test_given_snapshot_id_is_kept_and_duplicates_refused(backend):
    store = backend.open()
    sid = "ab" * 16
    assert await store.save(_psn(), T0, _data(), b.empty_response(), sid) == sid
    with pytest.raises((StoreError, sqlite3.IntegrityError)):
        await store.save(_psn(), T0, _data(), b.empty_response(), sid)
    assert [s.snapshot_id for s in await store.history(_psn())] == [sid]


async def test_backend_holds_no_patient_id_or_clinical_value_in_clear(backend):
    store = backend.open()
    psn = _psn()
    data = _data()
    response = b.empty_response()
    response.risk_drivers.append("latest PHQ-9 23 (severe)")
    await store.save(psn, T0, data, response)
    await store.close()
    raw = backend.raw_bytes()
    for needle in (PATIENT_ID, "7734120", "paroxetine", "CYP2D6", "*4/*41", "PHQ-9 23"):
        assert needle.encode() not in raw, needle
    assert data.SerializeToString() not in raw
    assert psn.encode() in raw  # rows are keyed by the pseudonym


async def test_ciphertext_moved_to_another_patient_fails(backend):
    store = backend.open()
    await store.save("psn_" + "a" * 32, T0, _data(), b.empty_response())
    backend.execute("UPDATE snapshots SET pseudonym = %s", ("psn_" + "b" * 32,))
    with pytest.raises(StoreError, match="failed authentication"):
        await store.history("psn_" + "b" * 32)


async def test_wrong_key_cannot_read(backend):
    await backend.open().save("psn_" + "a" * 32, T0, _data(), b.empty_response())
    with pytest.raises(StoreError, match="failed authentication"):
        await backend.open(bytes(32)).history("psn_" + "a" * 32)


async def test_concurrent_writers_lose_nothing(backend):
    """Two store instances (two processes' worth) writing at once, 40 snapshots."""
    first, second = backend.open(), backend.open()
    psn = _psn()
    saves = [
        store.save(psn, T0 + timedelta(minutes=i), _data(), b.empty_response())
        for i in range(20)
        for store in (first, second)
    ]
    ids = await asyncio.gather(*saves)
    assert len(set(ids)) == 40
    assert {s.snapshot_id for s in await second.history(psn)} == set(ids)
    assert await first.count() == 40


async def test_migrations_recorded_once_and_reopen_applies_nothing(backend):
    latest = load_migrations(backend.name)[-1].version
    backend.open()
    backend.open()
    if backend.name == "sqlite":
        assert backend.execute("PRAGMA user_version") == [(latest,)]
    else:
        versions = backend.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert versions == [(v,) for v in range(1, latest + 1)]


def test_short_key_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        SnapshotCipher(b"short")


def test_bootstrap_picks_the_backend_from_the_settings(tmp_path, make_settings):
    from common.settings import SettingsError
    from twin_orchestrator.bootstrap import open_store

    sqlite_store = open_store(make_settings("orchestrator"))
    assert isinstance(sqlite_store, SqliteSnapshotStore)
    sqlite_store.close_sync()
    settings = make_settings(
        "orchestrator",
        store_url="postgresql://novamind@127.0.0.1:1/novamind",
        store_password_file=tmp_path / "missing-password",
    )
    with pytest.raises(SettingsError, match="NOVAMIND_STORE_PASSWORD_FILE"):
        open_store(settings)
    url_file = tmp_path / "store-url"
    url_file.write_text("mysql://novamind:s3cret@db/novamind\n")
    with pytest.raises(SettingsError, match="NOVAMIND_STORE_URL_FILE") as caught:
        open_store(make_settings("orchestrator", store_url_file=url_file))
    assert "s3cret" not in str(caught.value)


async def test_bootstrap_opens_postgresql_from_url_and_password_files(
    make_settings, postgres_database
):
    from twin_orchestrator.bootstrap import open_store

    url_file = postgres_database.password_file.with_name("store-url")
    url_file.write_text(postgres_database.url + "\n")
    settings = make_settings(
        "orchestrator",
        store_url_file=url_file,
        store_password_file=postgres_database.password_file,
        store_pool_size=2,
    )
    store = open_store(settings)
    try:
        assert isinstance(store, PostgresSnapshotStore)
        await store.save(_psn(), T0, _data(), b.empty_response())
        assert await store.count() == 1
    finally:
        await store.close()


# --- SQLite only -----------------------------------------------------------------------


def test_sqlite_wal_mode(tmp_path):
    SqliteSnapshotStore(tmp_path / "twin.sqlite", KEY).close_sync()
    conn = sqlite3.connect(tmp_path / "twin.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_files_are_0600_in_a_0700_directory(tmp_path):
    """Issue 13, item 9: other local users must not read the store."""
    directory = tmp_path / "store"
    store = SqliteSnapshotStore(directory / "twin.sqlite", KEY)
    store.save_sync(_psn(), T0, _data(), b.empty_response())
    assert _mode(directory) == 0o700
    files = sorted(directory.iterdir())
    assert {p.name for p in files} >= {"twin.sqlite", "twin.sqlite-wal", "twin.sqlite-shm"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    store.close_sync()


def test_sqlite_store_left_world_readable_is_tightened(tmp_path):
    directory = tmp_path / "store"
    store = SqliteSnapshotStore(directory / "twin.sqlite", KEY)
    store.save_sync(_psn(), T0, _data(), b.empty_response())
    store.close_sync()
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    SqliteSnapshotStore(directory / "twin.sqlite", KEY).close_sync()
    assert _mode(directory) == 0o700
    assert {_mode(p) for p in directory.iterdir()} == {0o600}


def test_sqlite_store_shared_with_another_process_loses_no_write(tmp_path):
    """Another process (e.g. `novamind prune-snapshots`) opening and closing the file
    while the orchestrator runs must not take the WAL away from under the orchestrator."""
    path = tmp_path / "store" / "twin.sqlite"
    store = SqliteSnapshotStore(path, KEY)
    first = store.save_sync(_psn(), T0, _data(), b.empty_response())
    other = (
        "import sys; from pathlib import Path; "
        "from twin_orchestrator.sqlite_store import SqliteSnapshotStore; "
        "s = SqliteSnapshotStore(Path(sys.argv[1]), bytes(range(32))); "
        "print(s.count_sync()); s.close_sync()"
    )
    done = subprocess.run(
        [sys.executable, "-c", other, str(path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "1"
    second = store.save_sync(_psn(), T0 + timedelta(days=1), _data(), b.empty_response())
    reader = SqliteSnapshotStore(path, KEY)
    assert [s.snapshot_id for s in reader.history_sync(_psn())] == [first, second]
    reader.close_sync()
    store.close_sync()


def test_sqlite_store_from_before_migrations_opens_and_reads(tmp_path):
    """A file written by the unversioned schema (user_version 0) keeps its rows."""
    path = tmp_path / "twin.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(load_migrations("sqlite")[0].sql)
    sealed = SnapshotCipher(KEY).seal(_psn(), T0, _data(), b.empty_response())
    conn.execute(
        "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
        (
            sealed.snapshot_id,
            sealed.pseudonym,
            T0.isoformat(timespec="microseconds"),
            sealed.nonce,
            sealed.ciphertext,
        ),
    )
    conn.commit()
    conn.close()
    store = SqliteSnapshotStore(path, KEY)
    assert [s.snapshot_id for s in store.history_sync(_psn())] == [sealed.snapshot_id]
    assert store.schema_version() == load_migrations("sqlite")[-1].version
    store.close_sync()


# --- PostgreSQL only --------------------------------------------------------------------


async def test_postgres_tls_verify_full_against_the_right_ca(postgres_database, pki_dir):
    url = (
        f"{postgres_database.url}?sslmode=verify-full&sslrootcert={pki_dir / 'ca.pem'}"
        "&host=localhost&hostaddr=127.0.0.1"
    )
    store = PostgresSnapshotStore.connect(
        url, KEY, password=postgres_database.password, wait_seconds=5
    )
    try:
        sid = await store.save(_psn(), T0, _data(), b.empty_response())
        assert [s.snapshot_id for s in await store.history(_psn())] == [sid]
    finally:
        await store.close()


def test_postgres_tls_refuses_a_server_the_ca_did_not_sign(postgres_database, tmp_path):
    other_ca = tmp_path / "other-pki"
    generate_dev_pki(other_ca)
    url = f"{postgres_database.url}?sslmode=verify-full&sslrootcert={other_ca / 'ca.pem'}"
    with pytest.raises(StoreError, match="unreachable"):
        PostgresSnapshotStore.connect(url, KEY, password=postgres_database.password, wait_seconds=0)


def test_postgres_wrong_password_is_a_store_error_without_secrets(postgres_database):
    with pytest.raises(StoreError) as caught:
        PostgresSnapshotStore.connect(
            postgres_database.url, KEY, password="not-the-password", wait_seconds=0
        )
    message = str(caught.value)
    assert "not-the-password" not in message and postgres_database.password not in message
    assert f"127.0.0.1:{postgres_database.server.port}/{postgres_database.name}" in message


def test_postgres_password_in_url_is_warned_about(postgres_database, caplog):
    user_part = f"{postgres_database.name}:{postgres_database.password}@"
    url = postgres_database.url.replace(f"{postgres_database.name}@", user_part, 1)
    with caplog.at_level(logging.WARNING):
        store = PostgresSnapshotStore.connect(url, KEY, wait_seconds=5)
    asyncio.run(store.close())
    assert any("NOVAMIND_STORE_PASSWORD_FILE" in r.getMessage() for r in caplog.records)
    assert all(postgres_database.password not in r.getMessage() for r in caplog.records)


def test_postgres_migrations_under_concurrent_start(postgres_database):
    """Replicas starting together: each migration is applied exactly once."""
    errors: list[BaseException] = []
    applied: list[list[int]] = []

    def start() -> None:
        try:
            store = PostgresSnapshotStore(
                postgres_database.url, KEY, password=postgres_database.password
            )
            applied.append(store.migrate(wait_seconds=5))
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    latest = load_migrations("postgresql")[-1].version
    assert sorted(v for versions in applied for v in versions) == list(range(1, latest + 1))


async def test_postgres_unreachable_is_a_store_error(tmp_path):
    from tests.conftest import free_port

    url = f"postgresql://nobody@127.0.0.1:{free_port()}/novamind?connect_timeout=2"
    with pytest.raises(StoreError, match="unreachable"):
        PostgresSnapshotStore.connect(url, KEY, password="x", wait_seconds=0)
