"""SQLite backend of the longitudinal store: one file, WAL mode, one writer process.

The embedded default (no setting): right for one orchestrator replica. The
database, its -wal and -shm files are created 0600 inside a 0700 directory:
the rows carry pseudonyms and timestamps in clear, which other local users
have no business reading. ``save`` commits with synchronous=FULL before it
returns, so an acknowledged snapshot survives a crash of the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

from novamind.twin.v1 import twin_pb2
from twin_orchestrator.store import (
    PruneKey,
    SealedSnapshot,
    Snapshot,
    SnapshotCipher,
    SnapshotStore,
)
from twin_orchestrator.store_migrations import load_migrations

_LOGGER = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _private_directory(directory: Path) -> None:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(directory.stat().st_mode) != DIRECTORY_MODE:
        try:
            directory.chmod(DIRECTORY_MODE)
        except PermissionError:
            # A mount point owned by someone else (e.g. a volume's root): the
            # files themselves are still 0600.
            _LOGGER.warning("store directory is not 0700 and cannot be changed by this user")


def _private_files(path: Path) -> None:
    """Create the database 0600 before SQLite opens it; tighten files left wider.

    An existing database is never opened here: closing any descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's included, and
    another process that opens and closes the store (a second worker, an
    operator command) would then take its connection for the last one and
    delete the WAL under this one.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists() and stat.S_IMODE(companion.stat().st_mode) != FILE_MODE:
            companion.chmod(FILE_MODE)


#: Deletes the listed rows that have a newer row of the same patient (in the order of
#: ``history``); ``{marks}`` becomes one "?" per id, so only placeholders enter the SQL.
_DELETE_UNLESS_NEWEST = """
DELETE FROM snapshots
WHERE snapshot_id IN ({marks})
  AND EXISTS (
    SELECT 1 FROM snapshots AS newer
    WHERE newer.pseudonym = snapshots.pseudonym
      AND (newer.generated_at > snapshots.generated_at
           OR (newer.generated_at = snapshots.generated_at
               AND newer.snapshot_id > snapshots.snapshot_id)))
"""


def _stamp(moment: datetime) -> str:
    """How a time is stored: UTC ISO 8601 with microseconds, which sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (so they run inside one transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    leftover = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--"))
    if leftover.strip():
        raise ValueError("migration ends with an incomplete statement")
    return statements


class SqliteSnapshotStore(SnapshotStore):
    """Thread-safe; the async methods run SQLite in a worker thread."""

    backend = "sqlite"

    def __init__(self, path: Path, key: bytes) -> None:
        self._cipher = SnapshotCipher(key)
        _private_directory(path.parent)
        _private_files(path)
        self._path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        # SQLite gives -wal/-shm the database's mode; this catches files of older versions.
        _private_files(path)

    @property
    def path(self) -> Path:
        return self._path

    def _migrate(self) -> None:
        for migration in load_migrations("sqlite"):
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
                    if current < migration.version:
                        for statement in _statements(migration.sql):
                            self._conn.execute(statement)
                        self._conn.execute(f"PRAGMA user_version = {migration.version:d}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close_sync(self) -> None:
        with self._lock:
            self._conn.close()

    def save_sync(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> str:
        sealed = self._cipher.seal(pseudonym, generated_at, data, response, snapshot_id)
        stamp = _stamp(generated_at)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    (sealed.snapshot_id, pseudonym, stamp, sealed.nonce, sealed.ciphertext),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return sealed.snapshot_id

    def history_sync(self, pseudonym: str, since: datetime | None = None) -> list[Snapshot]:
        query = (
            "SELECT snapshot_id, generated_at, nonce, payload FROM snapshots WHERE pseudonym = ?"
        )
        params: list[str] = [pseudonym]
        if since is not None:
            query += " AND generated_at >= ?"
            params.append(_stamp(since))
        query += " ORDER BY generated_at, snapshot_id"
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        return [
            self._cipher.open(
                SealedSnapshot(
                    snapshot_id, pseudonym, datetime.fromisoformat(stamp), nonce, ciphertext
                )
            )
            for snapshot_id, stamp, nonce, ciphertext in rows
        ]

    def count_sync(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0])

    def prune_batch_sync(
        self, cutoff: datetime, after: PruneKey | None, limit: int
    ) -> tuple[int, PruneKey | None]:
        query = "SELECT snapshot_id, generated_at FROM snapshots WHERE generated_at < ?"
        params: list[object] = [_stamp(cutoff)]
        if after is not None:
            query += " AND (generated_at, snapshot_id) > (?, ?)"
            params += [after[0], after[1]]
        query += " ORDER BY generated_at, snapshot_id LIMIT ?"
        params.append(limit)
        with self._lock:
            # One write transaction per batch: the newest-row check and the delete see
            # the same rows, and another process's saves wait at most this long.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(query, params).fetchall()
                removed = 0
                if rows:
                    marks = ",".join("?" * len(rows))
                    delete = _DELETE_UNLESS_NEWEST.format(marks=marks)
                    ids = [snapshot_id for snapshot_id, _ in rows]
                    removed = self._conn.execute(delete, ids).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if not rows:
            return 0, None
        last_id, last_stamp = rows[-1]
        return removed, (last_stamp, last_id)

    async def save(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> str:
        return await asyncio.to_thread(
            self.save_sync, pseudonym, generated_at, data, response, snapshot_id
        )

    async def history(self, pseudonym: str, since: datetime | None = None) -> list[Snapshot]:
        return await asyncio.to_thread(self.history_sync, pseudonym, since)

    async def count(self) -> int:
        return await asyncio.to_thread(self.count_sync)

    async def _prune_batch(
        self, cutoff: datetime, after: PruneKey | None, limit: int
    ) -> tuple[int, PruneKey | None]:
        return await asyncio.to_thread(self.prune_batch_sync, cutoff, after, limit)

    async def close(self) -> None:
        self.close_sync()
