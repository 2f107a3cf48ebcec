"""Start mesh service processes on one machine and wait for their health.

Used by `make demo` and the end-to-end tests: the services run exactly as an
operator runs them (`python -m <svc>`), configured only through NOVAMIND_*.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: module, service name (settings), proto service name
MESH_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("forecasting_svc", "forecasting", "novamind.forecasting.v1.SymptomForecastingService"),
    ("biometric_svc", "biometric", "novamind.biometric.v1.BiometricCorrelationService"),
    (
        "pharmacogenomics_svc",
        "pharmacogenomics",
        "novamind.pharmacogenomics.v1.PharmacogenomicsService",
    ),
    ("twin_orchestrator", "orchestrator", "novamind.twin.v1.DigitalTwinService"),
)


@dataclass
class ServiceProcess:
    module: str
    port: int
    health_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait for the graceful exit; SIGKILL only if it overstays."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return int(self.process.returncode)


def start_service(
    module: str, env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> ServiceProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed module name, our own interpreter
            [sys.executable, "-m", module], cwd=cwd, env=env, stdout=log, stderr=log
        )
    port = int(env.get("NOVAMIND_PORT", "0"))
    health_port = int(env.get("NOVAMIND_HEALTH_PORT", str(port + 1000)))
    return ServiceProcess(module, port, health_port, process, log_path)


def wait_healthy(
    health_port: int,
    service: str = "",
    timeout: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll the plaintext health port until SERVING (loading models can take seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before serving")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"health port {health_port} not SERVING after {timeout:.0f}s")


def clean_env(**values: str) -> dict[str, str]:
    """The current environment without NOVAMIND_/OTEL_ settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOVAMIND_", "OTEL_"))}
    env.update(values)
    return env
