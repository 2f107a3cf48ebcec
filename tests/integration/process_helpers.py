"""Environment for service processes started by tests (isolated dirs, given PKI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from common.launcher import (
    clean_env,
    wait_healthy,  # noqa: F401 - re-exported for tests
)
from common.launcher import start_service as _start_service

REPO_ROOT = Path(__file__).resolve().parents[2]


def service_env(tmp_path: Path, pki_dir: Path, port: int, **extra: str) -> dict[str, str]:
    return clean_env(
        NOVAMIND_HOST="127.0.0.1",
        NOVAMIND_PORT=str(port),
        NOVAMIND_HEALTH_PORT=str(port + 1000),
        NOVAMIND_TLS_DIR=str(pki_dir),
        NOVAMIND_MODEL_DIR=str(tmp_path / "models"),
        NOVAMIND_KEY_DIR=str(tmp_path / "keys"),
        NOVAMIND_AUDIT_LOG=str(tmp_path / f"audit-{port}.jsonl"),
        NOVAMIND_STORE_PATH=str(tmp_path / "store.sqlite"),
        PYTHONPATH=str(REPO_ROOT),
        **extra,
    )


def start_process(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    return _start_service(module, env, log_path, cwd=REPO_ROOT).process
