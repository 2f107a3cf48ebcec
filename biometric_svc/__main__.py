"""`python -m biometric_svc` starts the Biometric Correlation service."""

import sys

from biometric_svc.bootstrap import build
from common.service_main import run_service

if __name__ == "__main__":
    sys.exit(run_service("biometric", build))
