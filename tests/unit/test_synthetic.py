"""Synthetic cohort: determinism, ranges, clinical plausibility and recoverable ground truth."""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from common.synthetic import (
    ALLELE_FREQUENCIES,
    INSTRUMENTS,
    MEDICATIONS,
    METRICS,
    Cohort,
    CohortConfig,
    deterioration_labels,
    generate_cohort,
)

FloatArray = npt.NDArray[np.float64]
DAY = pd.Timedelta(days=1)
MAX_TEST_LAG = 14
# |r| above this on ~170 differenced daily pairs is ~4 standard errors from zero.
STRONG_PEAK = 0.3


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(CohortConfig(n_patients=300, seed=11))


@pytest.fixture(scope="module")
def large_cohort() -> Cohort:
    # Short window: genotypes and first trials do not depend on the number of days.
    return generate_cohort(CohortConfig(n_patients=2000, n_days=30, seed=5))


def _by_patient(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(pid): group for pid, group in frame.groupby("patient_id", sort=False)}


def lagged_cross_correlation(lead: FloatArray, follower: FloatArray) -> FloatArray:
    """r(k) = corr(diff(lead)[t], diff(follower)[t + k]) for k = 0..MAX_TEST_LAG, NaN-aware."""
    d_lead, d_follow = np.diff(lead), np.diff(follower)
    result = np.zeros(MAX_TEST_LAG + 1)
    for k in range(MAX_TEST_LAG + 1):
        a, b = d_lead[: len(d_lead) - k], d_follow[k:]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 20:
            result[k] = np.corrcoef(a[ok], b[ok])[0, 1]
    return result


# --- determinism and shape ----------------------------------------------------------------


