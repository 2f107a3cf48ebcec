"""Lagged correlation against the synthetic cohort's ground truth, and its statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from biometric_svc.aggregation import DailySeries
from biometric_svc.correlation import (
    benjamini_hochberg,
    effective_sample_size,
    key_indicators,
    lagged_correlations,
    reading,
    sidak,
)
from common.biometric_metrics import METRICS, SUPPLIED_ONLY_METRICS
from common.synthetic import INSTRUMENTS, CohortConfig, generate_cohort

SEEDS = (21, 22, 23)


def _daily(cohort, patient_id) -> DailySeries:
    bio = cohort.biometrics[cohort.biometrics.patient_id == patient_id]
    sym = cohort.symptoms[cohort.symptoms.patient_id == patient_id]
    return DailySeries(
        dates=pd.DatetimeIndex(bio.date),
        # The synthetic worlds generate no heart rate or SDNN: those columns stay empty.
        biometrics=bio.reindex(columns=list(METRICS)).to_numpy(np.float64),
        indicators=sym[list(INSTRUMENTS)].to_numpy(np.float64),
    )


@pytest.fixture(scope="module")
def analysed():
    """(truth row, correlations, key indicators) for every patient of three small cohorts."""
    results = []
    for seed in SEEDS:
        cohort = generate_cohort(CohortConfig(n_patients=10, n_days=180, seed=seed))
        for row in cohort.truth.couplings.itertuples(index=False):
            correlations = lagged_correlations(_daily(cohort, row.patient_id), 14, 0.05)
            results.append((row, correlations, key_indicators(correlations)))
    return results


def test_true_lead_metric_and_lag_are_recovered_within_one_day(analysed):
    coupled = [(row, keys) for row, _, keys in analysed if row.coupled]
    recovered = [
        bool(keys)
        and keys[0].metric == row.lead_metric
        and abs(keys[0].lead_days - int(row.lag_days)) <= 1
        for row, keys in coupled
    ]
    assert len(coupled) >= 15
    assert np.mean(recovered) >= 0.8


def test_the_reading_follows_the_true_direction(analysed):
    for row, _, keys in analysed:
        if row.coupled and keys and keys[0].metric == row.lead_metric:
            # direction: sign of the lead metric's change when symptoms worsen.
            assert keys[0].worsening_direction == row.direction
            verb = "rise" if row.direction > 0 else "fall"
            assert verb in keys[0].reading


def test_nothing_is_significant_for_uncoupled_patients(analysed):
    uncoupled = [correlations for row, correlations, _ in analysed if not row.coupled]
    assert len(uncoupled) >= 6
    for correlations in uncoupled:
        # Every supplied metric with every indicator; never-supplied metrics give no pair.
        supplied = len(METRICS) - len(SUPPLIED_ONLY_METRICS)
        assert len(correlations) == supplied * len(INSTRUMENTS)
        assert not any(c.significant for c in correlations)


def test_only_significant_correlations_read_as_findings(analysed):
    """A pair that may be chance is worded as the absence of evidence, with its q."""
    seen = {True: 0, False: 0}
    for _, correlations, _ in analysed:
        for corr in correlations:
            seen[corr.significant] += 1
            if corr.significant:
                assert not corr.reading.startswith("no evidence"), corr.reading
                assert "q = " not in corr.reading
            else:
                assert corr.reading.startswith("no evidence that "), corr.reading
                assert corr.reading.endswith(f"(q = {corr.q_value:.2f})"), corr.reading
                assert "~" not in corr.reading
    assert seen[True] and seen[False]


def test_a_shared_weekly_rhythm_is_not_a_correlation():
    rng = np.random.default_rng(3)
    dates = pd.date_range("2026-01-05", periods=150, freq="D")
    weekend = (dates.dayofweek >= 5).astype(float)
    bio = np.column_stack(
        [70 + 4 * weekend + rng.normal(0, 1, 150) for _ in METRICS]
    )  # same weekly swing in every metric
    ind = np.column_stack([10 - 3 * weekend + rng.normal(0, 1, 150) for _ in INSTRUMENTS])
    correlations = lagged_correlations(DailySeries(dates, bio, ind), 14, 0.05)
    assert correlations and not any(c.significant for c in correlations)


def test_a_planted_three_day_lead_is_found():
    rng = np.random.default_rng(11)
    days = 120
    driver = np.cumsum(rng.normal(0, 1, days + 3)) * 0.3 + rng.normal(0, 1, days + 3)
    dates = pd.date_range("2026-02-02", periods=days, freq="D")
    bio = np.full((days, len(METRICS)), np.nan)
    bio[:, METRICS.index("sleep_duration")] = 7.0 - 0.5 * driver[3:]  # sleep falls 3 days early
    ind = np.full((days, len(INSTRUMENTS)), np.nan)
    ind[:, INSTRUMENTS.index("mood")] = 6.0 - driver[:days] + rng.normal(0, 0.3, days)
    (corr,) = lagged_correlations(DailySeries(dates, bio, ind), 14, 0.05)
    assert (corr.metric, corr.indicator, corr.lag_days) == ("sleep_duration", "mood", 3)
    assert corr.significant and corr.pearson_r > 0.5 and corr.spearman_r > 0.4
    assert corr.reading == "sleep duration falls ~3 days before mood drops"
    assert [lag for lag, _ in corr.profile] == list(range(15))


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(0, 0.2, 24) ** 2
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))


def test_sidak_and_effective_sample_size():
    assert sidak(0.01, 15) == pytest.approx(1 - 0.99**15)
    assert sidak(1.0, 3) == 1.0
    acf = np.zeros(11)
    assert effective_sample_size(80, acf, acf) == 80
    positive = np.r_[0.0, np.full(10, 0.5)]
    # Positively autocorrelated residuals leave fewer independent pairs.
    assert effective_sample_size(80, positive, positive) < 80 / 2


@pytest.mark.parametrize(
    ("metric", "indicator", "r", "lag", "text"),
    [
        ("sleep_duration", "mood", 0.4, 3, "sleep duration falls ~3 days before mood drops"),
        (
            "resting_heart_rate",
            "phq9",
            0.4,
            1,
            "resting heart rate rises ~1 day before PHQ-9 rises",
        ),
        ("steps", "mood", -0.4, 0, "step count rises on the same days mood drops"),
        ("active_minutes", "gad7", -0.3, 5, "active minutes fall ~5 days before GAD-7 rises"),
    ],
)
def test_readings(metric, indicator, r, lag, text):
    assert reading(metric, indicator, r, lag) == text


def test_a_non_significant_reading_states_no_evidence():
    assert (
        reading("steps", "mood", -0.2, 7, q_value=0.94)
        == "no evidence that step count rises before mood drops (q = 0.94)"
    )
    assert (
        reading("sleep_duration", "phq9", -0.1, 0, q_value=0.5)
        == "no evidence that sleep duration falls on the same days PHQ-9 rises (q = 0.50)"
    )


def test_average_ranks_are_scipy_rankdata_bitwise():
    from scipy import stats

    from biometric_svc.correlation import average_ranks

    rng = np.random.default_rng(12)
    for size in (1, 2, 15, 180):
        continuous = rng.normal(size=size)
        tied = np.round(rng.normal(size=size) * 2) / 2  # many ties
        for values in (continuous, tied, np.zeros(size)):
            np.testing.assert_array_equal(average_ranks(values), stats.rankdata(values))
