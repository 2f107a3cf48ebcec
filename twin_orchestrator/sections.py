"""The three sections of the insights: build downstream requests, call, report status.

The biometric section is one AnalyzePatient call (the service analyses the
data in one pass). A section with several RPCs runs them concurrently: all OK -> OK; some failed
-> DEGRADED (with what failed); all failed -> the failure's status. A section
never raises: its failure is data in the response.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import duration_pb2

from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.downstream import Downstream, MeshClients, SectionCallError

#: Instruments the forecasting service models.
FORECAST_INSTRUMENTS = frozenset(
    {common_pb2.INSTRUMENT_PHQ9, common_pb2.INSTRUMENT_GAD7, common_pb2.INSTRUMENT_MOOD}
)
_COVARIATES = {
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: forecasting_pb2.COVARIATE_KIND_SLEEP_HOURS,
    common_pb2.BIOMETRIC_METRIC_STEPS: forecasting_pb2.COVARIATE_KIND_STEPS,
}
_SECONDS_PER_DAY = 86_400


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def _result(
    section: twin_pb2.Section,
    status: common_pb2.SectionStatus,
    detail: str,
    started: float,
) -> twin_pb2.SectionResult:
    return twin_pb2.SectionResult(
        section=section,
        status=status,
        detail=detail,
        latency=_duration(time.perf_counter() - started),
    )


def skipped(section: twin_pb2.Section, reason: str) -> twin_pb2.SectionResult:
    return twin_pb2.SectionResult(
        section=section, status=common_pb2.SECTION_STATUS_SKIPPED, detail=reason
    )


def _daily_covariates(data: twin_pb2.PatientData) -> list[forecasting_pb2.CovariateObservation]:
    """Sleep and steps summed per UTC day, the way the forecasting service expects them."""
    totals: dict[tuple[forecasting_pb2.CovariateKind, int], float] = defaultdict(float)
    for sample in data.biometrics:
        kind = _COVARIATES.get(sample.metric)
        if kind is not None:
            totals[(kind, sample.measured_at.seconds // _SECONDS_PER_DAY)] += sample.value
    covariates = []
    for (kind, day), value in sorted(totals.items()):
        item = forecasting_pb2.CovariateObservation(kind=kind, value=value)
        item.observed_at.seconds = day * _SECONDS_PER_DAY
        covariates.append(item)
    return covariates


def forecast_request(
    pseudonym: str, data: twin_pb2.PatientData, horizon_days: int
) -> forecasting_pb2.ForecastSymptomsRequest:
    return forecasting_pb2.ForecastSymptomsRequest(
        patient_pseudonym=pseudonym,
        history=[s for s in data.symptoms if s.instrument in FORECAST_INSTRUMENTS],
        covariates=_daily_covariates(data),
        medication_events=data.medication_events,
        horizon_days=horizon_days,
    )


async def _gather(
    calls: dict[str, Callable[[], Awaitable[Any]]],
) -> tuple[dict[str, Any], list[SectionCallError]]:
    names = list(calls)
    outcomes = await asyncio.gather(*(calls[n]() for n in names), return_exceptions=True)
    results: dict[str, Any] = {}
    errors: list[SectionCallError] = []
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, SectionCallError):
            errors.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results[name] = outcome
    return results, errors


def _combined_status(
    section: twin_pb2.Section,
    results: dict[str, Any],
    errors: list[SectionCallError],
    started: float,
) -> twin_pb2.SectionResult:
    if not errors:
        return _result(section, common_pb2.SECTION_STATUS_OK, "", started)
    detail = "; ".join(dict.fromkeys(e.detail for e in errors))
    if results:
        return _result(section, common_pb2.SECTION_STATUS_DEGRADED, detail, started)
    statuses = {e.status for e in errors}
    status = (
        common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
        if statuses == {common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED}
        else common_pb2.SECTION_STATUS_UNAVAILABLE
        if common_pb2.SECTION_STATUS_UNAVAILABLE in statuses
        or common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED in statuses
        else common_pb2.SECTION_STATUS_DEGRADED
    )
    return _result(section, status, detail, started)


def _call(
    downstream: Downstream, method: Any, request: Any, deadline_seconds: float
) -> Callable[[], Any]:
    return lambda: downstream.call(method, request, deadline_seconds)


async def run_forecast(
    clients: MeshClients,
    pseudonym: str,
    data: twin_pb2.PatientData,
    horizon_days: int,
    deadline_seconds: float,
) -> twin_pb2.ForecastSection:
    started = time.perf_counter()
    request = forecast_request(pseudonym, data, horizon_days)
    results, errors = await _gather(
        {
            "forecast": _call(
                clients.forecasting,
                clients.forecasting_stub.ForecastSymptoms,
                request,
                deadline_seconds,
            )
        }
    )
    section = twin_pb2.ForecastSection(
        result=_combined_status(twin_pb2.SECTION_FORECAST, results, errors, started)
    )
    if "forecast" in results:
        section.forecast.CopyFrom(results["forecast"])
    return section


Calls = dict[str, tuple[Callable[..., Any], Any]]


def biometric_calls(stub: Any, pseudonym: str, data: twin_pb2.PatientData) -> Calls:
    """The biometric section's one RPC: every analysis of the patient in one pass."""
    return {
        "patient": (
            stub.AnalyzePatient,
            biometric_pb2.AnalyzePatientRequest(
                patient_pseudonym=pseudonym, biometrics=data.biometrics, indicators=data.symptoms
            ),
        ),
    }


