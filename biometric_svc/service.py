"""Biometric–mental-health correlation domain service (no gRPC here).

Correlations, anomalies and the monitoring plan are statistics on the
request's own data and need no trained model. Only the early warning needs
the LSTM artifact; without it AnalyzeCorrelations still answers, and its
early warning says it is unavailable (``insufficient_data`` false, no level,
the detail naming the train command). No RPC fails because the LSTM is
missing; ``require_model`` is there for callers that cannot do without it.

CPU-bound work runs in a worker thread so the event loop keeps serving; every
RPC goes through ``PatientAnalysis``, so a request's data is aggregated once
and correlated once whichever RPC asks (AnalyzePatient asks for all three).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from biometric_svc.aggregation import DailySeries
from biometric_svc.anomalies import detect_anomalies
from biometric_svc.domain import (
    AnomalyReport,
    AnomalyRequest,
    CorrelationReport,
    CorrelationRequest,
    EarlyWarning,
    KeyIndicator,
    MonitoringPlan,
    MonitoringPlanRequest,
    PatientAnalysisReport,
    PatientAnalysisRequest,
)
from biometric_svc.early_warning import (
    ARTIFACT_NAME,
    TRAIN_COMMAND,
    EarlyWarningModel,
    insufficient_warning,
    unavailable_warning,
)
from biometric_svc.monitoring_plan import monitoring_plan
from biometric_svc.patient_analysis import PatientAnalysis
from biometric_svc.validation import (
    DEFAULT_FDR_ALPHA,
    DEFAULT_LOOKBACK_DAYS,
    resolve_baseline_window_days,
    resolve_fdr_alpha,
    resolve_lookback_days,
    resolve_max_lag_days,
    validate_biometrics,
    validate_indicators,
    validate_pseudonym,
)
from common.artifacts import ArtifactError, ArtifactManifest, ArtifactStore
from common.errors import ModelUnavailableError, ValidationCollector

_LOGGER = logging.getLogger(__name__)

EARLY_WARNING_MODEL = ARTIFACT_NAME
__all__ = ["EARLY_WARNING_MODEL", "TRAIN_COMMAND", "BiometricService"]


@dataclass
class BiometricService:
    early_warning: EarlyWarningModel | None
    #: Why the early warning is unavailable when it is ("not trained", "not loadable").
    unavailable_reason: str = "not trained"

    @classmethod
    def from_store(cls, store: ArtifactStore) -> BiometricService:
        try:
            artifact = store.load(EARLY_WARNING_MODEL, train_hint=TRAIN_COMMAND)
            model = EarlyWarningModel.from_artifact(artifact)
        except ArtifactError as exc:
            trained = store.exists(EARLY_WARNING_MODEL)
            _LOGGER.warning("early-warning model not loaded: %s", exc)
            return cls(
                early_warning=None, unavailable_reason="not loadable" if trained else "not trained"
            )
        _LOGGER.info(
            "early-warning model loaded",
            extra={"model": EARLY_WARNING_MODEL, "version": artifact.manifest.version},
        )
        return cls(early_warning=model)

    def require_model(self) -> EarlyWarningModel:
        if self.early_warning is None:
            raise ModelUnavailableError(
                EARLY_WARNING_MODEL, TRAIN_COMMAND, reason=self.unavailable_reason
            )
        return self.early_warning

    def model_manifests(self) -> tuple[ArtifactManifest, ...]:
        if self.early_warning is None or self.early_warning.manifest is None:
            return ()
        return (self.early_warning.manifest,)

    # --- AnalyzePatient: the three analyses in one pass ------------------------------

    async def analyze_patient(self, request: PatientAnalysisRequest) -> PatientAnalysisReport:
        """Correlations (with the early warning), anomalies and the monitoring plan at once.

        The data is aggregated once and correlated once; the plan rests on the
        same correlations as the report (same lookback and FDR alpha).
        """
        collector = ValidationCollector()
        validate_pseudonym(collector, request.patient_pseudonym)
        validate_biometrics(collector, request.biometrics)
        validate_indicators(collector, request.indicators)
        lookback = resolve_lookback_days(collector, request.lookback_days)
        max_lag = resolve_max_lag_days(collector, request.max_lag_days)
        alpha = resolve_fdr_alpha(collector, request.fdr_alpha)
        window = resolve_baseline_window_days(collector, request.baseline_window_days)
        collector.raise_if_any()
        return await asyncio.to_thread(self._patient, request, lookback, max_lag, alpha, window)

    def _patient(
        self,
        request: PatientAnalysisRequest,
        lookback: int,
        max_lag: int,
        alpha: float,
        baseline_window: int,
    ) -> PatientAnalysisReport:
        analysis = PatientAnalysis.of(request.biometrics, request.indicators)
        return PatientAnalysisReport(
            correlations=self._correlation_report(analysis, lookback, max_lag, alpha),
            anomalies=self._anomaly_report(analysis, baseline_window),
            monitoring_plan=self._plan_report(analysis, lookback, max_lag, alpha),
        )

    # --- AnalyzeCorrelations ------------------------------------------------------------

    async def analyze_correlations(self, request: CorrelationRequest) -> CorrelationReport:
        collector = ValidationCollector()
        validate_pseudonym(collector, request.patient_pseudonym)
        validate_biometrics(collector, request.biometrics)
        validate_indicators(collector, request.indicators)
        lookback = resolve_lookback_days(collector, request.lookback_days)
        max_lag = resolve_max_lag_days(collector, request.max_lag_days)
        alpha = resolve_fdr_alpha(collector, request.fdr_alpha)
        collector.raise_if_any()
        return await asyncio.to_thread(self._analyze, request, lookback, max_lag, alpha)

    def _analyze(
        self, request: CorrelationRequest, lookback: int, max_lag: int, alpha: float
    ) -> CorrelationReport:
        analysis = PatientAnalysis.of(request.biometrics, request.indicators)
        return self._correlation_report(analysis, lookback, max_lag, alpha)

    def _correlation_report(
        self, analysis: PatientAnalysis, lookback: int, max_lag: int, alpha: float
    ) -> CorrelationReport:
        found = analysis.correlations(lookback, max_lag, alpha)
        return CorrelationReport(
            correlations=found.correlations,
            key_indicators=found.key_indicators,
            coverage=found.coverage,
            reliability=found.reliability,
            early_warning=self._early_warning(analysis.series, found.key_indicators),
            models=self.model_manifests(),
        )

    def _early_warning(self, series: DailySeries, keys: tuple[KeyIndicator, ...]) -> EarlyWarning:
        if self.early_warning is None:
            return unavailable_warning(self.unavailable_reason)
        if series.days == 0:
            return insufficient_warning("no biometric samples")
        return self.early_warning.warn(series, keys)

    # --- DetectAnomalies ----------------------------------------------------------------

    async def detect_anomalies(self, request: AnomalyRequest) -> AnomalyReport:
        collector = ValidationCollector()
        validate_pseudonym(collector, request.patient_pseudonym)
        validate_biometrics(collector, request.biometrics)
        window = resolve_baseline_window_days(collector, request.baseline_window_days)
        collector.raise_if_any()
        return await asyncio.to_thread(self._anomalies, request, window)

    def _anomalies(self, request: AnomalyRequest, window: int) -> AnomalyReport:
        return self._anomaly_report(PatientAnalysis.of(request.biometrics), window)

    @staticmethod
    def _anomaly_report(analysis: PatientAnalysis, window: int) -> AnomalyReport:
        series = analysis.biometric_series()
        if series.days == 0:
            return AnomalyReport((), (), (), insufficient_data=True)
        return detect_anomalies(series.biometrics, series.dates, window)

    # --- RecommendMonitoringPlan --------------------------------------------------------

    async def recommend_monitoring_plan(self, request: MonitoringPlanRequest) -> MonitoringPlan:
        collector = ValidationCollector()
        validate_pseudonym(collector, request.patient_pseudonym)
        validate_biometrics(collector, request.biometrics)
        validate_indicators(collector, request.indicators)
        max_lag = resolve_max_lag_days(collector, request.max_lag_days)
        collector.raise_if_any()
        return await asyncio.to_thread(self._plan, request, max_lag)

    def _plan(self, request: MonitoringPlanRequest, max_lag: int) -> MonitoringPlan:
        analysis = PatientAnalysis.of(request.biometrics, request.indicators)
        return self._plan_report(analysis, DEFAULT_LOOKBACK_DAYS, max_lag, DEFAULT_FDR_ALPHA)

    @staticmethod
    def _plan_report(
        analysis: PatientAnalysis, lookback: int, max_lag: int, alpha: float
    ) -> MonitoringPlan:
        found = analysis.correlations(lookback, max_lag, alpha)
        return monitoring_plan(
            found.window.biometrics,
            found.correlations,
            found.key_indicators,
            found.coverage,
            found.reliability,
        )
