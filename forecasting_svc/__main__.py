"""`python -m forecasting_svc` starts the Symptom Forecasting service."""

import sys

from common.service_main import run_service
from forecasting_svc.bootstrap import build

if __name__ == "__main__":
    sys.exit(run_service("forecasting", build))
