"""Symptom forecasting domain service (no gRPC here).

``forecast`` validates a request, then hands it to the micro-batcher: the
requests of one batch are turned into daily windows, forecast by each model
in one call (in a worker thread), calibrated, and assembled into results with
trend, risk periods and drivers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from common.artifacts import ArtifactError, ArtifactManifest, ArtifactStore
from common.errors import ModelUnavailableError
from forecasting_svc.batching import MicroBatcher
from forecasting_svc.domain import (
    FeatureImportance,
    ForecastPoint,
    ForecastRequest,
    ForecastResult,
    InstrumentForecast,
    ModelChoice,
    OwnHistoryCheck,
    RiskPeriod,
)
from forecasting_svc.importance import attention_importance, shap_importance
from forecasting_svc.instruments import SPECS
from forecasting_svc.models.bundle import (
    ENSEMBLE_ARTIFACT,
    TRAIN_COMMAND,
    TRANSFORMER_ARTIFACT,
    XGBOOST_ARTIFACT,
    ForecastModels,
    SeriesPrediction,
)
from forecasting_svc.models.conformal import BACKTEST_ORIGINS, values_at
from forecasting_svc.models.features import FEATURE_NAMES
from forecasting_svc.models.panel import concat_panels
from forecasting_svc.patient_window import PatientWindow, build_window
from forecasting_svc.risk import find_risk_periods, threshold_probabilities
from forecasting_svc.trend import compute_trend
from forecasting_svc.validation import WINDOW_DAYS, ForecastSpec, validate_request

_LOGGER = logging.getLogger(__name__)

#: Days of history turned into the daily window: the models' 90 days, plus room for
#: the backtests at up to 49 days before the origin that set each patient's
#: interval scale (models/conformal.py) to see 90 days as well.
SERVING_WINDOW_DAYS: Final = WINDOW_DAYS + max(BACKTEST_ORIGINS)

ENSEMBLE_MODEL: Final = ENSEMBLE_ARTIFACT
DEFAULT_MAX_BATCH: Final = 32
DEFAULT_BATCH_WAIT_SECONDS: Final = 0.005

#: Artifacts behind each choice; the ensemble artifact holds every model's calibration.
_ARTIFACTS_USED: Final = {
    ModelChoice.ENSEMBLE: (TRANSFORMER_ARTIFACT, XGBOOST_ARTIFACT, ENSEMBLE_ARTIFACT),
    ModelChoice.TRANSFORMER: (TRANSFORMER_ARTIFACT, ENSEMBLE_ARTIFACT),
    ModelChoice.XGBOOST: (XGBOOST_ARTIFACT, ENSEMBLE_ARTIFACT),
}


@dataclass(frozen=True)
class _Job:
    request: ForecastRequest
    spec: ForecastSpec


class ForecastingService:
    """Forecasts symptom instruments from history with the trained models."""

    def __init__(
        self,
        models: ForecastModels | None,
        *,
        unavailable_reason: str = "not trained",
        max_history_points: int = 20_000,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_seconds: float = DEFAULT_BATCH_WAIT_SECONDS,
    ) -> None:
        self.models = models
        self.unavailable_reason = unavailable_reason
        self.max_history_points = max_history_points
        self.batcher: MicroBatcher[_Job, ForecastResult] = MicroBatcher(
            self._run_batch,
            max_batch=max_batch,
            max_wait_seconds=max_wait_seconds,
            name="forecast",
        )

    @classmethod
    def from_store(
        cls,
        store: ArtifactStore,
        *,
        max_history_points: int = 20_000,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_seconds: float = DEFAULT_BATCH_WAIT_SECONDS,
    ) -> ForecastingService:
        """Load the latest model set; without one, forecasts answer FAILED_PRECONDITION."""
        models: ForecastModels | None = None
        reason = "not trained"
        try:
            models = ForecastModels.load(store)
        except ArtifactError as exc:
            _LOGGER.warning("forecasting model not loaded: %s", exc)
            if store.exists(ENSEMBLE_ARTIFACT):
                reason = "artifact could not be verified or loaded; see the server log"
        return cls(
            models,
            unavailable_reason=reason,
            max_history_points=max_history_points,
            max_batch=max_batch,
            max_wait_seconds=max_wait_seconds,
        )

    def require_models(self) -> ForecastModels:
        if self.models is None:
            raise ModelUnavailableError(ENSEMBLE_MODEL, TRAIN_COMMAND, self.unavailable_reason)
        return self.models

    def model_manifests(self) -> tuple[ArtifactManifest, ...]:
        if self.models is None:
            return ()
        return tuple(self.models.manifests.values())

    async def forecast(self, request: ForecastRequest) -> ForecastResult:
        spec = validate_request(request, max_history_points=self.max_history_points)
        self.require_models()
        return await self.batcher.submit(_Job(request, spec))

    async def close(self) -> None:
        await self.batcher.close()

    # --- the batched model call (runs in a worker thread) ------------------------------

    def _run_batch(self, jobs: Sequence[_Job]) -> list[ForecastResult | BaseException]:
        models = self.require_models()
        outcomes: list[ForecastResult | BaseException] = []
        windows: list[PatientWindow | None] = []
        for job in jobs:
            try:
                windows.append(build_window(job.request, SERVING_WINDOW_DAYS, WINDOW_DAYS))
            except Exception as exc:  # one malformed job must not fail the batch
                # The type only: an exception's text could quote patient values.
                _LOGGER.error("forecast window failed: %s", type(exc).__name__)
                windows.append(None)
        usable = [(job, w) for job, w in zip(jobs, windows, strict=True) if w is not None]
        predictions: list[SeriesPrediction] = []
        if usable:
            panel = concat_panels([w.panel for _, w in usable])
            last = np.array([w.n_days - 1 for _, w in usable for _ in w.instruments])
            horizons = np.array(
                [job.spec.horizon_days for job, w in usable for _ in w.instruments], np.int64
            )
            choices = [job.spec.model.value for job, w in usable for _ in w.instruments]
            predictions = models.predict(
                panel,
                np.arange(panel.n_series, dtype=np.int64),
                last.astype(np.int64),
                horizons,
                choices,
                explain=True,
                history_days=np.array([d for _, w in usable for d in w.history_days], np.int64),
            )
        cursor = 0
        for job, window in zip(jobs, windows, strict=True):
            if window is None:
                outcomes.append(RuntimeError("forecast input could not be prepared"))
                continue
            mine = predictions[cursor : cursor + len(window.instruments)]
            cursor += len(window.instruments)
            try:
                outcomes.append(self._assemble(models, job.spec, window, mine))
            except Exception as exc:
                _LOGGER.error("forecast assembly failed: %s", type(exc).__name__)
                outcomes.append(exc)
        return outcomes

    def _assemble(
        self,
        models: ForecastModels,
        spec: ForecastSpec,
        window: PatientWindow,
        predictions: Sequence[SeriesPrediction],
    ) -> ForecastResult:
        dates = window.forecast_dates(spec.horizon_days)
        forecasts = []
        for row, (instrument, prediction) in enumerate(
            zip(window.instruments, predictions, strict=True)
        ):
            spec_i = SPECS[instrument]
            tau_scores = prediction.tau_values * spec_i.max_score
            quantiles = values_at(tau_scores, spec.quantile_levels, 0.0, spec_i.max_score)
            coverage = spec.interval_coverage
            central = values_at(
                tau_scores, [(1 - coverage) / 2, 0.5, (1 + coverage) / 2], 0.0, spec_i.max_score
            )
            points = tuple(
                ForecastPoint(
                    date=dates[h],
                    horizon_day=h + 1,
                    point=float(central[h, 1]),
                    quantiles=tuple(
                        (float(level), float(value))
                        for level, value in zip(spec.quantile_levels, quantiles[h], strict=True)
                    ),
                    lower=float(central[h, 0]),
                    upper=float(central[h, 2]),
                )
                for h in range(spec.horizon_days)
            )
            risk: list[RiskPeriod] = []
            for threshold in spec_i.thresholds:
                probabilities = threshold_probabilities(tau_scores, threshold, spec_i)
                risk.extend(
                    find_risk_periods(dates, probabilities, threshold, spec.risk_probability)
                )
            offsets, scores = window.recent_scores(row)
            trend = compute_trend(offsets, scores, instrument)
            drivers: list[FeatureImportance] = []
            if prediction.shap is not None:
                drivers.extend(shap_importance(prediction.shap, FEATURE_NAMES))
            if prediction.attention is not None:
                drivers.extend(attention_importance(prediction.attention))
            forecasts.append(
                InstrumentForecast(
                    instrument=instrument,
                    points=points,
                    trend=trend,
                    risk_periods=tuple(risk),
                    feature_importance=tuple(drivers),
                    model=spec.model,
                    observed_days=window.observed_days[row],
                    own_history=_own_history_check(prediction, spec_i.max_score),
                )
            )
        used = [models.manifests[name] for name in _ARTIFACTS_USED[spec.model]]
        return ForecastResult(
            forecasts=tuple(forecasts),
            models=tuple(used),
            validation_interval_coverage=models.coverage_for(
                spec.model.value, spec.interval_coverage
            ),
        )


def _own_history_check(prediction: SeriesPrediction, max_score: float) -> OwnHistoryCheck | None:
    check = prediction.own_history
    if check is None:
        return None
    return OwnHistoryCheck(
        pairs=check.pairs,
        ensemble_mae=check.ensemble_mae * max_score,
        seasonal_naive_mae=check.seasonal_naive_mae * max_score,
        interval_scale=check.interval_scale,
        unfamiliar=check.unfamiliar,
        member_weights=check.weights,
    )
