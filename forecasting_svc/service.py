"""Symptom forecasting domain service (no gRPC here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.artifacts import ArtifactError, ArtifactStore, LoadedArtifact
from common.errors import ModelUnavailableError

_LOGGER = logging.getLogger(__name__)

TRAIN_COMMAND = "python -m forecasting_svc.train"
ENSEMBLE_MODEL = "forecasting.ensemble"


@dataclass
class ForecastingService:
    """Forecasts symptom instruments from history with the trained models."""

    artifact: LoadedArtifact | None

    @classmethod
    def from_store(cls, store: ArtifactStore) -> ForecastingService:
        try:
            artifact = store.load(ENSEMBLE_MODEL, train_hint=TRAIN_COMMAND)
        except ArtifactError as exc:
            _LOGGER.warning("forecasting model not loaded: %s", exc)
            artifact = None
        return cls(artifact=artifact)

    def require_model(self) -> LoadedArtifact:
        if self.artifact is None:
            raise ModelUnavailableError(ENSEMBLE_MODEL, TRAIN_COMMAND)
        return self.artifact

    async def forecast(self) -> None:
        self.require_model()
        raise ModelUnavailableError(ENSEMBLE_MODEL, TRAIN_COMMAND, "forecasting not enabled")
