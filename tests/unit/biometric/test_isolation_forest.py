"""The array-at-a-time isolation forest behaves like Liu et al.'s (and scikit-learn's)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.ensemble import IsolationForest

from biometric_svc.models.isolation_forest import (
    MIN_DAYS,
    average_path_length,
    isolation_scores,
)


def _days(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    days = rng.standard_normal((n, 6))
    days[:3] += 5.0  # three days far off on every metric
    days[5, :3] += 2.5  # one day moderately off on three metrics together
    return days


def test_average_path_length_matches_the_paper():
    # c(m) = 2 H(m - 1) - 2 (m - 1) / m, H(i) ~ ln(i) + Euler's constant; c(2) = 1; c(1) = 0.
    assert average_path_length([0, 1, 2]).tolist() == [0.0, 0.0, 1.0]
    expected = 2 * (np.log(255) + 0.5772156649) - 2 * 255 / 256
    assert average_path_length(256) == pytest.approx(expected)


@pytest.mark.parametrize("n_days", [MIN_DAYS, 180, 400])
def test_outlying_days_score_highest_and_scores_lie_in_0_1(n_days):
    scores = isolation_scores(_days(n_days))
    assert np.all((scores > 0) & (scores <= 1))
    assert set(np.argsort(-scores)[:3]) == {0, 1, 2}
    assert scores[5] >= np.sort(scores)[-max(6, n_days // 10)]  # in the top tenth
    assert 0.35 < np.median(scores) < 0.5  # ordinary days sit a little below 0.5


def test_agrees_with_scikit_learn_as_closely_as_two_scikit_learn_seeds_agree():
    days = _days(180)
    ours = isolation_scores(days)
    theirs = [
        -IsolationForest(n_estimators=100, max_samples=180, random_state=seed)
        .fit(days)
        .score_samples(days)
        for seed in (0, 1)
    ]
    between_seeds = spearmanr(theirs[0], theirs[1]).statistic
    assert spearmanr(ours, theirs[0]).statistic > between_seeds - 0.03
    assert np.median(ours) == pytest.approx(np.median(theirs[0]), abs=0.03)


def test_constant_metrics_and_identical_days_do_not_break_it():
    days = _days(60)
    days[:, 4] = 0.0  # a metric missing throughout is all zeros
    days[10:30] = days[10]  # twenty identical days
    scores = isolation_scores(days)
    assert np.all(np.isfinite(scores))
    assert scores[10:30].max() < scores[:3].min()


def test_same_seed_same_scores_and_too_few_days_is_refused():
    days = _days(90)
    assert np.array_equal(isolation_scores(days, seed=4), isolation_scores(days, seed=4))
    with pytest.raises(ValueError, match="robust_z"):
        isolation_scores(days[: MIN_DAYS - 1])
