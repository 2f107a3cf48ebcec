"""gRPC transport of the biometric service: protobuf <-> domain, nothing else.

Domain errors (InvalidArgumentError and friends) propagate to the mesh
interceptor, which maps them to status codes in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final, cast

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf import timestamp_pb2

from biometric_svc import domain
from biometric_svc.service import BiometricService
from common.biometric_metrics import METRICS
from common.proto_convert import model_info_from_manifest, to_timestamp
from common.server import ServiceDefinition
from common.synthetic import INSTRUMENTS
from novamind.biometric.v1 import biometric_pb2, biometric_pb2_grpc
from novamind.common.v1 import common_pb2

SERVICE_NAME = biometric_pb2.DESCRIPTOR.services_by_name["BiometricCorrelationService"].full_name

_METRIC_ENUM: Final = {
    name: common_pb2.BiometricMetric.Value(f"BIOMETRIC_METRIC_{name.upper()}") for name in METRICS
}
_INSTRUMENT_ENUM: Final = {
    name: common_pb2.Instrument.Value(f"INSTRUMENT_{name.upper()}") for name in INSTRUMENTS
}
_GRANULARITY_CODES: Final[dict[int, int]] = {
    common_pb2.SAMPLE_GRANULARITY_UNSPECIFIED: domain.GRANULARITIES.index("day"),
    common_pb2.SAMPLE_GRANULARITY_MINUTE: domain.GRANULARITIES.index("minute"),
    common_pb2.SAMPLE_GRANULARITY_HOUR: domain.GRANULARITIES.index("hour"),
    common_pb2.SAMPLE_GRANULARITY_DAY: domain.GRANULARITIES.index("day"),
}
_RELIABILITY: Final = {
    domain.Reliability.HIGH: biometric_pb2.RELIABILITY_GRADE_HIGH,
    domain.Reliability.MODERATE: biometric_pb2.RELIABILITY_GRADE_MODERATE,
    domain.Reliability.LOW: biometric_pb2.RELIABILITY_GRADE_LOW,
    domain.Reliability.INSUFFICIENT: biometric_pb2.RELIABILITY_GRADE_INSUFFICIENT,
}
_RISK: Final = {
    domain.RiskLevel.LOW: common_pb2.RISK_LEVEL_LOW,
    domain.RiskLevel.ELEVATED: common_pb2.RISK_LEVEL_ELEVATED,
    domain.RiskLevel.HIGH: common_pb2.RISK_LEVEL_HIGH,
    domain.RiskLevel.CRITICAL: common_pb2.RISK_LEVEL_CRITICAL,
}
_SEVERITY: Final = {
    domain.AnomalySeverity.LOW: biometric_pb2.ANOMALY_SEVERITY_LOW,
    domain.AnomalySeverity.MODERATE: biometric_pb2.ANOMALY_SEVERITY_MODERATE,
    domain.AnomalySeverity.HIGH: biometric_pb2.ANOMALY_SEVERITY_HIGH,
}
_METHOD: Final = {
    domain.DetectionMethod.ROBUST_Z: biometric_pb2.DETECTION_METHOD_ROBUST_Z,
    domain.DetectionMethod.ISOLATION_FOREST: biometric_pb2.DETECTION_METHOD_ISOLATION_FOREST,
    domain.DetectionMethod.BOTH: biometric_pb2.DETECTION_METHOD_BOTH,
}
_FREQUENCY: Final = {
    domain.MonitoringFrequency.CONTINUOUS: biometric_pb2.MONITORING_FREQUENCY_CONTINUOUS,
    domain.MonitoringFrequency.DAILY: biometric_pb2.MONITORING_FREQUENCY_DAILY,
    domain.MonitoringFrequency.WEEKLY: biometric_pb2.MONITORING_FREQUENCY_WEEKLY,
}
# Timestamps beyond year ~2255 would overflow int64 nanoseconds; they are clipped to a
# still-invalid (future) time so validation names them.
_MAX_SECONDS: Final = 9_000_000_000


def _codes(values: npt.NDArray[np.int64], mapping: Mapping[int, int]) -> npt.NDArray[np.int64]:
    """Map enum numbers to domain indices; anything unmapped becomes domain.UNKNOWN."""
    table = np.full(max(mapping) + 1, domain.UNKNOWN, dtype=np.int64)
    for number, index in mapping.items():
        table[number] = index
    inside = (values >= 0) & (values < table.size)
    return np.where(inside, table[np.clip(values, 0, table.size - 1)], domain.UNKNOWN)


def _nanoseconds(
    seconds: npt.NDArray[np.int64], nanos: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    return np.clip(seconds, -_MAX_SECONDS, _MAX_SECONDS) * 1_000_000_000 + nanos


# One row per sample, read in a single pass over the repeated field: each
# attribute access on a protobuf message costs about as much as a numpy call
# on the whole column, so the columns are cut from one structured array.
_SAMPLE_ROW: Final = np.dtype(
    [
        ("code", np.int64),
        ("seconds", np.int64),
        ("nanos", np.int64),
        ("value", np.float64),
        ("granularity", np.int64),
    ]
)
_METRIC_INDEX: Final = {number: METRICS.index(name) for name, number in _METRIC_ENUM.items()}
_INSTRUMENT_INDEX: Final = {
    number: INSTRUMENTS.index(name) for name, number in _INSTRUMENT_ENUM.items()
}


def biometric_samples(
    items: Sequence[common_pb2.BiometricSample],
) -> domain.BiometricSamples:
    rows = np.array(
        [
            (s.metric, at.seconds, at.nanos, s.value, s.granularity)
            for s in items
            for at in (s.measured_at,)
        ],
        dtype=_SAMPLE_ROW,
    )
    return domain.BiometricSamples(
        metric=_codes(rows["code"], _METRIC_INDEX),
        measured_at_ns=_nanoseconds(rows["seconds"], rows["nanos"]),
        value=np.ascontiguousarray(rows["value"]),
        granularity=_codes(rows["granularity"], _GRANULARITY_CODES),
    )


def indicator_observations(
    items: Sequence[common_pb2.SymptomObservation],
) -> domain.IndicatorObservations:
    rows = np.array(
        [
            (o.instrument, at.seconds, at.nanos, o.score, 0)
            for o in items
            for at in (o.observed_at,)
        ],
        dtype=_SAMPLE_ROW,
    )
    return domain.IndicatorObservations(
        instrument=_codes(rows["code"], _INSTRUMENT_INDEX),
        observed_at_ns=_nanoseconds(rows["seconds"], rows["nanos"]),
        score=np.ascontiguousarray(rows["value"]),
    )


def _day(date: dt.date) -> timestamp_pb2.Timestamp:
    return to_timestamp(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC))


def correlation_response(
    report: domain.CorrelationReport,
) -> biometric_pb2.AnalyzeCorrelationsResponse:
    response = biometric_pb2.AnalyzeCorrelationsResponse(
        reliability=_RELIABILITY[report.reliability]
    )
    for corr in report.correlations:
        item = response.correlations.add(
            metric=_METRIC_ENUM[corr.metric],
            indicator=_INSTRUMENT_ENUM[corr.indicator],
            lag_days=corr.lag_days,
            pearson_r=corr.pearson_r,
            spearman_r=corr.spearman_r,
            n=corr.n,
            p_value=corr.p_value,
            q_value=corr.q_value,
            significant=corr.significant,
            reading=corr.reading,
        )
        for lag, r in corr.profile:
            item.profile.add(lag_days=lag, pearson_r=r)
    for key in report.key_indicators:
        response.key_indicators.add(
            rank=key.rank,
            metric=_METRIC_ENUM[key.metric],
            indicator=_INSTRUMENT_ENUM[key.indicator],
            lead_days=key.lead_days,
            strength=key.strength,
            reading=key.reading,
        )
    coverage = report.coverage
    response.coverage.window_days = coverage.window_days
    response.coverage.indicator_days = coverage.indicator_days
    for metric in coverage.metrics:
        response.coverage.metrics.add(
            metric=_METRIC_ENUM[metric.metric],
            days_with_data=metric.days_with_data,
            fraction=metric.fraction,
        )
    warning = report.early_warning
    target = response.early_warning
    target.level = _RISK[warning.level] if warning.level else common_pb2.RISK_LEVEL_UNSPECIFIED
    target.probability = warning.probability
    target.expected_lead_days = warning.expected_lead_days
    target.insufficient_data = warning.insufficient_data
    target.detail = warning.detail
    target.out_of_distribution = warning.out_of_distribution
    target.out_of_distribution_reason = warning.out_of_distribution_reason
    target.training_distance = warning.training_distance
    target.unused_metrics.extend(
        cast(common_pb2.BiometricMetric, _METRIC_ENUM[name]) for name in warning.unused_metrics
    )
    for driver in warning.drivers:
        added = target.drivers.add(
            metric=_METRIC_ENUM[driver.metric],
            weight=driver.weight,
            description=driver.description,
        )
        added.date.CopyFrom(_day(driver.date))
    response.models.extend(model_info_from_manifest(m) for m in report.models)
    return response


def anomaly_response(report: domain.AnomalyReport) -> biometric_pb2.DetectAnomaliesResponse:
    response = biometric_pb2.DetectAnomaliesResponse(insufficient_data=report.insufficient_data)
    for anomaly in report.anomalies:
        item = response.anomalies.add(
            score=anomaly.score,
            severity=_SEVERITY[anomaly.severity],
            method=_METHOD[anomaly.method],
        )
        item.date.CopyFrom(_day(anomaly.date))
        for deviation in anomaly.deviations:
            item.deviations.add(
                metric=_METRIC_ENUM[deviation.metric],
                value=deviation.value,
                baseline_median=deviation.baseline_median,
                robust_z=deviation.robust_z,
            )
    for span in report.missing:
        gap = response.missing.add(metric=_METRIC_ENUM[span.metric], days=span.days)
        gap.start_date.CopyFrom(_day(span.start))
        gap.end_date.CopyFrom(_day(span.end))
    for baseline in report.baselines:
        response.baselines.add(
            metric=_METRIC_ENUM[baseline.metric],
            median=baseline.median,
            mad=baseline.mad,
            days=baseline.days,
        )
    return response


def plan_response(plan: domain.MonitoringPlan) -> biometric_pb2.RecommendMonitoringPlanResponse:
    response = biometric_pb2.RecommendMonitoringPlanResponse(summary=plan.summary)
    for metric in plan.metrics:
        item = response.metrics.add(
            priority=metric.priority,
            metric=_METRIC_ENUM[metric.metric],
            frequency=_FREQUENCY[metric.frequency],
            reason=metric.reason,
        )
        if metric.alert_below is not None:
            item.alert_below = metric.alert_below
        if metric.alert_above is not None:
            item.alert_above = metric.alert_above
    return response


class BiometricCorrelationServicer(biometric_pb2_grpc.BiometricCorrelationServiceServicer):
    def __init__(self, service: BiometricService) -> None:
        self._service = service

    async def AnalyzePatient(
        self, request: biometric_pb2.AnalyzePatientRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.AnalyzePatientResponse:
        report = await self._service.analyze_patient(
            domain.PatientAnalysisRequest(
                patient_pseudonym=request.patient_pseudonym,
                biometrics=biometric_samples(request.biometrics),
                indicators=indicator_observations(request.indicators),
                lookback_days=request.lookback_days,
                max_lag_days=request.max_lag_days,
                fdr_alpha=request.fdr_alpha,
                baseline_window_days=request.baseline_window_days,
            )
        )
        return biometric_pb2.AnalyzePatientResponse(
            correlations=correlation_response(report.correlations),
            anomalies=anomaly_response(report.anomalies),
            monitoring_plan=plan_response(report.monitoring_plan),
        )

    async def AnalyzeCorrelations(
        self, request: biometric_pb2.AnalyzeCorrelationsRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.AnalyzeCorrelationsResponse:
        report = await self._service.analyze_correlations(
            domain.CorrelationRequest(
                patient_pseudonym=request.patient_pseudonym,
                biometrics=biometric_samples(request.biometrics),
                indicators=indicator_observations(request.indicators),
                lookback_days=request.lookback_days,
                max_lag_days=request.max_lag_days,
                fdr_alpha=request.fdr_alpha,
            )
        )
        return correlation_response(report)

    async def DetectAnomalies(
        self, request: biometric_pb2.DetectAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.DetectAnomaliesResponse:
        report = await self._service.detect_anomalies(
            domain.AnomalyRequest(
                patient_pseudonym=request.patient_pseudonym,
                biometrics=biometric_samples(request.biometrics),
                baseline_window_days=request.baseline_window_days,
            )
        )
        return anomaly_response(report)

    async def RecommendMonitoringPlan(
        self,
        request: biometric_pb2.RecommendMonitoringPlanRequest,
        context: grpc.aio.ServicerContext,
    ) -> biometric_pb2.RecommendMonitoringPlanResponse:
        plan = await self._service.recommend_monitoring_plan(
            domain.MonitoringPlanRequest(
                patient_pseudonym=request.patient_pseudonym,
                biometrics=biometric_samples(request.biometrics),
                indicators=indicator_observations(request.indicators),
                max_lag_days=request.max_lag_days,
            )
        )
        return plan_response(plan)

    async def GetModelInfo(
        self, request: biometric_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.GetModelInfoResponse:
        return biometric_pb2.GetModelInfoResponse(
            models=[model_info_from_manifest(m) for m in self._service.model_manifests()]
        )


def service_definition(service: BiometricService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        biometric_pb2_grpc.add_BiometricCorrelationServiceServicer_to_server(
            BiometricCorrelationServicer(service), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
