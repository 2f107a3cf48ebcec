"""The training CLI: the shared tiny model was trained through it; here its other paths."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np

from biometric_svc.early_warning import ARTIFACT_NAME, EarlyWarningModel
from biometric_svc.features import N_FEATURES, WINDOW_DAYS
from biometric_svc.labels import UNKNOWN_LABEL
from biometric_svc.train import main
from biometric_svc.training_data import csv_training_set, synthetic_training_set
from common.artifacts import ArtifactStore
from common.datasets import cohort_to_csvs
from common.synthetic import CohortConfig, deterioration_labels, generate_cohort
from tests.unit.biometric.tiny_model import ARTIFACT_KEY_HEX, tiny_model_dir, tiny_store


def test_quick_training_wrote_one_signed_version():
    store = tiny_store()
    assert len(store.list_versions(ARTIFACT_NAME)) == 1
    manifest = store.load(ARTIFACT_NAME).manifest
    assert manifest.params["data"].startswith("synthetic cohort: 30 patients x 120 days")
    assert manifest.params["epochs"] == 2


def test_if_missing_does_nothing_when_a_model_exists(capsys):
    with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
        code = main(["--if-missing", "--quiet", "--model-dir", str(tiny_model_dir())])
    assert code == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(tiny_store().list_versions(ARTIFACT_NAME)) == 1


def test_synthetic_labels_are_the_cohort_truth_except_the_unknowable_tail():
    cohort = generate_cohort(CohortConfig(n_patients=5, n_days=80, seed=2))
    training = synthetic_training_set(cohort)
    truth = deterioration_labels(cohort).label.to_numpy().reshape(5, 80)
    for patient, expected in zip(training.patients, truth, strict=True):
        assert (patient.labels[:73] == expected[:73]).all()
        tail = patient.labels[73:]
        assert ((tail == 1) | (tail == UNKNOWN_LABEL)).all()


def test_csv_data_become_patients_with_phq9_labels(tmp_path):
    cohort = generate_cohort(CohortConfig(n_patients=4, n_days=90, seed=6))
    cohort_to_csvs(cohort, tmp_path)
    training = csv_training_set(tmp_path)
    assert len(training.patients) == 4
    for patient in training.patients:
        assert patient.biometrics.shape[1] == 6 and patient.indicators.shape[1] == 4
        assert patient.biometrics.shape[0] == patient.labels.shape[0]
        assert np.isfinite(patient.biometrics).mean() > 0.8
    assert len(training.sha256) == 64


def test_trains_end_to_end_from_csv_files(tmp_path):
    cohort = generate_cohort(CohortConfig(n_patients=16, n_days=120, seed=8))
    cohort_to_csvs(cohort, tmp_path / "data")
    model_dir = tmp_path / "models"
    with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
        data_dir = str(tmp_path / "data")
        code = main(["--data-dir", data_dir, "--quick", "--quiet", "--model-dir", str(model_dir)])
    assert code == 0
    store = ArtifactStore(model_dir, bytes.fromhex(ARTIFACT_KEY_HEX))
    artifact = store.load(ARTIFACT_NAME)
    assert artifact.manifest.params["data"] == "16 patients from data/ (PHQ-9 onset labels)"
    assert artifact.manifest.training_data_sha256 == csv_training_set(tmp_path / "data").sha256
    model = EarlyWarningModel.from_artifact(artifact)
    windows = np.zeros((3, WINDOW_DAYS, N_FEATURES), dtype=np.float32)
    probability = model.score(windows).probability
    assert probability.shape == (3,) and np.all((probability > 0) & (probability < 1))
