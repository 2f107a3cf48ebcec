"""Composition root: settings -> artifact store -> domain service -> transport."""

from __future__ import annotations

from biometric_svc.server import service_definition
from biometric_svc.service import BiometricService
from common.artifacts import ArtifactStore
from common.server import ServiceDefinition
from common.settings import Settings


def build(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore(settings.model_dir, settings.secret("artifact"))
    return service_definition(BiometricService.from_store(store))