def test_same_config_gives_identical_frames() -> None:
    config = CohortConfig(n_patients=40, n_days=60, seed=3)
    first, second = generate_cohort(config), generate_cohort(config)
    for name in ("patients", "symptoms", "biometrics", "medications", "outcomes"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    for name in ("couplings", "relapse_onsets", "latent_severity", "artefacts"):
        pd.testing.assert_frame_equal(getattr(first.truth, name), getattr(second.truth, name))


def test_different_seeds_give_different_cohorts() -> None:
    first = generate_cohort(CohortConfig(n_patients=40, n_days=60, seed=1))
    second = generate_cohort(CohortConfig(n_patients=40, n_days=60, seed=2))
    assert set(first.patients["patient_id"]).isdisjoint(second.patients["patient_id"])
    assert not np.allclose(
        first.truth.latent_severity["severity"], second.truth.latent_severity["severity"]
    )


def test_frames_have_the_documented_shape(cohort: Cohort) -> None:
    n, n_days = cohort.config.n_patients, cohort.config.n_days
    patients = cohort.patients
    assert len(patients) == n
    assert patients["patient_id"].is_unique
    assert all(re.fullmatch(r"MRN-\d{7}", pid) for pid in patients["patient_id"])
    assert list(cohort.symptoms.columns) == ["patient_id", "date", *INSTRUMENTS]
    assert list(cohort.biometrics.columns) == ["patient_id", "date", *METRICS]
    for frame in (cohort.symptoms, cohort.biometrics, cohort.truth.latent_severity):
        assert len(frame) == n * n_days
        assert frame["date"].dtype == np.dtype("datetime64[ns]")
        assert (frame["date"] == frame["date"].dt.normalize()).all()
        per_patient = frame.groupby("patient_id")["date"]
        assert (per_patient.nunique() == n_days).all()
        assert (per_patient.min() == pd.Timestamp(cohort.config.start_date)).all()
    assert len(cohort.truth.couplings) == n
    assert set(cohort.medications["event"]) <= {"start", "stop", "dose_change"}
    assert set(cohort.medications["medication"]) <= set(MEDICATIONS)


def test_generates_a_thousand_patients_for_half_a_year_quickly() -> None:
    started = time.perf_counter()
    big = generate_cohort(CohortConfig(n_patients=1000, n_days=180, seed=9))
    elapsed = time.perf_counter() - started
    assert len(big.symptoms) == 180_000
    assert elapsed < 10.0, f"generation took {elapsed:.1f} s"


# --- ranges and plausibility --------------------------------------------------------------


def test_scores_stay_in_instrument_ranges(cohort: Cohort) -> None:
    s = cohort.symptoms
    for name, high in (("phq9", 27), ("gad7", 21), ("mood", 10), ("anxiety", 10)):
        values = s[name].dropna()
        assert values.between(0, high).all(), name
    for name in ("phq9", "gad7"):
        values = s[name].dropna()
        assert (values == values.round()).all(), name


def test_biometric_baselines_are_physiological(cohort: Cohort) -> None:
    medians = cohort.biometrics.groupby("patient_id")[list(METRICS)].median()
    # Per-patient medians sit near the baseline ranges (55-80 bpm, 20-80 ms, 6-8.5 h, ...).
    assert medians["resting_heart_rate"].between(50, 88).all()
    assert medians["hrv_rmssd"].between(15, 100).all()
    assert medians["sleep_duration"].between(5.0, 9.5).all()
    assert medians["sleep_efficiency"].between(0.74, 0.97).all()
    assert medians["steps"].between(2000, 16000).all()
    assert medians["active_minutes"].between(6, 100).all()
    b = cohort.biometrics
    assert b["resting_heart_rate"].dropna().between(25, 250).all()
    assert b["hrv_rmssd"].dropna().between(1, 500).all()
    assert b["sleep_duration"].dropna().between(0, 24).all()
    assert b["sleep_efficiency"].dropna().between(0, 1).all()
    assert b["steps"].dropna().between(0, 100_000).all()
    assert b["active_minutes"].dropna().between(0, 1440).all()


def test_demographics_are_plausible(cohort: Cohort) -> None:
    p = cohort.patients
    assert p["age"].between(18, 80).all()
    assert set(p["sex"]) <= {"female", "male", "other"}
    assert (p["sex"] == "female").mean() > 0.5  # depression is ~2x as common in women
    assert (p["prior_treatment_failures"] >= 0).all()
    for gene in ("cyp2d6", "cyp2c19", "cyp2c9", "cyp2b6"):
        assert all(re.fullmatch(r"\*\d+(x2)?/\*\d+(x2)?", d) for d in p[gene]), gene
    assert p["hla_b_15_02"].dtype == bool
    assert p["hla_a_31_01"].dtype == bool


def test_typical_patient_is_mild_to_moderate_and_relapses_are_severe(cohort: Cohort) -> None:
    phq9 = cohort.symptoms["phq9"].dropna()
    assert 5 <= phq9.median() <= 14
    assert phq9.between(5, 14).mean() > 0.4
    by_patient = cohort.symptoms.set_index(["patient_id", "date"])["phq9"]
    peaks = []
    end = cohort.symptoms["date"].max()
    for onset in cohort.truth.relapse_onsets.itertuples():
        if onset.onset_date + 14 * DAY > end:
            continue
        series = by_patient.loc[onset.patient_id]
        window = series[
            (series.index >= onset.onset_date) & (series.index <= onset.onset_date + 14 * DAY)
        ]
        peaks.append(window.max())
    peaks_array = np.array(peaks)
    assert len(peaks_array) > 100
    assert (peaks_array >= 15).mean() >= 0.8
    assert (peaks_array >= 20).mean() >= 0.4


def test_missing_days_come_in_runs_at_the_configured_rate(cohort: Cohort) -> None:
    missing = cohort.symptoms["phq9"].isna().to_numpy().reshape(cohort.config.n_patients, -1)
    assert 0.03 <= missing.mean() <= 0.08
    starts = missing[:, 1:] & ~missing[:, :-1]
    mean_run = missing[:, 1:].sum() / max(int(starts.sum()), 1)
    assert mean_run > 1.8  # isolated random days would give ~1.05
    # A watch that is off loses every metric that day.
    metrics_missing = cohort.biometrics[list(METRICS)].isna()
    assert (metrics_missing.all(axis=1) == metrics_missing.any(axis=1)).all()


# --- dynamics -----------------------------------------------------------------------------


def test_relapse_onsets_raise_phq9_afterwards(cohort: Cohort) -> None:
    by_patient = cohort.symptoms.set_index(["patient_id", "date"])["phq9"]
    rises = []
    for onset in cohort.truth.relapse_onsets.itertuples():
        series = by_patient.loc[onset.patient_id]
        before = series[
            (series.index >= onset.onset_date - 7 * DAY) & (series.index < onset.onset_date)
        ]
        after = series[
            (series.index > onset.onset_date + 4 * DAY)
            & (series.index <= onset.onset_date + 12 * DAY)
        ]
        if before.notna().any() and after.notna().any():
            rises.append(after.mean() - before.mean())
    assert len(rises) > 100
    assert np.mean(rises) >= 4.0
    assert np.mean(np.array(rises) > 0) >= 0.85


def test_relapse_rate_matches_the_configured_rate(cohort: Cohort) -> None:
    patient_years = cohort.config.n_patients * cohort.config.n_days / 365.0
    rate = len(cohort.truth.relapse_onsets) / patient_years
    assert 1.6 <= rate <= 2.4


def test_responders_improve_more_than_non_responders(cohort: Cohort) -> None:
    starts = cohort.medications[cohort.medications["event"] == "start"]
    trials = cohort.outcomes.merge(
        starts[["patient_id", "medication", "date"]], on=["patient_id", "medication"]
    )
    assert len(trials) == len(cohort.outcomes)
    by_patient = cohort.symptoms.set_index(["patient_id", "date"])["phq9"]
    change: dict[bool, list[float]] = {True: [], False: []}
    for trial in trials.itertuples():
        series = by_patient.loc[trial.patient_id]
        before = series[(series.index >= trial.date - 14 * DAY) & (series.index < trial.date)]
        after = series[
            (series.index >= trial.date + 35 * DAY) & (series.index < trial.date + 49 * DAY)
        ]
        if before.notna().any() and after.notna().any():
            change[bool(trial.responded)].append(after.mean() - before.mean())
    assert len(change[True]) > 30 and len(change[False]) > 30
    assert np.mean(change[True]) < -4.0
    assert np.mean(change[True]) < np.mean(change[False]) - 3.0


def test_first_trial_response_rate_is_near_star_d(large_cohort: Cohort) -> None:
    # STAR*D level 1 (citalopram): 47 % response (Trivedi et al. 2006, PMID 16390886).
    first_trials = large_cohort.outcomes.groupby("patient_id").head(1)
    assert len(first_trials) == len(large_cohort.patients)
    assert 0.40 <= first_trials["responded"].mean() <= 0.54


def test_prior_failures_lower_response(large_cohort: Cohort) -> None:
    first_trials = large_cohort.outcomes.groupby("patient_id").head(1)
    merged = first_trials.merge(large_cohort.patients, on="patient_id")
    naive = merged[merged["prior_treatment_failures"] == 0]["responded"].mean()
    resistant = merged[merged["prior_treatment_failures"] >= 2]["responded"].mean()
    assert naive - resistant > 0.12


def test_cyp2c19_poor_metabolizers_have_more_side_effect_risk_on_ssris(
    large_cohort: Cohort,
) -> None:
    merged = large_cohort.outcomes.merge(large_cohort.patients, on="patient_id")
    alleles = merged["cyp2c19"].str.split("/")
    no_function = alleles.map(lambda pair: sum(a in ("*2", "*3") for a in pair))
    on_ssri = merged["medication"].isin(["citalopram", "escitalopram", "sertraline"])
    poor = merged[on_ssri & (no_function == 2)]["true_side_effect_probability"]
    normal = merged[on_ssri & (merged["cyp2c19"] == "*1/*1")]["true_side_effect_probability"]
    assert len(poor) > 5
    assert poor.mean() > normal.mean() + 0.1


def test_allele_frequencies_match_the_configured_and_published_ones(large_cohort: Cohort) -> None:
    n_alleles = 2 * len(large_cohort.patients)
    for gene, configured in ALLELE_FREQUENCIES.items():
        counts = Counter(a for d in large_cohort.patients[gene] for a in d.split("/"))
        for allele, p in configured.items():
            observed = counts[allele] / n_alleles
            standard_error = np.sqrt(p * (1 - p) / n_alleles)
            assert abs(observed - p) <= 4 * standard_error + 0.002, (gene, allele, observed)

    def frequency(gene: str, allele: str) -> float:
        counts = Counter(a for d in large_cohort.patients[gene] for a in d.split("/"))
        return counts[allele] / n_alleles

    # Published European frequencies (CPIC/PharmGKB tables), typed in independently.
    assert 0.12 <= frequency("cyp2c19", "*2") <= 0.18
    assert 0.18 <= frequency("cyp2c19", "*17") <= 0.25
    assert 0.15 <= frequency("cyp2d6", "*4") <= 0.22
    assert 0.07 <= frequency("cyp2d6", "*41") <= 0.12
    assert 0.10 <= frequency("cyp2c9", "*2") <= 0.16
    assert 0.05 <= frequency("cyp2c9", "*3") <= 0.10
    assert 0.20 <= frequency("cyp2b6", "*6") <= 0.28
    # HLA-A*31:01 ~3 % allele frequency in Europeans -> ~6 % carriers.
    assert 0.035 <= large_cohort.patients["hla_a_31_01"].mean() <= 0.085
    assert large_cohort.patients["hla_b_15_02"].mean() <= 0.01


# --- biometric coupling ground truth ------------------------------------------------------


def test_lagged_cross_correlation_recovers_the_true_lag(cohort: Cohort) -> None:
    symptoms, biometrics = _by_patient(cohort.symptoms), _by_patient(cohort.biometrics)
    coupled = cohort.truth.couplings[cohort.truth.couplings["coupled"]]
    assert len(coupled) > 150
    hits = []
    for row in coupled.itertuples():
        r = lagged_cross_correlation(
            biometrics[row.patient_id][row.lead_metric].to_numpy(np.float64),
            symptoms[row.patient_id][row.indicator].to_numpy(np.float64),
        )
        estimated = int(np.argmax(np.abs(r)))
        hits.append(abs(estimated - row.lag_days) <= 1)
    assert np.mean(hits) >= 0.8


def test_uncoupled_patients_show_no_strong_peak(cohort: Cohort) -> None:
    symptoms, biometrics = _by_patient(cohort.symptoms), _by_patient(cohort.biometrics)
    couplings = cohort.truth.couplings
    uncoupled_peaks = []
    for row in couplings[~couplings["coupled"]].itertuples():
        assert row.lead_metric is None and row.lag_days is None and row.direction == 0
        for metric in METRICS:
            r = lagged_cross_correlation(
                biometrics[row.patient_id][metric].to_numpy(np.float64),
                symptoms[row.patient_id]["phq9"].to_numpy(np.float64),
            )
            uncoupled_peaks.append(np.abs(r).max())
    coupled_peaks = []
    for row in couplings[couplings["coupled"]].itertuples():
        r = lagged_cross_correlation(
            biometrics[row.patient_id][row.lead_metric].to_numpy(np.float64),
            symptoms[row.patient_id][row.indicator].to_numpy(np.float64),
        )
        coupled_peaks.append(np.abs(r).max())
    assert len(uncoupled_peaks) > 300
    assert np.mean(np.array(uncoupled_peaks) >= STRONG_PEAK) <= 0.15
    assert np.mean(np.array(coupled_peaks) >= STRONG_PEAK) >= 0.6


def test_lead_metric_moves_in_the_physiological_direction(cohort: Cohort) -> None:
    expected = {
        "resting_heart_rate": {1},
        "hrv_rmssd": {-1},
        "sleep_duration": {-1, 1},
        "sleep_efficiency": {-1},
        "steps": {-1},
        "active_minutes": {-1},
    }
    biometrics = _by_patient(cohort.biometrics)
    severity = _by_patient(cohort.truth.latent_severity)
    coupled = cohort.truth.couplings[cohort.truth.couplings["coupled"]]
    agree = []
    for row in coupled.itertuples():
        assert row.direction in expected[row.lead_metric]
        lead = np.diff(biometrics[row.patient_id][row.lead_metric].to_numpy(np.float64))
        latent = np.diff(severity[row.patient_id]["severity"].to_numpy(np.float64))
        a, b = lead[: len(lead) - row.lag_days], latent[row.lag_days :]
        ok = np.isfinite(a) & np.isfinite(b)
        agree.append(np.sign(np.corrcoef(a[ok], b[ok])[0, 1]) == row.direction)
    assert np.mean(agree) >= 0.95


def test_shifted_dynamics_use_the_longer_lag_range() -> None:
    default = generate_cohort(CohortConfig(n_patients=300, n_days=60, seed=4))
    shifted = generate_cohort(CohortConfig(n_patients=300, n_days=60, seed=4, dynamics="shifted"))
    default_lags = default.truth.couplings["lag_days"].dropna().astype(int)
    shifted_lags = shifted.truth.couplings["lag_days"].dropna().astype(int)
    assert default_lags.between(1, 10).all() and default_lags.max() == 10
    assert shifted_lags.between(2, 14).all() and shifted_lags.max() > 10
    assert not np.allclose(default.symptoms["phq9"].fillna(0), shifted.symptoms["phq9"].fillna(0))


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="dynamics"):
        CohortConfig(dynamics="chaotic")
    with pytest.raises(ValueError, match="n_patients"):
        CohortConfig(n_patients=0)


