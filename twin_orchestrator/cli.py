"""`novamind`: the operator's command line for the mesh.

    novamind insights --patient-file patient.json [--report-dir var/reports]
    novamind insights --fhir bundle.json [--fhir-out insights.fhir.json]
    novamind progress --patient-id ID [--since 2026-01-01]
    novamind health

The patient file is a GenerateInsightsRequest in protobuf JSON form; --fhir reads
a FHIR R4 Bundle instead (docs/data-formats.md) and --fhir-out writes the
insights as a FHIR R4 Bundle. TLS uses
the same files as the services (NOVAMIND_TLS_DIR, default var/certs) with the
operator identity, or plaintext with NOVAMIND_INSECURE=1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import mesh_channel
from common.launcher import MESH_SERVICES
from common.settings import DEFAULT_PORTS
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator.summary import format_insights, format_progress


def _channel(args: argparse.Namespace, target: str) -> grpc.aio.Channel:
    return mesh_channel(
        target,
        tls_dir=Path(args.tls_dir),
        identity=args.identity,
        insecure=args.insecure,
    )


def read_patient_file(path: Path) -> twin_pb2.GenerateInsightsRequest:
    """Parse the patient file; errors name the flag, never the file's content."""
    try:
        return json_format.Parse(path.read_text(), twin_pb2.GenerateInsightsRequest())
    except (OSError, json_format.ParseError) as exc:
        raise SystemExit(
            f"--patient-file: not a readable GenerateInsightsRequest JSON ({type(exc).__name__})"
        ) from None


def read_fhir_file(path: Path) -> twin_pb2.GenerateInsightsRequest:
    """Map a FHIR bundle; print what was not used; errors name the entry and field."""
    # Imported here so that commands without FHIR do not load the FHIR models.
    from twin_orchestrator.fhir_import import FhirImportError, insights_request_from_fhir

    try:
        request, report = insights_request_from_fhir(path)
    except FhirImportError as exc:
        raise SystemExit(f"--fhir: {exc}") from None
    print("\n".join(report.lines()), file=sys.stderr)
    return request


async def _insights(args: argparse.Namespace) -> int:
    if args.fhir:
        request = read_fhir_file(Path(args.fhir))
    else:
        request = read_patient_file(Path(args.patient_file))
    async with _channel(args, args.target) as channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        response = await stub.GenerateInsights(request, timeout=args.deadline)
    if args.json:
        print(json_format.MessageToJson(response))
    else:
        print(format_insights(response))
    if args.report_dir:
        from twin_orchestrator.report import write_report

        path = write_report(Path(args.report_dir), response, request.data)
        print(f"\nreport: {path}")
    if args.fhir_out:
        from twin_orchestrator.fhir_insights_export import write_insights_bundle

        written = write_insights_bundle(Path(args.fhir_out), request.patient_id, response)
        print(f"FHIR insights bundle: {written}", file=sys.stderr)
    return 0


async def _progress(args: argparse.Namespace) -> int:
    request = twin_pb2.GetPatientProgressRequest(patient_id=args.patient_id)
    if args.since:
        request.since.FromDatetime(datetime.fromisoformat(args.since).replace(tzinfo=UTC))
    async with _channel(args, args.target) as channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        response = await stub.GetPatientProgress(request, timeout=args.deadline)
    print(json_format.MessageToJson(response) if args.json else format_progress(response))
    return 0


async def _health(args: argparse.Namespace) -> int:
    failures = 0
    for _module, name, service in MESH_SERVICES:
        target = f"{args.host}:{DEFAULT_PORTS[name]}"
        try:
            async with _channel(args, target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=3
                )
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        failures += status != "SERVING"
        print(f"{name:<17} {target:<22} {status}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="novamind", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tls-dir", default=os.environ.get("NOVAMIND_TLS_DIR", "var/certs"))
    parser.add_argument("--identity", default="operator", help="client certificate identity")
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=os.environ.get("NOVAMIND_INSECURE") == "1",
        help="plaintext (development only)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw response as JSON")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds (default 30)")
    sub = parser.add_subparsers(dest="command", required=True)
    insights = sub.add_parser("insights", help="run GenerateInsights for a patient file")
    source = insights.add_mutually_exclusive_group(required=True)
    source.add_argument("--patient-file", help="GenerateInsightsRequest as protobuf JSON")
    source.add_argument("--fhir", help="FHIR R4 Bundle (JSON) with the patient's records")
    insights.add_argument("--fhir-out", default="", help="also write the insights as FHIR R4")
    insights.add_argument("--target", default=f"localhost:{DEFAULT_PORTS['orchestrator']}")
    insights.add_argument("--report-dir", default="", help="also write the HTML report here")
    progress = sub.add_parser("progress", help="show a patient's timeline")
    progress.add_argument("--patient-id", required=True)
    progress.add_argument("--since", default="", help="ISO date or time (UTC)")
    progress.add_argument("--target", default=f"localhost:{DEFAULT_PORTS['orchestrator']}")
    health = sub.add_parser("health", help="health of the four services")
    health.add_argument("--host", default="localhost")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"insights": _insights, "progress": _progress, "health": _health}[args.command]
    try:
        return asyncio.run(command(args))
    except grpc.aio.AioRpcError as exc:
        print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
