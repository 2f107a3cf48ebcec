"""Error replies stay deliverable: bounded count and size, the rest counted."""

from __future__ import annotations

from common.errors import (
    ERROR_TEXT_BUDGET,
    MAX_REPORTED_VIOLATIONS,
    FieldViolation,
    InvalidArgumentError,
    wire_length,
)


def test_fifty_violations_are_cut_to_the_budget_and_counted():
    violations = [
        FieldViolation(f"data.symptoms[{i}].score", "must be within 0..27") for i in range(50)
    ]
    error = InvalidArgumentError(violations)
    assert len(error.violations) == MAX_REPORTED_VIOLATIONS
    assert error.omitted == 50 - MAX_REPORTED_VIOLATIONS
    assert error.message.endswith(f"; and {50 - MAX_REPORTED_VIOLATIONS} more violations")
    assert error.violations[0] == violations[0]


def test_long_and_non_ascii_rules_stay_within_the_wire_budget():
    rule = "doit être ≤ 27 — " * 200  # percent-encoded on the wire: 3 bytes per byte
    violations = [FieldViolation("x" * 1000 + str(i), rule) for i in range(30)]
    error = InvalidArgumentError(violations)
    assert 1 <= len(error.violations) < 30
    assert wire_length(error.message) <= ERROR_TEXT_BUDGET
    assert error.omitted == 30 - len(error.violations)
    assert all(len(v.field) <= 160 and len(v.rule) <= 480 for v in error.violations)


def test_a_single_violation_is_reported_as_is():
    error = InvalidArgumentError.single("horizon_days", "must be 1..90")
    assert error.message == "horizon_days: must be 1..90"
    assert error.omitted == 0


def test_wire_length_counts_percent_encoding():
    assert wire_length("abc") == 3
    assert wire_length("%") == 3
    assert wire_length("é") == 6
