"""Micro-batching: requests that arrive together share one model call.

The first request of a batch opens a short collection window (a few ms);
everything submitted before it closes, up to ``max_batch`` items, goes to
``run`` in one worker thread, so the event loop stays free. While a batch is
running, new requests queue up and form the next batch: under load the batch
size grows by itself, with no waiting at all when the service is idle beyond
the window. ``run`` returns one result or exception per item, so one bad
request never fails its neighbours. A caller that gives up (deadline,
cancellation) is dropped from its batch if the batch has not started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_LOGGER = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass
class BatchStats:
    """Counters of what the batcher did; batch sizes are the number of live items run."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)

    def record(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest_batch = max(self.largest_batch, size)
        self.batch_sizes[size] += 1


@dataclass
class _LoopState(Generic[ItemT, ResultT]):
    loop: asyncio.AbstractEventLoop
    pending: list[tuple[ItemT, asyncio.Future[ResultT]]]
    ready: asyncio.Event
    worker: asyncio.Task[None] | None = None


class MicroBatcher(Generic[ItemT, ResultT]):
    def __init__(
        self,
        run: Callable[[Sequence[ItemT]], Sequence[ResultT | BaseException]],
        *,
        max_batch: int = 32,
        max_wait_seconds: float = 0.005,
        name: str = "batch",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run = run
        self._max_batch = max_batch
        self._max_wait = max(0.0, max_wait_seconds)
        self._name = name
        self._state: _LoopState[ItemT, ResultT] | None = None
        self.stats = BatchStats()

    def _state_for_loop(self) -> _LoopState[ItemT, ResultT]:
        loop = asyncio.get_running_loop()
        state = self._state
        # A batcher outlives event loops in tests (one loop per test): start afresh per loop.
        if state is None or state.loop is not loop or state.worker is None or state.worker.done():
            state = _LoopState(loop=loop, pending=[], ready=asyncio.Event())
            state.worker = loop.create_task(self._work(state), name=f"{self._name}-batcher")
            self._state = state
        return state

    async def submit(self, item: ItemT) -> ResultT:
        state = self._state_for_loop()
        future: asyncio.Future[ResultT] = state.loop.create_future()
        state.pending.append((item, future))
        state.ready.set()
        return await future

    async def _work(self, state: _LoopState[ItemT, ResultT]) -> None:
        while True:
            await state.ready.wait()
            if len(state.pending) < self._max_batch and self._max_wait > 0:
                await asyncio.sleep(self._max_wait)
            batch = state.pending[: self._max_batch]
            del state.pending[: self._max_batch]
            if not state.pending:
                state.ready.clear()
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            self.stats.record(len(live))
            try:
                results = await asyncio.to_thread(self._run, [item for item, _ in live])
            except Exception as exc:  # the whole call failed: every caller gets the error
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(live, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        stats = self.stats
        if stats.batches:
            # Counts only (no request content): how well requests merged over the process's life.
            _LOGGER.info(
                "%s batcher: %d items in %d batches (mean %.2f, largest %d)",
                self._name,
                stats.items,
                stats.batches,
                stats.items / stats.batches,
                stats.largest_batch,
            )
        state, self._state = self._state, None
        if state is None or state.worker is None:
            return
        if state.loop.is_closed() or state.loop is not asyncio.get_running_loop():
            return  # its loop is gone; the worker went with it
        state.worker.cancel()
        for _, future in state.pending:
            if not future.done():
                future.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await state.worker
