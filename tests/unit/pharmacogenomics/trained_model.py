"""One small response/side-effect model per test session, and a fresh held-out cohort.

Training takes a few seconds, so it happens once per process and every test
that needs a model writes this one into its own signed store. The held-out
cohort has another seed: none of its patients was seen in training.
"""

from __future__ import annotations

import functools
from pathlib import Path

from common.artifacts import ArtifactManifest, ArtifactStore
from common.synthetic import Cohort, CohortConfig, generate_cohort
from pharmacogenomics_svc.knowledge_base import default_knowledge_base
from pharmacogenomics_svc.models.pipeline import FittedModels, fit_and_evaluate
from pharmacogenomics_svc.models.training_data import TrainingSet, from_cohort
from pharmacogenomics_svc.train import save_models

# Carriers of the genotypes with an effect are a few percent of patients, so even the test model
# needs tens of thousands of trials; 30 days keep generation fast (most first trials start by then).
TRAINING_COHORT = CohortConfig(n_patients=30_000, n_days=30, seed=3)
HELD_OUT_COHORT = CohortConfig(n_patients=6_000, n_days=30, seed=1234)
SEED = 3


@functools.lru_cache(maxsize=1)
def training_set() -> TrainingSet:
    return from_cohort(generate_cohort(TRAINING_COHORT), default_knowledge_base())


@functools.lru_cache(maxsize=1)
def fitted_models() -> FittedModels:
    return fit_and_evaluate(training_set(), default_knowledge_base(), seed=SEED)


@functools.lru_cache(maxsize=1)
def held_out_cohort() -> Cohort:
    return generate_cohort(HELD_OUT_COHORT)


def write_model(model_dir: Path, key: bytes) -> ArtifactManifest:
    """Save the session's model as a signed artifact under ``model_dir``."""
    return save_models(ArtifactStore(model_dir, key), fitted_models(), training_set())
