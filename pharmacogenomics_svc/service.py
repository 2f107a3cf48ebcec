"""Pharmacogenomics domain service (no gRPC here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from common.artifacts import ArtifactError, ArtifactStore, LoadedArtifact
from common.errors import ModelUnavailableError

_LOGGER = logging.getLogger(__name__)

TRAIN_COMMAND = "python -m pharmacogenomics_svc.train"
RESPONSE_MODEL = "pharmacogenomics.response_model"


@dataclass
class PharmacogenomicsService:
    artifact: LoadedArtifact | None

    @classmethod
    def from_store(cls, store: ArtifactStore) -> PharmacogenomicsService:
        try:
            artifact = store.load(RESPONSE_MODEL, train_hint=TRAIN_COMMAND)
        except ArtifactError as exc:
            _LOGGER.warning("pharmacogenomics model not loaded: %s", exc)
            artifact = None
        return cls(artifact=artifact)

    def require_model(self) -> LoadedArtifact:
        if self.artifact is None:
            raise ModelUnavailableError(RESPONSE_MODEL, TRAIN_COMMAND)
        return self.artifact
