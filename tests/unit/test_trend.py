"""The shared trend definition: direction by the minimal important difference, honest intervals."""

from __future__ import annotations

import numpy as np
import pytest

from common.trend import (
    CONFIDENCE,
    MIN_SCORES,
    TREND_RULES,
    WINDOW_DAYS,
    TrendDirection,
    effective_sample_size,
    symptom_trend,
)

WEEKS = np.arange(4, dtype=np.float64) * 7.0


def _trend(days, values, instrument="phq9"):
    return symptom_trend(
        np.asarray(days, dtype=np.float64),
        np.asarray(values, dtype=np.float64),
        TREND_RULES[instrument],
    )


@pytest.mark.parametrize(
    ("instrument", "scores"),
    [
        ("phq9", [5, 10, 16, 22]),
        ("phq9", [5, 14, 12, 22]),  # one dip on the way up
        ("gad7", [4, 9, 13, 18]),
    ],
)
def test_four_weekly_scores_rising_to_severe_are_worsening(instrument, scores):
    trend = _trend(WEEKS, scores, instrument)
    assert trend.direction is TrendDirection.WORSENING
    assert trend.significant and trend.p_value < 1 - CONFIDENCE
    assert trend.slope_lower_per_week > 0 and trend.scores == 4
    assert trend.fitted_change >= TREND_RULES[instrument].minimal_important_difference


def test_fortnightly_fall_is_improving_and_mood_rise_is_improving():
    fortnights = np.arange(4, dtype=np.float64) * 14.0
    assert _trend(fortnights, [22, 16, 10, 5]).direction is TrendDirection.IMPROVING
    assert _trend(WEEKS, [3.0, 4.5, 6.0, 7.5], "mood").direction is TrendDirection.IMPROVING
    assert _trend(WEEKS, [7.5, 6.0, 4.5, 3.0], "mood").direction is TrendDirection.WORSENING


def test_a_flat_noisy_series_is_stable():
    assert _trend(WEEKS, [10, 12, 11, 13]).direction is TrendDirection.STABLE
    days = np.arange(WINDOW_DAYS + 1, dtype=np.float64)
    noisy = 12 + np.random.default_rng(3).normal(0, 2, len(days)).round()
    assert _trend(days, noisy).direction is TrendDirection.STABLE


def test_flat_noise_rarely_gets_a_direction():
    # Each direction is claimed at the 5 % level, so at most ~10 % of flat series.
    rng = np.random.default_rng(11)
    directions = [
        _trend(WEEKS, np.clip(np.round(12 + rng.normal(0, 4, 4)), 0, 27)).direction
        for _ in range(1000)
    ]
    assert np.mean([d is not TrendDirection.STABLE for d in directions]) <= 0.10


def test_autocorrelated_daily_noise_is_not_mistaken_for_a_trend():
    # Day-to-day persistence 0.8 plus rating noise, as in the synthetic cohort.
    rng = np.random.default_rng(5)
    n = WINDOW_DAYS + 1
    days = np.arange(n, dtype=np.float64)
    significant, directed = 0, 0
    for _ in range(300):
        wander = np.zeros(n)
        for t in range(1, n):
            wander[t] = 0.8 * wander[t - 1] + rng.normal(0, 1.0)
        noisy = wander + rng.normal(0, 1.0, n)
        trend = _trend(days, np.clip(np.round(12 + noisy), 0, 27))
        significant += trend.significant
        directed += trend.direction is not TrendDirection.STABLE
    # Independent-noise intervals call about half of these significant; the
    # correction is partial (module doc), and the MID keeps directions rare.
    assert significant / 300 <= 0.30
    assert directed / 300 <= 0.03


def test_effective_sample_size_shrinks_with_autocorrelation():
    rng = np.random.default_rng(1)
    white = rng.normal(size=200)
    smooth = np.convolve(white, np.ones(8) / 8, mode="same")
    assert effective_sample_size(white) == pytest.approx(200, rel=0.15)
    assert effective_sample_size(smooth) < 40
    assert effective_sample_size(smooth[:MIN_SCORES]) == MIN_SCORES  # too short to estimate


def test_interval_covers_the_true_slope_about_as_often_as_it_claims():
    rng = np.random.default_rng(7)
    days = np.arange(6, dtype=np.float64) * 7.0
    true_per_week = 1.5
    covered = 0
    for _ in range(1000):
        scores = 8 + true_per_week * days / 7 + rng.normal(0, 2.5, 6)
        trend = _trend(days, scores)
        covered += trend.slope_lower_per_week <= true_per_week <= trend.slope_upper_per_week
    assert 0.86 <= covered / 1000 <= 0.94


def test_significant_but_smaller_than_the_mid_is_stable():
    trend = _trend(WEEKS, [10, 11, 12, 13])  # 3 points: less than PHQ-9's 5
    assert trend.significant and trend.direction is TrendDirection.STABLE
    gad = _trend(WEEKS, [6, 7, 8, 9], "gad7")  # 3 points: less than GAD-7's 4
    assert gad.significant and gad.direction is TrendDirection.STABLE


def test_fewer_than_four_scores_are_not_assessed():
    three = _trend(WEEKS[:3], [5, 12, 22])
    assert three.direction is TrendDirection.NOT_ASSESSED and three.scores == 3
    assert _trend(WEEKS, [5, 12, 17, 22]).direction is TrendDirection.WORSENING


def test_only_the_last_six_weeks_count():
    # A rise long ago, then six flat weeks: the course of the window is stable.
    days = np.arange(0, 200, 7, dtype=np.float64)
    scores = np.where(days < days.max() - WINDOW_DAYS, 5 + days * 0.1, 14.0)
    scores = scores + np.tile([0.0, 1.0, -1.0], len(days))[: len(days)]
    trend = _trend(days, scores)
    assert trend.scores == int((days >= days.max() - WINDOW_DAYS).sum()) == 7
    assert trend.direction is TrendDirection.STABLE


def test_p_value_and_interval_are_one_decision():
    rng = np.random.default_rng(2)
    for _ in range(200):
        scores = 10 + rng.normal(0, 3, 5) + rng.uniform(-2, 2) * np.arange(5)
        trend = _trend(np.arange(5) * 7.0, scores)
        assert trend.significant == (trend.p_value < 1 - CONFIDENCE)


def test_minimal_important_differences_are_the_published_ones():
    assert TREND_RULES["phq9"].minimal_important_difference == 5.0  # Löwe 2004, PMID 15550799
    assert TREND_RULES["gad7"].minimal_important_difference == 4.0  # Toussaint 2020, PMID 32090765
    assert not TREND_RULES["mood"].higher_is_worse and TREND_RULES["anxiety"].higher_is_worse
