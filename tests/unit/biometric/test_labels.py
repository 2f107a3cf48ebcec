"""PHQ-9-derived onsets and 7-day deterioration labels for data without known relapses."""

from __future__ import annotations

import numpy as np

from biometric_svc.labels import (
    UNKNOWN_LABEL,
    labels_from_onsets,
    phq9_deterioration_labels,
    phq9_onsets,
)


def test_onset_needs_a_high_score_and_a_five_point_rise():
    phq9 = np.full(90, 8.0)
    phq9[30] = 16.0  # >= 15 and 8 above the prior median: onset
    phq9[40] = 18.0  # within 28 days of the last onset: same episode
    phq9[75] = 14.0  # rise of 6 but below 15: no onset
    phq9[80:85] = 13.0
    phq9[85] = 15.0  # 15 and 7 above the prior 28-day median (still 8): onset
    assert phq9_onsets(phq9).tolist() == [30, 85]


def test_sparse_scores_need_two_earlier_observations():
    phq9 = np.full(60, np.nan)
    phq9[[5, 20]] = 9.0
    phq9[21] = 20.0
    phq9[3] = 20.0  # no history before it
    assert phq9_onsets(phq9).tolist() == [21]


def test_labels_mark_the_seven_days_before_each_onset():
    labels = labels_from_onsets(30, np.array([10]), horizon_days=7, last_known=29)
    assert labels[:3].tolist() == [0, 0, 0]
    assert labels[3:10].tolist() == [1] * 7  # days 3..9 see the onset within 7 days
    assert labels[10:23].tolist() == [0] * 13
    assert (labels[23:] == UNKNOWN_LABEL).all()  # horizon runs past the last observation


def test_no_scores_means_no_labels():
    assert (phq9_deterioration_labels(np.full(20, np.nan)) == UNKNOWN_LABEL).all()
