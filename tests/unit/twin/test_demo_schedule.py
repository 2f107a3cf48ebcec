"""The demo's patient and visits: a relapse between the visits, a check-in just before it."""

from __future__ import annotations

import pandas as pd

from common.synthetic import CohortConfig, generate_cohort
from twin_orchestrator.demo import (
    CHECK_IN_DAYS_BEFORE_ONSET,
    FIRST_VISIT_DAY,
    WEEKS_BETWEEN_VISITS,
    choose_patient,
    visit_days,
)


def test_check_in_comes_days_before_the_chosen_patients_relapse():
    cohort = generate_cohort(CohortConfig(n_patients=60, n_days=180, seed=7))
    patient = choose_patient(cohort)
    days = visit_days(cohort, patient)
    last_visit = FIRST_VISIT_DAY + 7 * WEEKS_BETWEEN_VISITS
    assert days[0] == FIRST_VISIT_DAY and days[-1] == last_visit
    assert len(days) == 3 and days == sorted(days)

    onsets = cohort.truth.relapse_onsets
    start = pd.Timestamp(cohort.config.start_date)
    onset_days = ((onsets[onsets.patient_id == patient].onset_date - start).dt.days).tolist()
    assert days[1] + CHECK_IN_DAYS_BEFORE_ONSET in onset_days
    chosen = onsets[(onsets.patient_id == patient)]
    assert (chosen.prodrome_days > 0).any()
    couplings = cohort.truth.couplings.set_index("patient_id")
    assert bool(couplings.loc[patient, "coupled"])


def test_without_a_relapse_between_the_visits_there_are_two_visits():
    cohort = generate_cohort(
        CohortConfig(n_patients=5, n_days=180, seed=3, relapse_rate_per_year=0)
    )
    patient = choose_patient(cohort)
    assert visit_days(cohort, patient) == [
        FIRST_VISIT_DAY,
        FIRST_VISIT_DAY + 7 * WEEKS_BETWEEN_VISITS,
    ]
