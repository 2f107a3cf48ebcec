"""Requests that arrive together are answered by one model call."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from forecasting_svc.batching import MicroBatcher
from forecasting_svc.instruments import Instrument
from tests.unit.forecasting.requests import daily, request


class FirstBatchHolds:
    """A model call that records batch sizes and holds the first batch until released."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.release = threading.Event()
        self.started = asyncio.Event()
        self.sizes: list[int] = []

    def run(self, items):
        self.sizes.append(len(items))
        if len(self.sizes) == 1:
            self.loop.call_soon_threadsafe(self.started.set)
            self.release.wait(5)
        return list(items)


async def test_concurrent_items_share_a_batch_and_results_go_to_their_callers():
    calls: list[list[int]] = []

    def run(items):
        calls.append(list(items))
        return [item * 10 for item in items]

    batcher = MicroBatcher(run, max_batch=32, max_wait_seconds=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert results == [i * 10 for i in range(8)]
    assert batcher.stats.largest_batch == 8
    assert batcher.stats.items == 8
    assert sum(len(c) for c in calls) == 8
    await batcher.close()


async def test_max_batch_is_respected_and_errors_stay_with_their_item():
    def run(items):
        return [ValueError("bad item") if item == 3 else item for item in items]

    batcher = MicroBatcher(run, max_batch=4, max_wait_seconds=0.01)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    assert isinstance(outcomes[3], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 3] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert batcher.stats.largest_batch <= 4
    assert batcher.stats.batches >= 3
    await batcher.close()


async def test_items_arriving_while_a_batch_runs_form_the_next_batch():
    held = FirstBatchHolds(asyncio.get_running_loop())
    run, started, release, sizes = held.run, held.started, held.release, held.sizes

    batcher = MicroBatcher(run, max_batch=32, max_wait_seconds=0.0)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.wait_for(started.wait(), 5)
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1, 2, 3, 4, 5]
    assert sizes == [1, 5]
    await batcher.close()


async def test_a_request_to_an_idle_batcher_runs_at_once_without_a_window():
    # An hour-long window: a lone caller that waited for it would never be answered.
    batcher = MicroBatcher(lambda items: list(items), max_batch=32, max_wait_seconds=3600)
    for i in range(3):  # one caller, one request after the other
        assert await asyncio.wait_for(batcher.submit(i), timeout=30) == i
    assert batcher.stats.batches == 3
    assert batcher.stats.collected == 0
    await batcher.close()


async def test_requests_arriving_while_others_are_in_flight_collect_into_one_batch():
    held = FirstBatchHolds(asyncio.get_running_loop())
    run, started, release, sizes = held.run, held.started, held.release, held.sizes

    # An hour-long window that only a full batch (4 items) cuts short: no timing involved.
    batcher = MicroBatcher(run, max_batch=4, max_wait_seconds=3600)
    first = asyncio.ensure_future(batcher.submit(0))  # idle: runs at once
    await asyncio.wait_for(started.wait(), 5)
    during = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 0
    # The first batch is done; the contended next one is still collecting.
    after = [asyncio.ensure_future(batcher.submit(i)) for i in (3, 4)]
    results = await asyncio.wait_for(asyncio.gather(*during, *after), timeout=30)
    assert results == [1, 2, 3, 4]
    assert sizes == [1, 4]
    assert batcher.stats.collected == 1
    await batcher.close()


async def test_a_failing_model_call_fails_only_that_batch():
    def run(items):
        raise RuntimeError("model exploded")

    batcher = MicroBatcher(run, max_wait_seconds=0.0)
    with pytest.raises(RuntimeError):
        await batcher.submit(1)
    await batcher.close()


async def test_eight_concurrent_forecasts_are_batched(service):
    rng = np.random.default_rng(3)
    requests = [
        request(daily(Instrument.PHQ9, np.round(10 + rng.normal(0, 2, 40)).clip(0, 27)))
        for _ in range(8)
    ]
    before = service.batcher.stats.largest_batch
    results = await asyncio.gather(*(service.forecast(r) for r in requests))
    assert len(results) == 8
    assert before == 0
    assert service.batcher.stats.largest_batch > 1
    assert service.batcher.stats.items == 8
    # Each caller got its own forecast back (different inputs, different medians).
    medians = {round(r.forecasts[0].points[0].point, 6) for r in results}
    assert len(medians) > 1