# --- labels -------------------------------------------------------------------------------


def test_deterioration_labels_flag_days_before_an_onset(cohort: Cohort) -> None:
    labels = deterioration_labels(cohort, horizon_days=7)
    assert len(labels) == len(cohort.symptoms)
    onsets = cohort.truth.relapse_onsets.groupby("patient_id")["onset_date"].apply(list)
    sample = labels[labels["patient_id"].isin(onsets.index[:20])]
    for row in sample.itertuples():
        expected = any(row.date < onset <= row.date + 7 * DAY for onset in onsets[row.patient_id])
        assert row.label == int(expected)
    positives_per_onset = labels["label"].sum() / len(cohort.truth.relapse_onsets)
    assert 5.0 <= positives_per_onset <= 7.0  # 7 days per onset, fewer at the window start


# --- relapse prodrome -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def without_prodrome() -> Cohort:
    return generate_cohort(CohortConfig(n_patients=300, seed=11, prodrome_fraction=0.0))


def test_prodrome_share_and_length_follow_the_configuration(cohort: Cohort) -> None:
    lengths = cohort.truth.relapse_onsets["prodrome_days"].to_numpy()
    with_prodrome = lengths[lengths > 0]
    assert 0.82 <= len(with_prodrome) / len(lengths) <= 0.97  # configured 0.9
    assert with_prodrome.min() >= 7 and with_prodrome.max() <= 28


