"""`make demo`: run the whole mesh on this machine, then stop it cleanly.

Starts the four services over mutual TLS on their default ports, waits until
each reports SERVING, prints the grpcurl commands an operator would use, and
stops every process with SIGTERM, checking that none is left behind.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from common.launcher import MESH_SERVICES, ServiceProcess, clean_env, start_service, wait_healthy
from common.settings import DEFAULT_PORTS

_LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = REPO_ROOT / "var" / "logs"


def _grpcurl_hint(port: int, service: str) -> str:
    certs = "-cacert var/certs/ca.pem -cert var/certs/operator.pem -key var/certs/operator-key.pem"
    return "\n".join(
        [
            f"  .venv/bin/grpcurl {certs} localhost:{port} list",
            f"  .venv/bin/grpcurl {certs} localhost:{port} describe {service}",
            f'  .venv/bin/grpcurl {certs} -d \'{{"service":"{service}"}}\' '
            f"localhost:{port} grpc.health.v1.Health/Check",
        ]
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started: list[ServiceProcess] = []
    try:
        for module, name, proto_service in MESH_SERVICES:
            port = DEFAULT_PORTS[name]
            env = clean_env(
                NOVAMIND_HOST="127.0.0.1",
                NOVAMIND_PORT=str(port),
                NOVAMIND_LOG_FORMAT="json",
                PYTHONPATH=str(REPO_ROOT),
            )
            proc = start_service(module, env, LOG_DIR / f"{name}.log", cwd=REPO_ROOT)
            started.append(proc)
            wait_healthy(proc.health_port, proto_service, process=proc.process)
            print(f"✔ {name:<17} SERVING  mTLS :{port}  health :{proc.health_port}")
        print("\nTry the mesh with the operator certificate:")
        for _module, name, proto_service in MESH_SERVICES:
            print(f"\n{name}:\n{_grpcurl_hint(DEFAULT_PORTS[name], proto_service)}")
    except (TimeoutError, RuntimeError) as exc:
        print(f"demo failed: {exc}; see {LOG_DIR}", file=sys.stderr)
        return 1
    finally:
        codes = [proc.stop() for proc in reversed(started)]
        alive = [p.module for p in started if p.process.poll() is None]
        left = ", ".join(alive) or "none"
        print(f"\nstopped {len(started)} services (exit codes {codes}); left running: {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
