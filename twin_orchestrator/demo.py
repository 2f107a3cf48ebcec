"""`make demo`: the whole mesh on this machine, one synthetic patient through it.

1. trains the default models on the synthetic cohort if none exist;
2. starts the four services over mutual TLS on their default ports;
3. sends one synthetic patient through GenerateInsights at two visits three
   simulated weeks apart, with a check-in a few days before the relapse the
   generator placed between them (where the early warning should speak up),
   and prints a readable summary of each and the patient's progress;
4. writes the HTML insights report to var/reports/<request-id>.html;
5. writes the last visit's records as a FHIR R4 Bundle (var/fhir/demo-patient.json),
   sends them back through the FHIR import and checks the insights are the same,
   and writes those insights as FHIR (var/fhir/demo-insights.json);
6. stops every process with SIGTERM and checks that none is left behind.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final

import pandas as pd

from common.channels import mesh_channel
from common.launcher import MESH_SERVICES, ServiceProcess, clean_env, start_service, wait_healthy
from common.proto_convert import to_timestamp
from common.settings import DEFAULT_PORTS
from common.synthetic import Cohort, CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator.fhir_import import insights_request_from_fhir
from twin_orchestrator.fhir_insights_export import write_insights_bundle
from twin_orchestrator.fhir_patient_export import bundle_from_patient_data
from twin_orchestrator.patient_bundle import patient_data
from twin_orchestrator.summary import format_insights, format_progress

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = REPO_ROOT / "var" / "logs"
REPORT_DIR = REPO_ROOT / "var" / "reports"
FHIR_DIR = REPO_ROOT / "var" / "fhir"
TLS_DIR = REPO_ROOT / "var" / "certs"
TRAINED_SERVICES = ("forecasting_svc", "biometric_svc", "pharmacogenomics_svc")
#: The demo patient's first visit is this many days into the cohort; the second, weeks later.
FIRST_VISIT_DAY = 120
WEEKS_BETWEEN_VISITS = 3
#: The check-in comes this many days before the relapse onset between the visits.
CHECK_IN_DAYS_BEFORE_ONSET = 3
DEMO_PATIENT_ID = "DEMO-0001"
#: The cohort the demo patient is chosen from.
DEMO_COHORT: Final = CohortConfig(n_patients=200, n_days=180, seed=7)


def train_missing_models() -> None:
    for module in TRAINED_SERVICES:
        if importlib.util.find_spec(f"{module}.train") is None:
            print(f"· {module}: no training module; its models stay untrained")
            continue
        print(f"· {module}: training default models if none exist")
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"{module}.train", "--if-missing"], cwd=REPO_ROOT, check=True
        )


def _between_visits(cohort: Cohort) -> pd.DataFrame:
    start = pd.Timestamp(cohort.config.start_date)
    first = start + pd.Timedelta(days=FIRST_VISIT_DAY + CHECK_IN_DAYS_BEFORE_ONSET)
    second = start + pd.Timedelta(days=FIRST_VISIT_DAY + 7 * WEEKS_BETWEEN_VISITS)
    onsets = cohort.truth.relapse_onsets
    return onsets[(onsets.onset_date > first) & (onsets.onset_date <= second)]


def choose_patient(cohort: Cohort) -> str:
    """A patient whose wearables lead their symptoms and who relapses between the visits."""
    onsets = _between_visits(cohort)
    relapsing = set(onsets.patient_id)
    with_prodrome = set(onsets[onsets.prodrome_days > 0].patient_id)
    couplings = cohort.truth.couplings
    coupled = set(couplings[couplings.coupled].patient_id)
    with_meds = set(cohort.medications.patient_id)
    pools = (
        with_prodrome & coupled & with_meds,
        relapsing & coupled & with_meds,
        relapsing & coupled,
        relapsing,
        coupled,
    )
    for pool in pools:
        if pool:
            return sorted(pool)[0]
    return str(cohort.patients.patient_id.iloc[0])


def visit_days(cohort: Cohort, cohort_patient: str) -> list[int]:
    """First visit, a check-in shortly before the patient's next relapse onset, second visit."""
    days = [FIRST_VISIT_DAY, FIRST_VISIT_DAY + 7 * WEEKS_BETWEEN_VISITS]
    onsets = _between_visits(cohort)
    mine = onsets[onsets.patient_id == cohort_patient].onset_date
    if len(mine):
        onset_day = (mine.min() - pd.Timestamp(cohort.config.start_date)).days
        days.insert(1, int(onset_day) - CHECK_IN_DAYS_BEFORE_ONSET)
    return days


