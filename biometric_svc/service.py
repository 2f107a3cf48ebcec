"""Biometric–mental-health correlation domain service (no gRPC here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.artifacts import ArtifactError, ArtifactStore, LoadedArtifact
from common.errors import ModelUnavailableError

_LOGGER = logging.getLogger(__name__)

TRAIN_COMMAND = "python -m biometric_svc.train"
EARLY_WARNING_MODEL = "biometric.early_warning_lstm"


@dataclass
class BiometricService:
    artifact: LoadedArtifact | None

    @classmethod
    def from_store(cls, store: ArtifactStore) -> BiometricService:
        try:
            artifact = store.load(EARLY_WARNING_MODEL, train_hint=TRAIN_COMMAND)
        except ArtifactError as exc:
            _LOGGER.warning("biometric model not loaded: %s", exc)
            artifact = None
        return cls(artifact=artifact)

    def require_model(self) -> LoadedArtifact:
        if self.artifact is None:
            raise ModelUnavailableError(EARLY_WARNING_MODEL, TRAIN_COMMAND)
        return self.artifact
