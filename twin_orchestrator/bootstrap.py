"""Composition root of the orchestrator: settings -> clients, store, rules -> service."""

from __future__ import annotations

from common.pseudonym import Pseudonymizer
from common.server import ServiceDefinition
from common.settings import Settings
from twin_orchestrator.downstream import MeshClients
from twin_orchestrator.prioritization import load_rules
from twin_orchestrator.server import service_definition
from twin_orchestrator.service import TwinService
from twin_orchestrator.store import SnapshotStore


def build_service(settings: Settings) -> TwinService:
    return TwinService(
        clients=MeshClients.connect(settings),
        store=SnapshotStore(settings.store_path, settings.secret("store")),
        pseudonymizer=Pseudonymizer(settings.secret("pseudonym")),
        rules=load_rules(),
        default_budget_seconds=settings.default_deadline_seconds,
        max_points=settings.max_history_points,
    )


def build(settings: Settings) -> ServiceDefinition:
    return service_definition(build_service(settings))
