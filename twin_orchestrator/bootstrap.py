"""Composition root of the orchestrator: settings -> clients, store, rules -> service."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from common.pseudonym import Pseudonymizer
from common.server import ServiceDefinition
from common.settings import Settings, SettingsError, check_store_url
from twin_orchestrator.downstream import MeshClients
from twin_orchestrator.postgres_store import PostgresSnapshotStore
from twin_orchestrator.prioritization import load_rules
from twin_orchestrator.retention import SnapshotPruner
from twin_orchestrator.server import service_definition
from twin_orchestrator.service import TwinService
from twin_orchestrator.sqlite_store import SqliteSnapshotStore
from twin_orchestrator.store import SnapshotStore

_LOGGER = logging.getLogger(__name__)


def _read_secret_file(path: Path, variable: str) -> str:
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"{variable}: must name a readable file") from exc


def open_store(settings: Settings) -> SnapshotStore:
    """PostgreSQL when NOVAMIND_STORE_URL(_FILE) is set, else the embedded SQLite file."""
    key = settings.secret("store")
    url = settings.store_url
    if not url and settings.store_url_file is not None:
        url = check_store_url(
            _read_secret_file(settings.store_url_file, "NOVAMIND_STORE_URL_FILE"),
            "NOVAMIND_STORE_URL_FILE",
        )
    if not url:
        return SqliteSnapshotStore(settings.store_path, key)
    password = None
    if settings.store_password_file is not None:
        password = _read_secret_file(settings.store_password_file, "NOVAMIND_STORE_PASSWORD_FILE")
    return PostgresSnapshotStore.connect(
        url, key, password=password, pool_size=settings.store_pool_size
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
    service = build_service(settings)
    definition = service_definition(service)
    if not settings.snapshot_retention_days:
        _LOGGER.info("snapshot retention off: every snapshot is kept")
        return definition
    pruner = SnapshotPruner(
        service.store,
        settings.snapshot_retention_days,
        settings.snapshot_prune_interval_seconds,
    )

    async def stop() -> None:
        # The pruner goes first: it must not run a batch on a closed store.
        await pruner.stop()
        await service.close()

    return dataclasses.replace(definition, on_start=pruner.start, on_shutdown=stop)
