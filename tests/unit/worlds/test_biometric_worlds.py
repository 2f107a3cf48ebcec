"""The early warning's worlds: wearables everywhere, each differing where it says it does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.synthetic import METRICS
from worlds import BIOMETRIC_WORLDS, World, get_world

N, SEED = 12, 5


def _truth(name: str):
    _, truth = get_world(name).generate(N, SEED)
    return truth.details["cohort_truth"]


@pytest.mark.parametrize("name", sorted(BIOMETRIC_WORLDS))
def test_every_biometric_world_is_deterministic_with_wearables_every_day(name: str) -> None:
    world = BIOMETRIC_WORLDS[name]
    assert isinstance(world, World)
    data, truth = world.generate(N, SEED)
    again, _ = world.generate(N, SEED)
    pd.testing.assert_frame_equal(data.biometrics, again.biometrics)
    assert list(data.biometrics.columns) == ["patient_id", "date", *METRICS]
    assert len(data.biometrics) == len(data.symptoms)
    assert (data.biometrics[list(METRICS)].dropna() >= 0).all().all()
    assert "cohort_truth" in truth.details and len(data.patient_ids) == N


def test_no_prodrome_keeps_the_onsets_and_drops_every_prodrome() -> None:
    reference, plain = _truth("reference"), _truth("no_prodrome")
    assert (reference.relapse_onsets.prodrome_days > 0).any()
    assert (plain.relapse_onsets.prodrome_days == 0).all()
    pd.testing.assert_series_equal(
        reference.relapse_onsets.onset_date.reset_index(drop=True),
        plain.relapse_onsets.onset_date.reset_index(drop=True),
    )


def test_uncoupled_and_shifted_worlds_change_the_coupling() -> None:
    assert not _truth("uncoupled_wearables").couplings.coupled.any()
    reference = _truth("reference").couplings.dropna(subset=["lag_days"])
    shifted = _truth("shifted_wearables").couplings.dropna(subset=["lag_days"])
    assert reference.lag_days.between(1, 10).all()
    assert shifted.lag_days.between(2, 14).all()


def test_noisy_wearables_double_the_day_to_day_variance_and_keep_the_symptoms() -> None:
    reference, _ = get_world("reference").generate(N, SEED)
    noisy, _ = get_world("noisy_wearables").generate(N, SEED)
    pd.testing.assert_frame_equal(reference.symptoms, noisy.symptoms)
    ratios = []
    for metric in ("resting_heart_rate", "sleep_duration"):
        before = reference.biometrics.groupby("patient_id")[metric].diff().var()
        after = noisy.biometrics.groupby("patient_id")[metric].diff().var()
        ratios.append(after / before)
    assert np.all((np.array(ratios) > 1.3) & (np.array(ratios) < 3.5))
