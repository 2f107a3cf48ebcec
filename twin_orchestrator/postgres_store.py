"""PostgreSQL backend of the longitudinal store, shared by any number of orchestrators.

Selected by ``NOVAMIND_STORE_URL=postgresql://user@host:5432/db?sslmode=verify-full&...``.
The URL goes to libpq untouched, so every libpq connection parameter is
honoured, TLS ones included (``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey``, ``sslcrl``). The password comes from ``NOVAMIND_STORE_PASSWORD_FILE``
(a mounted secret) rather than the URL, so it is in no environment listing.

- Schema: versioned SQL files (``migrations/postgresql/``) applied at start-up
  inside one transaction holding an advisory lock, so replicas starting
  together apply each migration exactly once.
- Writers: each snapshot is one INSERT of a random primary key, so replicas
  never contend for a row; a pool of async connections (psycopg 3) per process.
- Retention: ``prune`` batches lock the rows they look at with ``FOR UPDATE
  SKIP LOCKED``, so replicas pruning at once share the backlog instead of
  waiting on (or deadlocking over) the same rows; a row's delete checks for a
  newer row of its patient in the same statement, so no prune removes a
  patient's newest snapshot (store.py, ``SnapshotStore.prune``).
- Durability: ``save`` returns after the COMMIT with ``synchronous_commit=on``
  (the WAL record is flushed), so an acknowledged snapshot outlives the
  replica that wrote it.
- Errors become :class:`StoreError` with the error class only: libpq messages
  can quote connection details, never worth leaking to a caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from novamind.twin.v1 import twin_pb2
from twin_orchestrator.store import (
    PruneKey,
    SealedSnapshot,
    Snapshot,
    SnapshotCipher,
    SnapshotStore,
    StoreError,
)
from twin_orchestrator.store_migrations import load_migrations

_LOGGER = logging.getLogger(__name__)

#: pg_advisory_xact_lock key of schema migrations ("novamind" in ASCII).
MIGRATION_LOCK_KEY = int.from_bytes(b"novamind", "big") & 0x7FFF_FFFF_FFFF_FFFF
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10
_STRONG_SSLMODES = frozenset({"verify-ca", "verify-full"})

#: The rows a prune batch looks at, locked for this transaction; rows another replica's
#: batch holds are skipped (it is deleting them).
_PRUNE_SCAN = """
SELECT snapshot_id, generated_at FROM snapshots
WHERE generated_at < %(cutoff)s {after}
ORDER BY generated_at, snapshot_id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
_PRUNE_AFTER = "AND (generated_at, snapshot_id) > (%(after_at)s, %(after_id)s)"

#: Of those, the rows with a newer row of the same patient (in the order of ``history``).
_PRUNE_DELETE = """
DELETE FROM snapshots AS old
WHERE old.snapshot_id = ANY(%(ids)s)
  AND EXISTS (
    SELECT 1 FROM snapshots AS newer
    WHERE newer.pseudonym = old.pseudonym
      AND (newer.generated_at, newer.snapshot_id) > (old.generated_at, old.snapshot_id))
"""

_CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def describe_target(url: str) -> str:
    """host:port/dbname of a URL, for messages (never the user or the password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable URL)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or '?'}"


def connection_kwargs(url: str, password: str | None) -> dict[str, Any]:
    """Connection keywords added to the URL's own parameters (which they never weaken)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError("NOVAMIND_STORE_URL: not a valid PostgreSQL URL") from exc
    kwargs: dict[str, Any] = {"autocommit": True}
    if password is not None:
        kwargs["password"] = password
    elif params.get("password"):
        _LOGGER.warning(
            "NOVAMIND_STORE_URL carries a password: prefer NOVAMIND_STORE_PASSWORD_FILE"
        )
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_SECONDS
    if "application_name" not in params:
        kwargs["application_name"] = "novamind-orchestrator"
    if params.get("sslmode") not in _STRONG_SSLMODES:
        _LOGGER.warning(
            "store connection does not verify the server certificate: "
            "set sslmode=verify-full and sslrootcert in NOVAMIND_STORE_URL"
        )
    return kwargs


