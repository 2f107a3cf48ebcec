"""Builds a GenerateInsights data bundle for one patient of a cohort, up to a day.

Used by `make demo`, the benchmarks and tests to send synthetic (or CSV-loaded)
patients through the mesh exactly as a client would.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd

from common.clinical_scales import INSTRUMENT_BY_NAME
from common.proto_convert import to_timestamp
from common.synthetic import Cohort
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2

METRIC_COLUMNS = {
    "resting_heart_rate": common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE,
    "hrv_rmssd": common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
    "sleep_duration": common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
    "sleep_efficiency": common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY,
    "steps": common_pb2.BIOMETRIC_METRIC_STEPS,
    "active_minutes": common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES,
    "heart_rate": common_pb2.BIOMETRIC_METRIC_HEART_RATE,
    "hrv_sdnn": common_pb2.BIOMETRIC_METRIC_HRV_SDNN,
}
EVENT_TYPES = {
    "start": common_pb2.MEDICATION_EVENT_TYPE_START,
    "stop": common_pb2.MEDICATION_EVENT_TYPE_STOP,
    "dose_change": common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE,
}
SEX = {"female": common_pb2.SEX_FEMALE, "male": common_pb2.SEX_MALE, "other": common_pb2.SEX_OTHER}
GENES = ("cyp2d6", "cyp2c19", "cyp2c9", "cyp2b6")
HLA = {"hla_b_15_02": "HLA-B*15:02", "hla_a_31_01": "HLA-A*31:01"}


def _moment(value: object, hour: int = 0) -> datetime:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    moment = stamp.to_pydatetime()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment + timedelta(hours=hour)


def patient_data(
    cohort: Cohort,
    patient_id: str,
    until: datetime | None = None,
    *,
    history_days: int = 180,
    candidates: tuple[str, ...] = ("sertraline", "escitalopram", "bupropion", "aripiprazole"),
) -> twin_pb2.PatientData:
    """The patient's data observed up to ``until`` (inclusive), last ``history_days`` days."""
    symptoms = cohort.symptoms[cohort.symptoms.patient_id == patient_id]
    if until is None:
        until = _moment(symptoms.date.max())
    start = until - timedelta(days=history_days)
    data = twin_pb2.PatientData()

    def in_window(frame: pd.DataFrame) -> pd.DataFrame:
        dates = pd.to_datetime(frame.date).dt.tz_localize(None)
        lo, hi = pd.Timestamp(start).tz_localize(None), pd.Timestamp(until).tz_localize(None)
        return frame[(dates > lo) & (dates <= hi)]

    for row in in_window(symptoms).itertuples(index=False):
        for column, instrument in INSTRUMENT_BY_NAME.items():
            value = getattr(row, column)
            if value is not None and not math.isnan(value):
                obs = data.symptoms.add(instrument=instrument, score=float(value))
                obs.observed_at.CopyFrom(to_timestamp(_moment(row.date, hour=20)))
    biometrics = cohort.biometrics[cohort.biometrics.patient_id == patient_id]
    for row in in_window(biometrics).itertuples(index=False):
        for column, metric in METRIC_COLUMNS.items():
            # A synthetic cohort has no heart rate or SDNN column; a CSV-loaded one may.
            value = getattr(row, column, None)
            if value is not None and not math.isnan(value):
                sample = data.biometrics.add(
                    metric=metric, value=float(value), granularity=common_pb2.SAMPLE_GRANULARITY_DAY
                )
                sample.measured_at.CopyFrom(to_timestamp(_moment(row.date)))

    events = cohort.medications[cohort.medications.patient_id == patient_id]
    active: dict[str, tuple[datetime, float]] = {}
    for row in events.sort_values("date").itertuples(index=False):
        when = _moment(row.date, hour=9)
        if when > until:
            break
        event = data.medication_events.add(
            medication=row.medication,
            type=EVENT_TYPES[row.event],
            daily_dose_mg=float(row.daily_dose_mg),
        )
        event.occurred_at.CopyFrom(to_timestamp(when))
        if row.event == "stop":
            active.pop(row.medication, None)
        elif row.event == "start" or row.medication in active:
            first = active.get(row.medication, (when, 0.0))[0]
            active[row.medication] = (first, float(row.daily_dose_mg))
    for name, (started, dose) in sorted(active.items()):
        medication = data.current_medications.add(name=name, daily_dose_mg=dose)
        medication.started_at.CopyFrom(to_timestamp(started))
    data.candidate_medications.extend(c for c in candidates if c not in active)

    patient = cohort.patients[cohort.patients.patient_id == patient_id].iloc[0]
    for gene in GENES:
        data.genotype.diplotypes.add(gene=gene.upper(), diplotype=str(patient[gene]))
    for column, allele in HLA.items():
        status = (
            common_pb2.HLA_STATUS_POSITIVE if patient[column] else common_pb2.HLA_STATUS_NEGATIVE
        )
        data.genotype.hla_results.add(allele=allele, status=status)
    data.clinical.age_years = int(patient["age"])
    data.clinical.sex = SEX.get(str(patient["sex"]), common_pb2.SEX_UNSPECIFIED)
    data.clinical.prior_treatment_failures = int(patient["prior_treatment_failures"])
    phq9 = [o.score for o in data.symptoms if o.instrument == common_pb2.INSTRUMENT_PHQ9]
    if phq9:
        data.clinical.baseline_phq9 = phq9[-1]
    return data
