"""`python -m twin_orchestrator` starts the Digital Twin orchestrator."""

import sys

from common.service_main import run_service
from twin_orchestrator.bootstrap import build

if __name__ == "__main__":
    sys.exit(run_service("orchestrator", build))
