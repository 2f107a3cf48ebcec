"""Fuzz every RPC of every service against the real mesh (four service processes).

The services run as an operator runs them (``python -m <svc>``, mTLS, tiny
trained models); the fuzzer calls them as the ``operator`` identity with raw
bodies from tests/fuzz/messages.py, a batch at a time and concurrently.

A case fails when the answer is UNKNOWN or INTERNAL (a crash path), or
UNAVAILABLE / DEADLINE_EXCEEDED (a dead or hung server), or when a
GenerateInsights answer carries a section whose downstream call ended in
UNKNOWN or INTERNAL (the orchestrator turns that into section data, so the
status code alone would hide it). After the run every process must still be
alive and serving, and no service may have logged an unhandled exception.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import descriptor as _descriptor
from google.protobuf import message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from common.launcher import MESH_SERVICES, ServiceProcess, clean_env, start_service, wait_healthy
from common.pseudonym import Pseudonymizer
from common.synthetic import CohortConfig, generate_cohort
from common.tls import channel_credentials
from novamind.biometric.v1 import biometric_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2
from novamind.twin.v1 import twin_pb2
from tests.fuzz.messages import request_cases
from twin_orchestrator import sections
from twin_orchestrator.patient_bundle import patient_data

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_MODULES: tuple[ModuleType, ...] = (
    twin_pb2,
    forecasting_pb2,
    biometric_pb2,
    pharmacogenomics_pb2,
)
#: Codes that mean a crash path, a dead server or a hang — never acceptable.
BAD_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
CALL_TIMEOUT_SECONDS = 60.0
#: Cases sent together (concurrently) per Hypothesis example.
BATCH = 8
SEED = 20_261_204
PATIENT_ID = "MRN-FUZZ-0001"


@dataclass(frozen=True)
class Target:
    """One RPC: where it is served and what it takes."""

    service: str  # proto service full name
    method: str
    request: _descriptor.Descriptor
    port: int

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    @property
    def label(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}/{self.method}"


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.counts.values())


@dataclass
class FuzzReport:
    outcomes: dict[str, Outcome]
    seconds: float
    crashed: list[str]

    @property
    def cases(self) -> int:
        return sum(o.cases for o in self.outcomes.values())

    @property
    def failures(self) -> list[str]:
        found = [f for o in self.outcomes.values() for f in o.failures]
        return found + [f"process: {c}" for c in self.crashed]


def rpc_targets(ports: dict[str, int]) -> list[Target]:
    """Every RPC of every service in the contracts, with the port of its process."""
    targets = []
    for module in PROTO_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                targets.append(
                    Target(
                        service.full_name, method.name, method.input_type, ports[service.full_name]
                    )
                )
    return targets


class _AnyStub:
    """Stands in for a stub: the section builders only name its methods."""

    def __getattr__(self, name: str) -> str:
        return name


def seed_requests() -> dict[str, Message]:
    """A valid request per request type, built the way the orchestrator builds them."""
    cohort = generate_cohort(CohortConfig(n_patients=4, n_days=60, seed=SEED % 1000))
    data = patient_data(cohort, str(cohort.patients.patient_id.iloc[0]))
    insights = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID, data=data)
    insights.options.forecast_horizon_days = 14
    pseudonym = Pseudonymizer(b"f" * 32).pseudonymize(PATIENT_ID)
    seeds: dict[str, Message] = {
        insights.DESCRIPTOR.full_name: insights,
        "novamind.twin.v1.GetPatientProgressRequest": twin_pb2.GetPatientProgressRequest(
            patient_id=PATIENT_ID
        ),
    }
    forecast = sections.forecast_request(pseudonym, data, 14)
    seeds[forecast.DESCRIPTOR.full_name] = forecast
    # Whatever requests the section builders make today; an RPC without a seed starts empty.
    for builder in ("biometric_calls", "pharmacogenomics_calls"):
        build = getattr(sections, builder, None)
        if build is None:
            continue
        for _method, request in build(_AnyStub(), pseudonym, data).values():
            seeds[request.DESCRIPTOR.full_name] = request
    return seeds


def _same_kind(a: _descriptor.FieldDescriptor, b: _descriptor.FieldDescriptor) -> bool:
    if a.type != b.type or _is_repeated(a) != _is_repeated(b):
        return False
    if a.message_type is not None:
        return b.message_type is not None and a.message_type.full_name == b.message_type.full_name
    return True


def _seed_for(target: Target, seeds: dict[str, Message]) -> Message:
    """The seed of this request type; otherwise one assembled from same-named seed fields
    (e.g. an RPC the orchestrator does not call still gets real biometrics to work on)."""
    seed = seeds.get(target.request.full_name)
    if seed is not None:
        return seed
    message = message_factory.GetMessageClass(target.request)()
    for wanted in target.request.fields:
        for donor in seeds.values():
            other = donor.DESCRIPTOR.fields_by_name.get(wanted.name)
            if other is None or not _same_kind(wanted, other):
                continue
            value = getattr(donor, wanted.name)
            if wanted.type == wanted.TYPE_MESSAGE and not _is_repeated(wanted):
                if donor.HasField(wanted.name):
                    getattr(message, wanted.name).CopyFrom(value)
                    break
            elif _is_repeated(wanted):
                if len(value):
                    getattr(message, wanted.name).extend(value)
                    break
            elif value:
                setattr(message, wanted.name, value)
                break
    return message


def _is_repeated(field: _descriptor.FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _section_failures(body: bytes) -> list[str]:
    response = twin_pb2.GenerateInsightsResponse.FromString(body)
    found = []
    for name in ("forecast", "biometric", "pharmacogenomics"):
        detail = getattr(response, name).result.detail
        if ": INTERNAL" in detail or ": UNKNOWN" in detail:
            found.append(f"section {name}: {detail[:200]}")
    return found


def fuzz_target(
    channel: grpc.Channel,
    target: Target,
    seed: Message,
    cases: int,
    pool: ThreadPoolExecutor,
) -> Outcome:
    """Send about ``cases`` generated bodies to one RPC; return what came back."""
    outcome = Outcome()
    call = channel.unary_unary(target.path)  # raw bytes in, raw bytes out
    is_insights = target.request.full_name == "novamind.twin.v1.GenerateInsightsRequest"

    def send(body: bytes) -> None:
        try:
            answer = call(body, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            code = error.code()  # type: ignore[attr-defined]
            outcome.counts[code.name] += 1
            if code in BAD_CODES:
                details = (error.details() or "")[:200]  # type: ignore[attr-defined]
                outcome.failures.append(f"{target.label}: {code.name}: {details} ({len(body)} B)")
            return
        outcome.counts["OK"] += 1
        if is_insights:
            outcome.failures.extend(f"{target.label}: {f}" for f in _section_failures(answer))

    @settings(
        max_examples=max(1, cases // BATCH),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.lists(request_cases(target.request, seed), min_size=BATCH, max_size=BATCH))
    def run(bodies: list[bytes]) -> None:
        list(pool.map(send, bodies))

    run()
    return outcome


@contextmanager
def running_mesh_processes(
    work_dir: Path, tls_dir: Path, model_dir: Path, key_dir: Path, free_port: Callable[[], int]
) -> Iterator[tuple[dict[str, int], list[ServiceProcess]]]:
    """The four services as processes on loopback; yields {proto service: port}."""
    ports = {name: free_port() for _, name, _ in MESH_SERVICES}
    started: list[ServiceProcess] = []
    try:
        for module, name, proto_service in MESH_SERVICES:
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1",
                NOVAMIND_PORT=str(ports[name]),
                NOVAMIND_HEALTH_PORT=str(free_port()),
                NOVAMIND_TLS_DIR=str(tls_dir),
                NOVAMIND_MODEL_DIR=str(model_dir),
                NOVAMIND_KEY_DIR=str(key_dir),
                NOVAMIND_AUDIT_LOG=str(work_dir / "audit" / f"{name}.jsonl"),
                NOVAMIND_STORE_PATH=str(work_dir / "store" / "twin.sqlite"),
                NOVAMIND_FORECASTING_ADDR=f"localhost:{ports['forecasting']}",
                NOVAMIND_BIOMETRIC_ADDR=f"localhost:{ports['biometric']}",
                NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{ports['pharmacogenomics']}",
                NOVAMIND_LOG_LEVEL="WARNING",
                PYTHONPATH=str(REPO_ROOT),
            )
            process = start_service(module, env, work_dir / "logs" / f"{name}.log", REPO_ROOT)
            started.append(process)
            try:
                wait_healthy(
                    process.health_port, proto_service, process=process.process, timeout=180
                )
            except (RuntimeError, TimeoutError) as exc:
                tail = process.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{module} did not start: {exc}\n{tail}") from None
        by_proto = {proto: ports[name] for _, name, proto in MESH_SERVICES}
        yield by_proto, started
    finally:
        for process in reversed(started):
            process.stop(timeout=20)


def _process_problems(processes: list[ServiceProcess]) -> list[str]:
    problems = []
    for process in processes:
        if process.process.poll() is not None:
            problems.append(f"{process.module} exited with {process.process.returncode}")
            continue
        try:
            wait_healthy(process.health_port, timeout=10)
        except TimeoutError:
            problems.append(f"{process.module} stopped serving")
    for process in processes:
        text = process.log_path.read_text(errors="replace")
        unhandled = text.count("unhandled ")
        if unhandled:
            problems.append(f"{process.module} logged {unhandled} unhandled exceptions")
    return problems


def fuzz_mesh(
    ports: dict[str, int],
    processes: list[ServiceProcess],
    tls_dir: Path,
    cases_per_rpc: int,
    progress: Callable[[str], Any] | None = None,
) -> FuzzReport:
    seeds = seed_requests()
    targets = rpc_targets(ports)
    creds = channel_credentials(tls_dir, "operator")
    started = time.perf_counter()
    outcomes: dict[str, Outcome] = {}
    channels: dict[int, grpc.Channel] = {}
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    try:
        with ThreadPoolExecutor(BATCH) as pool:
            for target in targets:
                if target.port not in channels:
                    channels[target.port] = grpc.secure_channel(
                        f"localhost:{target.port}", creds, options=options
                    )
                outcome = fuzz_target(
                    channels[target.port], target, _seed_for(target, seeds), cases_per_rpc, pool
                )
                outcomes[target.label] = outcome
                if progress is not None:
                    progress(f"{target.label}: {outcome.cases} cases, {dict(outcome.counts)}")
    finally:
        for channel in channels.values():
            channel.close()
    return FuzzReport(outcomes, time.perf_counter() - started, _process_problems(processes))
