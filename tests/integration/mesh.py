"""The whole mesh in one test process: three ML services with tiny trained
models and the orchestrator, all real servers on loopback with mTLS."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from biometric_svc.bootstrap import build as build_biometric
from common.server import MeshServer, ServiceDefinition, create_server
from common.settings import Settings
from forecasting_svc.bootstrap import build as build_forecasting
from pharmacogenomics_svc.bootstrap import build as build_pharmacogenomics
from twin_orchestrator.bootstrap import build as build_orchestrator

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Tiny models: seconds to train, enough signal for the mesh to answer.
TINY_TRAINING: dict[str, list[str]] = {
    "forecasting_svc": ["--patients", "24", "--days", "120", "--quick"],
    "biometric_svc": ["--patients", "30", "--days", "120", "--quick"],
    "pharmacogenomics_svc": ["--patients", "300", "--days", "90", "--quick"],
}


def train_tiny_models(model_dir: Path, key_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVAMIND_")}
    env.update(
        NOVAMIND_KEY_DIR=str(key_dir),
        NOVAMIND_MODEL_DIR=str(model_dir),
        PYTHONPATH=str(REPO_ROOT),
        CI="true",
    )
    for module, args in TINY_TRAINING.items():
        result = subprocess.run(
            [sys.executable, "-m", f"{module}.train", *args, "--quiet"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"{module}.train failed:\n{result.stderr[-3000:]}"


@dataclass
class Mesh:
    forecasting: MeshServer
    biometric: MeshServer
    pharmacogenomics: MeshServer
    orchestrator: MeshServer

    @property
    def ml_servers(self) -> dict[str, MeshServer]:
        return {
            "forecasting": self.forecasting,
            "biometric": self.biometric,
            "pharmacogenomics": self.pharmacogenomics,
        }


def _settings(service: str, base: Path, tls_dir: Path, model_dir: Path, key_dir: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env(service, env={}),
        host="127.0.0.1",
        port=0,
        health_port=0,
        tls_dir=tls_dir,
        model_dir=model_dir,
        key_dir=key_dir,
        audit_log=base / "audit" / f"{service}.jsonl",
        store_path=base / "store" / "twin.sqlite",
        grace_seconds=1.0,
    )


def _with_interceptors(definition: ServiceDefinition, interceptors: tuple) -> ServiceDefinition:
    return dataclasses.replace(definition, interceptors=interceptors)


@asynccontextmanager
async def running_mesh(
    base: Path,
    tls_dir: Path,
    model_dir: Path,
    key_dir: Path,
    *,
    interceptors: dict[str, tuple] | None = None,
    default_deadline_seconds: float = 20.0,
) -> AsyncIterator[Mesh]:
    interceptors = interceptors or {}
    builders = {
        "forecasting": build_forecasting,
        "biometric": build_biometric,
        "pharmacogenomics": build_pharmacogenomics,
    }
    async with AsyncExitStack() as stack:
        servers: dict[str, MeshServer] = {}
        for name, build in builders.items():
            settings = _settings(name, base, tls_dir, model_dir, key_dir)
            definition = _with_interceptors(build(settings), interceptors.get(name, ()))
            server = create_server(settings, definition)
            await server.start()
            stack.push_async_callback(server.stop, 0.2)
            servers[name] = server
        orchestrator_settings = dataclasses.replace(
            _settings("orchestrator", base, tls_dir, model_dir, key_dir),
            forecasting_addr=f"localhost:{servers['forecasting'].port}",
            biometric_addr=f"localhost:{servers['biometric'].port}",
            pharmacogenomics_addr=f"localhost:{servers['pharmacogenomics'].port}",
            default_deadline_seconds=default_deadline_seconds,
        )
        orchestrator = create_server(
            orchestrator_settings, build_orchestrator(orchestrator_settings)
        )
        await orchestrator.start()
        stack.push_async_callback(orchestrator.stop, 0.2)
        yield Mesh(orchestrator=orchestrator, **servers)
