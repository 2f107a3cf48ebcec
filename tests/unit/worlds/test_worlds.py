"""Synthetic worlds: one interface, deterministic, consumable as the cohort is, and distinct."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from common.synthetic import INSTRUMENTS, METRICS
from forecasting_svc.models.panel import panel_from_frames
from worlds import WORLDS, Sampling, World, get_world

SYMPTOM_COLUMNS = ["patient_id", "date", *INSTRUMENTS]


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_every_world_is_deterministic_and_shaped_like_the_cohort(name: str) -> None:
    world = WORLDS[name]
    assert isinstance(world, World)
    sampling = Sampling(history_days=(40, 70))
    data, truth = world.generate(6, seed=3, sampling=sampling)
    again, _ = world.generate(6, seed=3, sampling=sampling)
    other, _ = world.generate(6, seed=4, sampling=sampling)
    pd.testing.assert_frame_equal(data.symptoms, again.symptoms)
    assert not data.symptoms[["phq9"]].equals(other.symptoms[["phq9"]])
    assert list(data.symptoms.columns) == SYMPTOM_COLUMNS
    assert list(data.biometrics.columns)[2:] == list(METRICS)
    assert data.symptoms["date"].dtype == "datetime64[ns]"
    assert len(data.patient_ids) == 6
    per_patient = data.symptoms.groupby("patient_id").size()
    lengths = truth.patients.set_index("patient_id")["history_days"]
    assert (per_patient == lengths.loc[per_patient.index]).all()
    assert per_patient.between(40, 70).all()
    phq9 = data.symptoms["phq9"].dropna()
    assert phq9.between(0, 27).all() and (phq9 == phq9.round()).all()
    assert data.symptoms["gad7"].dropna().between(0, 21).all()
    assert len(truth.latent) == len(data.symptoms)
    panel, patients = panel_from_frames(data.symptoms, data.biometrics, data.medications)
    assert patients == data.patient_ids and panel.n_series >= 6


def test_weekly_and_fortnightly_cadence_keep_phq9_and_gad7_on_visit_days() -> None:
    for cadence, gap in (("weekly", 7), ("fortnightly", 14)):
        data, truth = get_world("drift").generate(
            5, seed=1, sampling=Sampling(history_days=(120, 120), cadence=cadence)
        )
        assert set(truth.patients["cadence"]) == {cadence}
        assert data.symptoms[["mood", "anxiety"]].isna().all().all()
        for _, part in data.symptoms.groupby("patient_id"):
            seen = part.loc[part["phq9"].notna(), "date"]
            gaps = seen.diff().dt.days.dropna()
            assert gaps.median() == gap
            assert gaps.between(1, 3 * gap).all()
            assert part["gad7"].notna().equals(part["phq9"].notna())
            assert part["date"].iloc[-1] == seen.iloc[-1]


def test_reference_world_is_the_original_cohort_when_not_resampled() -> None:
    from common.synthetic import CohortConfig, generate_cohort

    data, truth = get_world("reference").generate(4, seed=2)
    cohort = generate_cohort(CohortConfig(n_patients=4, seed=2))
    pd.testing.assert_frame_equal(data.symptoms, cohort.symptoms)
    pd.testing.assert_frame_equal(data.biometrics, cohort.biometrics)
    pd.testing.assert_frame_equal(
        truth.details["cohort_truth"].relapse_onsets,  # type: ignore[attr-defined]
        cohort.truth.relapse_onsets,
    )


def test_reference_world_resampled_to_weekly_visits() -> None:
    data, truth = get_world("reference").generate(
        6, seed=2, sampling=Sampling(history_days=(60, 90), cadence="weekly")
    )
    assert truth.patients["history_days"].between(60, 90).all()
    observed = data.symptoms.groupby("patient_id")["phq9"].count()
    assert observed.between(60 // 7 - 2, 90 // 7 + 2).all()
    assert data.symptoms["mood"].isna().all()


def _latent(world: str, n: int = 40, days: int = 180) -> tuple[pd.DataFrame, pd.DataFrame]:
    _, truth = get_world(world).generate(
        n, seed=5, sampling=Sampling(history_days=(days, days), missing_rate=0.0)
    )
    return truth.latent, truth.patients


def test_drift_world_keeps_its_drawn_slope() -> None:
    latent, patients = _latent("drift")
    fitted = []
    for _, part in latent.groupby("patient_id", sort=True):
        day = (part["date"] - part["date"].min()).dt.days.to_numpy()
        fitted.append(np.polyfit(day, part["severity"].to_numpy(), 1)[0] * 30)
    drawn = patients.sort_values("patient_id")["slope_per_30d"].to_numpy()
    unclipped = np.abs(drawn) < 1.0
    assert np.corrcoef(fitted, drawn)[0, 1] > 0.8
    assert np.allclose(np.array(fitted)[unclipped], drawn[unclipped], atol=0.6)


def test_step_changes_persist() -> None:
    latent, patients = _latent("step_change")
    jumps, sizes = [], []
    for _, row in patients.iterrows():
        days = list(row["step_days"])
        series = latent[latent["patient_id"] == row["patient_id"]]["severity"].to_numpy()
        for k, (day, size) in enumerate(zip(days, row["step_sizes"], strict=True)):
            neighbours = [d for j, d in enumerate(days) if j != k and abs(d - day) < 21]
            if neighbours or not 21 <= day <= len(series) - 21:
                continue
            # The jump holds for three weeks: the new level is the level.
            jumps.append(series[day + 7 : day + 21].mean() - series[day - 14 : day].mean())
            sizes.append(size)
    assert len(sizes) >= 10
    assert np.corrcoef(jumps, sizes)[0, 1] > 0.8
    assert np.polyfit(sizes, jumps, 1)[0] > 0.7


def test_treatment_responders_fall_by_half_and_medication_starts_are_recorded() -> None:
    data, truth = get_world("treatment_response").generate(
        60, seed=5, sampling=Sampling(history_days=(120, 120), missing_rate=0.0)
    )
    first = truth.latent.groupby("patient_id")["severity"].apply(lambda s: s.iloc[:5].mean())
    late = truth.latent.groupby("patient_id")["severity"].apply(lambda s: s.iloc[80:110].mean())
    fraction = truth.patients.set_index("patient_id")["response_fraction"]
    strong = fraction[fraction > 0.7].index
    assert (late[strong] < 0.6 * first[strong]).mean() > 0.8
    assert set(data.medications["patient_id"]) == set(truth.patients["patient_id"])
    assert set(data.medications["event"]) == {"start"}


def test_remission_floor_piles_scores_at_zero_and_heavy_tail_has_heavy_tails() -> None:
    floor, _ = get_world("remission_floor").generate(30, seed=1)
    rhythm, _ = get_world("weekly_rhythm").generate(30, seed=1)
    assert (floor.symptoms["phq9"].dropna() == 0).mean() > 0.1
    assert (rhythm.symptoms["phq9"].dropna() == 0).mean() < 0.05
    normal, normal_truth = get_world("drift").generate(30, seed=1)
    heavy, heavy_truth = get_world("heavy_tail").generate(30, seed=1)

    def kurtosis(data: pd.DataFrame, latent: pd.DataFrame) -> float:
        error = (data.symptoms["phq9"] - latent["severity"].round()).dropna()
        return float(stats.kurtosis(error))

    assert kurtosis(heavy, heavy_truth.latent) > kurtosis(normal, normal_truth.latent) + 2


def test_bad_sampling_and_unknown_world_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="cadence"):
        Sampling(cadence="hourly")
    with pytest.raises(ValueError, match="history_days"):
        Sampling(history_days=(10, 5))
    with pytest.raises(ValueError, match=r"known: .*drift"):
        get_world("atlantis")
