"""The longitudinal store: encrypted, keyed by pseudonym, tamper-evident per row."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from common.pseudonym import Pseudonymizer
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import builders as b
from twin_orchestrator.store import SnapshotStore, StoreError

PATIENT_ID = "MRN-7734120"
KEY = bytes(range(32))


def _data() -> twin_pb2.PatientData:
    data = twin_pb2.PatientData(symptoms=[b.phq9(23.0), b.phq9(19.0, days_ago=7)])
    data.current_medications.add(name="paroxetine", daily_dose_mg=20)
    data.genotype.diplotypes.add(gene="CYP2D6", diplotype="*4/*41")
    return data


def test_round_trip_in_order_and_since(tmp_path):
    store = SnapshotStore(tmp_path / "twin.sqlite", KEY)
    psn = Pseudonymizer(b"p" * 32).pseudonymize(PATIENT_ID)
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    ids = [
        store.save_sync(psn, t0 + timedelta(days=d), _data(), b.empty_response()) for d in (0, 14)
    ]
    other = store.save_sync("psn_" + "f" * 32, t0, _data(), b.empty_response())
    history = store.history_sync(psn)
    assert [s.snapshot_id for s in history] == ids and other not in ids
    assert history[0].data == _data()
    assert [s.snapshot_id for s in store.history_sync(psn, since=t0 + timedelta(days=1))] == ids[1:]
    store.close()


def test_file_holds_no_patient_id_or_clinical_value_in_clear(tmp_path):
    path = tmp_path / "twin.sqlite"
    store = SnapshotStore(path, KEY)
    psn = Pseudonymizer(b"p" * 32).pseudonymize(PATIENT_ID)
    data = _data()
    response = b.empty_response()
    response.risk_drivers.append("latest PHQ-9 23 (severe)")
    store.save_sync(psn, datetime(2026, 5, 1, tzinfo=UTC), data, response)
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # db, -wal, -shm
    for needle in (PATIENT_ID, "7734120", "paroxetine", "CYP2D6", "*4/*41", "PHQ-9 23"):
        assert needle.encode() not in raw, needle
    # The serialized clinical payload itself does not appear either.
    assert data.SerializeToString() not in raw
    assert psn.encode() in raw  # rows are keyed by the pseudonym


def test_wal_mode_and_full_sync(tmp_path):
    store = SnapshotStore(tmp_path / "twin.sqlite", KEY)
    conn = sqlite3.connect(tmp_path / "twin.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store.close()


def test_ciphertext_moved_to_another_patient_fails(tmp_path):
    path = tmp_path / "twin.sqlite"
    store = SnapshotStore(path, KEY)
    store.save_sync(
        "psn_" + "a" * 32, datetime(2026, 5, 1, tzinfo=UTC), _data(), b.empty_response()
    )
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE snapshots SET pseudonym = ?", ("psn_" + "b" * 32,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="failed authentication"):
        SnapshotStore(path, KEY).history_sync("psn_" + "b" * 32)


def test_wrong_key_cannot_read(tmp_path):
    path = tmp_path / "twin.sqlite"
    SnapshotStore(path, KEY).save_sync(
        "psn_" + "a" * 32, datetime(2026, 5, 1, tzinfo=UTC), _data(), b.empty_response()
    )
    with pytest.raises(StoreError):
        SnapshotStore(path, bytes(32)).history_sync("psn_" + "a" * 32)


def test_short_key_refused(tmp_path):
    with pytest.raises(ValueError, match="32 bytes"):
        SnapshotStore(tmp_path / "x.sqlite", b"short")


__all__ = ["common_pb2"]
