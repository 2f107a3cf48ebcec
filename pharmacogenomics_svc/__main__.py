"""`python -m pharmacogenomics_svc` starts the Pharmacogenomics service."""

import sys

from common.service_main import run_service
from pharmacogenomics_svc.bootstrap import build

if __name__ == "__main__":
    sys.exit(run_service("pharmacogenomics", build))
