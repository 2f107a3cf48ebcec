"""Latency/throughput measurement of a real gRPC call, shared by the benchmarks.

Calls run through a real client channel against a real server; results are
medians and percentiles over many calls, never single timings.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    calls: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_per_s: float

    def row(self) -> str:
        return (
            f"| {self.concurrency} | {self.calls} | {self.errors} | {self.p50_ms:.1f} | "
            f"{self.p90_ms:.1f} | {self.p99_ms:.1f} | {self.throughput_per_s:.1f} |"
        )


TABLE_HEADER = (
    "| concurrency | calls | errors | p50 ms | p90 ms | p99 ms | calls/s |\n"
    "|---|---|---|---|---|---|---|"
)


async def measure(
    call: Callable[[], Awaitable[object]], *, concurrency: int, calls: int, warmup: int = 3
) -> LoadResult:
    """Run ``calls`` calls with ``concurrency`` callers in flight; time each call."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    errors = 0
    remaining = calls

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await call()
            except Exception:  # a failed call is counted, not timed
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    wall = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _load_result(concurrency, calls, errors, latencies, time.perf_counter() - wall)


async def measure_for(
    call: Callable[[], Awaitable[object]],
    *,
    concurrency: int,
    seconds: float,
    warmup: int = 3,
    min_calls: int = 5,
) -> LoadResult:
    """Like ``measure``, for a duration: callers start calls until ``seconds`` have passed.

    At least ``min_calls`` calls run, so a slow call still gives a percentile.
    """
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    errors = 0
    started_calls = 0
    wall = time.perf_counter()
    stop_at = wall + seconds

    async def worker() -> None:
        nonlocal errors, started_calls
        while time.perf_counter() < stop_at or started_calls < min_calls:
            started_calls += 1
            started = time.perf_counter()
            try:
                await call()
            except Exception:  # a failed call is counted, not timed
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _load_result(concurrency, started_calls, errors, latencies, time.perf_counter() - wall)


def _load_result(
    concurrency: int, calls: int, errors: int, latencies: list[float], elapsed: float
) -> LoadResult:
    """Percentiles of the timed (successful) calls and their rate over the whole run."""
    values = np.array(latencies) if latencies else np.array([float("nan")])
    return LoadResult(
        concurrency=concurrency,
        calls=calls,
        errors=errors,
        p50_ms=float(statistics.median(values)),
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        throughput_per_s=len(latencies) / elapsed if elapsed > 0 else float("nan"),
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; never one of the default ports)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def machine_line() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
