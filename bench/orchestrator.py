"""GenerateInsights latency and throughput against the real mesh, for 1, 2 and N workers.

`python -m bench orchestrator [options]` (part of `make bench`): trains the
default models if missing, then in one run measures
  - the biometric section in process (AnalyzePatient's conversion, analysis
    and response building, no transport): the numeric cost of the section;
  - a bare 3-way grpc.aio fan-out to echo servers on the same bootstrap, mTLS
    and interceptors: the transport floor of the orchestrator's pattern;
  - for each NOVAMIND_WORKERS value and each caller count: the four services
    started afresh as processes on free loopback ports (never the default
    ports), GenerateInsights (p50/p90/p99, calls/s, errors), the forecasting
    batcher's mean batch size in that run (from the services' shutdown log
    line; a fresh mesh per row, so each row's batches are its own) and the
    load average when the row was measured;
and writes docs/benchmarks/orchestrator.md (or --output).

Options: --workers 1,2,N (N = the CPU quota), --callers 1,16, --duration
seconds per measurement, --days of patient history, --ports for the four
services (forecasting,biometric,pharmacogenomics,orchestrator; default free
ports), --quick for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.harness import TABLE_HEADER, LoadResult, free_port, machine_line, measure_for
from biometric_svc import server as biometric_transport
from biometric_svc.service import BiometricService
from common.artifacts import ArtifactStore
from common.channels import mesh_channel
from common.cpu_quota import default_workers
from common.launcher import MESH_SERVICES, ServiceProcess, clean_env, start_service, wait_healthy
from common.server import ServiceDefinition, create_server
from common.settings import Settings
from common.synthetic import CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator.demo import train_missing_models
from twin_orchestrator.patient_bundle import patient_data

REPO_ROOT = Path(__file__).resolve().parents[1]
TLS_DIR = REPO_ROOT / "var" / "certs"
MODEL_DIR = REPO_ROOT / "var" / "models"
KEY_DIR = REPO_ROOT / "var" / "keys"
DOC = REPO_ROOT / "docs" / "benchmarks" / "orchestrator.md"
QUICK_DOC = REPO_ROOT / "var" / "bench" / "orchestrator-quick.md"
ECHO_SERVICE = "novamind.bench.v1.Echo"
PSEUDONYM = "psn_" + "0" * 32
#: GenerateInsights calls/s at the top caller count must reach this share of the bare fan-out's.
TARGET_RATIO = 0.015
#: The service names of the launcher, in --ports order.
SERVICE_ORDER = ("forecasting", "biometric", "pharmacogenomics", "orchestrator")
_BATCH_LINE = re.compile(r"forecast batcher: (\d+) items in (\d+) batches")


@dataclass(frozen=True)
class Options:
    workers: tuple[int, ...]
    callers: tuple[int, ...]
    seconds: float
    days: int
    ports: tuple[int, ...] | None
    output: Path
    command: str


@dataclass(frozen=True)
class Row:
    """GenerateInsights at one caller count on a fresh mesh."""

    workers: int
    result: LoadResult
    batch_items: int
    batches: int
    #: 1-minute load average at the end of the measurement (other processes included).
    load: float


def _echo_definition() -> ServiceDefinition:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    def register(server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Echo": handler}),)
        )

    return ServiceDefinition(service_names=(ECHO_SERVICE,), register=register, audited=False)


async def echo_fanout(
    payload: bytes, callers: Sequence[int], seconds: float
) -> dict[int, LoadResult]:
    """Three echo servers on the mesh bootstrap (mTLS, interceptors) and a 3-way fan-out."""
    settings = Settings.from_env("forecasting", env={})
    servers = []
    for _ in range(3):
        mesh = create_server(
            dataclasses.replace(settings, host="127.0.0.1", port=0, audit_log=Path(os.devnull)),
            _echo_definition(),
            health_port=-1,
        )
        await mesh.start()
        servers.append(mesh)
    channels = [
        mesh_channel(f"localhost:{m.port}", tls_dir=TLS_DIR, identity="orchestrator")
        for m in servers
    ]
    calls = [c.unary_unary(f"/{ECHO_SERVICE}/Echo") for c in channels]

    async def fan_out() -> None:
        await asyncio.gather(*(call(payload, timeout=10) for call in calls))

    try:
        return {n: await measure_for(fan_out, concurrency=n, seconds=seconds) for n in callers}
    finally:
        for channel in channels:
            await channel.close()
        for mesh in servers:
            await mesh.stop(0)


def biometric_in_process(
    data: twin_pb2.PatientData, repeats: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of AnalyzePatient without transport: proto -> domain -> analysis -> proto.

    The servicer is called directly (validation, the worker-thread hop and the
    response building included), so only gRPC and TLS are left out. Returns
    wall and CPU milliseconds per call: on a shared machine the CPU time is
    the cost of the section, the wall time includes waiting for a core.
    """
    import torch

    from biometric_svc.bootstrap import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
    settings = Settings.from_env("biometric", env={"NOVAMIND_KEY_DIR": str(KEY_DIR)})
    service = BiometricService.from_store(ArtifactStore(MODEL_DIR, settings.secret("artifact")))
    servicer = biometric_transport.BiometricCorrelationServicer(service)
    request = biometric_pb2.AnalyzePatientRequest(
        patient_pseudonym=PSEUDONYM, biometrics=data.biometrics, indicators=data.symptoms
    )

    async def timed() -> tuple[list[float], list[float]]:
        async def once() -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            await servicer.AnalyzePatient(request, None)  # type: ignore[arg-type]
            return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000

        for _ in range(3):
            await once()
        pairs = [await once() for _ in range(repeats)]
        return [wall for wall, _ in pairs], [cpu for _, cpu in pairs]

    return asyncio.run(timed())


