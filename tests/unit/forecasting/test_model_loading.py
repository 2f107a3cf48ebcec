"""The model set loads only when signed and consistent; else FAILED_PRECONDITION, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.artifacts import ArtifactStore
from common.errors import ModelUnavailableError
from forecasting_svc.instruments import Instrument
from forecasting_svc.models.bundle import (
    ENSEMBLE_ARTIFACT,
    TRANSFORMER_ARTIFACT,
    XGBOOST_ARTIFACT,
)
from forecasting_svc.service import ForecastingService
from tests.unit.forecasting.requests import daily, request
from tests.unit.forecasting.tiny_models import (
    ARTIFACT_KEY_HEX,
    tiny_model_dir,
    training_cohort_symptoms_hash,
)


def test_model_info_names_versions_data_hash_and_metrics(models):
    manifests = models.manifests
    assert set(manifests) == {TRANSFORMER_ARTIFACT, XGBOOST_ARTIFACT, ENSEMBLE_ARTIFACT}
    expected_hash = training_cohort_symptoms_hash()
    assert {m.training_data_sha256 for m in manifests.values()} == {expected_hash}
    ensemble = manifests[ENSEMBLE_ARTIFACT]
    assert ensemble.params["transformer_version"] == manifests[TRANSFORMER_ARTIFACT].version
    assert ensemble.params["xgboost_version"] == manifests[XGBOOST_ARTIFACT].version
    for manifest in manifests.values():
        assert "val_mae_phq9_h1_7" in manifest.metrics
        assert 0.0 < manifest.metrics["val_coverage_80"] <= 1.0


def _copy_store(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(tiny_model_dir(), target)
    return target


async def test_tampered_ensemble_is_refused_with_failed_precondition(tmp_path):
    root = _copy_store(tmp_path)
    ensemble_dir = root / ENSEMBLE_ARTIFACT
    version = (ensemble_dir / "LATEST").read_text().strip()
    path = ensemble_dir / version / "ensemble.json"
    data = json.loads(path.read_text())
    data["weights"]["transformer_weight_by_horizon"][0] = 1.0
    path.write_text(json.dumps(data))
    service = ForecastingService.from_store(ArtifactStore(root, bytes.fromhex(ARTIFACT_KEY_HEX)))
    assert service.models is None
    with pytest.raises(ModelUnavailableError) as caught:
        await service.forecast(request(daily(Instrument.PHQ9, [10, 11, 12])))
    assert ENSEMBLE_ARTIFACT in caught.value.message
    assert "python -m forecasting_svc.train" in caught.value.message
    assert "verified" in caught.value.message


def test_wrong_signing_key_is_refused(tmp_path):
    root = _copy_store(tmp_path)
    service = ForecastingService.from_store(ArtifactStore(root, b"another-key-" * 4))
    assert service.models is None
    assert service.model_manifests() == ()


def test_empty_store_says_not_trained(tmp_path):
    service = ForecastingService.from_store(ArtifactStore(tmp_path, b"k" * 32))
    with pytest.raises(ModelUnavailableError) as caught:
        service.require_models()
    assert "not trained" in caught.value.message
