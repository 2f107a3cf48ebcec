"""Validation of GenerateInsights / GetPatientProgress requests at the mesh edge.

Every violation names the field and the rule, never the value. Deeper,
service-specific checks (physiological ranges, genotype syntax) are made by the
service that owns them; their field names come back in the section detail.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from common.clinical_scales import INSTRUMENT_RANGES
from common.errors import ValidationCollector
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2

MAX_PATIENT_ID_LENGTH = 128
MAX_HORIZON_DAYS = 90
DEFAULT_HORIZON_DAYS = 30
_FUTURE_TOLERANCE = timedelta(minutes=5)
_MEDICATION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9 \-/]{0,63}$")
_MAX_VIOLATIONS = 20


def _check_patient_id(errors: ValidationCollector, patient_id: str) -> None:
    if not patient_id.strip():
        errors.add("patient_id", "must not be empty")
    elif len(patient_id) > MAX_PATIENT_ID_LENGTH:
        errors.add("patient_id", f"must be at most {MAX_PATIENT_ID_LENGTH} characters")
    elif not patient_id.isprintable():
        errors.add("patient_id", "must contain printable characters only")


def validate_generate_insights(
    request: twin_pb2.GenerateInsightsRequest, *, now: datetime, max_points: int
) -> None:
    errors = ValidationCollector()
    _check_patient_id(errors, request.patient_id)
    horizon = request.options.forecast_horizon_days
    errors.check(
        0 <= horizon <= MAX_HORIZON_DAYS,
        "options.forecast_horizon_days",
        f"must be between 1 and {MAX_HORIZON_DAYS} (0 means {DEFAULT_HORIZON_DAYS})",
    )
    for i, section in enumerate(request.options.sections):
        errors.check(
            section in twin_pb2.Section.values() and section != twin_pb2.SECTION_UNSPECIFIED,
            f"options.sections[{i}]",
            "must be FORECAST, BIOMETRIC or PHARMACOGENOMICS",
        )
    data = request.data
    total = len(data.symptoms) + len(data.biometrics)
    if total > max_points:
        errors.add(
            "data",
            f"symptoms and biometrics together must hold at most {max_points} observations",
        )
        errors.raise_if_any()
    latest_allowed = now + _FUTURE_TOLERANCE
    for i, obs in enumerate(data.symptoms):
        if len(errors.violations) >= _MAX_VIOLATIONS:
            break
        field = f"data.symptoms[{i}]"
        limits = INSTRUMENT_RANGES.get(obs.instrument)
        if limits is None:
            errors.add(f"{field}.instrument", "must be PHQ9, GAD7, MOOD or ANXIETY")
        elif not math.isfinite(obs.score) or not limits[0] <= obs.score <= limits[1]:
            errors.add(f"{field}.score", f"must be within {limits[0]:g}..{limits[1]:g}")
        if not obs.HasField("observed_at"):
            errors.add(f"{field}.observed_at", "must be set")
        elif obs.observed_at.seconds > latest_allowed.timestamp():
            errors.add(f"{field}.observed_at", "must not be in the future")
    for i, sample in enumerate(data.biometrics):
        if len(errors.violations) >= _MAX_VIOLATIONS:
            break
        field = f"data.biometrics[{i}]"
        if sample.metric not in common_pb2.BiometricMetric.values() or not sample.metric:
            errors.add(f"{field}.metric", "must be a known biometric metric")
        if not math.isfinite(sample.value):
            errors.add(f"{field}.value", "must be a finite number")
        if not sample.HasField("measured_at"):
            errors.add(f"{field}.measured_at", "must be set")
    for i, name in enumerate(data.candidate_medications):
        errors.check(
            bool(_MEDICATION_NAME.match(name)),
            f"data.candidate_medications[{i}]",
            "must be a generic drug name (letters, digits, space, '-', '/'; at most 64)",
        )
    for i, medication in enumerate(data.current_medications):
        errors.check(
            bool(_MEDICATION_NAME.match(medication.name)),
            f"data.current_medications[{i}].name",
            "must be a generic drug name (letters, digits, space, '-', '/'; at most 64)",
        )
    errors.raise_if_any()


def validate_progress(request: twin_pb2.GetPatientProgressRequest) -> None:
    errors = ValidationCollector()
    _check_patient_id(errors, request.patient_id)
    errors.raise_if_any()