def bench_patient(days: int) -> twin_pb2.PatientData:
    """The benchmark patient: the first of a fixed synthetic cohort, ``days`` of history."""
    cohort = generate_cohort(CohortConfig(n_patients=50, n_days=max(200, days + 20), seed=11))
    return patient_data(cohort, str(cohort.patients.patient_id.iloc[0]), history_days=days)


def start_mesh(workers: int, ports: dict[str, int], work: Path, logs: Path) -> list[ServiceProcess]:
    started: list[ServiceProcess] = []
    addresses = {f"NOVAMIND_{n.upper()}_ADDR": f"localhost:{ports[n]}" for n in SERVICE_ORDER[:3]}
    try:
        for module, name, proto_service in MESH_SERVICES:
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1",
                NOVAMIND_PORT=str(ports[name]),
                NOVAMIND_HEALTH_PORT=str(free_port()),
                NOVAMIND_WORKERS=str(workers),
                NOVAMIND_TLS_DIR=str(TLS_DIR),
                NOVAMIND_MODEL_DIR=str(MODEL_DIR),
                NOVAMIND_KEY_DIR=str(KEY_DIR),
                NOVAMIND_AUDIT_LOG=str(work / f"audit-{name}.jsonl"),
                NOVAMIND_STORE_PATH=str(work / "store.sqlite"),
                NOVAMIND_LOG_LEVEL="INFO" if name == "forecasting" else "WARNING",
                PYTHONPATH=str(REPO_ROOT),
                **addresses,
            )
            proc = start_service(module, env, logs / f"bench-{name}-w{workers}.log")
            started.append(proc)
            wait_healthy(proc.health_port, proto_service, process=proc.process, timeout=180)
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        raise
    return started


def _batch_counts(log: Path) -> tuple[int, int]:
    """(items, batches) the forecasting processes logged when they stopped."""
    items = batches = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        found = _BATCH_LINE.search(message)
        if found:
            items += int(found.group(1))
            batches += int(found.group(2))
    return items, batches


