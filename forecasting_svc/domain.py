"""Plain request and result types of the forecasting service (no protobuf, no gRPC)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from common.artifacts import ArtifactManifest
from common.trend import SymptomTrend as Trend
from common.trend import TrendDirection
from forecasting_svc.instruments import Instrument

_LOGGER = logging.getLogger(__name__)

# The trend types are the shared definition's (common/trend.py); re-exported for the service.
__all__ = ["Trend", "TrendDirection"]


class ModelChoice(Enum):
    """Which model produces a forecast."""

    ENSEMBLE = "ensemble"
    TRANSFORMER = "transformer"
    XGBOOST = "xgboost"


class CovariateKind(Enum):
    SLEEP_HOURS = "sleep_hours"
    STEPS = "steps"


class MedicationEventKind(Enum):
    START = "start"
    STOP = "stop"
    DOSE_CHANGE = "dose_change"


class ImportanceSource(Enum):
    SHAP = "shap"
    ATTENTION = "attention"


# Request ------------------------------------------------------------------------------
# Fields that the transport could not map (an unknown enum number, an unset or
# unrepresentable timestamp) arrive as None and are rejected by validation with
# the field's name.


@dataclass(frozen=True)
class SymptomObservation:
    instrument: Instrument | None
    observed_at: datetime | None
    score: float


@dataclass(frozen=True)
class CovariateObservation:
    kind: CovariateKind | None
    observed_at: datetime | None
    value: float


@dataclass(frozen=True)
class MedicationEvent:
    occurred_at: datetime | None
    medication: str
    kind: MedicationEventKind | None
    daily_dose_mg: float


@dataclass(frozen=True)
class ForecastRequest:
    """ForecastSymptoms input as the caller sent it; zero values mean "use the default"."""

    patient_pseudonym: str
    history: Sequence[SymptomObservation]
    covariates: Sequence[CovariateObservation] = ()
    medication_events: Sequence[MedicationEvent] = ()
    horizon_days: int = 0
    quantile_levels: Sequence[float] = ()
    interval_coverage: float = 0.0
    model: ModelChoice | None = ModelChoice.ENSEMBLE
    risk_probability: float = 0.0


# Result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastPoint:
    date: datetime
    horizon_day: int
    point: float
    quantiles: tuple[tuple[float, float], ...]  # (level, value), levels increasing
    lower: float
    upper: float


@dataclass(frozen=True)
class RiskPeriod:
    start_date: datetime
    end_date: datetime
    threshold: float
    threshold_label: str
    peak_probability: float
    peak_date: datetime


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    importance: float
    source: ImportanceSource


@dataclass(frozen=True)
class OwnHistoryCheck:
    """The ensemble scored on the patient's own history (score points; see the proto)."""

    pairs: int
    ensemble_mae: float
    seasonal_naive_mae: float
    interval_scale: float
    unfamiliar: bool
    member_weights: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class InstrumentForecast:
    instrument: Instrument
    points: tuple[ForecastPoint, ...]
    trend: Trend
    risk_periods: tuple[RiskPeriod, ...]
    feature_importance: tuple[FeatureImportance, ...]
    model: ModelChoice
    observed_days: int
    own_history: OwnHistoryCheck | None = None


@dataclass(frozen=True)
class ForecastResult:
    forecasts: tuple[InstrumentForecast, ...]
    models: tuple[ArtifactManifest, ...]
    validation_interval_coverage: float
