"""Locating mistakes in the patient file: JSON paths to lines, protobuf errors to field paths."""

from __future__ import annotations

import pytest

from twin_orchestrator.patient_file import PatientFileError, json_lines, parse_patient_json


def test_json_lines_follow_nesting_escapes_and_indices():
    text = (
        '{\n  "a": "x \\" ] } [",\n  "b": [\n    1,\n    {"c": [true, null]},\n'
        '    -2.5e3\n  ],\n  "d": {}\n}'
    )
    lines = json_lines(text)
    assert lines[""] == 1
    assert lines["a"] == 2
    assert lines["b"] == 3
    assert lines["b[0]"] == 4
    assert lines["b[1].c[1]"] == 5
    assert lines["b[2]"] == 6
    assert lines["d"] == 8


def test_a_valid_file_parses():
    request = parse_patient_json('{"patientId": "MRN-1", "options": {"forecastHorizonDays": 14}}')
    assert request.options.forecast_horizon_days == 14


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"options": {"forecastHorizonDays": "many"}}', "line 1: options.forecastHorizonDays"),
        ('{"patient_id": 5}', "line 1: patient_id: expected a JSON string"),
        (
            '{"data": {"genotype": {"hlaResults": [\n{"status": "POSITIVE"}]}}}',
            "HLA_STATUS_POSITIVE",
        ),
        ("[1, 2]", "the top level must be a JSON object"),
    ],
)
def test_mistakes_are_located_without_values(text, expected):
    with pytest.raises(PatientFileError) as raised:
        parse_patient_json(text)
    assert expected in str(raised.value)
    assert "many" not in str(raised.value)