async def insights_load(
    port: int, request: twin_pb2.GenerateInsightsRequest, callers: int, seconds: float
) -> LoadResult:
    async with mesh_channel(f"localhost:{port}", tls_dir=TLS_DIR, identity="operator") as channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)

        async def insights() -> None:
            await stub.GenerateInsights(request, timeout=60)

        return await measure_for(insights, concurrency=callers, seconds=seconds)


def run_row(
    workers: int,
    callers: int,
    request: twin_pb2.GenerateInsightsRequest,
    options: Options,
    work: Path,
) -> Row:
    """A fresh mesh for one (workers, callers) row: its batch counts are this row's alone."""
    ports = (
        dict(zip(SERVICE_ORDER, options.ports, strict=True))
        if options.ports
        else {name: free_port() for name in SERVICE_ORDER}
    )
    logs = REPO_ROOT / "var" / "logs"
    mesh = start_mesh(workers, ports, work, logs)
    try:
        result = asyncio.run(
            insights_load(ports["orchestrator"], request, callers, options.seconds)
        )
        load = os.getloadavg()[0]
    finally:
        for proc in reversed(mesh):
            proc.stop()
    items, batches = _batch_counts(logs / f"bench-forecasting-w{workers}.log")
    return Row(workers, result, items, batches, load)


