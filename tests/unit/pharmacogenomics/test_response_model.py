"""The response/side-effect models: metrics, calibration, signed artifact round trip, model info."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from common.artifacts import ArtifactError, ArtifactStore
from common.errors import ModelUnavailableError
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from pharmacogenomics_svc.knowledge_base import default_knowledge_base
from pharmacogenomics_svc.models.calibration import MAX_SLOPE, PlattCalibrator, fit_platt
from pharmacogenomics_svc.models.features import RESPONSE, SIDE_EFFECT
from pharmacogenomics_svc.models.metrics import auroc, brier_score, expected_calibration_error
from pharmacogenomics_svc.models.response_model import (
    CALIBRATION_FILE,
    MODEL_NAME,
    ResponseModels,
)
from pharmacogenomics_svc.models.training_data import from_cohort
from pharmacogenomics_svc.patient_context import GenotypeInput, PatientRequest
from pharmacogenomics_svc.server import PharmacogenomicsServicer
from pharmacogenomics_svc.service import TRAIN_COMMAND, PharmacogenomicsService
from tests.unit.pharmacogenomics.trained_model import (
    fitted_models,
    held_out_cohort,
    training_set,
    write_model,
)

KEY = b"k" * 32
PSEUDONYM = "psn_" + "0" * 32


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# ----------------------------------------------------------------------------- metrics


def test_brier_and_auroc_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = rng.random(500) < p
    p[:50] = np.round(p[:50], 1)  # ties
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p))
    assert auroc(p, y) == pytest.approx(roc_auc_score(y, p))


def test_expected_calibration_error_by_hand() -> None:
    # Bin [0.1, 0.2): p 0.15 twice, one event -> |0.15 - 0.5| = 0.35, weight 2/4.
    # Bin [0.9, 1.0]: p 0.95 and 1.0, both events -> |0.975 - 1| = 0.025, weight 2/4.
    p = np.array([0.15, 0.15, 0.95, 1.0])
    y = np.array([1, 0, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.35 + 0.5 * 0.025)
    perfect = expected_calibration_error(np.full(10, 0.3), np.r_[np.ones(3), np.zeros(7)])
    assert perfect == pytest.approx(0.0, abs=1e-12)


def test_platt_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.05, 0.95, 40_000)
    logit = np.log(raw / (1 - raw))
    outcome = rng.random(raw.size) < _sigmoid(1.8 * logit - 0.4)
    calibrator = fit_platt(raw, outcome)
    assert calibrator.slope == pytest.approx(1.8, abs=0.1)
    assert calibrator.intercept == pytest.approx(-0.4, abs=0.06)
    assert PlattCalibrator.from_json(json.loads(json.dumps(calibrator.to_json()))) == calibrator


def test_platt_never_inverts_or_explodes_a_model() -> None:
    rng = np.random.default_rng(2)
    raw = rng.uniform(0.1, 0.9, 5_000)
    inverted = rng.random(raw.size) < 1 - raw  # outcomes anti-correlated with the model
    assert fit_platt(raw, inverted).slope == 0.0
    flat = np.full(5_000, 0.3) + rng.normal(0, 1e-4, 5_000)  # a near-constant booster
    steep = fit_platt(flat, rng.random(flat.size) < np.where(flat > 0.3, 0.9, 0.1))
    assert 0.0 <= steep.slope <= MAX_SLOPE


# ----------------------------------------------------------------------------- held-out quality


def test_calibrated_model_beats_the_base_rate_on_held_out_patients() -> None:
    kb = default_knowledge_base()
    models = fitted_models().models
    training = training_set()
    held_out = from_cohort(held_out_cohort(), kb)  # another seed: patients never trained on
    matrix = held_out.matrix(models.spec)
    for target, labels, train_labels in (
        (RESPONSE, held_out.responded, training.responded),
        (SIDE_EFFECT, held_out.side_effect, training.side_effect),
    ):
        predicted = models.predict(target, matrix)
        y = labels.astype(float)
        model_brier = float(np.mean((predicted - y) ** 2))
        base_brier = float(np.mean((train_labels.mean() - y) ** 2))
        if target == RESPONSE:
            # Prior failures and genotype carry real signal: the model must beat the base rate.
            assert model_brier < base_brier - 0.005, (model_brier, base_brier)
        else:
            # Side effects are almost unpredictable in the cohort (the generator's own
            # probabilities barely beat the base rate); the model must at least not be worse.
            assert model_brier < base_brier + 0.002, (model_brier, base_brier)
        # Calibration: within each decile of predictions, the observed rate is close.
        bins = np.minimum((predicted * 10).astype(int), 9)
        gaps = [
            abs(predicted[bins == b].mean() - y[bins == b].mean()) * np.mean(bins == b)
            for b in np.unique(bins)
        ]
        assert sum(gaps) < 0.04


def test_held_out_metrics_in_the_manifest_are_recomputable() -> None:
    fitted, training = fitted_models(), training_set()
    test = fitted.split.test
    matrix = training.matrix(fitted.models.spec)[test]
    y = training.responded[test].astype(float)
    predicted = fitted.models.predict(RESPONSE, matrix)
    assert fitted.metrics["response_brier"] == pytest.approx(np.mean((predicted - y) ** 2))
    base = training.responded[fitted.split.fit].mean()
    assert fitted.metrics["response_base_rate_brier"] == pytest.approx(np.mean((base - y) ** 2))
    assert training.true_response is not None
    truth = training.true_response[test]
    assert fitted.metrics["response_truth_brier"] == pytest.approx(np.mean((truth - y) ** 2))
    # No patient is in two parts of the split.
    patients = training.patients
    parts = [set(patients[i].tolist()) for i in (fitted.split.fit, fitted.split.calibration, test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


# ----------------------------------------------------------------------------- artifacts


def test_model_round_trips_through_the_signed_store(tmp_path: Path) -> None:
    manifest = write_model(tmp_path, KEY)
    artifact = ArtifactStore(tmp_path, KEY).load(MODEL_NAME)
    assert artifact.manifest == manifest
    loaded = ResponseModels.load(artifact)
    original = fitted_models().models
    assert loaded.spec == original.spec
    matrix = from_cohort(held_out_cohort(), default_knowledge_base()).matrix(loaded.spec)[:500]
    for target in (RESPONSE, SIDE_EFFECT):
        np.testing.assert_allclose(
            loaded.predict(target, matrix), original.predict(target, matrix), atol=1e-6
        )


def test_tampered_model_is_refused_and_predictions_fail_precondition(tmp_path: Path) -> None:
    manifest = write_model(tmp_path, KEY)
    calibration = tmp_path / MODEL_NAME / manifest.version / CALIBRATION_FILE
    raw = json.loads(calibration.read_text())
    raw[RESPONSE]["slope"] = 0.0  # a model that predicts the same for everyone
    calibration.write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        ArtifactStore(tmp_path, KEY).load(MODEL_NAME)
    with pytest.raises(ArtifactError, match="signature invalid"):
        ArtifactStore(tmp_path, b"w" * 32).load(MODEL_NAME)

    service = PharmacogenomicsService.from_store(ArtifactStore(tmp_path, KEY))
    assert service.manifest is None
    with pytest.raises(ModelUnavailableError) as failed:
        service.require_model()
    assert MODEL_NAME in failed.value.message
    assert TRAIN_COMMAND in failed.value.message


async def test_get_model_info_reports_brier_and_ece(tmp_path: Path) -> None:
    manifest = write_model(tmp_path, KEY)
    service = PharmacogenomicsService.from_store(ArtifactStore(tmp_path, KEY))
    servicer = PharmacogenomicsServicer(service)
    info = await servicer.GetModelInfo(pb.GetModelInfoRequest(), None)  # type: ignore[arg-type]
    assert info.knowledge_base_version == default_knowledge_base().data_version.label
    [model] = info.models
    assert (model.name, model.version) == (MODEL_NAME, manifest.version)
    assert model.signature_verified
    assert model.training_data_sha256 == training_set().data_sha256
    fitted = fitted_models()
    for name in ("response_brier", "response_ece", "side_effect_brier", "side_effect_ece"):
        assert model.metrics[name] == pytest.approx(fitted.metrics[name])
        assert 0.0 <= model.metrics[name] < 0.3
    assert model.metrics["response_brier"] < model.metrics["response_base_rate_brier"]


async def test_untrained_service_reports_no_model_and_refuses_predictions(
    tmp_path: Path,
) -> None:
    service = PharmacogenomicsService.from_store(ArtifactStore(tmp_path, KEY))
    info = await service.model_info()
    assert info.models == ()
    assert info.knowledge_base_version == default_knowledge_base().data_version.label
    request = PatientRequest(PSEUDONYM, GenotypeInput())
    with pytest.raises(ModelUnavailableError):
        await service.predict_response(request)
    with pytest.raises(ModelUnavailableError):
        await service.predict_side_effects(request)
    # The knowledge-base RPCs do not need the model.
    analysis = await service.analyze_interactions(
        PatientRequest(PSEUDONYM, GenotypeInput(), candidate_medications=("citalopram",))
    )
    assert analysis.knowledge_base_version == info.knowledge_base_version
    [interaction] = analysis.interactions
    assert interaction.medication == "citalopram"
    assert interaction.phenotype == "No Result"
    supported = await service.supported_medications("CYP2C19")
    assert "citalopram" in {m.name for m in supported.medications}
