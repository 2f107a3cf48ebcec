"""Composition root: settings -> artifact store -> domain service -> transport."""

from __future__ import annotations

import os

import torch

from biometric_svc.server import service_definition
from biometric_svc.service import BiometricService
from common.artifacts import ArtifactStore
from common.server import ServiceDefinition
from common.settings import Settings

#: Intra-op threads of one inference: one window is tiny, and extra OpenMP threads spin
#: against the other worker processes (NOVAMIND_WORKERS) on the same cores.
TORCH_THREADS = 1


def build(settings: Settings) -> ServiceDefinition:
    torch.set_num_threads(min(TORCH_THREADS, os.cpu_count() or 1))
    store = ArtifactStore(settings.model_dir, settings.secret("artifact"))
    return service_definition(BiometricService.from_store(store))