def write(
    options: Options,
    data: twin_pb2.PatientData,
    section: tuple[list[float], list[float], float],
    fanout: dict[int, LoadResult],
    fanout_load: float,
    rows: list[Row],
) -> str:
    top = max(options.callers)
    first = min(options.callers)
    quota = default_workers()
    section_ms, section_cpu_ms, section_load = section
    lines = [
        "# Orchestrator benchmark",
        "",
        f"Command: `{options.command}` (one run wrote this file).",
        f"Machine: {machine_line()}; CPU quota of this container: {quota} "
        f"(N = {quota} workers). The load average (1 min, other processes included) is "
        "given beside each figure: figures taken on a busy machine are lower bounds.",
        f"Patient: {options.days} days of history ({len(data.symptoms)} symptom scores, "
        f"{len(data.biometrics)} biometric samples), genotype, medications; forecast horizon "
        "30 days. All four services as separate processes on free loopback ports over mTLS; "
        f"each measurement runs {options.seconds:g} s.",
        "",
        "## Biometric section in process",
        "",
        "AnalyzePatient without transport (protobuf to arrays, one-pass analysis with the "
        "early warning, responses built), "
        f"{len(section_ms)} calls: wall p50 {statistics.median(section_ms):.1f} ms "
        f"(min {min(section_ms):.1f} ms), CPU p50 {statistics.median(section_cpu_ms):.1f} ms "
        "(process CPU time: what the section costs when a core is free); "
        f"load average {section_load:.1f}.",
        "",
        "## Bare 3-way grpc.aio fan-out (transport floor, same payload)",
        "",
        f"Load average at the end: {fanout_load:.1f}.",
        "",
        TABLE_HEADER,
        *(r.row() for r in fanout.values()),
        "",
        "## GenerateInsights by worker processes per service",
        "",
        "Each row is a fresh mesh: the forecast mean batch is the number of ForecastSymptoms "
        "calls per model call in that row alone (its 3 sequential warm-up calls included).",
        "",
        "| workers | callers | calls | errors | p50 ms | p90 ms | p99 ms | calls/s | "
        f"vs fan-out at {top} | forecast mean batch | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.result
        mean_batch = f"{row.batch_items / row.batches:.2f}" if row.batches else "n/a"
        label = f"{row.workers} (N)" if row.workers == quota else str(row.workers)
        ratio = r.throughput_per_s / fanout[top].throughput_per_s if r.concurrency == top else None
        lines.append(
            f"| {label} | {r.concurrency} | {r.calls} | {r.errors} | {r.p50_ms:.1f} | "
            f"{r.p90_ms:.1f} | {r.p99_ms:.1f} | {r.throughput_per_s:.1f} | "
            + (f"{ratio:.4f}" if ratio is not None else "")
            + f" | {mean_batch} | {row.load:.1f} |"
        )
    at_top = [row for row in rows if row.result.concurrency == top]
    best = max(at_top, key=lambda row: row.result.throughput_per_s)
    best_ratio = best.result.throughput_per_s / fanout[top].throughput_per_s
    single = min(
        (row for row in rows if row.result.concurrency == first), key=lambda row: row.result.p50_ms
    )
    errors = sum(row.result.errors for row in rows)
    lines += [
        "",
        "## Against the targets",
        "",
        f"- GenerateInsights at {top} callers: {best.result.throughput_per_s:.1f} calls/s "
        f"with {best.workers} workers = {best_ratio:.4f} x the bare fan-out "
        f"({fanout[top].throughput_per_s:.0f} calls/s); target >= {TARGET_RATIO}: "
        + ("met" if best_ratio >= TARGET_RATIO else "NOT met"),
        f"- p50 at {first} caller: {single.result.p50_ms:.1f} ms (best row, {single.workers} "
        f"workers, load average {single.load:.1f}); target <= 60 ms: "
        + ("met" if single.result.p50_ms <= 60 else "NOT met"),
        f"- errors: {errors}; target 0: " + ("met" if errors == 0 else "NOT met"),
        f"- biometric section in process p50: {statistics.median(section_ms):.1f} ms wall, "
        f"{statistics.median(section_cpu_ms):.1f} ms CPU; target <= 30 ms (wall): "
        + ("met" if statistics.median(section_ms) <= 30 else "NOT met"),
        "",
    ]
    text = "\n".join(lines)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(text)
    return text


def _ints(text: str, name: str) -> tuple[int, ...]:
    values = []
    for part in text.split(","):
        part = part.strip()
        if part.upper() == "N":
            values.append(default_workers())
        elif part.isdigit() and int(part) > 0:
            values.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"{name}: {part!r} is not a positive integer")
    return tuple(dict.fromkeys(values))


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench orchestrator")
    parser.add_argument("--workers", default="1,2,N", help="NOVAMIND_WORKERS values; N = quota")
    parser.add_argument("--callers", default="1,16", help="concurrent GenerateInsights callers")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--days", type=int, default=180, help="days of patient history")
    parser.add_argument(
        "--ports",
        default="",
        help="forecasting,biometric,pharmacogenomics,orchestrator ports (default: free ports)",
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args(argv)
    ports = _ints(args.ports, "--ports") if args.ports else None
    if ports is not None and len(ports) != 4:
        parser.error("--ports: give four distinct ports")
    seconds = 3.0 if args.quick else args.duration
    if seconds <= 0 or args.days < 14:
        parser.error("--duration must be > 0 and --days >= 14")
    return Options(
        workers=_ints(args.workers, "--workers"),
        callers=_ints(args.callers, "--callers"),
        seconds=seconds,
        days=args.days,
        ports=ports,
        output=args.output or (QUICK_DOC if args.quick else DOC),
        command="python -m bench orchestrator" + (" " + " ".join(argv) if argv else ""),
    )


def main(argv: list[str]) -> int:
    options = parse(argv)
    train_missing_models()
    data = bench_patient(options.days)
    request = twin_pb2.GenerateInsightsRequest(patient_id="BENCH-0001", data=data)
    print("biometric section in process", flush=True)
    wall, cpu = biometric_in_process(data, repeats=10 if options.seconds < 5 else 40)
    section = (wall, cpu, os.getloadavg()[0])
    print("bare fan-out", flush=True)
    fanout = asyncio.run(echo_fanout(request.SerializeToString(), options.callers, options.seconds))
    fanout_load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-orchestrator-") as tmp:
        for workers in options.workers:
            for callers in options.callers:
                print(f"mesh with {workers} worker(s) per service, {callers} caller(s)", flush=True)
                work = Path(tmp) / f"w{workers}-c{callers}"
                rows.append(run_row(workers, callers, request, options, work))
    print(write(options, data, section, fanout, fanout_load, rows))
    print(f"written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
