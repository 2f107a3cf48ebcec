"""Composition root of the orchestrator."""

from __future__ import annotations

from common.server import ServiceDefinition
from common.settings import Settings
from twin_orchestrator.server import service_definition


def build(settings: Settings) -> ServiceDefinition:
    return service_definition()