def apply_migrations(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply pending migrations in one transaction under the advisory lock; return them."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(_CREATE_MIGRATIONS_TABLE)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in load_migrations("postgresql"):
            if migration.version in done:
                continue
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now


class PostgresSnapshotStore(SnapshotStore):
    backend = "postgresql"

    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        password: str | None = None,
        pool_size: int = 10,
    ) -> None:
        self._cipher = SnapshotCipher(key)
        self._url = url
        self._kwargs = connection_kwargs(url, password)
        self._target = describe_target(url)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=pool_size,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            timeout=DEFAULT_CONNECT_TIMEOUT_SECONDS,
            name="novamind-store",
        )
        self._open_lock = asyncio.Lock()
        self._opened = False

    @classmethod
    def connect(
        cls,
        url: str,
        key: bytes,
        *,
        password: str | None = None,
        pool_size: int = 10,
        wait_seconds: float = 60.0,
    ) -> PostgresSnapshotStore:
        """Build the store and bring the schema up to date, waiting for the database."""
        store = cls(url, key, password=password, pool_size=pool_size)
        store.migrate(wait_seconds=wait_seconds)
        return store

    def migrate(self, *, wait_seconds: float = 60.0) -> list[int]:
        """Apply pending migrations; retry while the database is unreachable."""
        deadline = time.monotonic() + wait_seconds
        delay = 0.5
        while True:
            try:
                with psycopg.connect(self._url, **{**self._kwargs, "autocommit": False}) as conn:
                    applied = apply_migrations(conn)
            except psycopg.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreError(
                        f"PostgreSQL store at {self._target} unreachable: {type(exc).__name__}"
                    ) from None
                _LOGGER.warning("PostgreSQL store not reachable yet; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except psycopg.Error as exc:
                raise StoreError(
                    f"PostgreSQL store at {self._target}: migration failed: {type(exc).__name__}"
                ) from None
            if applied:
                _LOGGER.info("store schema migrated", extra={"versions": applied})
            return applied

    async def _ready(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    await self._pool.open(wait=False)
                    self._opened = True
        return self._pool

    async def save(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> str:
        sealed = self._cipher.seal(pseudonym, generated_at, data, response, snapshot_id)
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                # autocommit: the INSERT is its own transaction, committed when execute returns.
                await conn.execute(
                    "INSERT INTO snapshots (snapshot_id, pseudonym, generated_at, nonce, payload)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        sealed.snapshot_id,
                        pseudonym,
                        generated_at.astimezone(UTC),
                        sealed.nonce,
                        sealed.ciphertext,
                    ),
                )
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store write failed: {type(exc).__name__}") from None
        return sealed.snapshot_id

    async def history(self, pseudonym: str, since: datetime | None = None) -> list[Snapshot]:
        query = (
            "SELECT snapshot_id, generated_at, nonce, payload FROM snapshots WHERE pseudonym = %s"
        )
        params: list[object] = [pseudonym]
        if since is not None:
            query += " AND generated_at >= %s"
            params.append(since.astimezone(UTC))
        query += " ORDER BY generated_at, snapshot_id"
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(query.encode(), params)
                rows = await cursor.fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store read failed: {type(exc).__name__}") from None
        return [
            self._cipher.open(
                SealedSnapshot(
                    snapshot_id, pseudonym, stamp.astimezone(UTC), bytes(nonce), bytes(payload)
                )
            )
            for snapshot_id, stamp, nonce, payload in rows
        ]

    async def count(self) -> int:
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT COUNT(*) FROM snapshots")
                row = await cursor.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store read failed: {type(exc).__name__}") from None
        return int(row[0]) if row else 0

    async def _prune_batch(
        self, cutoff: datetime, after: PruneKey | None, limit: int
    ) -> tuple[int, PruneKey | None]:
        params: dict[str, object] = {"cutoff": cutoff.astimezone(UTC), "limit": limit}
        if after is not None:
            params["after_at"], params["after_id"] = after
        scan = _PRUNE_SCAN.format(after=_PRUNE_AFTER if after is not None else "")
        pool = await self._ready()
        try:
            async with pool.connection() as conn, conn.transaction():
                cursor = await conn.execute(scan.encode(), params)
                rows = await cursor.fetchall()
                removed = 0
                if rows:
                    ids = [snapshot_id for snapshot_id, _ in rows]
                    cursor = await conn.execute(_PRUNE_DELETE.encode(), {"ids": ids})
                    removed = cursor.rowcount
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store prune failed: {type(exc).__name__}") from None
        if not rows:
            return 0, None
        last_id, last_at = rows[-1]
        return removed, (last_at, last_id)

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # A server whose default is off would acknowledge commits that a crash can lose.
    await conn.execute("SET synchronous_commit TO on")
