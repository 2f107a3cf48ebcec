"""Snapshot retention: prune the longitudinal store on a schedule.

With NOVAMIND_SNAPSHOT_RETENTION_DAYS set, the orchestrator deletes the
snapshots generated more than that many days ago, except each patient's
newest (``SnapshotStore.prune``), once at start and then every
NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS. A failed run is logged (the error's
class only) and retried at the next interval; the service keeps serving.
Logs carry counts only, never a pseudonym.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from twin_orchestrator.store import SnapshotStore

_LOGGER = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Snapshots generated before this time are past retention."""
    return now - timedelta(days=retention_days)


class SnapshotPruner:
    """The background retention task of one orchestrator process."""

    def __init__(
        self,
        store: SnapshotStore,
        retention_days: int,
        interval_seconds: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days: must be at least 1 (0 means no pruner at all)")
        self._store = store
        self._retention_days = retention_days
        self._interval = interval_seconds
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int | None:
        """One pruning pass; the number of snapshots removed, or None if the store failed."""
        cutoff = retention_cutoff(self._clock(), self._retention_days)
        try:
            removed = await self._store.prune(cutoff)
        except Exception as exc:  # any store failure: the next interval retries
            _LOGGER.error(
                "snapshot retention run failed: %s; retrying in %g s",
                type(exc).__name__,
                self._interval,
            )
            return None
        # No cutoff date in the text: the PHI filter redacts dates (and integers of six
        # or more digits); the structured fields carry the figures intact.
        _LOGGER.info(
            "snapshot retention removed %d snapshot(s) older than %d day(s)",
            removed,
            self._retention_days,
            extra={"removed": removed, "retention_days": self._retention_days},
        )
        return removed

    async def _run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        """Start the periodic task (its first run is now)."""
        if self._task is None:
            _LOGGER.info(
                "snapshot retention on: snapshots older than %d day(s) are deleted every %g s, "
                "each patient's newest kept",
                self._retention_days,
                self._interval,
                extra={"retention_days": self._retention_days},
            )
            self._task = asyncio.create_task(self._run(), name="snapshot-retention")

    async def stop(self) -> None:
        """Cancel the task and wait for it; a batch in flight finishes or rolls back."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