def test_turning_the_prodrome_off_changes_nothing_else(
    cohort: Cohort, without_prodrome: Cohort
) -> None:
    pd.testing.assert_frame_equal(cohort.patients, without_prodrome.patients)
    pd.testing.assert_frame_equal(cohort.medications, without_prodrome.medications)
    pd.testing.assert_frame_equal(cohort.truth.couplings, without_prodrome.truth.couplings)
    pd.testing.assert_frame_equal(
        cohort.truth.relapse_onsets[["patient_id", "onset_date"]],
        without_prodrome.truth.relapse_onsets[["patient_id", "onset_date"]],
    )
    assert (without_prodrome.truth.relapse_onsets["prodrome_days"] == 0).all()
    # Severity differs only before onsets that have a prodrome (and the episodes they lead into).
    assert not cohort.truth.latent_severity.equals(without_prodrome.truth.latent_severity)


def _daily(frame: pd.DataFrame, column: str, cohort: Cohort) -> FloatArray:
    return frame[column].to_numpy(np.float64).reshape(cohort.config.n_patients, -1)


def test_severity_builds_up_before_onsets_with_a_prodrome(
    cohort: Cohort, without_prodrome: Cohort
) -> None:
    with_p = _daily(cohort.truth.latent_severity, "severity", cohort)
    without_p = _daily(without_prodrome.truth.latent_severity, "severity", cohort)
    start = np.datetime64(cohort.config.start_date, "D")
    ids = {pid: i for i, pid in enumerate(cohort.patients["patient_id"])}
    rises = []
    for onset in cohort.truth.relapse_onsets.itertuples():
        day = int((np.datetime64(onset.onset_date, "D") - start).astype(int))
        if onset.prodrome_days == 0 or day < 1:
            continue
        i = ids[onset.patient_id]
        rises.append(with_p[i, day - 1] - without_p[i, day - 1])
    # 2..5 PHQ-9 points the day before onset, less where the 0..27 clip bites.
    assert len(rises) > 50
    assert 2.0 <= np.median(rises) <= 5.0


