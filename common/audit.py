"""Append-only, hash-chained, keyed audit log of every access to patient data.

One JSON object per line (JSON Lines). Each record carries ``prev_hash`` (the
previous record's ``hash``; 64 zeros for the first) and

    hash = HMAC-SHA256(key, prev_hash || canonical JSON of the record without "hash")

where canonical JSON is ``json.dumps(..., sort_keys=True, separators=(",", ":"))``.
A plain hash chain only shows that the file is self-consistent: whoever can
edit the file can recompute it. Keying the chain means an edited, inserted,
deleted or reordered record cannot be made to verify without the audit key.

What goes in: time, caller identity, RPC, outcome, request id and the patient
*pseudonym* — never a raw patient id, name or clinical value. ``append``
refuses anything that is not shaped like a pseudonym (``psn_`` + 32 hex), or
the empty string for a call that was rejected before a pseudonym existed.

What the chain cannot show by itself: removing records from the *end* leaves
a shorter, perfectly valid chain. So the log keeps a signed **checkpoint** in a
second file (``<log>.checkpoint``): the record count and the hash of the
record at that count, HMAC'd with the same key. It is rewritten atomically
every ``CHECKPOINT_EVERY`` records, when a log is opened and when it is closed.
``verify`` fails when the file holds fewer records than the checkpoint, or a
different record at that position. Not detected: cutting records written
after the last checkpoint (at most ``CHECKPOINT_EVERY - 1``), or deleting or
rolling back the checkpoint file together with the log — an anchor that must
survive a host compromise has to be shipped off the host (``verify`` returns
the count for that).

Recovery on open: a last line that is not a complete record (a torn write after
a power cut, or bytes never written) is moved aside to ``<log>.torn-<time>``,
the log is cut back to its last complete record, and a recovery record
(``rpc="audit.recovery"``, outcome ``TORN_TAIL_MOVED_ASIDE``) is appended, so
the service starts and the repair itself is on the chain. Records missing
below the checkpoint are recorded the same way (``RECORDS_MISSING_BELOW_CHECKPOINT``)
before a new checkpoint is written. Anything else that does not verify (an
edited last record, a wrong key) still refuses to open.

Writers in several threads and several processes may share one file: a
``threading.Lock`` serializes threads, ``fcntl.flock`` serializes processes,
and each append re-reads the tail when another writer moved it. Every append
is one ``write`` on an ``O_APPEND`` descriptor followed by ``fsync`` before it
returns, so an acknowledged record survives a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from common.pseudonym import is_pseudonym

_LOGGER = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
MIN_KEY_BYTES = 32
_MAX_FIELD_CHARS = 256
_TAIL_CHUNK = 4096
#: A signed checkpoint is written after every this many records (and on open and close).
CHECKPOINT_EVERY = 32
_CHECKPOINT_FIELDS = ("count", "head_hash", "time", "mac")
RECOVERY_RPC = "audit.recovery"
RECOVERY_CALLER = "audit"
_FIELDS = (
    "seq",
    "time",
    "caller",
    "rpc",
    "pseudonym",
    "outcome",
    "request_id",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class AuditRecord:
    """One audit line. ``time`` is UTC ISO 8601; ``seq`` starts at 1."""

    seq: int
    time: str
    caller: str
    rpc: str
    pseudonym: str
    outcome: str
    request_id: str
    prev_hash: str
    hash: str


class AuditTamperedError(Exception):
    """The chain does not verify; ``seq`` is the first sequence number that is wrong."""

    def __init__(self, log_name: str, seq: int, reason: str) -> None:
        super().__init__(f"audit log {log_name}: chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def _canonical(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _record_mac(key: bytes, fields: dict[str, object]) -> str:
    """HMAC over prev_hash || canonical JSON of every field except ``hash``."""
    body = {name: value for name, value in fields.items() if name != "hash"}
    message = str(fields["prev_hash"]).encode("ascii") + _canonical(body)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_field(name: str, value: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}: must be a string")
    if not value and not allow_empty:
        raise ValueError(f"{name}: must not be empty")
    if len(value) > _MAX_FIELD_CHARS:
        raise ValueError(f"{name}: must be at most {_MAX_FIELD_CHARS} characters")


def _parse_record(line: bytes) -> dict[str, object] | None:
    """The record's fields if ``line`` is a well-formed record, else None."""
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if not isinstance(fields, dict) or set(fields) != set(_FIELDS):
        return None
    if type(fields["seq"]) is not int:
        return None
    if not all(isinstance(fields[name], str) for name in _FIELDS if name != "seq"):
        return None
    return fields


def checkpoint_path(log_path: Path) -> Path:
    """Where the signed checkpoint of ``log_path`` lives."""
    return log_path.with_name(log_path.name + ".checkpoint")


def _checkpoint_mac(key: bytes, count: int, head_hash: str, time: str) -> str:
    # Domain-separated from record MACs, so a record can never pass as a checkpoint.
    message = b"novamind-audit-checkpoint\0" + _canonical(
        {"count": count, "head_hash": head_hash, "time": time}
    )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _record_from(fields: dict[str, object]) -> AuditRecord:
    seq = fields["seq"]
    assert isinstance(seq, int)  # guaranteed by _parse_record
    strings = {name: str(fields[name]) for name in _FIELDS if name != "seq"}
    return AuditRecord(seq=seq, **strings)


