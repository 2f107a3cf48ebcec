"""Split-conformal calibration restores nominal coverage of miscalibrated quantiles."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting_svc.models.conformal import (
    HISTORY_BINS,
    HORIZON_GROUPS,
    SCALE_RANGE,
    TAU_GRID,
    ConformalCalibrator,
    backtest_mask,
    conformal_quantiles,
    history_bin,
    horizon_group,
    patient_scale,
    scaled_residuals,
    values_at,
)

LONG_HISTORY = np.full(4000, 120, np.int64)


def _too_narrow(rng, n):
    """Targets ~ N(m, 2) but the model claims a 10-90 % spread of only +-0.5."""
    median = rng.uniform(0.3, 0.7, n)
    base = np.stack([median - 0.05, median, median + 0.05], axis=1)
    target = median + rng.normal(0, 0.2, n) + 0.03  # also biased
    return base, target


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.95])
def test_calibrated_intervals_reach_nominal_coverage_on_fresh_data(coverage):
    rng = np.random.default_rng(0)
    base, target = _too_narrow(rng, 4000)
    horizons = rng.integers(1, 31, 4000)
    calibrator = ConformalCalibrator.fit(
        np.zeros(4000, np.int64), LONG_HISTORY, horizons, base, target, 1
    )
    fresh_base, fresh_target = _too_narrow(rng, 4000)
    fresh_h = rng.integers(1, 31, 4000)
    values = calibrator.quantile_function(
        np.zeros(4000, np.int64), LONG_HISTORY, fresh_h[:, None], fresh_base[:, None, :]
    )[:, 0]
    bounds = values_at(values, [(1 - coverage) / 2, (1 + coverage) / 2])
    inside = (fresh_target >= bounds[:, 0]) & (fresh_target <= bounds[:, 1])
    raw_inside = (fresh_target >= fresh_base[:, 0]) & (fresh_target <= fresh_base[:, 2])
    assert raw_inside.mean() < 0.3  # the uncalibrated "80 %" interval was far off
    assert inside.mean() == pytest.approx(coverage, abs=0.03)


def test_quantile_function_never_crosses_and_round_trips_json():
    rng = np.random.default_rng(1)
    base, target = _too_narrow(rng, 1000)
    calibrator = ConformalCalibrator.fit(
        rng.integers(0, 2, 1000),
        rng.integers(1, 180, 1000),
        rng.integers(1, 91, 1000),
        base,
        target,
        2,
    )
    values = calibrator.quantile_function(
        np.array([0, 1]),
        np.array([10, 150]),
        np.arange(1, 91),
        np.tile(base[:2, None, :], (1, 90, 1)),
    )
    assert np.all(np.diff(values, axis=-1) >= 0)
    again = ConformalCalibrator.from_json(calibrator.to_json())
    assert np.allclose(again.table, calibrator.table, atol=1e-6)


def test_conformal_quantile_uses_the_finite_sample_order_statistic():
    scores = np.arange(1.0, 20.0)  # n = 19
    table = conformal_quantiles(scores)
    k = int(np.argmin(np.abs(TAU_GRID - 0.9)))
    # ceil((19 + 1) * 0.9) = 18th smallest = 18.0
    assert table[k] == 18.0


def test_horizon_groups_cover_1_to_90_in_order():
    groups = horizon_group(np.arange(1, 91))
    assert groups[0] == 0 and groups[-1] == len(HORIZON_GROUPS) - 1
    assert np.all(np.diff(groups) >= 0)
    for index, (low, high) in enumerate(HORIZON_GROUPS):
        assert set(groups[low - 1 : high]) == {index}


def test_coverage_for_interpolates_the_cross_fitted_measurements():
    calibrator = ConformalCalibrator(
        np.zeros((1, len(HISTORY_BINS), len(HORIZON_GROUPS), len(TAU_GRID))),
        np.zeros((1, len(HISTORY_BINS), len(HORIZON_GROUPS)), np.int64),
        coverage_levels=(0.5, 0.8, 0.9, 0.95),
        empirical_coverage=(0.52, 0.78, 0.88, 0.96),
    )
    assert calibrator.coverage_for(0.8) == pytest.approx(0.78)
    assert calibrator.coverage_for(0.85) == pytest.approx(0.83)


def test_history_bins_split_at_their_lower_edges():
    assert history_bin([0, 1, 27, 28, 55, 56, 89, 90, 400]).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]


def test_coverage_holds_within_each_history_bin_when_error_depends_on_history():
    """Short histories err twice as much as long ones at the same claimed spread.

    Pooled tables would cover short histories too little and long ones too much;
    tables keyed by history length give nominal coverage in both.
    """
    rng = np.random.default_rng(3)

    def rows(n):
        history = rng.choice([10, 120], n)
        median = rng.uniform(0.3, 0.7, n)
        base = np.stack([median - 0.1, median, median + 0.1], axis=1)
        noise_sd = np.where(history < 28, 0.16, 0.08)
        return history, base, median + rng.normal(0, 1, n) * noise_sd

    history, base, target = rows(8000)
    horizons = rng.integers(1, 31, 8000)
    calibrator = ConformalCalibrator.fit(
        np.zeros(8000, np.int64), history, horizons, base, target, 1
    )
    fresh_history, fresh_base, fresh_target = rows(8000)
    values = calibrator.quantile_function(
        np.zeros(8000, np.int64), fresh_history, horizons[:, None], fresh_base[:, None, :]
    )[:, 0]
    bounds = values_at(values, [0.1, 0.9])
    inside = (fresh_target >= bounds[:, 0]) & (fresh_target <= bounds[:, 1])
    for length in (10, 120):
        assert inside[fresh_history == length].mean() == pytest.approx(0.8, abs=0.03)


def test_patient_scale_is_shrunk_towards_one_and_clipped():
    reference = 1.0
    assert patient_scale(np.array([]), reference) == 1.0
    # 20 residuals twice the reference: halfway to 2 (prior worth 20 rows).
    assert patient_scale(np.full(20, 2.0), reference) == pytest.approx(1.5)
    assert patient_scale(np.full(2000, 2.0), reference) == pytest.approx(2.0, abs=0.02)
    assert patient_scale(np.full(10_000, 50.0), reference) == SCALE_RANGE[1]
    assert patient_scale(np.full(10_000, 0.01), reference) == SCALE_RANGE[0]


def test_backtest_mask_keeps_known_recent_short_horizon_targets():
    offsets = np.array([7, 7, 14, 49, 56])
    horizons = np.array([3, 8, 14, 14, 14])
    observed = np.array([True, True, True, True, True])
    # 7-3 = 4 days before the origin: known; 7-8 < 0: not yet observed at the origin;
    # 49-14 = 35 < 42: inside the look-back; 56-14 = 42: outside.
    assert backtest_mask(offsets, horizons, observed).tolist() == [True, False, True, True, False]
    assert not backtest_mask(offsets, horizons, ~observed).any()


def test_patient_scales_give_each_kind_of_patient_its_coverage():
    """Half the patients are twice as noisy as the model claims; scales learnt from their
    own past let one table cover both halves, where a single table covers neither."""
    rng = np.random.default_rng(11)

    def rows(n):
        noisy = rng.random(n) < 0.5
        median = rng.uniform(0.3, 0.7, n)
        base = np.stack([median - 0.1, median, median + 0.1], axis=1)
        sd = np.where(noisy, 0.16, 0.08)
        target = median + rng.normal(0, 1, n) * sd
        # Each row's patient scale: from 400 earlier |z| of the same patient (spread 0.1).
        past = np.abs(rng.normal(0, 1, (n, 400)) * (sd / 0.1)[:, None])
        return noisy, base, target, past

    _, base, target, past = rows(8000)
    z = np.abs(scaled_residuals(base, target))
    reference = float(np.median(z))
    scale = np.array([patient_scale(p, reference) for p in past])
    horizons = rng.integers(1, 15, 8000)
    calibrator = ConformalCalibrator.fit(
        np.zeros(8000, np.int64), np.full(8000, 120), horizons, base, target, 1, scale, reference
    )
    fresh_noisy, fresh_base, fresh_target, fresh_past = rows(8000)
    fresh_scale = np.array([patient_scale(p, reference) for p in fresh_past])
    values = calibrator.quantile_function(
        np.zeros(8000, np.int64),
        np.full(8000, 120),
        horizons[:, None],
        fresh_base[:, None, :],
        fresh_scale,
    )[:, 0]
    bounds = values_at(values, [0.1, 0.9])
    inside = (fresh_target >= bounds[:, 0]) & (fresh_target <= bounds[:, 1])
    for group in (fresh_noisy, ~fresh_noisy):
        assert inside[group].mean() == pytest.approx(0.8, abs=0.03)
