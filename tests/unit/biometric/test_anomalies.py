"""Anomalies against a weekday-aware personal baseline; missing days are reported as missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biometric_svc.anomalies import detect_anomalies
from biometric_svc.baseline import MAD_TO_SD, daily_baseline, trailing_baseline
from biometric_svc.domain import AnomalySeverity, DetectionMethod
from common.biometric_metrics import METRICS

DAYS = 120
DATES = pd.date_range("2026-01-05", periods=DAYS, freq="D")  # a Monday
WEEKEND = np.asarray(DATES.dayofweek >= 5)


def _clean_series(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = {
        "resting_heart_rate": 62 + rng.normal(0, 1.5, DAYS),
        "hrv_rmssd": 45 * np.exp(rng.normal(0, 0.08, DAYS)),
        # Much longer sleep and far fewer steps at weekends: a weekly rhythm, not an anomaly.
        "sleep_duration": 6.8 + 1.6 * WEEKEND + rng.normal(0, 0.3, DAYS),
        "sleep_efficiency": np.clip(0.9 + rng.normal(0, 0.015, DAYS), 0, 1),
        "steps": 9000 * np.where(WEEKEND, 0.45, 1.0) * np.exp(rng.normal(0, 0.1, DAYS)),
        "active_minutes": 35 * np.exp(rng.normal(0, 0.12, DAYS)),
    }
    # Heart rate and SDNN are not supplied, as from a wearable that does not report them.
    return np.column_stack([columns.get(m, np.full(DAYS, np.nan)) for m in METRICS])


def test_trailing_baseline_uses_only_earlier_days_of_the_same_type():
    values = np.where(WEEKEND, 10.0, 2.0)
    median, mad = trailing_baseline(values, WEEKEND, 28)
    assert np.isnan(median[:7]).all()  # fewer than 7 earlier days
    assert (median[40:][WEEKEND[40:]] == 10.0).all() and (median[40:][~WEEKEND[40:]] == 2.0).all()
    assert (mad[40:] == 0.0).all()
    # A value never judges itself: a spike on day 60 leaves day 60's own baseline unchanged.
    spiked = values.copy()
    spiked[60] = 99.0
    assert trailing_baseline(spiked, WEEKEND, 28)[0][60] == median[60]


def test_clean_data_with_a_weekly_rhythm_has_few_anomalies():
    report = detect_anomalies(_clean_series(), DATES, 28)
    assert not report.insufficient_data
    flagged_weekends = sum(
        WEEKEND[(pd.Timestamp(a.date) - DATES[0]).days] for a in report.anomalies
    )
    assert len(report.anomalies) <= 6
    assert flagged_weekends <= 2


def test_an_injected_spike_is_found_with_its_metric_and_severity():
    values = _clean_series()
    j = METRICS.index("resting_heart_rate")
    values[80, j] += 12.0  # ~8 SD of 1.5 bpm
    report = detect_anomalies(values, DATES, 28)
    by_date = {a.date: a for a in report.anomalies}
    anomaly = by_date[DATES[80].date()]
    assert anomaly.deviations[0].metric == "resting_heart_rate"
    assert anomaly.deviations[0].value == pytest.approx(values[80, j])
    # The z-score is computed from the same days independently here.
    prior = values[52:80, j]
    same_type = prior[WEEKEND[52:80] == WEEKEND[80]]
    expected_median = np.median(same_type)
    assert anomaly.deviations[0].baseline_median == pytest.approx(expected_median)
    assert anomaly.deviations[0].robust_z > 6
    assert anomaly.severity is AnomalySeverity.HIGH
    assert anomaly.method in (DetectionMethod.ROBUST_Z, DetectionMethod.BOTH)
    assert 0.5 < anomaly.score <= 1.0


def test_missing_days_are_reported_as_missing_not_as_anomalies():
    values = _clean_series()
    values[70:75, :] = np.nan  # the watch was off for five days
    values[90:93, METRICS.index("hrv_rmssd")] = np.nan
    report = detect_anomalies(values, DATES, 28)
    missing = {(s.metric, s.start, s.days) for s in report.missing}
    assert ("steps", DATES[70].date(), 5) in missing
    assert ("hrv_rmssd", DATES[90].date(), 3) in missing
    anomaly_dates = {a.date for a in report.anomalies}
    assert not anomaly_dates & {d.date() for d in DATES[70:75]}
    for anomaly in report.anomalies:
        if anomaly.date in {d.date() for d in DATES[90:93]}:
            assert all(d.metric != "hrv_rmssd" for d in anomaly.deviations)


def test_current_baselines_are_median_and_mad_of_the_last_window():
    values = _clean_series()
    report = detect_anomalies(values, DATES, 28)
    steps = {b.metric: b for b in report.baselines}["steps"]
    recent = values[-28:, METRICS.index("steps")]
    assert steps.median == pytest.approx(np.median(recent))
    assert steps.mad == pytest.approx(np.median(np.abs(recent - np.median(recent))))
    assert steps.days == 28


def test_too_few_days_is_insufficient():
    report = detect_anomalies(_clean_series()[:10], DATES[:10], 28)
    assert report.insufficient_data and report.anomalies == ()


def test_robust_z_matches_its_definition():
    values = _clean_series(5)
    baseline = daily_baseline(values, DATES, 28)
    j, day = METRICS.index("sleep_efficiency"), 100
    z = (values[day, j] - baseline.median[day, j]) / (MAD_TO_SD * baseline.mad[day, j])
    assert baseline.robust_z[day, j] == pytest.approx(z)
