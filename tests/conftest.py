"""Shared fixtures: a real dev PKI, settings for loopback servers, mTLS channels."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from common.certs import generate_dev_pki
from common.channels import mesh_channel
from common.server import MeshServer, ServiceDefinition, create_server
from common.settings import Settings


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
