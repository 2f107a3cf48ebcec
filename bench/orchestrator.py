"""GenerateInsights latency and throughput against the real mesh.

`python -m bench orchestrator` (part of `make bench`): trains the default
models if missing, starts the four services over mTLS on loopback, and
measures with a real gRPC client
  - GenerateInsights at 1 and 16 concurrent callers (p50/p90/p99, calls/s);
  - each ML service's own RPCs for the same patient at the same concurrency,
    to show the slowest single section;
  - a bare 3-way fan-out to echo servers on the same bootstrap and TLS, the
    transport floor of the orchestrator's pattern.
Writes docs/benchmarks/orchestrator.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

import grpc

from bench.harness import TABLE_HEADER, LoadResult, machine_line, measure
from common.channels import mesh_channel
from common.launcher import MESH_SERVICES, ServiceProcess, clean_env, start_service, wait_healthy
from common.server import ServiceDefinition, create_server
from common.settings import DEFAULT_PORTS, Settings
from common.synthetic import CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2_grpc
from novamind.forecasting.v1 import forecasting_pb2_grpc
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator import sections
from twin_orchestrator.demo import train_missing_models
from twin_orchestrator.patient_bundle import patient_data

REPO_ROOT = Path(__file__).resolve().parents[1]
TLS_DIR = REPO_ROOT / "var" / "certs"
DOC = REPO_ROOT / "docs" / "benchmarks" / "orchestrator.md"
CALLS = {1: 30, 16: 96}
ECHO_SERVICE = "novamind.bench.v1.Echo"


def _echo_definition() -> ServiceDefinition:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    def register(server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Echo": handler}),)
        )

    return ServiceDefinition(service_names=(ECHO_SERVICE,), register=register, audited=False)


async def _echo_fanout(payload: bytes) -> dict[int, LoadResult]:
    """Three echo servers on the mesh bootstrap (mTLS, interceptors) and a 3-way fan-out."""
    settings = Settings.from_env("forecasting", env={})
    servers = []
    for _ in range(3):
        mesh = create_server(
            dataclasses.replace(settings, host="127.0.0.1", port=0, audit_log=Path(os.devnull)),
            _echo_definition(),
            health_port=0,
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
        return {n: await measure(fan_out, concurrency=n, calls=CALLS[n]) for n in CALLS}
    finally:
        for channel in channels:
            await channel.close()
        for mesh in servers:
            await mesh.stop(0)


async def _run(data: twin_pb2.PatientData) -> dict[str, dict[int, LoadResult]]:
    results: dict[str, dict[int, LoadResult]] = {}
    pseudonym = "psn_" + "0" * 32

    def channel_to(name: str) -> grpc.aio.Channel:
        return mesh_channel(
            f"localhost:{DEFAULT_PORTS[name]}", tls_dir=TLS_DIR, identity="orchestrator"
        )

    twin = channel_to("orchestrator")
    forecasting = channel_to("forecasting")
    biometric = channel_to("biometric")
    pgx = channel_to("pharmacogenomics")
    request = twin_pb2.GenerateInsightsRequest(patient_id="BENCH-0001", data=data)
    twin_stub = twin_pb2_grpc.DigitalTwinServiceStub(twin)
    f_stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(forecasting)
    b_stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(biometric)
    p_stub = pharmacogenomics_pb2_grpc.PharmacogenomicsServiceStub(pgx)
    forecast_request = sections.forecast_request(pseudonym, data, 30)
    biometric_calls = sections.biometric_calls(b_stub, pseudonym, data).values()
    pgx_calls = sections.pharmacogenomics_calls(p_stub, pseudonym, data).values()

    async def forecast() -> None:
        await f_stub.ForecastSymptoms(forecast_request, timeout=60)

    async def biometric_section() -> None:
        await asyncio.gather(*(method(req, timeout=60) for method, req in biometric_calls))

    async def pgx_section() -> None:
        await asyncio.gather(*(method(req, timeout=60) for method, req in pgx_calls))

    async def insights() -> None:
        await twin_stub.GenerateInsights(request, timeout=60)

    try:
        for label, call in (
            ("GenerateInsights (orchestrator)", insights),
            ("forecast section alone", forecast),
            ("biometric section alone", biometric_section),
            ("pharmacogenomics section alone", pgx_section),
        ):
            results[label] = {n: await measure(call, concurrency=n, calls=CALLS[n]) for n in CALLS}
        results["bare 3-way echo fan-out (same payload)"] = await _echo_fanout(
            request.SerializeToString()
        )
    finally:
        for channel in (twin, forecasting, biometric, pgx):
            await channel.close()
    return results


def _write(results: dict[str, dict[int, LoadResult]], n_symptoms: int, n_biometrics: int) -> None:
    lines = [
        "# Orchestrator benchmark",
        "",
        "Command: `make bench` (or `.venv/bin/python -m bench orchestrator`).",
        f"Machine: {machine_line()}. All four services on loopback over mTLS, real gRPC client.",
        f"Patient: 180 days of history ({n_symptoms} symptom scores, {n_biometrics} biometric "
        "samples), genotype, medications; forecast horizon 30 days.",
        "",
    ]
    for label, by_concurrency in results.items():
        lines += [f"## {label}", "", TABLE_HEADER]
        lines += [r.row() for r in by_concurrency.values()]
        lines.append("")
    twin = results["GenerateInsights (orchestrator)"]
    sections_only = [v for k, v in results.items() if k.endswith("alone")]
    for n in CALLS:
        slowest = max(s[n].p50_ms for s in sections_only)
        total = sum(s[n].p50_ms for s in sections_only)
        lines.append(
            f"- concurrency {n}: GenerateInsights p50 {twin[n].p50_ms:.1f} ms vs slowest section "
            f"{slowest:.1f} ms (ratio {twin[n].p50_ms / slowest:.2f}) and sum of sections "
            f"{total:.1f} ms — the fan-out is concurrent when the ratio is near 1 and well "
            "below the sum."
        )
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    train_missing_models()
    cohort = generate_cohort(CohortConfig(n_patients=50, n_days=200, seed=11))
    data = patient_data(cohort, str(cohort.patients.patient_id.iloc[0]))
    started: list[ServiceProcess] = []
    try:
        for module, name, proto_service in MESH_SERVICES:
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1",
                NOVAMIND_PORT=str(DEFAULT_PORTS[name]),
                NOVAMIND_LOG_LEVEL="WARNING",
                PYTHONPATH=str(REPO_ROOT),
            )
            proc = start_service(module, env, REPO_ROOT / "var" / "logs" / f"bench-{name}.log")
            started.append(proc)
            wait_healthy(proc.health_port, proto_service, process=proc.process, timeout=120)
        results = asyncio.run(_run(data))
    finally:
        for proc in reversed(started):
            proc.stop()
    _write(results, len(data.symptoms), len(data.biometrics))
    print(DOC.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
