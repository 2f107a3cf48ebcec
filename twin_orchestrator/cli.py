"""`novamind`: the operator's command line for the mesh.

    novamind insights --patient-file patient.json [--report-dir var/reports]
    novamind insights --fhir bundle.json [--fhir-out insights.fhir.json]
    novamind progress --patient-id ID [--since 2026-01-01]
    novamind health [--target forecasting=dns:///forecasting.novamind:50051 ...]
    novamind prune-snapshots [--older-than-days 30]

The patient file is a GenerateInsightsRequest in protobuf JSON form; --fhir reads
a FHIR R4 Bundle instead (docs/data-formats.md) and --fhir-out writes the
insights as a FHIR R4 Bundle. TLS uses
the same files as the services (NOVAMIND_TLS_DIR, default var/certs) with the
operator identity, or plaintext with NOVAMIND_INSECURE=1. Service addresses are
any gRPC target; each defaults to NOVAMIND_<SERVICE>_ADDR (ORCHESTRATOR,
FORECASTING, BIOMETRIC, PHARMACOGENOMICS), else localhost at the default port.

prune-snapshots is the retention run of the orchestrator, on demand: it opens
the longitudinal store itself, with the orchestrator's settings (NOVAMIND_STORE_*,
NOVAMIND_STORE_KEY), so run it where the orchestrator runs (e.g. kubectl exec).
It deletes snapshots older than --older-than-days (default
NOVAMIND_SNAPSHOT_RETENTION_DAYS), keeping each patient's newest.

Exit status: 0 done; 1 the call failed, a service is not serving, the patient
has no stored insights, or the store failed; 2 the command line, the patient file
or a setting is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import mesh_channel
from common.launcher import MESH_SERVICES
from common.settings import DEFAULT_PORTS, MAX_RETENTION_DAYS, Settings, SettingsError
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator.patient_file import PatientFileError
from twin_orchestrator.patient_file import read_patient_file as _read_patient_file
from twin_orchestrator.summary import format_insights, format_progress

#: Exit status when the command line or the patient file is wrong (argparse's own).
USAGE_ERROR = 2
SERVICE_NAMES = tuple(name for _module, name, _service in MESH_SERVICES)


def default_target(service: str, env: dict[str, str] | None = None) -> str:
    """NOVAMIND_<SERVICE>_ADDR if set, else localhost at the service's default port."""
    env = dict(os.environ) if env is None else env
    return env.get(f"NOVAMIND_{service.upper()}_ADDR") or f"localhost:{DEFAULT_PORTS[service]}"


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time; no zone means UTC. Errors never echo the input."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "not an ISO 8601 date or time; use e.g. 2026-01-01, 2026-01-01T08:00 (UTC) "
            "or 2026-01-01T08:00:00+02:00"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _service_target(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or name not in SERVICE_NAMES or not target.strip():
        raise argparse.ArgumentTypeError(
            f"must be SERVICE=TARGET with SERVICE one of {', '.join(SERVICE_NAMES)}, "
            "e.g. forecasting=dns:///forecasting.novamind:50051"
        )
    return name, target.strip()


def _channel(args: argparse.Namespace, target: str) -> grpc.aio.Channel:
    return mesh_channel(
        target,
        tls_dir=Path(args.tls_dir),
        identity=args.identity,
        insecure=args.insecure,
    )


def read_patient_file(path: Path) -> twin_pb2.GenerateInsightsRequest:
    """Parse the patient file; errors give the line and field path, never the file's content."""
    try:
        return _read_patient_file(path)
    except PatientFileError as exc:
        print(f"novamind insights: {exc}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None


def read_fhir_file(path: Path) -> twin_pb2.GenerateInsightsRequest:
    """Map a FHIR bundle; print what was not used; errors name the entry and field."""
    # Imported here so that commands without FHIR do not load the FHIR models.
    from twin_orchestrator.fhir_import import FhirImportError, insights_request_from_fhir

    try:
        request, report = insights_request_from_fhir(path)
    except FhirImportError as exc:
        print(f"novamind insights: --fhir: {exc}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR) from None
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
    if args.since is not None:
        request.since.FromDatetime(args.since)
    async with _channel(args, args.target) as channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        response = await stub.GetPatientProgress(request, timeout=args.deadline)
    if not response.timeline:
        # An empty timeline is what an unknown (or mistyped) patient id looks like.
        since = f" since {args.since.isoformat()}" if args.since is not None else ""
        print(
            f"novamind progress: no insights stored for this patient id{since}; check the id, "
            "or run `novamind insights` for the patient first",
            file=sys.stderr,
        )
        return 1
    print(json_format.MessageToJson(response) if args.json else format_progress(response))
    return 0


def health_targets(args: argparse.Namespace) -> dict[str, str]:
    """Per service: --target SERVICE=..., else --host at the default port, else the default."""
    chosen = dict(args.target)
    targets = {}
    for name in SERVICE_NAMES:
        if name in chosen:
            targets[name] = chosen[name]
        elif args.host:
            targets[name] = f"{args.host}:{DEFAULT_PORTS[name]}"
        else:
            targets[name] = default_target(name)
    return targets


async def _health(args: argparse.Namespace) -> int:
    failures = 0
    targets = health_targets(args)
    for _module, name, service in MESH_SERVICES:
        target = targets[name]
        try:
            async with _channel(args, target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=3
                )
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        failures += status != "SERVING"
        print(f"{name:<17} {target:<30} {status}")
    return 1 if failures else 0


def _retention_days(text: str) -> int:
    days = int(text) if re.fullmatch(r"[0-9]+", text.strip()) else 0
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"
        )
    return days


async def _prune_snapshots(args: argparse.Namespace) -> int:
    # Imported here: only this command opens the store (and needs its drivers).
    from twin_orchestrator.bootstrap import open_store
    from twin_orchestrator.retention import retention_cutoff
    from twin_orchestrator.store import StoreError

    try:
        settings = Settings.from_env("orchestrator")
        days = args.older_than_days or settings.snapshot_retention_days
        if not days:
            raise SettingsError(
                "NOVAMIND_SNAPSHOT_RETENTION_DAYS is unset (keep forever): "
                "pass --older-than-days N to prune anyway"
            )
        if not (settings.store_url or settings.store_url_file) and not settings.store_path.exists():
            # Opening would create an empty store: more likely a wrong NOVAMIND_STORE_PATH.
            raise SettingsError("NOVAMIND_STORE_PATH: no store file there")
        store = open_store(settings)
    except (SettingsError, StoreError) as exc:
        print(f"novamind prune-snapshots: {exc}", file=sys.stderr)
        return USAGE_ERROR if isinstance(exc, SettingsError) else 1
    except (sqlite3.Error, OSError) as exc:
        print(
            f"novamind prune-snapshots: SQLite store failed: {type(exc).__name__}", file=sys.stderr
        )
        return 1
    cutoff = retention_cutoff(datetime.now(UTC), days)
    try:
        removed = await store.prune(cutoff)
        remaining = await store.count()
    except StoreError as exc:
        print(f"novamind prune-snapshots: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as exc:
        # SQLite's own errors (e.g. "database is locked"): the class says enough.
        print(
            f"novamind prune-snapshots: SQLite store failed: {type(exc).__name__}", file=sys.stderr
        )
        return 1
    finally:
        await store.close()
    print(
        f"removed {removed} snapshot(s) generated before {cutoff.isoformat(timespec='seconds')} "
        f"(older than {days} day(s); each patient's newest kept); "
        f"{remaining} remain in the {store.backend} store"
    )
    return 0


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
    insights.add_argument(
        "--target",
        default=default_target("orchestrator"),
        help="orchestrator gRPC target (default NOVAMIND_ORCHESTRATOR_ADDR or localhost:50050)",
    )
    insights.add_argument("--report-dir", default="", help="also write the HTML report here")
    progress = sub.add_parser("progress", help="show a patient's timeline")
    progress.add_argument("--patient-id", required=True)
    progress.add_argument(
        "--since", type=parse_since, default=None, help="ISO 8601 date or time (no zone: UTC)"
    )
    progress.add_argument(
        "--target",
        default=default_target("orchestrator"),
        help="orchestrator gRPC target (default NOVAMIND_ORCHESTRATOR_ADDR or localhost:50050)",
    )
    health = sub.add_parser("health", help="health of the four services")
    health.add_argument(
        "--target",
        type=_service_target,
        action="append",
        default=[],
        metavar="SERVICE=TARGET",
        help="gRPC target of one service (repeatable); default NOVAMIND_<SERVICE>_ADDR, "
        "else localhost at its default port",
    )
    health.add_argument(
        "--host", default="", help="every service not given by --target at <host>:<default port>"
    )
    prune = sub.add_parser(
        "prune-snapshots",
        help="delete stored snapshots past retention now (each patient's newest is kept)",
    )
    prune.add_argument(
        "--older-than-days",
        type=_retention_days,
        default=None,
        help="delete snapshots generated more than this many days ago "
        "(default NOVAMIND_SNAPSHOT_RETENTION_DAYS)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {
        "insights": _insights,
        "progress": _progress,
        "health": _health,
        "prune-snapshots": _prune_snapshots,
    }[args.command]
    try:
        return asyncio.run(command(args))
    except grpc.aio.AioRpcError as exc:
        print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
