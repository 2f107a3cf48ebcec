"""Audit log: every kind of tampering is caught and named; concurrent writers keep one chain."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from common.audit import (
    CHECKPOINT_EVERY,
    AuditLog,
    AuditRecord,
    AuditTamperedError,
    checkpoint_path,
)
from common.pseudonym import Pseudonymizer

KEY = b"a" * 32
REPO_ROOT = Path(__file__).resolve().parents[2]
PSN = Pseudonymizer(b"p" * 32)


def _append(log: AuditLog, n: int, *, caller: str = "orchestrator") -> list[AuditRecord]:
    return [
        log.append(
            caller=caller,
            rpc="/novamind.twin.v1.DigitalTwinService/GenerateInsights",
            pseudonym=PSN.pseudonymize(f"patient-{i}"),
            outcome="OK" if i % 3 else "INVALID_ARGUMENT",
            request_id=f"{i:032x}",
        )
        for i in range(n)
    ]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


@pytest.fixture
def log_with_ten(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl", KEY)
    _append(log, 10)
    return log


def test_hundred_appends_verify(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl", KEY) as log:
        records = _append(log, 100)
        assert log.verify() == 100
    assert [r.seq for r in records] == list(range(1, 101))
    assert len(_lines(tmp_path / "audit.jsonl")) == 100


def test_chain_is_the_keyed_hash_of_the_previous_hash_and_the_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, KEY) as log:
        _append(log, 3)
    prev = "0" * 64
    for line in _lines(path):
        fields = json.loads(line)
        body = {k: v for k, v in fields.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        expected = hmac.new(KEY, prev.encode() + canonical, hashlib.sha256).hexdigest()
        assert fields["prev_hash"] == prev
        assert fields["hash"] == expected
        prev = expected


def test_record_fields_are_stored_as_given(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    pseudonym = PSN.pseudonymize("MRN-1")
    with AuditLog(path, KEY) as log:
        record = log.append(
            caller="operator", rpc="Forecast", pseudonym=pseudonym, outcome="OK", request_id="r1"
        )
    stored = json.loads(path.read_bytes())
    assert stored["caller"] == record.caller == "operator"
    assert stored["pseudonym"] == pseudonym
    assert stored["time"].endswith("Z")
    assert stored["seq"] == 1
    assert "MRN-1" not in path.read_text()


def test_log_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.jsonl"
    with AuditLog(path, KEY) as log:
        _append(log, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("outcome", "PERMISSION_DENIED"),
        ("caller", "attacker"),
        ("time", "2020-01-01T00:00:00.000000Z"),
        ("pseudonym", "psn_" + "0" * 32),
    ],
)
def test_editing_one_field_is_detected_with_its_seq(
    log_with_ten: AuditLog, field: str, value: str
) -> None:
    path = log_with_ten.path
    lines = _lines(path)
    fields = json.loads(lines[4])
    assert fields[field] != value
    fields[field] = value
    lines[4] = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    _write_lines(path, lines)
    with pytest.raises(AuditTamperedError, match="seq 5") as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 5


def test_recomputing_the_hash_without_the_key_is_detected(log_with_ten: AuditLog) -> None:
    # An attacker who edits a record and recomputes a plain SHA-256 chain still fails.
    path = log_with_ten.path
    lines = _lines(path)
    fields = json.loads(lines[2])
    assert fields["outcome"] != "PERMISSION_DENIED"
    fields["outcome"] = "PERMISSION_DENIED"
    body = {k: v for k, v in fields.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    fields["hash"] = hashlib.sha256(fields["prev_hash"].encode() + canonical).hexdigest()
    lines[2] = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    _write_lines(path, lines)
    with pytest.raises(AuditTamperedError) as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 3


def test_deleting_a_line_is_detected(log_with_ten: AuditLog) -> None:
    lines = _lines(log_with_ten.path)
    del lines[6]
    _write_lines(log_with_ten.path, lines)
    with pytest.raises(AuditTamperedError, match="seq 7") as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 7


def test_deleting_the_first_line_is_detected(log_with_ten: AuditLog) -> None:
    _write_lines(log_with_ten.path, _lines(log_with_ten.path)[1:])
    with pytest.raises(AuditTamperedError) as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 1


def test_swapping_two_lines_is_detected(log_with_ten: AuditLog) -> None:
    lines = _lines(log_with_ten.path)
    lines[2], lines[3] = lines[3], lines[2]
    _write_lines(log_with_ten.path, lines)
    with pytest.raises(AuditTamperedError) as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 3


def test_inserting_a_forged_line_is_detected(log_with_ten: AuditLog) -> None:
    lines = _lines(log_with_ten.path)
    forged = json.loads(lines[3])
    forged["request_id"] = "forged"
    lines.insert(4, json.dumps(forged).encode() + b"\n")
    _write_lines(log_with_ten.path, lines)
    with pytest.raises(AuditTamperedError) as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 5


def test_garbage_line_is_detected(log_with_ten: AuditLog) -> None:
    lines = _lines(log_with_ten.path)
    lines[8] = b"not json\n"
    _write_lines(log_with_ten.path, lines)
    with pytest.raises(AuditTamperedError) as excinfo:
        log_with_ten.verify()
    assert excinfo.value.seq == 9


def test_wrong_key_fails_verification_at_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, KEY) as log:
        _append(log, 3)
    with pytest.raises(AuditTamperedError, match="wrong key"):
        AuditLog(path, b"b" * 32)


def test_truncating_the_tail_below_a_checkpoint_is_detected(log_with_ten: AuditLog) -> None:
    log_with_ten.close()  # closing writes a signed checkpoint: 10 records, head hash
    _write_lines(log_with_ten.path, _lines(log_with_ten.path)[:-2])
    with pytest.raises(AuditTamperedError, match="checkpoint") as excinfo:
        AuditLog(log_with_ten.path, KEY, repair=False).verify()
    assert excinfo.value.seq == 9


def test_replacing_the_tail_after_a_checkpoint_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, KEY) as log:
        _append(log, 5)
    lines = _lines(path)
    with AuditLog(tmp_path / "other.jsonl", KEY) as other:
        _append(other, 6, caller="operator")
    # A different, self-consistent chain of at least as many records under the same key.
    _write_lines(path, _lines(tmp_path / "other.jsonl"))
    assert len(lines) == 5
    with pytest.raises(AuditTamperedError, match="checkpoint"):
        AuditLog(path, KEY, repair=False).verify()


def test_checkpoints_are_written_every_n_records_while_running(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, KEY)
    _append(log, CHECKPOINT_EVERY + 3)
    # Not closed (as after kill -9): the periodic checkpoint still anchors the first N.
    _write_lines(path, _lines(path)[: CHECKPOINT_EVERY - 1])
    with pytest.raises(AuditTamperedError, match="checkpoint"):
        AuditLog(path, KEY, repair=False).verify()


def test_records_after_the_last_checkpoint_can_be_cut_undetected(tmp_path: Path) -> None:
    # Documented limit (docs/security.md): only what a checkpoint covers is anchored.
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, KEY)
    _append(log, CHECKPOINT_EVERY + 3)
    _write_lines(path, _lines(path)[:-2])
    assert AuditLog(path, KEY, repair=False).verify() == CHECKPOINT_EVERY + 1


def test_a_forged_checkpoint_is_detected(log_with_ten: AuditLog) -> None:
    log_with_ten.close()
    checkpoint = checkpoint_path(log_with_ten.path)
    fields = json.loads(checkpoint.read_text())
    fields["count"] = 3
    checkpoint.write_text(json.dumps(fields))
    with pytest.raises(AuditTamperedError, match="checkpoint"):
        AuditLog(log_with_ten.path, KEY, repair=False).verify()


def test_torn_final_line_is_moved_aside_and_recorded_on_open(log_with_ten: AuditLog) -> None:
    path = log_with_ten.path
    log_with_ten.close()
    torn = b'{"caller":"orchestrator","hash":"9f86d08188'  # a power cut mid-append of seq 11
    with path.open("ab") as handle:
        handle.write(torn)
    with AuditLog(path, KEY) as reopened:
        records = reopened.records()
        _append(reopened, 1)
        assert reopened.verify() == 12
    assert [r.seq for r in records] == list(range(1, 12))
    repair = records[-1]
    assert (repair.rpc, repair.outcome, repair.pseudonym, repair.caller) == (
        "audit.recovery",
        "TORN_TAIL_MOVED_ASIDE",
        "",
        "audit",
    )
    aside = sorted(path.parent.glob(f"{path.name}.torn-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == torn
    assert stat.S_IMODE(aside[0].stat().st_mode) == 0o600


def test_a_torn_tail_of_zero_bytes_is_repaired_too(log_with_ten: AuditLog) -> None:
    # After a power cut a file may have grown without its data being written.
    path = log_with_ten.path
    log_with_ten.close()
    with path.open("ab") as handle:
        handle.write(b"\0" * 300)
    with AuditLog(path, KEY) as reopened:
        assert reopened.verify() == 11
        assert reopened.records()[-1].outcome == "TORN_TAIL_MOVED_ASIDE"


def test_truncation_found_on_open_is_recorded_in_the_chain(log_with_ten: AuditLog) -> None:
    path = log_with_ten.path
    log_with_ten.close()
    _write_lines(path, _lines(path)[:-3])
    with AuditLog(path, KEY) as reopened:
        records = reopened.records()
    assert len(records) == 8
    assert records[-1].rpc == "audit.recovery"
    assert records[-1].outcome == "RECORDS_MISSING_BELOW_CHECKPOINT"
    assert records[-1].caller == "audit"


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, KEY) as log:
        first = _append(log, 5)
    with AuditLog(path, KEY) as log:
        more = _append(log, 5)
        assert more[0].seq == 6
        assert more[0].prev_hash == first[-1].hash
        assert log.verify() == 10


def test_concurrent_appends_from_threads_form_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, KEY)
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        start.wait()
        _append(log, 50, caller=name)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.verify() == 200
    records = log.records()
    assert [r.seq for r in records] == list(range(1, 201))
    assert {r.caller for r in records} == {"t0", "t1", "t2", "t3"}
    log.close()


def test_two_handles_on_one_file_share_the_chain(tmp_path: Path) -> None:
    # Two AuditLog objects stand in for two processes: each must pick up the other's tail.
    path = tmp_path / "audit.jsonl"
    a, b = AuditLog(path, KEY), AuditLog(path, KEY)
    for _ in range(5):
        _append(a, 1, caller="a")
        _append(b, 1, caller="b")
    assert a.verify() == 10
    assert [r.caller for r in a.records()] == ["a", "b"] * 5
    a.close()
    b.close()


_CHILD = """
import sys
from pathlib import Path
from common.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), b"a" * 32)
for i in range(40):
    log.append(caller=sys.argv[2], rpc="Forecast", pseudonym="psn_" + "1" * 32,
               outcome="OK", request_id=str(i))
