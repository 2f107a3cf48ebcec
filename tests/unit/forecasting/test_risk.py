"""Risk periods: exceedance probabilities, runs of risky days, and a relapse the generator made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from common.synthetic import CohortConfig, generate_cohort
from forecasting_svc.instruments import SPECS, ClinicalThreshold, Instrument
from forecasting_svc.models.conformal import TAU_GRID, exceedance_probability
from forecasting_svc.risk import find_risk_periods, threshold_probabilities
from tests.unit.forecasting.requests import from_cohort

DAY0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_exceedance_probability_of_a_normal_quantile_function():
    mean, sd = 14.0, 3.0
    tau_values = stats.norm.ppf(TAU_GRID, mean, sd)[None, :]
    for threshold in (8.0, 14.0, 15.0, 20.0):
        expected = stats.norm.sf(threshold, mean, sd)
        got = float(exceedance_probability(tau_values, threshold)[0])
        assert got == pytest.approx(expected, abs=0.01)


def test_whole_number_instruments_use_a_continuity_correction():
    spec = SPECS[Instrument.PHQ9]
    tau_values = stats.norm.ppf(TAU_GRID, 14.0, 2.0)[None, :]
    got = float(threshold_probabilities(tau_values, spec.thresholds[0], spec)[0])
    assert got == pytest.approx(stats.norm.sf(14.5, 14.0, 2.0), abs=0.01)


def test_runs_above_the_probability_become_periods_with_their_peak():
    threshold = ClinicalThreshold(15.0, "PHQ-9 >= 15 (moderately severe)")
    probabilities = np.array([0.1, 0.6, 0.8, 0.55, 0.2, 0.7, 0.3, 0.9])
    dates = [DAY0 + timedelta(days=d) for d in range(len(probabilities))]
    periods = find_risk_periods(dates, probabilities, threshold, 0.5)
    assert [(p.start_date, p.end_date) for p in periods] == [
        (dates[1], dates[3]),
        (dates[5], dates[5]),
        (dates[7], dates[7]),
    ]
    assert [p.peak_date for p in periods] == [dates[2], dates[5], dates[7]]
    assert [p.peak_probability for p in periods] == [0.8, 0.7, 0.9]
    assert all(p.threshold == 15.0 and p.threshold_label == threshold.label for p in periods)
    assert find_risk_periods(dates, probabilities, threshold, 0.95) == []


@pytest.fixture(scope="module")
def unseen_cohort():
    return generate_cohort(CohortConfig(n_patients=40, n_days=150, seed=21))


def _relapse_case(cohort) -> tuple[str, int, pd.Series]:
    """A relapse onset with a high latent peak; the history is cut a few days into it."""
    start = pd.Timestamp(cohort.config.start_date)
    latent = cohort.truth.latent_severity
    for _, onset in cohort.truth.relapse_onsets.iterrows():
        day = int((onset["onset_date"] - start).days)
        if not 40 <= day <= cohort.config.n_days - 30:
            continue
        series = latent[latent["patient_id"] == onset["patient_id"]]["severity"].to_numpy()
        cut = day + 5
        if series[cut + 1 : cut + 15].min() >= 17.0 and series[day - 30 : day].mean() < 13.0:
            return str(onset["patient_id"]), cut, pd.Series(series)
    raise AssertionError("generator produced no suitable relapse for this seed")


async def test_risk_period_appears_during_a_generated_relapse(service, unseen_cohort):
    patient, cut, severity = _relapse_case(unseen_cohort)
    req = from_cohort(unseen_cohort, patient, last_day=cut, horizon_days=14)
    result = await service.forecast(req)
    periods = [p for p in result.forecasts[0].risk_periods if p.threshold == 15.0]
    assert periods, "no PHQ-9 >= 15 risk period during a relapse"
    start = pd.Timestamp(unseen_cohort.config.start_date).date()
    # The risk period lies on days the generator's latent severity was >= 15.
    risky_days = {start + timedelta(days=d) for d in range(len(severity)) if severity[d] >= 15.0}
    first = periods[0]
    assert first.start_date.date() in risky_days
    assert first.peak_probability > 0.5


async def test_no_risk_period_in_a_calm_stretch(service, unseen_cohort):
    latent = unseen_cohort.truth.latent_severity
    for patient, frame in latent.groupby("patient_id"):
        severity = frame["severity"].to_numpy()
        if severity[60:120].max() < 8.0:
            req = from_cohort(unseen_cohort, str(patient), last_day=100, horizon_days=14)
            result = await service.forecast(req)
            assert result.forecasts[0].risk_periods == ()
            return
    pytest.fail("generator produced no calm patient for this seed")
