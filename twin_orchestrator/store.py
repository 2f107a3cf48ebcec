"""Longitudinal store of twin snapshots: SQLite (WAL), AES-GCM encrypted payloads.

Rows are keyed by the patient's pseudonym, never the raw id. Everything
clinical (the input data and the insights) lives only inside the encrypted
payload; in clear text the file holds the pseudonym, a random snapshot id and
the generation time. The payload's associated data binds it to its row, so a
ciphertext moved to another patient's row fails to decrypt.

``save`` returns only after the transaction committed with synchronous=FULL,
so a snapshot acknowledged to a caller survives a crash of the process.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from novamind.twin.v1 import twin_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id  TEXT PRIMARY KEY,
    pseudonym    TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    nonce        BLOB NOT NULL,
    payload      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_by_patient ON snapshots (pseudonym, generated_at);
"""
_FORMAT_VERSION = 1


class StoreError(Exception):
    """The store could not be read or a payload failed authentication."""


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    pseudonym: str
    generated_at: datetime
    data: twin_pb2.PatientData
    response: twin_pb2.GenerateInsightsResponse


def _encode(data: twin_pb2.PatientData, response: twin_pb2.GenerateInsightsResponse) -> bytes:
    data_bytes = data.SerializeToString()
    return (
        struct.pack(">BI", _FORMAT_VERSION, len(data_bytes))
        + data_bytes
        + (response.SerializeToString())
    )


def _decode(blob: bytes) -> tuple[twin_pb2.PatientData, twin_pb2.GenerateInsightsResponse]:
    version, length = struct.unpack(">BI", blob[:5])
    if version != _FORMAT_VERSION:
        raise StoreError(f"unknown snapshot format version {version}")
    data = twin_pb2.PatientData.FromString(blob[5 : 5 + length])
    response = twin_pb2.GenerateInsightsResponse.FromString(blob[5 + length :])
    return data, response


class SnapshotStore:
    """Thread-safe; async methods run SQLite in a worker thread."""

    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("store key: must be at least 32 bytes")
        self._aead = AESGCM(key[:32])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _aad(snapshot_id: str, pseudonym: str) -> bytes:
        return f"novamind-snapshot:{snapshot_id}:{pseudonym}".encode()

    def save_sync(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> str:
        snapshot_id = snapshot_id or secrets.token_hex(16)
        nonce = secrets.token_bytes(12)
        ciphertext = self._aead.encrypt(
            nonce, _encode(data, response), self._aad(snapshot_id, pseudonym)
        )
        stamp = generated_at.astimezone(UTC).isoformat(timespec="microseconds")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                    (snapshot_id, pseudonym, stamp, nonce, ciphertext),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return snapshot_id

    def history_sync(self, pseudonym: str, since: datetime | None = None) -> list[Snapshot]:
        query = (
            "SELECT snapshot_id, generated_at, nonce, payload FROM snapshots WHERE pseudonym = ?"
        )
        params: list[str] = [pseudonym]
        if since is not None:
            query += " AND generated_at >= ?"
            params.append(since.astimezone(UTC).isoformat(timespec="microseconds"))
        query += " ORDER BY generated_at, snapshot_id"
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        snapshots = []
        for snapshot_id, stamp, nonce, ciphertext in rows:
            try:
                plain = self._aead.decrypt(nonce, ciphertext, self._aad(snapshot_id, pseudonym))
            except InvalidTag as exc:
                raise StoreError(f"snapshot {snapshot_id} failed authentication") from exc
            data, response = _decode(plain)
            snapshots.append(
                Snapshot(snapshot_id, pseudonym, datetime.fromisoformat(stamp), data, response)
            )
        return snapshots

    def count_sync(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0])

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
