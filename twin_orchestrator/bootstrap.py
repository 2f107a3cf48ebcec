"""Composition root of the orchestrator: settings -> clients, store, rules -> service."""

from __future__ import annotations

from common.pseudonym import Pseudonymizer
from common.server import ServiceDefinition
from common.settings import Settings, SettingsError
from twin_orchestrator.downstream import MeshClients
from twin_orchestrator.postgres_store import PostgresSnapshotStore
from twin_orchestrator.prioritization import load_rules
from twin_orchestrator.server import service_definition
from twin_orchestrator.service import TwinService
from twin_orchestrator.sqlite_store import SqliteSnapshotStore
from twin_orchestrator.store import SnapshotStore


def open_store(settings: Settings) -> SnapshotStore:
    """PostgreSQL when NOVAMIND_STORE_URL is set, else the embedded SQLite file."""
    key = settings.secret("store")
    if not settings.store_url:
        return SqliteSnapshotStore(settings.store_path, key)
    password = None
    if settings.store_password_file is not None:
        try:
            password = settings.store_password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise SettingsError("NOVAMIND_STORE_PASSWORD_FILE: must name a readable file") from exc
    return PostgresSnapshotStore.connect(
        settings.store_url, key, password=password, pool_size=settings.store_pool_size
    )


def build_service(settings: Settings) -> TwinService:
    return TwinService(
        clients=MeshClients.connect(settings),
        store=open_store(settings),
        pseudonymizer=Pseudonymizer(settings.secret("pseudonym")),
        rules=load_rules(),
        default_budget_seconds=settings.default_deadline_seconds,
        max_points=settings.max_history_points,
    )


def build(settings: Settings) -> ServiceDefinition:
    return service_definition(build_service(settings))
