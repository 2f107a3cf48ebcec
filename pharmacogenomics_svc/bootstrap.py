"""Composition root: settings -> model store and knowledge base -> domain service -> transport."""

from __future__ import annotations

from common.artifacts import ArtifactStore
from common.server import ServiceDefinition
from common.settings import Settings
from pharmacogenomics_svc.knowledge_base import default_knowledge_base
from pharmacogenomics_svc.server import service_definition
from pharmacogenomics_svc.service import PharmacogenomicsService


def build(settings: Settings) -> ServiceDefinition:
    store = ArtifactStore(settings.model_dir, settings.secret("artifact"))
    # A broken knowledge base raises here, at start-up, rather than on the first request.
    service = PharmacogenomicsService.from_store(store, default_knowledge_base())
    return service_definition(service)
