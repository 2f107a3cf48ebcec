"""The early warning says when a patient's data look unlike its training data."""

from __future__ import annotations

import numpy as np
import pytest

from biometric_svc.distribution_shift import SUMMARY_NAMES, TrainingDistribution
from biometric_svc.domain import CorrelationRequest
from biometric_svc.early_warning import CONFIG_FILE
from biometric_svc.service import BiometricService
from common.synthetic import CohortConfig, generate_cohort
from tests.unit.biometric.patients import PSEUDONYM, domain_request_data
from tests.unit.biometric.tiny_model import tiny_store


@pytest.fixture(scope="module")
def service() -> BiometricService:
    return BiometricService.from_store(tiny_store())


@pytest.fixture(scope="module")
def cohort():
    # Not the tiny model's training cohort (seed 4): patients it has never seen.
    return generate_cohort(CohortConfig(n_patients=8, n_days=130, seed=77))


def _reference() -> TrainingDistribution:
    rng = np.random.default_rng(0)
    training = rng.normal(0, 1, (4000, len(SUMMARY_NAMES)))
    validation = rng.normal(0, 1, (1000, len(SUMMARY_NAMES)))
    return TrainingDistribution.fit(training, validation)


def test_about_one_percent_of_familiar_windows_are_flagged():
    reference = _reference()
    fresh = np.random.default_rng(1).normal(0, 1, (5000, len(SUMMARY_NAMES)))
    flagged = reference.distances(fresh).max(axis=1) > reference.threshold
    assert 0.002 <= flagged.mean() <= 0.03


def test_a_summary_far_outside_the_training_range_is_flagged_by_name():
    reference = _reference()
    summary = np.zeros(len(SUMMARY_NAMES))
    assert not reference.check(summary).out_of_distribution
    summary[SUMMARY_NAMES.index("level_steps")] = 12.0
    check = reference.check(summary)
    assert check.out_of_distribution and check.distance > 1.0
    assert "step count usual level" in check.reason and "above" in check.reason
    summary[SUMMARY_NAMES.index("level_steps")] = np.nan  # no data is not "unlike"
    assert not reference.check(summary).out_of_distribution


def test_the_range_survives_its_json_form():
    reference = _reference()
    again = TrainingDistribution.from_json(reference.to_json())
    np.testing.assert_allclose(again.low, reference.low)
    assert again.threshold == reference.threshold and again.windows == reference.windows
    with pytest.raises(ValueError, match="summaries"):
        TrainingDistribution.from_json({**reference.to_json(), "summaries": ["x"]})


def test_the_signed_artifact_holds_the_training_distribution(service):
    config = tiny_store().load("biometric.early_warning_lstm").load_json(CONFIG_FILE)
    assert isinstance(config, dict)
    stored = config["training_distribution"]
    assert stored["summaries"] == list(SUMMARY_NAMES) and stored["windows"] > 100
    assert service.require_model().distribution is not None


async def test_familiar_patients_pass_and_a_changed_device_is_flagged(service, cohort):
    flagged = []
    for patient_id in cohort.patients.patient_id:
        samples, indicators = domain_request_data(cohort, patient_id)
        report = await service.analyze_correlations(
            CorrelationRequest(PSEUDONYM, samples, indicators)
        )
        flagged.append(report.early_warning.out_of_distribution)
    assert sum(flagged) <= 1

    patient_id = cohort.patients.patient_id.iloc[0]
    samples, indicators = domain_request_data(cohort, patient_id)
    # A wearable that reports resting heart rate 60 bpm higher than any training patient's.
    hr = samples.metric == 0
    shifted = samples.__class__(
        metric=samples.metric,
        measured_at_ns=samples.measured_at_ns,
        value=np.where(hr, samples.value + 60.0, samples.value),
        granularity=samples.granularity,
    )
    report = await service.analyze_correlations(CorrelationRequest(PSEUDONYM, shifted, indicators))
    warning = report.early_warning
    assert warning.out_of_distribution and warning.training_distance > 0
    assert "resting heart rate usual level is above" in warning.out_of_distribution_reason
