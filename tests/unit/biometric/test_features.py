"""Early-warning input windows: personal baselines, worsening-aligned signs, missing flags."""

from __future__ import annotations

import numpy as np
import pytest

from biometric_svc.features import (
    BASELINE_DAYS,
    FEATURE_NAMES,
    HISTORY_DAYS,
    RECENT_DAYS,
    WINDOW_DAYS,
    patient_windows,
    valid_ends,
)
from common.synthetic import INSTRUMENTS, METRICS

DAYS = 70


def _patient(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bio = np.column_stack(
        [
            60 + rng.normal(0, 2, DAYS),
            np.exp(np.log(40) + rng.normal(0, 0.1, DAYS)),
            7 + rng.normal(0, 0.4, DAYS),
            0.9 + rng.normal(0, 0.02, DAYS),
            8000 * np.exp(rng.normal(0, 0.2, DAYS)),
            30 * np.exp(rng.normal(0, 0.2, DAYS)),
        ]
    )
    ind = np.column_stack(
        [
            np.round(8 + rng.normal(0, 1.5, DAYS)),
            np.round(6 + rng.normal(0, 1.5, DAYS)),
            6.5 + rng.normal(0, 0.5, DAYS),
            3 + rng.normal(0, 0.5, DAYS),
        ]
    )
    return bio, ind


def test_window_shape_and_valid_ends():
    bio, ind = _patient()
    ends = valid_ends(DAYS)
    assert ends[0] == HISTORY_DAYS - 1 and ends[-1] == DAYS - 1
    windows = patient_windows(bio, ind, ends)
    assert windows.shape == (len(ends), WINDOW_DAYS, len(FEATURE_NAMES))
    with pytest.raises(ValueError):
        patient_windows(bio, ind, np.array([HISTORY_DAYS - 2]))


def test_metric_z_is_signed_towards_worsening_and_computed_on_the_baseline_days():
    bio, ind = _patient(1)
    end = DAYS - 1
    hrv, hr = METRICS.index("hrv_rmssd"), METRICS.index("resting_heart_rate")
    bio[end, hrv] = 20.0  # HRV halves: worse
    bio[end, hr] = 75.0  # resting HR up: worse
    (window,) = patient_windows(bio, ind, np.array([end]))
    base = slice(end - HISTORY_DAYS + 1, end - HISTORY_DAYS + 1 + BASELINE_DAYS)
    assert end - (base.stop - 1) == RECENT_DAYS
    log_hrv = np.log1p(bio[base, hrv])
    median = np.median(log_hrv)
    mad = np.median(np.abs(log_hrv - median))
    expected = -(np.log1p(20.0) - median) / (1.4826 * mad)
    assert window[-1, hrv] == pytest.approx(min(expected, 6.0), rel=1e-5)
    assert window[-1, hrv] > 3 and window[-1, hr] > 3


def test_missing_days_are_flagged_and_zeroed():
    bio, ind = _patient(2)
    bio[-3:, METRICS.index("steps")] = np.nan
    ind[-2:, :] = np.nan
    (window,) = patient_windows(bio, ind, np.array([DAYS - 1]))
    steps = METRICS.index("steps")
    missing_steps = FEATURE_NAMES.index("missing_steps")
    assert (window[-3:, steps] == 0).all() and (window[-3:, missing_steps] == 1).all()
    assert window[-4, missing_steps] == 0
    assert (window[-2:, FEATURE_NAMES.index("missing_symptoms")] == 1).all()
    assert (window[-2:, FEATURE_NAMES.index("z_symptoms")] == 0).all()


def test_worse_mood_raises_the_symptom_score():
    bio, ind = _patient(3)
    ind[-1, INSTRUMENTS.index("mood")] = 1.0
    ind[-1, [INSTRUMENTS.index(i) for i in ("phq9", "gad7", "anxiety")]] = np.nan
    (window,) = patient_windows(bio, ind, np.array([DAYS - 1]))
    assert window[-1, FEATURE_NAMES.index("z_symptoms")] > 3


def test_a_metric_without_a_baseline_is_missing_throughout():
    bio, ind = _patient(4)
    bio[:-10, METRICS.index("sleep_efficiency")] = np.nan
    (window,) = patient_windows(bio, ind, np.array([DAYS - 1]))
    assert (window[:, FEATURE_NAMES.index("missing_sleep_efficiency")] == 1).all()
