"""Validation of GenerateInsights / GetPatientProgress requests at the mesh edge.

The edge enforces the limits every section enforces (common/limits.py: sizes,
counts, dates), so a request a section would refuse is refused here, once,
before any fan-out or storage. Every violation names the field and the rule,
never the value. Rules that need a service's knowledge (physiological ranges,
genotype syntax, daily totals) stay with the service that owns them; their
field names come back in the section detail.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from google.protobuf import timestamp_pb2

from common.clinical_scales import INSTRUMENT_RANGES
from common.enum_names import enum_choices
from common.errors import ValidationCollector
from common.limits import (
    DEFAULT_HORIZON_DAYS,
    EARLIEST_OBSERVATION,
    FUTURE_TOLERANCE,
    MAX_BIOMETRIC_SAMPLES,
    MAX_DIPLOTYPES,
    MAX_DOSE_MG,
    MAX_HLA_RESULTS,
    MAX_HORIZON_DAYS,
    MAX_INDICATORS,
    MAX_MEDICATION_EVENTS,
    MAX_MEDICATIONS,
    MAX_PATIENT_DATA_BYTES,
    MAX_PATIENT_ID_LENGTH,
    MAX_TEXT,
    MAX_VARIANT_CALLS,
)
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2

_MEDICATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 \-/]{0,63}$")
_WHOLE_NUMBER_INSTRUMENTS = frozenset({common_pb2.INSTRUMENT_PHQ9, common_pb2.INSTRUMENT_GAD7})
_EARLIEST_SECONDS = int(EARLIEST_OBSERVATION.timestamp())
_RULE_OBSERVED = "must be a UTC time between 2000-01-01 and now (not in the future)"
_RULE_EVENT = "must be a UTC time between 1970-01-01 and now (not in the future)"
_MEDICATION_RULE = "must be a generic drug name (letters, digits, space, '-', '/'; at most 64)"
_INSTRUMENTS = enum_choices(common_pb2.Instrument)
_METRICS = enum_choices(common_pb2.BiometricMetric)
_GRANULARITIES = enum_choices(common_pb2.SampleGranularity, unspecified="treated as day")
_SECTIONS = enum_choices(twin_pb2.Section)


def _check_patient_id(errors: ValidationCollector, patient_id: str) -> None:
    if not patient_id.strip():
        errors.add("patient_id", "must not be empty")
    elif len(patient_id) > MAX_PATIENT_ID_LENGTH:
        errors.add("patient_id", f"must be at most {MAX_PATIENT_ID_LENGTH} characters")
    elif not patient_id.isprintable():
        errors.add("patient_id", "must contain printable characters only")


def _time_within(stamp: timestamp_pb2.Timestamp, earliest: int, latest: float) -> bool:
    """A well-formed Timestamp between ``earliest`` and ``latest`` (epoch seconds)."""
    return 0 <= stamp.nanos < 1_000_000_000 and earliest <= stamp.seconds <= latest


def _check_counts(errors: ValidationCollector, data: twin_pb2.PatientData, max_points: int) -> None:
    """Sizes first: an oversized request is refused before any entry is looked at."""
    if data.ByteSize() > MAX_PATIENT_DATA_BYTES:
        errors.add("data", f"must be at most {MAX_PATIENT_DATA_BYTES // (1024 * 1024)} MiB")
    total = len(data.symptoms) + len(data.biometrics)
    if total > max_points:
        errors.add(
            "data",
            f"symptoms and biometrics together must hold at most {max_points} observations",
        )
    genotype = data.genotype
    for field, count, limit in (
        ("data.symptoms", len(data.symptoms), MAX_INDICATORS),
        ("data.biometrics", len(data.biometrics), MAX_BIOMETRIC_SAMPLES),
        ("data.genotype.diplotypes", len(genotype.diplotypes), MAX_DIPLOTYPES),
        ("data.genotype.hla_results", len(genotype.hla_results), MAX_HLA_RESULTS),
        ("data.genotype.variant_calls", len(genotype.variant_calls), MAX_VARIANT_CALLS),
        ("data.current_medications", len(data.current_medications), MAX_MEDICATIONS),
        ("data.candidate_medications", len(data.candidate_medications), MAX_MEDICATIONS),
        ("data.medication_events", len(data.medication_events), MAX_MEDICATION_EVENTS),
    ):
        errors.check(count <= limit, field, f"must hold at most {limit} entries")


# Per-entry checks run on every request's hundreds of entries: enum numbers are
# looked up in sets made once, and a field's name is only formatted for an error.
_METRIC_NUMBERS = frozenset(common_pb2.BiometricMetric.values()) - {0}
_GRANULARITY_NUMBERS = frozenset(common_pb2.SampleGranularity.values())


def _check_symptoms(errors: ValidationCollector, data: twin_pb2.PatientData, latest: float) -> None:
    for i, obs in enumerate(data.symptoms):
        limits = INSTRUMENT_RANGES.get(obs.instrument)
        score = obs.score
        if limits is None:
            errors.add(f"data.symptoms[{i}].instrument", f"must be one of {_INSTRUMENTS}")
        elif not math.isfinite(score) or not limits[0] <= score <= limits[1]:
            errors.add(f"data.symptoms[{i}].score", f"must be within {limits[0]:g}..{limits[1]:g}")
        elif obs.instrument in _WHOLE_NUMBER_INSTRUMENTS and score != round(score):
            errors.add(f"data.symptoms[{i}].score", "must be a whole number for PHQ-9 and GAD-7")
        if not obs.HasField("observed_at"):
            errors.add(f"data.symptoms[{i}].observed_at", "must be set")
        elif not _time_within(obs.observed_at, _EARLIEST_SECONDS, latest):
            errors.add(f"data.symptoms[{i}].observed_at", _RULE_OBSERVED)


def _check_biometrics(
    errors: ValidationCollector, data: twin_pb2.PatientData, latest: float
) -> None:
    for i, sample in enumerate(data.biometrics):
        if sample.metric not in _METRIC_NUMBERS:
            errors.add(f"data.biometrics[{i}].metric", f"must be one of {_METRICS}")
        if sample.granularity not in _GRANULARITY_NUMBERS:
            errors.add(f"data.biometrics[{i}].granularity", f"must be one of {_GRANULARITIES}")
        if not math.isfinite(sample.value):
            errors.add(f"data.biometrics[{i}].value", "must be a finite number")
        if not sample.HasField("measured_at"):
            errors.add(f"data.biometrics[{i}].measured_at", "must be set")
        elif not _time_within(sample.measured_at, _EARLIEST_SECONDS, latest):
            errors.add(f"data.biometrics[{i}].measured_at", _RULE_OBSERVED)


def _check_text(errors: ValidationCollector, field: str, value: str) -> None:
    errors.check(len(value) <= MAX_TEXT, field, f"must be at most {MAX_TEXT} characters")


def _check_genotype(errors: ValidationCollector, genotype: common_pb2.Genotype) -> None:
    for i, diplotype in enumerate(genotype.diplotypes):
        _check_text(errors, f"data.genotype.diplotypes[{i}].gene", diplotype.gene)
        _check_text(errors, f"data.genotype.diplotypes[{i}].diplotype", diplotype.diplotype)
    for i, hla in enumerate(genotype.hla_results):
        _check_text(errors, f"data.genotype.hla_results[{i}].allele", hla.allele)
    for i, call in enumerate(genotype.variant_calls):
        _check_text(errors, f"data.genotype.variant_calls[{i}].rsid", call.rsid)
        _check_text(errors, f"data.genotype.variant_calls[{i}].genotype", call.genotype)


def _check_dose(errors: ValidationCollector, field: str, dose: float) -> None:
    errors.check(
        math.isfinite(dose) and 0.0 <= dose <= MAX_DOSE_MG,
        field,
        f"must be 0 (unknown) .. {MAX_DOSE_MG:,.0f} mg",
    )


def _check_medications(
    errors: ValidationCollector, data: twin_pb2.PatientData, latest: float
) -> None:
    for i, name in enumerate(data.candidate_medications):
        errors.check(
            bool(_MEDICATION_NAME.match(name)), f"data.candidate_medications[{i}]", _MEDICATION_RULE
        )
    for i, medication in enumerate(data.current_medications):
        field = f"data.current_medications[{i}]"
        errors.check(
            bool(_MEDICATION_NAME.match(medication.name)), f"{field}.name", _MEDICATION_RULE
        )
        _check_dose(errors, f"{field}.daily_dose_mg", medication.daily_dose_mg)
    for i, event in enumerate(data.medication_events):
        field = f"data.medication_events[{i}]"
        if not event.HasField("occurred_at"):
            errors.add(f"{field}.occurred_at", "must be set")
        elif not _time_within(event.occurred_at, 0, latest):
            errors.add(f"{field}.occurred_at", _RULE_EVENT)
        name = event.medication.strip()
        errors.check(
            0 < len(name) <= MAX_TEXT and name.isprintable(),
            f"{field}.medication",
            f"must be a generic drug name of 1..{MAX_TEXT} printable characters",
        )
        _check_dose(errors, f"{field}.daily_dose_mg", event.daily_dose_mg)


def validate_generate_insights(
    request: twin_pb2.GenerateInsightsRequest, *, now: datetime, max_points: int
) -> None:
    errors = ValidationCollector()
    _check_patient_id(errors, request.patient_id)
    horizon = request.options.forecast_horizon_days
    errors.check(
        0 <= horizon <= MAX_HORIZON_DAYS,
        "options.forecast_horizon_days",
        f"must be 0 (meaning {DEFAULT_HORIZON_DAYS}) or within 1..{MAX_HORIZON_DAYS}",
    )
    for i, section in enumerate(request.options.sections):
        errors.check(
            section in twin_pb2.Section.values() and section != twin_pb2.SECTION_UNSPECIFIED,
            f"options.sections[{i}]",
            f"must be one of {_SECTIONS}",
        )
    data = request.data
    _check_counts(errors, data, max_points)
    errors.raise_if_any()
    latest = (now + FUTURE_TOLERANCE).timestamp()
    _check_symptoms(errors, data, latest)
    _check_biometrics(errors, data, latest)
    _check_genotype(errors, data.genotype)
    _check_medications(errors, data, latest)
    errors.raise_if_any()


def validate_progress(request: twin_pb2.GetPatientProgressRequest, *, now: datetime) -> None:
    errors = ValidationCollector()
    _check_patient_id(errors, request.patient_id)
    if request.HasField("since") and not _time_within(
        request.since, 0, (now + FUTURE_TOLERANCE).timestamp()
    ):
        errors.add("since", "must be a UTC time between 1970-01-01 and now")
    errors.raise_if_any()