def pharmacogenomics_calls(stub: Any, pseudonym: str, data: twin_pb2.PatientData) -> Calls:
    """The pharmacogenomics section's RPCs and their requests, by response field name."""
    medications = {
        "patient_pseudonym": pseudonym,
        "genotype": data.genotype,
        "current_medications": data.current_medications,
        "candidate_medications": data.candidate_medications,
    }
    return {
        "interactions": (
            stub.AnalyzeGeneMedicationInteractions,
            pgx_pb2.AnalyzeGeneMedicationInteractionsRequest(**medications),  # type: ignore[arg-type]
        ),
        "responses": (
            stub.PredictMedicationResponse,
            pgx_pb2.PredictMedicationResponseRequest(**medications, clinical=data.clinical),  # type: ignore[arg-type]
        ),
        "side_effects": (
            stub.PredictSideEffects,
            pgx_pb2.PredictSideEffectsRequest(**medications, clinical=data.clinical),  # type: ignore[arg-type]
        ),
    }


async def _run_calls(
    downstream: Downstream, calls: Calls, deadline_seconds: float
) -> tuple[dict[str, Any], list[SectionCallError]]:
    return await _gather(
        {
            name: _call(downstream, method, request, deadline_seconds)
            for name, (method, request) in calls.items()
        }
    )


async def run_biometric(
    clients: MeshClients, pseudonym: str, data: twin_pb2.PatientData, deadline_seconds: float
) -> twin_pb2.BiometricSection:
    started = time.perf_counter()
    calls = biometric_calls(clients.biometric_stub, pseudonym, data)
    results, errors = await _run_calls(clients.biometric, calls, deadline_seconds)
    section = twin_pb2.BiometricSection(
        result=_combined_status(twin_pb2.SECTION_BIOMETRIC, results, errors, started)
    )
    if "patient" in results:
        analysis: biometric_pb2.AnalyzePatientResponse = results["patient"]
        section.correlations.CopyFrom(analysis.correlations)
        section.anomalies.CopyFrom(analysis.anomalies)
        section.monitoring_plan.CopyFrom(analysis.monitoring_plan)
    return section


async def run_pharmacogenomics(
    clients: MeshClients, pseudonym: str, data: twin_pb2.PatientData, deadline_seconds: float
) -> twin_pb2.PharmacogenomicsSection:
    started = time.perf_counter()
    calls = pharmacogenomics_calls(clients.pharmacogenomics_stub, pseudonym, data)
    results, errors = await _run_calls(clients.pharmacogenomics, calls, deadline_seconds)
    section = twin_pb2.PharmacogenomicsSection(
        result=_combined_status(twin_pb2.SECTION_PHARMACOGENOMICS, results, errors, started)
    )
    for name, value in results.items():
        getattr(section, name).CopyFrom(value)
    return section
