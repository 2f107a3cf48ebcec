"""Micro-batching: requests that arrive together share one model call.

A request that finds the batcher idle runs at once, alone: a lone caller
never waits for company that is not coming. A request that arrives while
others are in flight (a batch running, or requests already queued) marks
the batcher contended: the next batch then opens a short collection window
(``max_wait_seconds``, cut short once ``max_batch`` items are queued) before
it runs, so concurrent callers — e.g. the GenerateInsights calls of many
patients — share one model call, up to ``max_batch`` items. Everything runs
in one worker thread, so the event loop stays free. ``run`` returns one
result or exception per item, so one bad request never fails its
neighbours. A caller that gives up (deadline, cancellation) is dropped from
its batch if the batch has not started.
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
    #: Batches that opened a collection window (formed while others were in flight).
    collected: int = 0

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
    #: ``max_batch`` items are queued: a collection window has nothing left to wait for.
    full: asyncio.Event
    worker: asyncio.Task[None] | None = None
    #: A batch is in the worker thread now.
    running: bool = False
    #: A request arrived while others were in flight: the next batch collects first.
    contended: bool = False


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
            state = _LoopState(loop=loop, pending=[], ready=asyncio.Event(), full=asyncio.Event())
            state.worker = loop.create_task(self._work(state), name=f"{self._name}-batcher")
            self._state = state
        return state

    async def submit(self, item: ItemT) -> ResultT:
        state = self._state_for_loop()
        future: asyncio.Future[ResultT] = state.loop.create_future()
        if state.running or state.pending:
            state.contended = True
        state.pending.append((item, future))
        state.ready.set()
        if len(state.pending) >= self._max_batch:
            state.full.set()
        return await future

    async def _work(self, state: _LoopState[ItemT, ResultT]) -> None:
        while True:
            await state.ready.wait()
            if state.contended and len(state.pending) < self._max_batch and self._max_wait > 0:
                self.stats.collected += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.full.wait(), self._max_wait)
            batch = state.pending[: self._max_batch]
            del state.pending[: self._max_batch]
            state.contended = bool(state.pending)
            if len(state.pending) < self._max_batch:
                state.full.clear()
            if not state.pending:
                state.ready.clear()
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            self.stats.record(len(live))
            state.running = True
            try:
                results = await asyncio.to_thread(self._run, [item for item, _ in live])
            except Exception as exc:  # the whole call failed: every caller gets the error
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            finally:
                state.running = False
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
                "%s batcher: %d items in %d batches (mean %.2f, largest %d, %d collected)",
                self._name,
                stats.items,
                stats.batches,
                stats.items / stats.batches,
                stats.largest_batch,
                stats.collected,
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
