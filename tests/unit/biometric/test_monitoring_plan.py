"""The monitoring plan puts key indicators first, with thresholds from the patient's baseline."""

from __future__ import annotations

import numpy as np
import pytest

from biometric_svc.domain import MonitoringFrequency, MonitoringPlanRequest
from biometric_svc.service import BiometricService
from common.synthetic import METRICS, CohortConfig, generate_cohort
from tests.unit.biometric.patients import PSEUDONYM, domain_request_data, patient_frames


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(CohortConfig(n_patients=10, n_days=150, seed=22))


async def test_key_indicator_comes_first_with_a_one_sided_two_sd_threshold(cohort):
    truth = cohort.truth.couplings
    row = truth[truth.coupled].iloc[0]
    samples, indicators = domain_request_data(cohort, row.patient_id)
    plan = await BiometricService(early_warning=None).recommend_monitoring_plan(
        MonitoringPlanRequest(PSEUDONYM, samples, indicators)
    )
    first = plan.metrics[0]
    assert first.metric == row.lead_metric
    expected_frequency = (
        MonitoringFrequency.CONTINUOUS if int(row.lag_days) <= 2 else MonitoringFrequency.DAILY
    )
    assert first.frequency is expected_frequency

    bio, _ = patient_frames(cohort, row.patient_id)
    recent = bio[row.lead_metric].to_numpy()[-28:]
    recent = recent[np.isfinite(recent)]
    log_scale = row.lead_metric in ("hrv_rmssd", "steps", "active_minutes")
    scaled = np.log1p(recent) if log_scale else recent
    median = np.median(scaled)
    limit = median + row.direction * 2 * 1.4826 * np.median(np.abs(scaled - median))
    expected = np.expm1(limit) if log_scale else limit
    # Thresholds are rounded to the metric's resolution (whole steps, 0.1 bpm, ...).
    if row.direction < 0:  # the metric falls before symptoms worsen
        assert first.alert_above is None
        assert first.alert_below == pytest.approx(expected, abs=0.5)
    else:
        assert first.alert_below is None
        assert first.alert_above == pytest.approx(expected, abs=0.5)
    assert "Key indicator" in first.reason and "2 robust SD" in first.reason

    assert [m.priority for m in plan.metrics] == list(range(1, len(plan.metrics) + 1))
    assert {m.metric for m in plan.metrics} == set(METRICS)
    for other in plan.metrics[1:]:
        if other.frequency is MonitoringFrequency.WEEKLY and other.alert_below is not None:
            assert other.alert_above is None or other.alert_above > other.alert_below
    assert "Watch" in plan.summary


async def test_uncoupled_patient_gets_weekly_review_only(cohort):
    truth = cohort.truth.couplings
    row = truth[~truth.coupled].iloc[0]
    samples, indicators = domain_request_data(cohort, row.patient_id)
    plan = await BiometricService(early_warning=None).recommend_monitoring_plan(
        MonitoringPlanRequest(PSEUDONYM, samples, indicators)
    )
    assert {m.frequency for m in plan.metrics} == {MonitoringFrequency.WEEKLY}
    assert "No biometric significantly leads" in plan.summary
    # Limits of a log-scale metric are taken on the log scale: positive, and
    # asymmetric around the median in natural units.
    steps = next(m for m in plan.metrics if m.metric == "steps")
    assert steps.alert_below is not None and steps.alert_above is not None
    bio, _ = patient_frames(cohort, row.patient_id)
    recent = bio["steps"].to_numpy()[-28:]
    median = float(np.median(recent[np.isfinite(recent)]))
    assert 0 < steps.alert_below < median < steps.alert_above
    assert steps.alert_above - median > median - steps.alert_below
    assert "3 robust SD on a log scale" in steps.reason
