"""The longitudinal store, one suite for both backends (SQLite file, real PostgreSQL):
encrypted, keyed by pseudonym, tamper-evident per row, concurrent writers, migrations,
retention (prune keeps each patient's newest; concurrent prunes and saves lose nothing).
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


# --- retention ---------------------------------------------------------------------------

CUTOFF = T0 - timedelta(days=30)


async def _seed(store: SnapshotStore, plan: dict[str, list[int]]) -> dict[str, list[str]]:
    """Save one snapshot per (patient, days before T0); return each patient's ids, oldest first."""
    ids: dict[str, list[str]] = {}
    for patient, days_ago in plan.items():
        for days in sorted(days_ago, reverse=True):
            when = T0 - timedelta(days=days)
            ids.setdefault(patient, []).append(
                await store.save(_psn(patient), when, _data(), b.empty_response())
            )
    return ids


async def _ids(store: SnapshotStore, patient: str) -> list[str]:
    return [s.snapshot_id for s in await store.history(_psn(patient))]


@pytest.mark.parametrize("batch_rows", [1, 2, 500])
async def test_prune_removes_old_rows_but_keeps_each_patients_newest(backend, batch_rows):
    store = backend.open()
    ids = await _seed(
        store,
        {
            "MRN-A": [40, 35, 31, 1],  # three past retention, one recent
            "MRN-B": [50, 45],  # not re-scored for 45 days: its newest stays as the baseline
            "MRN-C": [60],  # a single old snapshot stays
            "MRN-D": [2, 1],  # all recent: untouched
            "MRN-E": [30, 29],  # exactly at the cutoff is not "before" it
        },
    )
    removed = await store.prune(CUTOFF, batch_rows=batch_rows)
    assert removed == 4
    assert await _ids(store, "MRN-A") == ids["MRN-A"][3:]
    assert await _ids(store, "MRN-B") == ids["MRN-B"][1:]
    assert await _ids(store, "MRN-C") == ids["MRN-C"]
    assert await _ids(store, "MRN-D") == ids["MRN-D"]
    assert await _ids(store, "MRN-E") == ids["MRN-E"]
    assert await store.count() == 11 - 4
    # The kept rows still decrypt and carry their data.
    assert (await store.history(_psn("MRN-B")))[0].data == _data()
    assert await store.prune(CUTOFF, batch_rows=batch_rows) == 0


async def test_prune_ties_keep_the_row_history_lists_last(backend):
    store = backend.open()
    when = T0 - timedelta(days=90)
    for snapshot_id in ("aa" * 16, "cc" * 16, "bb" * 16):
        await store.save(_psn(), when, _data(), b.empty_response(), snapshot_id)
    assert await store.prune(CUTOFF) == 2
    assert await _ids(store, PATIENT_ID) == ["cc" * 16]


async def test_prune_never_decrypts(backend):
    """A store opened with another key prunes: only the clear columns are read."""
    await _seed(backend.open(), {"MRN-A": [40, 35], "MRN-B": [40]})
    other_key = backend.open(bytes(32))
    assert await other_key.prune(CUTOFF) == 1
    assert await other_key.count() == 2


async def test_concurrent_prunes_and_saves_lose_nothing_acknowledged(backend):
    """Three prunes (three replicas' worth) and a stream of saves at once.

    Every acknowledged save survives; the old rows go except the newest of patients
    given no new snapshot; the prunes' counts add up to what was removed, none twice."""
    patients = [f"MRN-{i:03d}" for i in range(12)]
    seeder = backend.open()
    old = await _seed(seeder, {p: [90 - d for d in range(10)] for p in patients})
    writers_done = asyncio.Event()
    acknowledged: list[tuple[str, str]] = []

    async def write() -> None:
        writer = backend.open()
        for i in range(36):
            patient = patients[i % 8]  # four patients get no new snapshot
            when = T0 + timedelta(minutes=i)
            acknowledged.append(
                (patient, await writer.save(_psn(patient), when, _data(), b.empty_response()))
            )
        writers_done.set()

    async def prune(store: SnapshotStore) -> int:
        total = await store.prune(CUTOFF, batch_rows=7)
        while not writers_done.is_set():  # keep racing the writer until it is done
            total += await store.prune(CUTOFF, batch_rows=7)
        return total + await store.prune(CUTOFF, batch_rows=7)

    pruners = [backend.open() for _ in range(3)]
    results = await asyncio.gather(write(), *(prune(s) for s in pruners))
    removed = sum(results[1:])

    for patient, snapshot_id in acknowledged:
        assert snapshot_id in await _ids(seeder, patient)
    for patient in patients:
        kept = [sid for sid in await _ids(seeder, patient) if sid in old[patient]]
        # Each prune's last pass started after the writer finished: a patient given a
        # new snapshot has no old one left; the others keep exactly their newest.
        assert kept == ([old[patient][-1]] if patient in patients[8:] else []), patient
    assert removed == 12 * 10 - 4
    assert await seeder.count() == 4 + len(acknowledged)


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


def test_postgres_time_index_built_beforehand_is_accepted(postgres_database):
    """An operator may build snapshots_by_time CONCURRENTLY before upgrading."""
    from twin_orchestrator.postgres_store import _CREATE_MIGRATIONS_TABLE

    first = load_migrations("postgresql")[0]
    with psycopg.connect(postgres_database.url, password=postgres_database.password) as conn:
        # A store at schema version 1, as the release before retention left it.
        conn.execute(first.sql.encode())
        conn.execute(_CREATE_MIGRATIONS_TABLE)
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
            (first.version, first.name),
        )
        conn.commit()
    with psycopg.connect(
        postgres_database.url, password=postgres_database.password, autocommit=True
    ) as conn:
        conn.execute(
            "CREATE INDEX CONCURRENTLY snapshots_by_time ON snapshots (generated_at, snapshot_id)"
        )
    store = PostgresSnapshotStore(postgres_database.url, KEY, password=postgres_database.password)
    assert store.migrate(wait_seconds=5) == [m.version for m in load_migrations("postgresql")[1:]]
    asyncio.run(store.close())


async def test_postgres_unreachable_is_a_store_error(tmp_path):
    from tests.conftest import free_port

    url = f"postgresql://nobody@127.0.0.1:{free_port()}/novamind?connect_timeout=2"
    with pytest.raises(StoreError, match="unreachable"):
        PostgresSnapshotStore.connect(url, KEY, password="x", wait_seconds=0)
