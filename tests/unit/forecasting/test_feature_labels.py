"""Forecast drivers in clinical words, with a generic label for names not listed."""

from __future__ import annotations

import pytest

from forecasting_svc.feature_labels import clinical_label
from forecasting_svc.importance import EARLIER_DAYS, OTHER_FEATURES, patch_name
from forecasting_svc.models.features import FEATURE_NAMES


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("horizon", "days ahead"),
        ("target_weekday", "weekday rhythm"),
        ("instrument", "which scale is forecast"),
        ("rolling_std_28", "recent variability (28 days)"),
        ("rolling_std_7", "recent variability (7 days)"),
        ("rolling_mean_14", "average score over 14 days"),
        ("lag_0", "latest score"),
        ("lag_1", "score 1 day before the latest"),
        ("lag_13", "score 13 days before the latest"),
        ("slope_14", "recent direction of change (14 days)"),
        (OTHER_FEATURES, "all other inputs"),
        (EARLIER_DAYS, "earlier scores"),
        (patch_name(0), "scores of the last 7 days"),
        (patch_name(1), "scores 7–13 days ago"),
    ],
)
def test_known_inputs_read_in_clinical_words(raw: str, words: str) -> None:
    assert clinical_label(raw) == words


def test_every_model_input_gets_words_without_underscores() -> None:
    for name in FEATURE_NAMES:
        label = clinical_label(name)
        assert label and label != name and "_" not in label, name


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("ets_level", "other model input (ets level)"),
        ("lag_x", "other model input (lag x)"),
        ("", "other model input"),
        ("   ", "other model input"),
    ],
)
def test_an_unknown_input_gets_a_generic_label_not_a_crash(raw: str, words: str) -> None:
    assert clinical_label(raw) == words
