"""The retention task on a real SQLite store: prunes on start and on its interval,
survives a failing store (logs the error class, retries), logs counts and no
pseudonym, stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from common.pseudonym import Pseudonymizer
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import builders as b
from twin_orchestrator.retention import SnapshotPruner, retention_cutoff
from twin_orchestrator.sqlite_store import SqliteSnapshotStore
from twin_orchestrator.store import PruneKey, StoreError

KEY = bytes(range(32))
NOW = datetime(2026, 9, 1, tzinfo=UTC)
PSEUDONYMS = [Pseudonymizer(b"p" * 32).pseudonymize(f"MRN-{i}") for i in range(3)]


class FlakyStore(SqliteSnapshotStore):
    """A real SQLite store whose first ``failures`` prune batches fail."""

    def __init__(self, *args, failures: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    async def _prune_batch(
        self, cutoff: datetime, after: PruneKey | None, limit: int
    ) -> tuple[int, PruneKey | None]:
        if self.failures:
            self.failures -= 1
            raise StoreError("PostgreSQL store prune failed: OperationalError")
        return await super()._prune_batch(cutoff, after, limit)


def _seed(store: SqliteSnapshotStore, days_ago: list[int]) -> None:
    for psn in PSEUDONYMS:
        for days in days_ago:
            when = NOW - timedelta(days=days)
            store.save_sync(psn, when, twin_pb2.PatientData(), b.empty_response())


async def _until(condition) -> None:
    deadline = time.monotonic() + 30.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _logged_removed(caplog) -> int:
    return sum(getattr(r, "removed", 0) for r in caplog.records)


def test_cutoff_is_whole_days_back():
    assert retention_cutoff(NOW, 30) == datetime(2026, 8, 2, tzinfo=UTC)


def test_zero_days_is_no_pruner(tmp_path):
    store = SqliteSnapshotStore(tmp_path / "twin.sqlite", KEY)
    with pytest.raises(ValueError, match="retention_days"):
        SnapshotPruner(store, 0, 60.0)
    store.close_sync()


async def test_a_store_error_is_logged_and_the_next_run_prunes(tmp_path, caplog):
    store = FlakyStore(tmp_path / "twin.sqlite", KEY, failures=1)
    _seed(store, [60, 45, 1])
    pruner = SnapshotPruner(store, 30, 3600.0, clock=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="twin_orchestrator.retention"):
        assert await pruner.run_once() is None
        assert store.count_sync() == 9
        assert await pruner.run_once() == 6
    assert store.count_sync() == 3
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == [
        "snapshot retention run failed: StoreError; retrying in 3600 s"
    ]
    done = [r for r in caplog.records if getattr(r, "removed", None) is not None]
    assert [(r.removed, r.retention_days) for r in done] == [(6, 30)]
    await store.close()


async def test_background_task_prunes_at_start_and_each_interval_and_stops(tmp_path, caplog):
    store = FlakyStore(tmp_path / "twin.sqlite", KEY, failures=1)
    _seed(store, [60, 45, 1])
    pruner = SnapshotPruner(store, 30, 0.05, clock=lambda: NOW)
    with caplog.at_level(logging.INFO):
        await pruner.start()
        # The first run fails; the service would keep serving; a later run prunes.
        await _until(lambda: store.count_sync() == 3)
        _seed(store, [40])  # older than retention, but not each patient's newest...
        _seed(store, [50])  # ...and these neither: the 1-day rows are the newest
        # The rows are gone once the store's thread commits; the run logs its count a
        # moment later, back on the event loop: wait for both before stopping the task.
        await _until(lambda: store.count_sync() == 3 and _logged_removed(caplog) == 6 + 6)
        await pruner.stop()
    assert store.failures == 0
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(
        [r.__dict__ for r in caplog.records]
    )
    for psn in PSEUDONYMS:
        assert psn not in text
    assert "snapshot retention run failed: StoreError" in text
    removed = _logged_removed(caplog)
    assert removed == 6 + 6
    await pruner.stop()  # idempotent
    await store.close()
