"""One tiny trained early-warning model per test process, shared by unit and integration tests.

It is trained once through the real CLI (`python -m biometric_svc.train
--quick`: 30 patients x 120 days, 2 epochs) into a temporary signed store; the
training takes a few seconds.
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

ARTIFACT_KEY_HEX = "3c" * 32
TRAINING_SEED = 4


@functools.cache
def tiny_model_dir() -> Path:
    from biometric_svc.train import main

    directory = Path(tempfile.mkdtemp(prefix="novamind-biometric-models-"))
    atexit.register(shutil.rmtree, directory, True)
    threads = torch.get_num_threads()
    try:
        with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
            code = main(
                ["--quick", "--quiet", "--model-dir", str(directory), "--seed", str(TRAINING_SEED)]
            )
    finally:
        torch.set_num_threads(threads)
    if code != 0:
        raise RuntimeError(f"tiny biometric training failed with exit code {code}")
    return directory


def tiny_store() -> ArtifactStore:
    return ArtifactStore(tiny_model_dir(), bytes.fromhex(ARTIFACT_KEY_HEX))
