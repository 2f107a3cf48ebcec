"""The early warning with a tiny trained LSTM: artifact, probabilities, levels, drivers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biometric_svc.aggregation import daily_series
from biometric_svc.domain import CorrelationRequest, KeyIndicator, RiskLevel
from biometric_svc.early_warning import (
    ARTIFACT_NAME,
    WEIGHTS_FILE,
    EarlyWarningModel,
    RiskThresholds,
    expected_lead_days,
)
from biometric_svc.features import HISTORY_DAYS, N_FEATURES, N_METRICS, WINDOW_DAYS
from biometric_svc.models.lstm_attention import AttentionLSTM, AttentionLSTMConfig
from biometric_svc.service import BiometricService
from common.artifacts import ArtifactStore
from common.errors import ModelUnavailableError
from common.synthetic import CohortConfig, generate_cohort
from tests.unit.biometric.patients import PSEUDONYM, domain_request_data
from tests.unit.biometric.tiny_model import ARTIFACT_KEY_HEX, tiny_model_dir, tiny_store


@pytest.fixture(scope="module")
def service() -> BiometricService:
    return BiometricService.from_store(tiny_store())


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(CohortConfig(n_patients=6, n_days=130, seed=31))


def test_artifact_is_signed_and_carries_validation_metrics(service):
    (manifest,) = service.model_manifests()
    assert manifest.name == ARTIFACT_NAME
    assert {"val_auroc", "val_brier", "train_prevalence"} <= set(manifest.metrics)
    assert 0.0 <= manifest.metrics["val_auroc"] <= 1.0
    assert manifest.params["window_days"] == WINDOW_DAYS
    assert set(manifest.files) == {WEIGHTS_FILE, "config.json"}


async def test_early_warning_has_a_level_that_matches_its_probability(service, cohort):
    model = service.require_model()
    for patient_id in cohort.patients.patient_id[:3]:
        samples, indicators = domain_request_data(cohort, patient_id)
        report = await service.analyze_correlations(
            CorrelationRequest(PSEUDONYM, samples, indicators)
        )
        warning = report.early_warning
        assert not warning.insufficient_data
        assert 0.0 < warning.probability < 1.0
        assert warning.level is model.thresholds.level(warning.probability)
        weights = [d.weight for d in warning.drivers]
        assert weights == sorted(weights, reverse=True) and 0 < sum(weights) <= 1.0 + 1e-9
        last_day = daily_series(samples, indicators).dates[-1].date()
        assert all(0 <= (last_day - d.date).days < WINDOW_DAYS for d in warning.drivers)
        assert all("baseline" in d.description for d in warning.drivers)
        assert report.models and report.models[0].name == ARTIFACT_NAME


def test_scores_are_deterministic_and_attention_sums_to_one(service):
    model = service.require_model()
    windows = np.random.default_rng(0).normal(size=(5, WINDOW_DAYS, N_FEATURES))
    windows[..., N_METRICS:] = 0.0
    windows = windows.astype(np.float32)
    first, second = model.score(windows), model.score(windows)
    np.testing.assert_array_equal(first.probability, second.probability)
    np.testing.assert_allclose(first.temporal.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(first.feature.sum(axis=2), 1.0, atol=1e-6)


async def test_too_little_recent_data_is_insufficient(service, cohort):
    samples, indicators = domain_request_data(cohort, cohort.patients.patient_id[0])
    keep = samples.measured_at_ns <= np.sort(np.unique(samples.measured_at_ns))[20]
    short = type(samples)(
        samples.metric[keep],
        samples.measured_at_ns[keep],
        samples.value[keep],
        samples.granularity[keep],
    )
    report = await service.analyze_correlations(CorrelationRequest(PSEUDONYM, short, indicators))
    assert report.early_warning.insufficient_data
    assert report.early_warning.level is None and str(HISTORY_DAYS) in report.early_warning.detail


async def test_without_a_model_correlations_still_work_and_the_warning_says_why(cohort, tmp_path):
    service = BiometricService.from_store(ArtifactStore(tmp_path, bytes.fromhex(ARTIFACT_KEY_HEX)))
    samples, indicators = domain_request_data(cohort, cohort.patients.patient_id[0])
    report = await service.analyze_correlations(CorrelationRequest(PSEUDONYM, samples, indicators))
    assert report.correlations
    warning = report.early_warning
    assert warning.level is None and not warning.insufficient_data
    assert "python -m biometric_svc.train" in warning.detail and ARTIFACT_NAME in warning.detail
    assert service.model_manifests() == ()
    with pytest.raises(ModelUnavailableError) as raised:
        service.require_model()
    assert "python -m biometric_svc.train" in raised.value.message


def test_a_tampered_artifact_is_refused(tmp_path):
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(tiny_model_dir(), copy)
    (weights,) = copy.glob(f"{ARTIFACT_NAME}/*/{WEIGHTS_FILE}")
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    service = BiometricService.from_store(ArtifactStore(copy, bytes.fromhex(ARTIFACT_KEY_HEX)))
    assert service.early_warning is None and service.unavailable_reason == "not loadable"


def test_levels_are_multiples_of_the_base_rate():
    thresholds = RiskThresholds.from_base_rate(0.04)
    assert (thresholds.elevated, thresholds.high, thresholds.critical) == pytest.approx(
        (0.08, 0.16, 0.32)
    )
    assert thresholds.level(0.05) is RiskLevel.LOW
    assert thresholds.level(0.1) is RiskLevel.ELEVATED
    assert thresholds.level(0.2) is RiskLevel.HIGH
    assert thresholds.level(0.9) is RiskLevel.CRITICAL


def test_expected_lead_is_the_strength_weighted_lead_within_the_horizon():
    def key(lead: int, strength: float) -> KeyIndicator:
        return KeyIndicator(1, "steps", "mood", lead, strength, "", -1)

    assert expected_lead_days(()) == 0
    assert expected_lead_days((key(0, 0.9),)) == 0
    assert expected_lead_days((key(2, 0.6), key(5, 0.3))) == 3  # (1.2 + 1.5) / 0.9
    assert expected_lead_days((key(12, 0.5),)) == 7


def test_feature_attention_gates_only_the_metric_inputs():
    torch.manual_seed(0)
    network = AttentionLSTM(AttentionLSTMConfig(n_metrics=N_METRICS, n_features=N_FEATURES))
    out = network(torch.zeros(2, WINDOW_DAYS, N_FEATURES))
    assert out.logits.shape == (2,)
    assert out.temporal.shape == (2, WINDOW_DAYS) and out.feature.shape == (2, WINDOW_DAYS, 6)


def test_model_loads_from_the_artifact_alone():
    artifact = tiny_store().load(ARTIFACT_NAME)
    model = EarlyWarningModel.from_artifact(artifact)
    assert model.manifest is not None and model.manifest.version == artifact.manifest.version
    assert 0 < model.base_rate < 0.2