async def run_patient(cohort: Cohort, cohort_patient: str) -> None:
    run_started = datetime.now(UTC)
    start = datetime.combine(cohort.config.start_date, time(), tzinfo=UTC)
    channel = mesh_channel(
        f"localhost:{DEFAULT_PORTS['orchestrator']}", tls_dir=TLS_DIR, identity="operator"
    )
    async with channel:
        stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
        last: tuple[twin_pb2.GenerateInsightsResponse, twin_pb2.PatientData] | None = None
        for visit, day in enumerate(visit_days(cohort, cohort_patient), start=1):
            data = patient_data(cohort, cohort_patient, start + timedelta(days=day))
            request = twin_pb2.GenerateInsightsRequest(patient_id=DEMO_PATIENT_ID, data=data)
            request.options.forecast_horizon_days = 30
            response = await stub.GenerateInsights(request, timeout=60)
            print(f"\n════════ visit {visit}: data up to day {day} ════════")
            print(format_insights(response))
            last = (response, data)
        # Only this run's snapshots: the store keeps earlier demo runs too.
        progress_request = twin_pb2.GetPatientProgressRequest(patient_id=DEMO_PATIENT_ID)
        progress_request.since.CopyFrom(to_timestamp(run_started))
        progress = await stub.GetPatientProgress(progress_request, timeout=30)
        print("\n════════ progress ════════")
        print(format_progress(progress))
        if last is not None:
            await _fhir_round_trip(stub, last[1], last[0])
    if last is not None:
        try:
            from twin_orchestrator.report import write_report
        except ImportError:
            return
        path = write_report(REPORT_DIR, last[0], last[1], progress)
        print(f"\nreport written: {path.relative_to(REPO_ROOT)}")


def _comparable(response: twin_pb2.GenerateInsightsResponse) -> twin_pb2.GenerateInsightsResponse:
    """The response without what differs between two calls: ids, time, latencies."""
    copy = twin_pb2.GenerateInsightsResponse()
    copy.CopyFrom(response)
    copy.ClearField("request_id")
    copy.ClearField("snapshot_id")
    copy.ClearField("generated_at")
    for section in (copy.forecast, copy.biometric, copy.pharmacogenomics):
        section.result.ClearField("latency")
    return copy


async def _fhir_round_trip(
    stub: twin_pb2_grpc.DigitalTwinServiceStub,
    data: twin_pb2.PatientData,
    response: twin_pb2.GenerateInsightsResponse,
) -> None:
    """The last visit as a clinic's FHIR bundle, back through the FHIR import."""
    FHIR_DIR.mkdir(parents=True, exist_ok=True)
    bundle_path = FHIR_DIR / "demo-patient.json"
    bundle = bundle_from_patient_data(DEMO_PATIENT_ID, data)
    bundle_path.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    request, report = insights_request_from_fhir(bundle_path)
    request.options.forecast_horizon_days = 30
    again = await stub.GenerateInsights(request, timeout=60)
    print(f"\n════════ the same visit from FHIR ({bundle_path.relative_to(REPO_ROOT)}) ════════")
    print("\n".join(report.lines()))
    print(f"records identical after the FHIR round trip: {'yes' if request.data == data else 'NO'}")
    same = _comparable(again) == _comparable(response)
    # The headline of the FHIR run; the full text is the visit's above, line for line.
    headline = format_insights(again).split("\n\nSections:")[0].split("\n", 2)[-1]
    print(headline.strip())
    for recommendation in again.recommendations:
        priority = common_pb2.Priority.Name(recommendation.priority).removeprefix("PRIORITY_")
        print(f"  [{priority}] {recommendation.text}")
    print(f"insights identical to the visit's: {'yes' if same else 'NO'}")
    out = write_insights_bundle(FHIR_DIR / "demo-insights.json", DEMO_PATIENT_ID, again)
    print(f"insights as FHIR R4: {out.relative_to(REPO_ROOT)}")
    if request.data != data or not same:
        raise RuntimeError("the FHIR round trip changed the patient's records or insights")


def main() -> int:
    train_missing_models()
    started: list[ServiceProcess] = []
    try:
        for module, name, proto_service in MESH_SERVICES:
            port = DEFAULT_PORTS[name]
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1", NOVAMIND_PORT=str(port), PYTHONPATH=str(REPO_ROOT)
            )
            proc = start_service(module, env, LOG_DIR / f"{name}.log", cwd=REPO_ROOT)
            started.append(proc)
            wait_healthy(proc.health_port, proto_service, process=proc.process, timeout=120)
            print(f"✔ {name:<17} SERVING  mTLS :{port}  health :{proc.health_port}")
        cohort = generate_cohort(DEMO_COHORT)
        asyncio.run(run_patient(cohort, choose_patient(cohort)))
        print("\nTry it yourself (operator certificate):")
        print(
            "  .venv/bin/grpcurl -cacert var/certs/ca.pem -cert var/certs/operator.pem "
            "-key var/certs/operator-key.pem localhost:50050 list"
        )
        print(f"  .venv/bin/novamind progress --patient-id {DEMO_PATIENT_ID}   (while running)")
    except (TimeoutError, RuntimeError) as exc:
        print(f"demo failed: {exc}; logs in {LOG_DIR}", file=sys.stderr)
        return 1
    finally:
        codes = [proc.stop() for proc in reversed(started)]
        alive = [p.module for p in started if p.process.poll() is None]
        left = ", ".join(alive) or "none"
        print(f"\nstopped {len(started)} services (exit codes {codes}); left running: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
