"""gRPC transport of the forecasting service: protobuf <-> domain, nothing else.

Unknown enum numbers and unset or unrepresentable timestamps become None, which
validation rejects naming the field. Errors are mapped by the mesh interceptor.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

import grpc
from google.protobuf import timestamp_pb2

from common.proto_convert import from_timestamp, model_info_from_manifest, to_timestamp
from common.server import ServiceDefinition
from forecasting_svc.domain import (
    CovariateKind,
    CovariateObservation,
    ForecastRequest,
    ForecastResult,
    ImportanceSource,
    MedicationEvent,
    MedicationEventKind,
    ModelChoice,
    SymptomObservation,
    TrendDirection,
)
from forecasting_svc.feature_labels import clinical_label
from forecasting_svc.instruments import Instrument
from forecasting_svc.service import ForecastingService
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2, forecasting_pb2_grpc

_LOGGER = logging.getLogger(__name__)

SERVICE_NAME = forecasting_pb2.DESCRIPTOR.services_by_name["SymptomForecastingService"].full_name

_INSTRUMENTS: Final = {
    common_pb2.INSTRUMENT_PHQ9: Instrument.PHQ9,
    common_pb2.INSTRUMENT_GAD7: Instrument.GAD7,
    common_pb2.INSTRUMENT_MOOD: Instrument.MOOD,
    common_pb2.INSTRUMENT_ANXIETY: Instrument.ANXIETY,
}
_INSTRUMENT_TO_PROTO: Final = {v: k for k, v in _INSTRUMENTS.items()}
_COVARIATES: Final = {
    forecasting_pb2.COVARIATE_KIND_SLEEP_HOURS: CovariateKind.SLEEP_HOURS,
    forecasting_pb2.COVARIATE_KIND_STEPS: CovariateKind.STEPS,
}
_MEDICATION_EVENTS: Final = {
    common_pb2.MEDICATION_EVENT_TYPE_START: MedicationEventKind.START,
    common_pb2.MEDICATION_EVENT_TYPE_STOP: MedicationEventKind.STOP,
    common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE: MedicationEventKind.DOSE_CHANGE,
}
_MODELS: Final = {
    forecasting_pb2.FORECAST_MODEL_UNSPECIFIED: ModelChoice.ENSEMBLE,
    forecasting_pb2.FORECAST_MODEL_ENSEMBLE: ModelChoice.ENSEMBLE,
    forecasting_pb2.FORECAST_MODEL_TRANSFORMER: ModelChoice.TRANSFORMER,
    forecasting_pb2.FORECAST_MODEL_XGBOOST: ModelChoice.XGBOOST,
}
_MODEL_TO_PROTO: Final = {
    ModelChoice.ENSEMBLE: forecasting_pb2.FORECAST_MODEL_ENSEMBLE,
    ModelChoice.TRANSFORMER: forecasting_pb2.FORECAST_MODEL_TRANSFORMER,
    ModelChoice.XGBOOST: forecasting_pb2.FORECAST_MODEL_XGBOOST,
}
_TRENDS: Final = {
    TrendDirection.NOT_ASSESSED: forecasting_pb2.TREND_DIRECTION_UNSPECIFIED,
    TrendDirection.IMPROVING: forecasting_pb2.TREND_DIRECTION_IMPROVING,
    TrendDirection.STABLE: forecasting_pb2.TREND_DIRECTION_STABLE,
    TrendDirection.WORSENING: forecasting_pb2.TREND_DIRECTION_WORSENING,
}
_SOURCES: Final = {
    ImportanceSource.SHAP: forecasting_pb2.IMPORTANCE_SOURCE_SHAP,
    ImportanceSource.ATTENTION: forecasting_pb2.IMPORTANCE_SOURCE_ATTENTION,
}
# Rejected by validation as "not between 1970 and now".
_UNREPRESENTABLE: Final = datetime.min.replace(tzinfo=UTC)


def _moment(message: object, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    try:
        return from_timestamp(stamp)
    except (ValueError, OverflowError, OSError):
        return _UNREPRESENTABLE


def request_from_proto(request: forecasting_pb2.ForecastSymptomsRequest) -> ForecastRequest:
    return ForecastRequest(
        patient_pseudonym=request.patient_pseudonym,
        history=[
            SymptomObservation(
                instrument=_INSTRUMENTS.get(o.instrument),
                observed_at=_moment(o, "observed_at"),
                score=o.score,
            )
            for o in request.history
        ],
        covariates=[
            CovariateObservation(
                kind=_COVARIATES.get(c.kind), observed_at=_moment(c, "observed_at"), value=c.value
            )
            for c in request.covariates
        ],
        medication_events=[
            MedicationEvent(
                occurred_at=_moment(e, "occurred_at"),
                medication=e.medication,
                kind=_MEDICATION_EVENTS.get(e.type),
                daily_dose_mg=e.daily_dose_mg,
            )
            for e in request.medication_events
        ],
        horizon_days=request.horizon_days,
        quantile_levels=list(request.quantile_levels),
        interval_coverage=request.interval_coverage,
        model=_MODELS.get(request.model),
        risk_probability=request.risk_probability,
    )


def response_to_proto(result: ForecastResult) -> forecasting_pb2.ForecastSymptomsResponse:
    response = forecasting_pb2.ForecastSymptomsResponse(
        validation_interval_coverage=result.validation_interval_coverage
    )
    for forecast in result.forecasts:
        message = response.forecasts.add(
            instrument=_INSTRUMENT_TO_PROTO[forecast.instrument],
            model=_MODEL_TO_PROTO[forecast.model],
            observed_days=forecast.observed_days,
        )
        for point in forecast.points:
            point_message = message.points.add(
                horizon_day=point.horizon_day,
                point=point.point,
                lower=point.lower,
                upper=point.upper,
            )
            point_message.date.CopyFrom(to_timestamp(point.date))
            for level, value in point.quantiles:
                point_message.quantiles.add(level=level, value=value)
        message.trend.direction = _TRENDS[forecast.trend.direction]
        message.trend.slope_per_week = forecast.trend.slope_per_week
        message.trend.p_value = forecast.trend.p_value
        message.trend.significant = forecast.trend.significant
        message.trend.slope_lower_per_week = forecast.trend.slope_lower_per_week
        message.trend.slope_upper_per_week = forecast.trend.slope_upper_per_week
        message.trend.scores = forecast.trend.scores
        message.trend.fitted_change = forecast.trend.fitted_change
        for period in forecast.risk_periods:
            period_message = message.risk_periods.add(
                threshold=period.threshold,
                threshold_label=period.threshold_label,
                peak_probability=period.peak_probability,
            )
            period_message.start_date.CopyFrom(to_timestamp(period.start_date))
            period_message.end_date.CopyFrom(to_timestamp(period.end_date))
            period_message.peak_date.CopyFrom(to_timestamp(period.peak_date))
        if forecast.own_history is not None:
            check = forecast.own_history
            message.own_history.pairs = check.pairs
            message.own_history.ensemble_mae = check.ensemble_mae
            message.own_history.seasonal_naive_mae = check.seasonal_naive_mae
            message.own_history.interval_scale = check.interval_scale
            message.own_history.unfamiliar = check.unfamiliar
            for member, weight in check.member_weights:
                message.own_history.member_weights.add(member=member, weight=weight)
        for driver in forecast.feature_importance:
            message.feature_importance.add(
                feature=driver.feature,
                importance=driver.importance,
                source=_SOURCES[driver.source],
                label=clinical_label(driver.feature),
            )
    for manifest in result.models:
        response.models.append(model_info_from_manifest(manifest))
    return response


class SymptomForecastingServicer(forecasting_pb2_grpc.SymptomForecastingServiceServicer):
    def __init__(self, service: ForecastingService) -> None:
        self._service = service

    async def ForecastSymptoms(
        self,
        request: forecasting_pb2.ForecastSymptomsRequest,
        context: grpc.aio.ServicerContext,
    ) -> forecasting_pb2.ForecastSymptomsResponse:
        result = await self._service.forecast(request_from_proto(request))
        return response_to_proto(result)

    async def GetModelInfo(
        self,
        request: forecasting_pb2.GetModelInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> forecasting_pb2.GetModelInfoResponse:
        response = forecasting_pb2.GetModelInfoResponse()
        for manifest in self._service.model_manifests():
            response.models.append(model_info_from_manifest(manifest))
        return response


def service_definition(service: ForecastingService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        forecasting_pb2_grpc.add_SymptomForecastingServiceServicer_to_server(
            SymptomForecastingServicer(service), server
        )

    return ServiceDefinition(
        service_names=(SERVICE_NAME,), register=register, on_shutdown=service.close
    )
