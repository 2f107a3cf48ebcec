"""Enum values in error messages are spelled as the protobuf JSON mapping accepts them.

A caller who reads "must be PHQ9" and types `"instrument": "PHQ9"` into grpcurl gets a parse
error: JSON takes `INSTRUMENT_PHQ9` only. Two checks: every rule text in the services' source
that names an enum value uses its full name, and the lists the validators actually send
parse, name by name, as the enum in JSON.
"""

from __future__ import annotations

import ast
import importlib
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor

from biometric_svc.domain import BiometricSamples, IndicatorObservations
from biometric_svc.validation import validate_biometrics, validate_indicators
from common.errors import InvalidArgumentError, ValidationCollector
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.validation import validate_generate_insights

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "common",
    "forecasting_svc",
    "biometric_svc",
    "pharmacogenomics_svc",
    "twin_orchestrator",
)
PROTO_MODULES = (
    "novamind.common.v1.common_pb2",
    "novamind.forecasting.v1.forecasting_pb2",
    "novamind.biometric.v1.biometric_pb2",
    "novamind.pharmacogenomics.v1.pharmacogenomics_pb2",
    "novamind.twin.v1.twin_pb2",
)
_UPPER_TOKEN = re.compile(r"(?<![A-Za-z0-9_])_?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?![A-Za-z0-9_])")
_ENUM_LIST = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def _enums(message: Descriptor) -> list[EnumDescriptor]:
    found = list(message.enum_types)
    for nested in message.nested_types:
        found.extend(_enums(nested))
    return found


def _full_enum_value_names() -> set[str]:
    names: set[str] = set()
    for module_name in PROTO_MODULES:
        file = importlib.import_module(module_name).DESCRIPTOR
        enums = list(file.enum_types_by_name.values())
        for message in file.message_types_by_name.values():
            enums.extend(_enums(message))
        names.update(value.name for enum in enums for value in enum.values)
    return names


def _rule_texts(path: Path) -> list[tuple[int, str]]:
    """String literals (f-string pieces included) that state a rule ("must ...")."""
    texts = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "must" in node.value:
            texts.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            joined = "".join(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
            if "must" in joined:
                texts.append((node.lineno, joined))
    return texts


def short_enum_spellings(text: str, full_names: set[str]) -> list[str]:
    """Tokens that are the tail of an enum value name but not a full name ("PHQ9", "_STOP")."""
    short = []
    for token in _UPPER_TOKEN.findall(text):
        bare = token.lstrip("_")
        if bare in full_names:
            continue
        if any(name.endswith(f"_{bare}") for name in full_names):
            short.append(token)
    return short


def test_the_checker_catches_short_forms():
    names = _full_enum_value_names()
    assert short_enum_spellings("must be PHQ9, GAD7, MOOD or ANXIETY", names) == [
        "PHQ9",
        "GAD7",
        "MOOD",
        "ANXIETY",
    ]
    assert short_enum_spellings("must be MEDICATION_EVENT_TYPE_START or _STOP", names) == ["_STOP"]
    assert short_enum_spellings("must be INSTRUMENT_PHQ9 (UTC, HLA-B)", names) == []


def test_no_rule_in_the_services_names_an_enum_value_by_a_short_form():
    names = _full_enum_value_names()
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for line, text in _rule_texts(path):
                short = short_enum_spellings(text, names)
                if short:
                    offenders.append(f"{path.relative_to(REPO)}:{line}: {short}")
    assert not offenders, "\n".join(offenders)


def _listed_values_parse_as(enum_name: str, field: str, rule: str) -> None:
    """Every enum value the rule lists is accepted by the JSON mapping for that field."""
    listed = _ENUM_LIST.findall(rule)
    assert listed, rule
    for value in listed:
        message = json_format.Parse(f'{{"{field}": "{value}"}}', getattr(common_pb2, enum_name)())
        assert getattr(message, field) != 0 or value.endswith("_UNSPECIFIED")


def _generate_insights_violations(request: twin_pb2.GenerateInsightsRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_generate_insights(request, now=datetime.now(UTC), max_points=1000)
    return {v.field: v.rule for v in raised.value.violations}


def test_orchestrator_rules_list_enum_values_json_accepts():
    request = twin_pb2.GenerateInsightsRequest(patient_id="MRN-1")
    symptom = request.data.symptoms.add(instrument=99, score=3)
    symptom.observed_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    sample = request.data.biometrics.add(metric=99, granularity=99, value=60)
    sample.measured_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    found = _generate_insights_violations(request)
    _listed_values_parse_as(
        "SymptomObservation", "instrument", found["data.symptoms[0].instrument"]
    )
    _listed_values_parse_as("BiometricSample", "metric", found["data.biometrics[0].metric"])
    _listed_values_parse_as(
        "BiometricSample", "granularity", found["data.biometrics[0].granularity"]
    )
    sections = twin_pb2.GenerateInsightsRequest(patient_id="MRN-1")
    sections.options.sections.append(99)
    rule = _generate_insights_violations(sections)["options.sections[0]"]
    for value in _ENUM_LIST.findall(rule):
        parsed = json_format.Parse(f'{{"sections": ["{value}"]}}', twin_pb2.InsightOptions())
        assert parsed.sections[0] != 0


def test_biometric_rules_list_enum_values_json_accepts():
    day_ns = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    collector = ValidationCollector()
    validate_biometrics(
        collector,
        BiometricSamples(
            metric=np.array([42], np.int64),
            measured_at_ns=np.array([day_ns], np.int64),
            value=np.array([60.0]),
            granularity=np.array([42], np.int64),
        ),
    )
    validate_indicators(
        collector,
        IndicatorObservations(
            instrument=np.array([42], np.int64),
            observed_at_ns=np.array([day_ns], np.int64),
            score=np.array([3.0]),
        ),
    )
    rules = {v.field: v.rule for v in collector.violations}
    metric = next(rule for field, rule in rules.items() if field.endswith(".metric"))
    granularity = next(rule for field, rule in rules.items() if field.endswith(".granularity"))
    instrument = next(rule for field, rule in rules.items() if field.endswith(".instrument"))
    _listed_values_parse_as("BiometricSample", "metric", metric)
    _listed_values_parse_as("BiometricSample", "granularity", granularity)
    _listed_values_parse_as("SymptomObservation", "instrument", instrument)
