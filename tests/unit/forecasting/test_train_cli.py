"""`python -m forecasting_svc.train` on the documented CSV format, and --if-missing."""

from __future__ import annotations

import os
from unittest import mock

import torch

from common.artifacts import ArtifactStore
from common.datasets import cohort_to_csvs
from common.synthetic import CohortConfig, generate_cohort
from forecasting_svc.models.bundle import ENSEMBLE_ARTIFACT, ForecastModels
from forecasting_svc.train import main
from tests.unit.forecasting.tiny_models import ARTIFACT_KEY_HEX, tiny_model_dir


def test_if_missing_leaves_an_existing_model_alone(capsys):
    store = ArtifactStore(tiny_model_dir(), bytes.fromhex(ARTIFACT_KEY_HEX))
    before = store.list_versions(ENSEMBLE_ARTIFACT)
    with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
        code = main(["--if-missing", "--model-dir", str(tiny_model_dir()), "--quiet"])
    assert code == 0
    assert store.list_versions(ENSEMBLE_ARTIFACT) == before
    assert "already exists" in capsys.readouterr().out


def test_trains_from_csv_files(tmp_path, capsys):
    cohort = generate_cohort(CohortConfig(n_patients=10, n_days=80, seed=31))
    cohort_to_csvs(cohort, tmp_path / "data")
    threads = torch.get_num_threads()
    try:
        with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
            code = main(
                [
                    "--quick",
                    "--quiet",
                    "--threads",
                    "1",
                    "--data-dir",
                    str(tmp_path / "data"),
                    "--model-dir",
                    str(tmp_path / "models"),
                    "--report",
                    str(tmp_path / "report.txt"),
                ]
            )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    store = ArtifactStore(tmp_path / "models", bytes.fromhex(ARTIFACT_KEY_HEX))
    models = ForecastModels.load(store)
    assert "val_mae_phq9_h1_7" in (tmp_path / "report.txt").read_text()
    synthetic_hash = (
        ForecastModels.load(ArtifactStore(tiny_model_dir(), bytes.fromhex(ARTIFACT_KEY_HEX)))
        .manifests[ENSEMBLE_ARTIFACT]
        .training_data_sha256
    )
    assert models.manifests[ENSEMBLE_ARTIFACT].training_data_sha256 != synthetic_hash
    assert "forecasting.ensemble" in capsys.readouterr().out


def test_bad_csv_is_rejected_with_exit_code_2(tmp_path, capsys):
    (tmp_path / "symptoms.csv").write_text(
        "patient_id,observed_at,instrument,score\nP1,yesterday,phq9,4\n"
    )
    with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
        code = main(["--data-dir", str(tmp_path), "--model-dir", str(tmp_path / "m"), "--quiet"])
    assert code == 2
    error = capsys.readouterr().err
    assert "observed_at" in error and "yesterday" not in error
