"""Shared fixtures: a real dev PKI, settings for loopback servers, mTLS channels,
a real PostgreSQL server (started once per session) with a fresh database per test."""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from common.certs import generate_dev_pki
from common.channels import mesh_channel
from common.server import MeshServer, ServiceDefinition, create_server
from common.settings import Settings
from tests.postgres_server import PostgresServer, start_postgres, stop_postgres


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    generate_dev_pki(directory)
    return directory


@pytest.fixture
def make_settings(pki_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    def factory(service: str, **overrides: object) -> Settings:
        base = Settings.from_env(service, env={})
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "port": 0,
            "health_port": 0,
            "tls_dir": pki_dir,
            "model_dir": tmp_path / "models",
            "key_dir": tmp_path / "keys",
            "audit_log": tmp_path / "audit" / f"{service}.jsonl",
            "store_path": tmp_path / "store" / "twin.sqlite",
            "grace_seconds": 2.0,
        }
        values.update(overrides)
        return dataclasses.replace(base, **values)  # type: ignore[arg-type]

    return factory


@asynccontextmanager
async def running(settings: Settings, definition: ServiceDefinition) -> AsyncIterator[MeshServer]:
    """Start a real server on loopback free ports; stop it afterwards."""
    mesh = create_server(settings, definition)
    await mesh.start()
    try:
        yield mesh
    finally:
        await mesh.stop(grace=0.5)


def channel_to(
    mesh_or_port: MeshServer | int, tls_dir: Path, identity: str = "operator"
) -> grpc.aio.Channel:
    port = mesh_or_port if isinstance(mesh_or_port, int) else mesh_or_port.port
    return mesh_channel(f"localhost:{port}", tls_dir=tls_dir, identity=identity)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server(pki_dir: Path) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (TLS on, certificate of the test PKI)."""
    server = start_postgres(
        ssl_cert=pki_dir / "pharmacogenomics.pem", ssl_key=pki_dir / "pharmacogenomics-key.pem"
    )
    try:
        yield server
    finally:
        stop_postgres(server)


@dataclasses.dataclass(frozen=True)
class PostgresDatabase:
    """A fresh database on the test server: its URL (no password) and the password file."""

    server: PostgresServer
    name: str
    url: str
    password: str
    password_file: Path

    def admin_url(self) -> str:
        return self.server.admin_url(self.name)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer, tmp_path: Path) -> PostgresDatabase:
    password = secrets.token_hex(12)
    name, role = postgres_server.create_database(password)
    password_file = tmp_path / "store-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return PostgresDatabase(
        server=postgres_server,
        name=name,
        url=postgres_server.url(name, user=role),
        password=password,
        password_file=password_file,
    )