"""


def test_concurrent_appends_from_processes_form_one_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), f"proc{i}"],
            cwd=REPO_ROOT,
        )
        for i in range(3)
    ]
    assert [child.wait(timeout=60) for child in children] == [0, 0, 0]
    with AuditLog(path, KEY) as log:
        assert log.verify() == 120
        assert {r.caller for r in log.records()} == {"proc0", "proc1", "proc2"}


async def test_append_async_writes_a_record(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl", KEY) as log:
        records = await asyncio.gather(
            *(
                log.append_async(
                    caller="orchestrator",
                    rpc="GenerateInsights",
                    pseudonym=PSN.pseudonymize(str(i)),
                    outcome="OK",
                    request_id=str(i),
                )
                for i in range(8)
            )
        )
        assert sorted(r.seq for r in records) == list(range(1, 9))
        assert log.verify() == 8


def test_raw_patient_ids_are_refused(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl", KEY) as log:
        with pytest.raises(ValueError, match="pseudonym") as excinfo:
            log.append(
                caller="orchestrator",
                rpc="GenerateInsights",
                pseudonym="MRN-12345",
                outcome="OK",
                request_id="r",
            )
        assert "MRN-12345" not in str(excinfo.value)
        # A call rejected before pseudonymization is audited with an empty pseudonym.
        log.append(
            caller="orchestrator",
            rpc="GenerateInsights",
            pseudonym="",
            outcome="INVALID_ARGUMENT",
            request_id="r",
        )
        assert log.verify() == 1
    assert "MRN-12345" not in (tmp_path / "audit.jsonl").read_text()


@pytest.mark.parametrize("field", ["caller", "rpc", "outcome", "request_id"])
def test_empty_required_fields_are_refused(tmp_path: Path, field: str) -> None:
    values = {
        "caller": "orchestrator",
        "rpc": "GenerateInsights",
        "pseudonym": PSN.pseudonymize("x"),
        "outcome": "OK",
        "request_id": "r",
    }
    values[field] = ""
    with AuditLog(tmp_path / "audit.jsonl", KEY) as log, pytest.raises(ValueError, match=field):
        log.append(**values)


def test_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuditLog(tmp_path / "audit.jsonl", b"short")


def test_empty_log_verifies_as_zero(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl", KEY) as log:
        assert log.verify() == 0
