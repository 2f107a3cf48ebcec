"""Model inputs checked against independent pandas/numpy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.synthetic import CohortConfig, generate_cohort
from forecasting_svc.models.features import FEATURE_NAMES, TabularFeatures
from forecasting_svc.models.panel import (
    MAX_DAYS_SINCE,
    MedicationDay,
    medication_features,
    panel_from_frames,
)


@pytest.fixture(scope="module")
def panel():
    cohort = generate_cohort(CohortConfig(n_patients=5, n_days=90, seed=9, missing_rate=0.2))
    built, _ = panel_from_frames(cohort.symptoms, cohort.biometrics, cohort.medications)
    return built, cohort


def test_panel_scores_are_divided_by_the_instrument_maximum(panel):
    built, cohort = panel
    first = sorted(cohort.symptoms["patient_id"].unique())[0]
    phq9 = cohort.symptoms[cohort.symptoms["patient_id"] == first]["phq9"].to_numpy()
    row = int(np.nonzero((built.group == 0) & (built.instrument == 0))[0][0])
    assert np.allclose(built.values[row], phq9 / 27.0, equal_nan=True)


def test_rolling_lag_and_slope_features(panel):
    built, _ = panel
    features = TabularFeatures.build(built)
    row, t, h = 2, 60, 3
    series = pd.Series(built.values[row])
    anchor = series.rolling(7, min_periods=1).mean().iloc[t]
    if np.isnan(anchor):
        anchor = series.iloc[: t + 1].ffill().iloc[-1]
    x = features.rows(np.array([row]), np.array([t]), np.array([h]))[0]
    named = dict(zip(FEATURE_NAMES, x, strict=True))
    assert named["level_7d"] == pytest.approx(anchor, abs=1e-6)
    expected_mean28 = series.rolling(28, min_periods=1).mean().iloc[t] - anchor
    assert named["rolling_mean_28"] == pytest.approx(expected_mean28, abs=1e-6)
    lag3 = series.iloc[t - 3] - anchor
    if np.isnan(lag3):
        assert np.isnan(named["lag_3"])
    else:
        assert named["lag_3"] == pytest.approx(lag3, abs=1e-6)
    window = series.iloc[t - 13 : t + 1]
    observed = window.dropna()
    slope = np.polyfit(observed.index.to_numpy(float), observed.to_numpy(), 1)[0] * 7
    assert named["slope_14"] == pytest.approx(slope, abs=1e-5)
    assert named["horizon"] == h
    weekday = (built.first_weekday[row] + t + h) % 7
    assert named["target_weekday"] == weekday
    same_weekday = [d for d in range(t, -1, -1) if (built.first_weekday[row] + d) % 7 == weekday]
    last_seen = next(series.iloc[d] for d in same_weekday if not np.isnan(series.iloc[d]))
    assert named["same_weekday_last"] == pytest.approx(last_seen - anchor, abs=1e-6)


def test_medication_state_features():
    events = [
        MedicationDay(day=-5, medication="sertraline", kind="start"),
        MedicationDay(day=3, medication="sertraline", kind="dose_change"),
        MedicationDay(day=6, medication="bupropion", kind="start"),
        MedicationDay(day=8, medication="sertraline", kind="stop"),
    ]
    features = medication_features(events, 10)
    assert features[:, 0].tolist() == [1, 1, 1, 1, 1, 1, 2, 2, 1, 1]
    # Days since the last change (any event), and since the last start.
    assert features[:, 1].tolist() == [5, 6, 7, 0, 1, 2, 0, 1, 0, 1]
    assert features[:, 2].tolist() == [5, 6, 7, 8, 9, 10, 0, 1, 2, 3]
    assert medication_features([], 3)[:, 1].tolist() == [MAX_DAYS_SINCE] * 3
