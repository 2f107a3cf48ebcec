"""The digital-twin domain service: validate, pseudonymize, fan out, merge, store.

No gRPC server types here: downstream calls go through MeshClients, and the
caller's remaining time arrives as a number.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.errors import DependencyUnavailableError, InvalidArgumentError
from common.limits import MAX_SNAPSHOT_BYTES
from common.proto_convert import to_timestamp
from common.pseudonym import Pseudonymizer
from common.tracing import get_tracer
from novamind.twin.v1 import twin_pb2
from twin_orchestrator import sections
from twin_orchestrator.downstream import MeshClients
from twin_orchestrator.prioritization import RuleBook, recommend
from twin_orchestrator.progress import build_progress
from twin_orchestrator.risk import overall_risk
from twin_orchestrator.store import SnapshotStore, StoreError
from twin_orchestrator.triggers import Context
from twin_orchestrator.validation import (
    DEFAULT_HORIZON_DAYS,
    validate_generate_insights,
    validate_progress,
)

_LOGGER = logging.getLogger(__name__)

ALL_SECTIONS = (
    twin_pb2.SECTION_FORECAST,
    twin_pb2.SECTION_BIOMETRIC,
    twin_pb2.SECTION_PHARMACOGENOMICS,
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def downstream_timeout(budget_seconds: float) -> float:
    """The share of the caller's budget the fan-out may use.

    The rest is kept for merging and the store write, so the response is back
    within the caller's deadline even when a service uses all of its own.
    """
    reserve = min(0.25, max(0.03, 0.1 * budget_seconds))
    return max(0.0, budget_seconds - reserve)


def as_of(data: twin_pb2.PatientData, fallback: datetime) -> datetime:
    """The twin's clock: the newest observation, so windows like "within 14 days"
    refer to the patient's data, not to when the request happened to run."""
    seconds = [o.observed_at.seconds for o in data.symptoms]
    seconds += [s.measured_at.seconds for s in data.biometrics]
    if not seconds:
        return fallback
    return datetime.fromtimestamp(max(seconds), UTC)


def _has_genotype(data: twin_pb2.PatientData) -> bool:
    genotype = data.genotype
    return bool(genotype.diplotypes or genotype.hla_results or genotype.variant_calls)


@dataclass
class TwinService:
    clients: MeshClients
    store: SnapshotStore
    pseudonymizer: Pseudonymizer
    rules: RuleBook
    default_budget_seconds: float = 20.0
    max_points: int = 20_000
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def generate_insights(
        self,
        request: twin_pb2.GenerateInsightsRequest,
        *,
        time_remaining: float | None,
        request_id: str,
    ) -> twin_pb2.GenerateInsightsResponse:
        now = self.clock()
        validate_generate_insights(request, now=now, max_points=self.max_points)
        pseudonym = self.pseudonymizer.pseudonymize(request.patient_id)
        budget = self.default_budget_seconds if time_remaining is None else time_remaining
        timeout = downstream_timeout(budget)
        data = request.data
        wanted = set(request.options.sections) or set(ALL_SECTIONS)
        horizon = request.options.forecast_horizon_days or DEFAULT_HORIZON_DAYS

        response = twin_pb2.GenerateInsightsResponse(
            request_id=request_id, snapshot_id=secrets.token_hex(16)
        )
        response.generated_at.CopyFrom(to_timestamp(now))

        async def forecast() -> None:
            if twin_pb2.SECTION_FORECAST not in wanted:
                response.forecast.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_FORECAST, "not requested")
                )
            elif not any(s.instrument in sections.FORECAST_INSTRUMENTS for s in data.symptoms):
                response.forecast.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_FORECAST, "no PHQ-9, GAD-7 or mood history")
                )
            else:
                response.forecast.CopyFrom(
                    await sections.run_forecast(self.clients, pseudonym, data, horizon, timeout)
                )

        async def biometric() -> None:
            if twin_pb2.SECTION_BIOMETRIC not in wanted:
                response.biometric.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_BIOMETRIC, "not requested")
                )
            elif not data.biometrics:
                response.biometric.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_BIOMETRIC, "no biometric samples")
                )
            else:
                response.biometric.CopyFrom(
                    await sections.run_biometric(self.clients, pseudonym, data, timeout)
                )

        async def pharmacogenomics() -> None:
            if twin_pb2.SECTION_PHARMACOGENOMICS not in wanted:
                response.pharmacogenomics.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_PHARMACOGENOMICS, "not requested")
                )
            elif not _has_genotype(data):
                response.pharmacogenomics.result.CopyFrom(
                    sections.skipped(twin_pb2.SECTION_PHARMACOGENOMICS, "no genotype")
                )
            else:
                response.pharmacogenomics.CopyFrom(
                    await sections.run_pharmacogenomics(self.clients, pseudonym, data, timeout)
                )

        with get_tracer().start_as_current_span("fan-out"):
            await asyncio.gather(forecast(), biometric(), pharmacogenomics())

        ctx = Context(response=response, data=data, now=as_of(data, now))
        level, drivers = overall_risk(ctx, self.rules.overall_risk)
        response.overall_risk = level
        response.risk_drivers.extend(drivers)
        response.recommendations.extend(recommend(self.rules, ctx))
        if data.ByteSize() + response.ByteSize() > MAX_SNAPSHOT_BYTES:
            # The edge caps the input; this keeps the store bounded even if insights grow.
            raise InvalidArgumentError.single(
                "data",
                f"insights would exceed the {MAX_SNAPSHOT_BYTES // 2**20} MiB snapshot limit",
            )
        try:
            await self.store.save(pseudonym, now, data, response, response.snapshot_id)
        except (StoreError, OSError, Exception) as exc:
            _LOGGER.error("snapshot store write failed: %s", type(exc).__name__)
            raise DependencyUnavailableError(
                "the longitudinal store is unavailable; insights were not stored, retry later"
            ) from None
        return response

    async def patient_progress(
        self, request: twin_pb2.GetPatientProgressRequest
    ) -> twin_pb2.GetPatientProgressResponse:
        validate_progress(request, now=self.clock())
        pseudonym = self.pseudonymizer.pseudonymize(request.patient_id)
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        try:
            snapshots = await self.store.history(pseudonym, since)
        except StoreError:
            _LOGGER.error("snapshot store read failed authentication")
            raise DependencyUnavailableError("the longitudinal store could not be read") from None
        return build_progress(snapshots)

    async def close(self) -> None:
        await self.clients.close()
        await self.store.close()
