"""Plain domain types of the biometric service (no protobuf, no gRPC).

Inputs arrive column-wise (one numpy array per field) because a request may
carry hundreds of thousands of minute-level samples; results are small frozen
dataclasses. Metric names are those of ``common.biometric_metrics.METRICS`` and
instrument names those of ``common.synthetic.INSTRUMENTS``, which are also the
column names of the daily frames.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from common.artifacts import ArtifactManifest

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Sample granularities; a sample's ``granularity`` indexes this tuple.
GRANULARITIES: Final = ("minute", "hour", "day")
#: Code of a metric, instrument or granularity the caller named but this service does not know.
UNKNOWN: Final = -1

#: Human names used in readings and reasons.
METRIC_LABELS: Final[dict[str, str]] = {
    "resting_heart_rate": "resting heart rate",
    "hrv_rmssd": "HRV (RMSSD)",
    "sleep_duration": "sleep duration",
    "sleep_efficiency": "sleep efficiency",
    "steps": "step count",
    "active_minutes": "active minutes",
    "heart_rate": "heart rate",
    "hrv_sdnn": "HRV (SDNN)",
}
INSTRUMENT_LABELS: Final[dict[str, str]] = {
    "phq9": "PHQ-9",
    "gad7": "GAD-7",
    "mood": "mood",
    "anxiety": "anxiety",
}
#: +1 when a higher score means worse symptoms, -1 when higher is better (mood).
INSTRUMENT_WORSENING: Final[dict[str, int]] = {"phq9": 1, "gad7": 1, "mood": -1, "anxiety": 1}


@dataclass(frozen=True)
class BiometricSamples:
    """Biometric samples as parallel arrays, in request order.

    metric / granularity: index into METRICS / GRANULARITIES, or UNKNOWN.
    measured_at_ns: UTC nanoseconds since the epoch (0 when unset).
    """

    metric: IntArray
    measured_at_ns: IntArray
    value: FloatArray
    granularity: IntArray

    def __len__(self) -> int:
        return int(self.metric.shape[0])

    @classmethod
    def empty(cls) -> BiometricSamples:
        return cls(
            metric=np.zeros(0, np.int64),
            measured_at_ns=np.zeros(0, np.int64),
            value=np.zeros(0, np.float64),
            granularity=np.zeros(0, np.int64),
        )


@dataclass(frozen=True)
class IndicatorObservations:
    """Mental-health indicator scores as parallel arrays, in request order.

    instrument: index into INSTRUMENTS, or UNKNOWN.
    observed_at_ns: UTC nanoseconds since the epoch (0 when unset).
    """

    instrument: IntArray
    observed_at_ns: IntArray
    score: FloatArray

    def __len__(self) -> int:
        return int(self.instrument.shape[0])

    @classmethod
    def empty(cls) -> IndicatorObservations:
        return cls(
            instrument=np.zeros(0, np.int64),
            observed_at_ns=np.zeros(0, np.int64),
            score=np.zeros(0, np.float64),
        )


# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationRequest:
    patient_pseudonym: str
    biometrics: BiometricSamples
    indicators: IndicatorObservations
    lookback_days: int = 0  # 0 = default
    max_lag_days: int = 0  # 0 = default
    fdr_alpha: float = 0.0  # 0 = default


@dataclass(frozen=True)
class AnomalyRequest:
    patient_pseudonym: str
    biometrics: BiometricSamples
    baseline_window_days: int = 0  # 0 = default


@dataclass(frozen=True)
class MonitoringPlanRequest:
    patient_pseudonym: str
    biometrics: BiometricSamples
    indicators: IndicatorObservations
    max_lag_days: int = 0  # 0 = default


@dataclass(frozen=True)
class PatientAnalysisRequest:
    """Everything the three analyses need, for one pass over the data (AnalyzePatient)."""

    patient_pseudonym: str
    biometrics: BiometricSamples
    indicators: IndicatorObservations
    lookback_days: int = 0  # 0 = default
    max_lag_days: int = 0  # 0 = default
    fdr_alpha: float = 0.0  # 0 = default
    baseline_window_days: int = 0  # 0 = default


# --- results ----------------------------------------------------------------------------


class Reliability(enum.Enum):
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    INSUFFICIENT = "insufficient"


class RiskLevel(enum.Enum):
    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    CRITICAL = "critical"


class AnomalySeverity(enum.Enum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"


class DetectionMethod(enum.Enum):
    ROBUST_Z = "robust_z"
    ISOLATION_FOREST = "isolation_forest"
    BOTH = "both"


class MonitoringFrequency(enum.Enum):
    CONTINUOUS = "continuous"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class LaggedCorrelation:
    metric: str
    indicator: str
    lag_days: int
    pearson_r: float
    spearman_r: float
    n: int
    p_value: float
    q_value: float
    significant: bool
    reading: str
    #: (lag_days, pearson_r) for every lag with enough pairs.
    profile: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class KeyIndicator:
    rank: int
    metric: str
    indicator: str
    lead_days: int
    strength: float
    reading: str
    #: Sign of the metric's change that precedes worsening (+1 rises, -1 falls).
    worsening_direction: int


@dataclass(frozen=True)
class MetricCoverage:
    metric: str
    days_with_data: int
    fraction: float


@dataclass(frozen=True)
class DataCoverage:
    window_days: int
    indicator_days: int
    paired_days: int
    metrics: tuple[MetricCoverage, ...]


@dataclass(frozen=True)
class WarningDriver:
    metric: str
    date: dt.date
    weight: float
    description: str


@dataclass(frozen=True)
class EarlyWarning:
    level: RiskLevel | None
    probability: float
    expected_lead_days: int
    drivers: tuple[WarningDriver, ...]
    insufficient_data: bool
    detail: str
    #: The recent data lie outside what the model was trained on (distribution_shift.py).
    out_of_distribution: bool = False
    out_of_distribution_reason: str = ""
    #: Largest distance beyond the training range, in units of the range's width.
    training_distance: float = 0.0
    #: Metrics the patient supplied that the model takes no input from (early_warning.py).
    unused_metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorrelationReport:
    correlations: tuple[LaggedCorrelation, ...]
    key_indicators: tuple[KeyIndicator, ...]
    coverage: DataCoverage
    reliability: Reliability
    early_warning: EarlyWarning
    models: tuple[ArtifactManifest, ...] = field(default=())


@dataclass(frozen=True)
class MetricDeviation:
    metric: str
    value: float
    baseline_median: float
    robust_z: float


@dataclass(frozen=True)
class Anomaly:
    date: dt.date
    deviations: tuple[MetricDeviation, ...]
    score: float
    severity: AnomalySeverity
    method: DetectionMethod


@dataclass(frozen=True)
class MissingSpan:
    metric: str
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class MetricBaseline:
    metric: str
    median: float  # natural units
    mad: float  # natural units
    days: int
    #: Median and MAD on the scale z-scores use: log1p for right-skewed metrics
    #: (HRV, steps, active minutes), natural units otherwise.
    scale_median: float = 0.0
    scale_mad: float = 0.0


@dataclass(frozen=True)
class AnomalyReport:
    anomalies: tuple[Anomaly, ...]
    missing: tuple[MissingSpan, ...]
    baselines: tuple[MetricBaseline, ...]
    insufficient_data: bool


@dataclass(frozen=True)
class MonitoredMetric:
    priority: int
    metric: str
    frequency: MonitoringFrequency
    alert_below: float | None
    alert_above: float | None
    reason: str


@dataclass(frozen=True)
class MonitoringPlan:
    metrics: tuple[MonitoredMetric, ...]
    summary: str


@dataclass(frozen=True)
class PatientAnalysisReport:
    correlations: CorrelationReport
    anomalies: AnomalyReport
    monitoring_plan: MonitoringPlan
