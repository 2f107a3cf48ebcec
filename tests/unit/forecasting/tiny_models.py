"""One tiny trained model set per test process, shared by the unit and integration tests.

It is trained once through the real CLI (`python -m forecasting_svc.train
--quick`) into a temporary signed store; the training takes a few seconds.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import torch

from common.artifacts import ArtifactStore
from common.synthetic import CohortConfig, generate_cohort

ARTIFACT_KEY_HEX = "5a" * 32
TRAINING_SEED = 3
#: The quick training uses this cohort (the CLI caps --quick at 24 x 120).
TRAINING_COHORT = CohortConfig(n_patients=24, n_days=120, seed=TRAINING_SEED)


@functools.cache
def tiny_model_dir() -> Path:
    from forecasting_svc.train import main

    directory = Path(tempfile.mkdtemp(prefix="novamind-forecast-models-"))
    atexit.register(shutil.rmtree, directory, True)
    threads = torch.get_num_threads()
    try:
        with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
            code = main(
                [
                    "--quick",
                    "--quiet",
                    "--model-dir",
                    str(directory),
                    "--threads",
                    "1",
                    "--seed",
                    str(TRAINING_SEED),
                    "--patients",
                    str(TRAINING_COHORT.n_patients),
                    "--days",
                    str(TRAINING_COHORT.n_days),
                ]
            )
    finally:
        torch.set_num_threads(threads)
    if code != 0:
        raise RuntimeError(f"tiny forecasting training failed with exit code {code}")
    return directory


def tiny_store() -> ArtifactStore:
    return ArtifactStore(tiny_model_dir(), bytes.fromhex(ARTIFACT_KEY_HEX))


@functools.cache
def training_cohort_symptoms_hash() -> str:
    from common.datasets import sha256_of_frames

    cohort = generate_cohort(TRAINING_COHORT)
    return sha256_of_frames(cohort.symptoms, cohort.biometrics, cohort.medications)