class AuditLog:
    """An audit log file; open one per process and share it between threads."""

    def __init__(self, path: Path, key: bytes, *, repair: bool = True) -> None:
        """Open (or create) the log; with ``repair`` a torn tail is moved aside (see above)."""
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key: must be at least {MIN_KEY_BYTES} bytes")
        self._path = Path(path)
        self._key = bytes(key)
        self._lock = threading.Lock()
        self._last_seq = 0
        self._last_hash = GENESIS_HASH
        self._size = 0
        self._checkpoint = checkpoint_path(self._path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        created = not self._path.exists()
        self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if created:
                self._fsync_directory()
            if repair:
                self._open_with_recovery()
            else:
                fcntl.flock(self._fd, fcntl.LOCK_SH)
                try:
                    self._load_tail()
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(self._fd)
            raise

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"AuditLog(path={str(self._path)!r})"

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    if os.fstat(self._fd).st_size == self._size:
                        self._write_checkpoint()
                except OSError as exc:
                    _LOGGER.error("audit checkpoint write failed: %s", type(exc).__name__)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = -1

    def append(
        self, *, caller: str, rpc: str, pseudonym: str, outcome: str, request_id: str
    ) -> AuditRecord:
        """Write one record and fsync it; return it once it is durable."""
        for name, value in (
            ("caller", caller),
            ("rpc", rpc),
            ("outcome", outcome),
            ("request_id", request_id),
        ):
            _check_field(name, value)
        _check_field("pseudonym", pseudonym, allow_empty=True)
        if pseudonym and not is_pseudonym(pseudonym):
            raise ValueError("pseudonym: must be a 'psn_' pseudonym, never a raw patient id")
        with self._lock:
            if self._fd < 0:
                raise ValueError("audit log is closed")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size != self._size:
                    self._load_tail()  # another process appended since we last looked
                fields: dict[str, object] = {
                    "seq": self._last_seq + 1,
                    "time": _utc_now(),
                    "caller": caller,
                    "rpc": rpc,
                    "pseudonym": pseudonym,
                    "outcome": outcome,
                    "request_id": request_id,
                    "prev_hash": self._last_hash,
                }
                fields["hash"] = _record_mac(self._key, fields)
                line = _canonical(fields) + b"\n"
                self._write_all(line)
                os.fsync(self._fd)
                record = _record_from(fields)
                self._last_seq, self._last_hash = record.seq, record.hash
                self._size += len(line)
                if record.seq % CHECKPOINT_EVERY == 0:
                    self._write_checkpoint()
                return record
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    async def append_async(
        self, *, caller: str, rpc: str, pseudonym: str, outcome: str, request_id: str
    ) -> AuditRecord:
        """``append`` in a worker thread, so fsync never blocks the event loop."""
        return await asyncio.to_thread(
            self.append,
            caller=caller,
            rpc=rpc,
            pseudonym=pseudonym,
            outcome=outcome,
            request_id=request_id,
        )

    def verify(self) -> int:
        """Check the whole chain; return the number of records.

        Raises AuditTamperedError naming the first bad sequence number on any
        edited, inserted, deleted or reordered record. Records cut off the end
        are not detectable here: compare the returned count with an anchor.
        """
        with self._path.open("rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            try:
                return self._scan(handle, self._read_checkpoint())
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def records(self) -> list[AuditRecord]:
        """Every record after the chain verified (for audits and tests, not hot paths)."""
        self.verify()
        with self._path.open("rb") as handle:
            parsed = [_parse_record(line) for line in handle]
        return [_record_from(fields) for fields in parsed if fields is not None]

    def _scan(self, handle: BinaryIO, checkpoint: tuple[int, str] | None = None) -> int:
        prev_hash = GENESIS_HASH
        count = 0
        for line in handle:
            expected = count + 1
            self._check_line(line, expected, prev_hash)
            prev_hash = str(json.loads(line)["hash"])
            count = expected
            if checkpoint is not None and count == checkpoint[0] and prev_hash != checkpoint[1]:
                raise AuditTamperedError(
                    self._path.name, count, "record differs from the signed checkpoint"
                )
        if checkpoint is not None and count < checkpoint[0]:
            raise AuditTamperedError(
                self._path.name,
                count + 1,
                f"records missing from the end: the signed checkpoint counts {checkpoint[0]}",
            )
        return count

    # ------------------------------------------------------------------ checkpoints

    def _read_checkpoint(self) -> tuple[int, str] | None:
        """(count, head hash) of a checkpoint that verifies; None if there is none yet."""
        try:
            raw = self._checkpoint.read_bytes()
        except FileNotFoundError:
            return None
        name = self._checkpoint.name
        try:
            fields = json.loads(raw)
        except ValueError:
            raise AuditTamperedError(name, 0, "checkpoint is not well-formed") from None
        if not isinstance(fields, dict) or set(fields) != set(_CHECKPOINT_FIELDS):
            raise AuditTamperedError(name, 0, "checkpoint is not well-formed")
        count, head, stamp, mac = (fields[k] for k in _CHECKPOINT_FIELDS)
        if type(count) is not int or not all(isinstance(v, str) for v in (head, stamp, mac)):
            raise AuditTamperedError(name, 0, "checkpoint is not well-formed")
        if not hmac.compare_digest(_checkpoint_mac(self._key, count, head, stamp), mac):
            raise AuditTamperedError(name, 0, "checkpoint signature does not verify")
        return count, head

    def _write_checkpoint(self) -> None:
        """Atomically replace the checkpoint with (last seq, last hash); caller holds flock."""
        stamp = _utc_now()
        fields = {
            "count": self._last_seq,
            "head_hash": self._last_hash,
            "time": stamp,
            "mac": _checkpoint_mac(self._key, self._last_seq, self._last_hash, stamp),
        }
        tmp = self._checkpoint.with_name(f".{self._checkpoint.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, _canonical(fields) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._checkpoint)
        self._fsync_directory()

    # ------------------------------------------------------------------ recovery

    def _open_with_recovery(self) -> None:
        """Load the tail under an exclusive lock, repairing what a crash can leave behind."""
        events: list[str] = []
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if self._move_torn_tail_aside():
                events.append("TORN_TAIL_MOVED_ASIDE")
            self._load_tail()
            checkpoint = self._read_checkpoint()
            if checkpoint is not None and self._last_seq < checkpoint[0]:
                _LOGGER.error(
                    "audit log %s: %d records missing below the signed checkpoint",
                    self._path.name,
                    checkpoint[0] - self._last_seq,
                )
                events.append("RECORDS_MISSING_BELOW_CHECKPOINT")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        for outcome in events:
            self.append(
                caller=RECOVERY_CALLER,
                rpc=RECOVERY_RPC,
                pseudonym="",
                outcome=outcome,
                request_id=secrets.token_hex(16),
            )
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._write_checkpoint()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _move_torn_tail_aside(self) -> bool:
        """Cut an incomplete last line off the log into a side file; caller holds flock."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return False
        line = self._read_last_line(size)
        if line.endswith(b"\n") and _parse_record(line) is not None:
            return False
        keep = size - len(line)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self._path.with_name(f"{self._path.name}.torn-{stamp}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.ftruncate(self._fd, keep)
        os.fsync(self._fd)
        self._fsync_directory()
        _LOGGER.error(
            "audit log %s: incomplete last record (%d bytes) moved aside to %s",
            self._path.name,
            len(line),
            aside.name,
        )
        return True

    def _check_line(self, line: bytes, expected: int, prev_hash: str) -> None:
        name = self._path.name
        if not line.endswith(b"\n"):
            raise AuditTamperedError(name, expected, "incomplete record (torn write or edit)")
        fields = _parse_record(line)
        if fields is None:
            raise AuditTamperedError(name, expected, "line is not a well-formed record")
        if fields["seq"] != expected:
            raise AuditTamperedError(
                name,
                expected,
                f"found seq {fields['seq']} (record deleted, inserted or reordered)",
            )
        if fields["prev_hash"] != prev_hash:
            raise AuditTamperedError(name, expected, "prev_hash does not match previous record")
        if not hmac.compare_digest(_record_mac(self._key, fields), str(fields["hash"])):
            raise AuditTamperedError(name, expected, "record hash does not match its contents")

    def _load_tail(self) -> None:
        """Recover seq, hash and size from the last line; the caller holds flock."""
        size = os.fstat(self._fd).st_size
        self._size = size
        if size == 0:
            self._last_seq, self._last_hash = 0, GENESIS_HASH
            return
        line = self._read_last_line(size)
        fields = _parse_record(line)
        name = self._path.name
        if not line.endswith(b"\n") or fields is None:
            # Rare (a torn write or an edit): a full scan names the exact seq.
            with self._path.open("rb") as handle:
                count = self._scan(handle)
            raise AuditTamperedError(name, count + 1, "last line is not a complete record")
        seq = fields["seq"]
        assert isinstance(seq, int)
        if not hmac.compare_digest(_record_mac(self._key, fields), str(fields["hash"])):
            # Either the tail was edited or this process has the wrong key;
            # appending would extend a chain that can never verify.
            raise AuditTamperedError(
                name, seq, "last record does not verify with this key (wrong key or edited)"
            )
        self._last_seq, self._last_hash = seq, str(fields["hash"])

    def _read_last_line(self, size: int) -> bytes:
        """The final line including its newline (reads backwards in chunks)."""
        end = size - 1  # skip the final newline when searching for the previous one
        buffer = b""
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            buffer = os.pread(self._fd, end - start, start) + buffer
            newline = buffer.rfind(b"\n")
            if newline >= 0:
                return buffer[newline + 1 :] + os.pread(self._fd, 1, size - 1)
            end = start
        return buffer + os.pread(self._fd, 1, size - 1)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _fsync_directory(self) -> None:
        # Makes the new file's directory entry durable, not just its contents.
        dir_fd = os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