def test_uncoupled_biometrics_grow_unstable_but_keep_their_level_before_onsets(
    cohort: Cohort, without_prodrome: Cohort
) -> None:
    uncoupled = ~cohort.truth.couplings["coupled"].to_numpy(bool)
    sleep = _daily(cohort.biometrics, "sleep_duration", cohort)
    sleep_off = _daily(without_prodrome.biometrics, "sleep_duration", cohort)
    start = np.datetime64(cohort.config.start_date, "D")
    ids = {pid: i for i, pid in enumerate(cohort.patients["patient_id"])}
    extra: list[float] = []
    for onset in cohort.truth.relapse_onsets.itertuples():
        i = ids[onset.patient_id]
        day = int((np.datetime64(onset.onset_date, "D") - start).astype(int))
        if onset.prodrome_days == 0 or not uncoupled[i] or day < 5:
            continue
        difference = sleep[i, day - 5 : day] - sleep_off[i, day - 5 : day]
        extra.extend(difference[np.isfinite(difference)].tolist())
    extra_array = np.array(extra)
    assert len(extra_array) > 40
    # Sleep noise SD is 0.55 h; the prodrome adds 1.5..3x that near onset, centred on zero.
    assert 0.5 <= extra_array.std() <= 2.0
    assert abs(extra_array.mean()) < 3 * extra_array.std() / np.sqrt(len(extra_array))
