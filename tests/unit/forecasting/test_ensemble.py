"""Ensemble weights come from validation error per horizon."""

from __future__ import annotations

import numpy as np

from forecasting_svc.models.ensemble import EnsembleWeights


def _rows(rng, n, horizons):
    target = rng.normal(0.5, 0.1, n)
    return target, horizons


def test_weights_favour_the_model_that_is_better_at_each_horizon():
    rng = np.random.default_rng(0)
    n = 9000
    horizons = rng.integers(1, 31, n)
    target = rng.normal(0.5, 0.1, n)
    noise_small = rng.normal(0, 0.01, n)
    noise_large = rng.normal(0, 0.2, n)
    short = horizons <= 10
    # The transformer is accurate at short horizons, XGBoost at long ones.
    t_median = target + np.where(short, noise_small, noise_large)
    x_median = target + np.where(short, noise_large, noise_small)
    spread = np.array([-0.05, 0.0, 0.05])
    weights = EnsembleWeights.fit(
        horizons, t_median[:, None] + spread, x_median[:, None] + spread, target, 30
    )
    assert weights.transformer[:8].min() >= 0.8
    assert weights.transformer[13:30].max() <= 0.2


def test_equal_models_get_a_mixture_and_combination_is_levelwise():
    rng = np.random.default_rng(1)
    n = 6000
    horizons = rng.integers(1, 8, n)
    target = rng.normal(0.5, 0.1, n)
    spread = np.array([-0.1, 0.0, 0.1])
    t = (target + rng.normal(0, 0.05, n))[:, None] + spread
    x = (target + rng.normal(0, 0.05, n))[:, None] + spread
    weights = EnsembleWeights.fit(horizons, t, x, target, 7)
    # Two equally good, independent errors: averaging beats either alone.
    assert 0.2 <= weights.transformer.mean() <= 0.8
    combined = weights.combine(t[:7], x[:7], np.arange(1, 8))
    w = weights.transformer[:7, None]
    assert np.allclose(combined, w * t[:7] + (1 - w) * x[:7])
