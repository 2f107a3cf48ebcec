"""Capacity: CPU per GenerateInsights call in each service, and the replicas a panel needs.

`python -m bench capacity [--callers 16] [--duration 30] [--days 180]` starts the
four services (one worker process each) on free loopback ports over mTLS, trains
the default models if missing, runs GenerateInsights from ``--callers``
concurrent callers for ``--duration`` seconds, and reads each service's CPU
time (user + system of its whole process tree, from /proc) before and after.

CPU per call = CPU the service used / calls answered. The services are
CPU-bound under load, so a replica with ``c`` cores of its own serves at most
``c`` / CPU-per-call calls/s, ``c`` being the service's CPU limit in the Helm
chart's values; the sizing table applies docs/deploy.md's rule (70 % target
utilisation, at least 2 replicas) to that bound. Writes
docs/benchmarks/capacity.md (or --output).

Run alone on the machine: other processes do not change a service's CPU time
much, but they slow the calls and so lower the load the services see.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import LoadResult, free_port, machine_line
from bench.orchestrator import (
    REPO_ROOT,
    SERVICE_ORDER,
    bench_patient,
    insights_load,
    start_mesh,
)
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.demo import train_missing_models

DOC = REPO_ROOT / "docs" / "benchmarks" / "capacity.md"
VALUES = REPO_ROOT / "k8s" / "novamind" / "values.yaml"
#: Target utilisation of a replica (the HorizontalPodAutoscaler's) and the floor for availability.
UTILISATION = 0.7
MIN_REPLICAS = 2
#: A nightly re-scoring window.
WINDOW_SECONDS = 6 * 3600
PANELS = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Measurement:
    result: LoadResult
    #: CPU seconds each service's process tree used during the measurement.
    cpu_seconds: dict[str, float]
    load: float


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the worker processes of a service)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while being read
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in _descendants(pid):
        try:
            # Fields after the command name: state is index 0, utime 11, stime 12.
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def measure(callers: int, seconds: float, days: int, work: Path) -> Measurement:
    request = twin_pb2.GenerateInsightsRequest(patient_id="BENCH-0001", data=bench_patient(days))
    ports = {name: free_port() for name in SERVICE_ORDER}
    mesh = start_mesh(1, ports, work, REPO_ROOT / "var" / "logs")
    try:
        # Warm-up calls (numba, first-call allocations) stay out of the measurement.
        asyncio.run(insights_load(ports["orchestrator"], request, 1, 3.0))
        pids = dict(zip(SERVICE_ORDER, (p.process.pid for p in mesh), strict=True))
        before = {name: process_tree_cpu_seconds(pid) for name, pid in pids.items()}
        result = asyncio.run(insights_load(ports["orchestrator"], request, callers, seconds))
        after = {name: process_tree_cpu_seconds(pid) for name, pid in pids.items()}
        load = os.getloadavg()[0]
    finally:
        for proc in reversed(mesh):
            proc.stop()
    return Measurement(result, {n: after[n] - before[n] for n in SERVICE_ORDER}, load)


def replica_cores(values: Path = VALUES) -> dict[str, float]:
    """Each service's CPU limit in the chart's default values (cores)."""
    import yaml

    raw = yaml.safe_load(values.read_text())
    cores: dict[str, float] = {}
    for name in SERVICE_ORDER:
        limit = str(raw[name]["resources"]["limits"]["cpu"])
        cores[name] = float(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    return cores


def replicas(rate: float, per_replica: float) -> int:
    return max(MIN_REPLICAS, math.ceil(rate / (per_replica * UTILISATION)))


def write(m: Measurement, callers: int, seconds: float, days: int, command: str) -> str:
    calls = m.result.calls - m.result.errors
    per_call_ms = {n: 1000 * m.cpu_seconds[n] / calls for n in SERVICE_ORDER}
    cores = replica_cores()
    bound = {n: cores[n] * 1000 / per_call_ms[n] for n in SERVICE_ORDER}
    total_ms = sum(per_call_ms.values())
    lines = [
        "# Capacity benchmark",
        "",
        f"Command: `{command}` (one run wrote this file).",
        f"Machine: {machine_line()}; load average (1 min, other processes included) at the "
        f"end: {m.load:.1f}.",
        f"Patient: {days} days of history; GenerateInsights with all three sections, 30-day "
        f"horizon, from {callers} concurrent callers for {seconds:g} s, after 3 s of warm-up "
        "at one caller. One worker process per service, all four on this machine, mTLS.",
        "",
        f"GenerateInsights: {m.result.calls} calls, {m.result.errors} errors, "
        f"{m.result.throughput_per_s:.1f} calls/s, p50 {m.result.p50_ms:.0f} ms.",
        "",
        "## CPU per call",
        "",
        "CPU time (user + system) of each service's process tree during the measurement, "
        "divided by the calls answered (calls still in flight at the end add a few per cent "
        "of CPU to no call: the figures lean high). A replica with the CPU limit of the Helm "
        "chart's values (k8s/novamind/values.yaml) serves at most limit / CPU per call "
        "(the services are CPU-bound under load).",
        "",
        "| service | CPU ms per call | chart CPU limit (cores) | bound, calls/s per replica |",
        "|---|---|---|---|",
        *(f"| {n} | {per_call_ms[n]:.1f} | {cores[n]:g} | {bound[n]:.0f} |" for n in SERVICE_ORDER),
        f"| all four on one 2-core node | {total_ms:.1f} | 2 | {2000 / total_ms:.1f} |",
        "",
        "## Replicas for a nightly panel",
        "",
        f"Rate = patients / {WINDOW_SECONDS // 3600} h; replicas = max({MIN_REPLICAS}, "
        f"ceil(rate / (bound x {UTILISATION:g}))). The orchestrator also needs PostgreSQL "
        "beyond one replica (docs/deploy.md).",
        "",
        "| patients | rate (calls/s) | " + " | ".join(SERVICE_ORDER) + " |",
        "|---|---|" + "---|" * len(SERVICE_ORDER),
    ]
    for patients in PANELS:
        rate = patients / WINDOW_SECONDS
        lines.append(
            f"| {patients:,} | {rate:.2f} | "
            + " | ".join(str(replicas(rate, bound[n])) for n in SERVICE_ORDER)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench capacity")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--quick", action="store_true", help="short smoke run (not written)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 4.0)
    train_missing_models()
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        m = measure(args.callers, args.duration, args.days, Path(tmp))
    command = "python -m bench capacity" + (" " + " ".join(argv) if argv else "")
    text = write(m, args.callers, args.duration, args.days, command)
    print(text)
    if not args.quick:
        args.output.write_text(text)
        print(f"written to {args.output}")
    return 0 if m.result.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
