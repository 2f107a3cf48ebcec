"""Builders of ForecastSymptoms requests for the tests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from common.synthetic import Cohort
from forecasting_svc.domain import (
    CovariateKind,
    CovariateObservation,
    ForecastRequest,
    MedicationEvent,
    MedicationEventKind,
    SymptomObservation,
)
from forecasting_svc.instruments import Instrument

PSEUDONYM = "psn_" + "0123456789abcdef" * 2
START = datetime(2026, 1, 1, 20, 30, tzinfo=UTC)


def daily(
    instrument: Instrument, scores: Iterable[float], start: datetime = START
) -> list[SymptomObservation]:
    """One observation per day from ``start``; NaN scores are left out (a gap)."""
    return [
        SymptomObservation(instrument, start + timedelta(days=day), float(score))
        for day, score in enumerate(scores)
        if not math.isnan(score)
    ]


def request(history: Sequence[SymptomObservation], **options: object) -> ForecastRequest:
    values: dict[str, object] = {"horizon_days": 14, "patient_pseudonym": PSEUDONYM}
    values.update(options)
    return ForecastRequest(history=list(history), **values)  # type: ignore[arg-type]


def from_cohort(
    cohort: Cohort,
    patient_id: str,
    last_day: int,
    instruments: Sequence[Instrument] = (Instrument.PHQ9,),
    **options: object,
) -> ForecastRequest:
    """A request with the patient's symptoms, sleep, steps and medications up to ``last_day``."""
    start = pd.Timestamp(cohort.config.start_date)
    cutoff = start + pd.Timedelta(days=last_day)
    symptoms = cohort.symptoms[
        (cohort.symptoms["patient_id"] == patient_id) & (cohort.symptoms["date"] <= cutoff)
    ]
    history: list[SymptomObservation] = []
    for _, row in symptoms.iterrows():
        moment = row["date"].to_pydatetime().replace(tzinfo=UTC) + timedelta(hours=20)
        for instrument in instruments:
            if not math.isnan(row[instrument.value]):
                history.append(SymptomObservation(instrument, moment, float(row[instrument.value])))
    bio = cohort.biometrics[
        (cohort.biometrics["patient_id"] == patient_id) & (cohort.biometrics["date"] <= cutoff)
    ]
    covariates: list[CovariateObservation] = []
    for _, row in bio.iterrows():
        moment = row["date"].to_pydatetime().replace(tzinfo=UTC) + timedelta(hours=8)
        if not math.isnan(row["sleep_duration"]):
            covariates.append(
                CovariateObservation(
                    CovariateKind.SLEEP_HOURS, moment, float(row["sleep_duration"])
                )
            )
        if not math.isnan(row["steps"]):
            covariates.append(
                CovariateObservation(CovariateKind.STEPS, moment, float(row["steps"]))
            )
    meds = cohort.medications[
        (cohort.medications["patient_id"] == patient_id) & (cohort.medications["date"] <= cutoff)
    ]
    events = [
        MedicationEvent(
            occurred_at=row["date"].to_pydatetime().replace(tzinfo=UTC) + timedelta(hours=9),
            medication=str(row["medication"]),
            kind=MedicationEventKind(str(row["event"])),
            daily_dose_mg=float(row["daily_dose_mg"]),
        )
        for _, row in meds.iterrows()
    ]
    history.sort(key=lambda o: (o.observed_at, o.instrument.value if o.instrument else ""))
    values: dict[str, object] = {"horizon_days": 14}
    values.update(options)
    return ForecastRequest(
        patient_pseudonym=PSEUDONYM,
        history=history,
        covariates=covariates,
        medication_events=events,
        **values,  # type: ignore[arg-type]
    )
