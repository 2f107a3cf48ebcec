"""Latency/throughput measurement of a real gRPC call, shared by the benchmarks.

Calls run through a real client channel against a real server; results are
medians and percentiles over many calls, never single timings.
"""

from __future__ import annotations

import asyncio
import platform
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
    elapsed = time.perf_counter() - wall
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


def machine_line() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
