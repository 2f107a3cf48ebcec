"""The longitudinal store of twin snapshots: the interface and its encryption.

Two backends implement :class:`SnapshotStore`: SQLite (``sqlite_store.py``,
the embedded default, one orchestrator replica) and PostgreSQL
(``postgres_store.py``, ``NOVAMIND_STORE_URL``, any number of replicas). Both
store exactly the same row: the patient's pseudonym (never the raw id), a
random snapshot id, the generation time, and an AES-GCM ciphertext holding
everything clinical (the input data and the insights). The ciphertext's
associated data binds it to its row, so a payload moved to another patient's
row, or given another snapshot id, fails to decrypt.

``save`` returns only after the row is durably committed, so a snapshot
acknowledged to a caller survives a crash of the process (and, for
PostgreSQL, of the replica that wrote it).

``prune`` is the retention rule: snapshots generated before a cutoff go,
except each patient's newest, so a patient not re-scored for a while keeps a
baseline for GetPatientProgress. It reads only the clear columns (pseudonym,
generated_at, snapshot_id) and never decrypts.
"""

from __future__ import annotations

import abc
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from novamind.twin.v1 import twin_pb2

_FORMAT_VERSION = 1
_NONCE_BYTES = 12

#: Rows one prune transaction looks at: writers wait at most one batch's delete.
PRUNE_BATCH_ROWS = 500

#: Where a prune pass has got to: (generated_at as the backend stores it, snapshot_id).
PruneKey = tuple[Any, str]


class StoreError(Exception):
    """The store could not be reached or read, or a payload failed authentication.

    Messages never carry patient data, connection secrets or ciphertext.
    """


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    pseudonym: str
    generated_at: datetime
    data: twin_pb2.PatientData
    response: twin_pb2.GenerateInsightsResponse


@dataclass(frozen=True)
class SealedSnapshot:
    """What a backend writes: clear row keys plus the encrypted payload."""

    snapshot_id: str
    pseudonym: str
    generated_at: datetime
    nonce: bytes
    ciphertext: bytes


def _encode(data: twin_pb2.PatientData, response: twin_pb2.GenerateInsightsResponse) -> bytes:
    data_bytes = data.SerializeToString()
    return (
        struct.pack(">BI", _FORMAT_VERSION, len(data_bytes))
        + data_bytes
        + response.SerializeToString()
    )


def _decode(blob: bytes) -> tuple[twin_pb2.PatientData, twin_pb2.GenerateInsightsResponse]:
    version, length = struct.unpack(">BI", blob[:5])
    if version != _FORMAT_VERSION:
        raise StoreError(f"unknown snapshot format version {version}")
    data = twin_pb2.PatientData.FromString(blob[5 : 5 + length])
    response = twin_pb2.GenerateInsightsResponse.FromString(blob[5 + length :])
    return data, response


class SnapshotCipher:
    """AES-256-GCM of snapshot payloads, bound to (snapshot id, pseudonym)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("store key: must be at least 32 bytes")
        self._aead = AESGCM(key[:32])

    @staticmethod
    def _aad(snapshot_id: str, pseudonym: str) -> bytes:
        return f"novamind-snapshot:{snapshot_id}:{pseudonym}".encode()

    def seal(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> SealedSnapshot:
        snapshot_id = snapshot_id or secrets.token_hex(16)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = self._aead.encrypt(
            nonce, _encode(data, response), self._aad(snapshot_id, pseudonym)
        )
        return SealedSnapshot(snapshot_id, pseudonym, generated_at, nonce, ciphertext)

    def open(self, sealed: SealedSnapshot) -> Snapshot:
        try:
            plain = self._aead.decrypt(
                sealed.nonce, sealed.ciphertext, self._aad(sealed.snapshot_id, sealed.pseudonym)
            )
        except InvalidTag as exc:
            raise StoreError(f"snapshot {sealed.snapshot_id} failed authentication") from exc
        data, response = _decode(plain)
        return Snapshot(sealed.snapshot_id, sealed.pseudonym, sealed.generated_at, data, response)


class SnapshotStore(abc.ABC):
    """What the orchestrator needs from a longitudinal store; safe for concurrent use."""

    #: "sqlite" or "postgresql", for logs and health reporting.
    backend: str

    @abc.abstractmethod
    async def save(
        self,
        pseudonym: str,
        generated_at: datetime,
        data: twin_pb2.PatientData,
        response: twin_pb2.GenerateInsightsResponse,
        snapshot_id: str | None = None,
    ) -> str:
        """Encrypt and durably store one snapshot; return its id once committed."""

    @abc.abstractmethod
    async def history(self, pseudonym: str, since: datetime | None = None) -> list[Snapshot]:
        """The patient's snapshots generated at or after ``since``, oldest first."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many snapshots the store holds (all patients)."""

    async def prune(self, cutoff: datetime, *, batch_rows: int = PRUNE_BATCH_ROWS) -> int:
        """Delete the snapshots generated before ``cutoff``, except each patient's newest.

        Returns how many rows this call removed. The rows older than the cutoff
        are walked in (generated_at, snapshot_id) order, one transaction per
        batch, so a long backlog never holds writers for long. "Newest" is the
        patient's last row in that order (the order of ``history``). A row is
        deleted only if a newer row of the same patient exists when its batch
        runs, so the newest row a patient ever had is never deleted, whatever
        other prunes or saves run at the same time; a row already deleted by a
        concurrent prune is simply not counted again.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows: must be at least 1")
        removed = 0
        after: PruneKey | None = None
        while True:
            batch_removed, after = await self._prune_batch(cutoff, after, batch_rows)
            removed += batch_removed
            if after is None:
                return removed

    @abc.abstractmethod
    async def _prune_batch(
        self, cutoff: datetime, after: PruneKey | None, limit: int
    ) -> tuple[int, PruneKey | None]:
        """One batch of ``prune`` in one transaction: look at up to ``limit`` rows generated
        before ``cutoff`` and after the key ``after`` (in (generated_at, snapshot_id) order),
        delete those with a newer row of the same patient. Return (rows deleted, key of the
        last row looked at), or (0, None) once no row is left to look at."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and files."""
