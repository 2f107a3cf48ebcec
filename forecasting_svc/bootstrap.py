"""Composition root: settings -> artifact store -> domain service -> transport."""

from __future__ import annotations

from common.artifacts import ArtifactStore
from common.server import ServiceDefinition
from common.settings import Settings
from forecasting_svc.server import service_definition
from forecasting_svc.service import ForecastingService


def build(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore(settings.model_dir, settings.secret("artifact"))
    return service_definition(ForecastingService.from_store(store))
