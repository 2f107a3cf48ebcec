"""UCUM units a FHIR Quantity may carry, converted to the unit each mesh field uses.

Each quantity kind accepts a short list of UCUM codes (https://ucum.org) with
the factor to the mesh's unit. Anything else is an error naming the unit and
the units accepted: a value in an unexpected unit is never taken as it stands.
"""

from __future__ import annotations

from typing import Final

#: kind -> {UCUM code: factor to the mesh unit}. The mesh unit comes first.
UNITS: Final[dict[str, dict[str, float]]] = {
    "score": {"{score}": 1.0, "1": 1.0, "{points}": 1.0},
    "heart_rate": {"/min": 1.0, "{beats}/min": 1.0, "{beat}/min": 1.0, "1/min": 1.0},
    "hrv": {"ms": 1.0, "s": 1000.0, "us": 0.001},
    "sleep_duration": {"h": 1.0, "min": 1.0 / 60.0, "s": 1.0 / 3600.0},
    "steps": {"{steps}": 1.0, "{step}": 1.0, "{count}": 1.0, "1": 1.0, "/d": 1.0},
    "fraction": {"1": 1.0, "%": 0.01, "{ratio}": 1.0},
    "active_minutes": {"min": 1.0, "h": 60.0, "s": 1.0 / 60.0},
    "age": {"a": 1.0, "mo": 1.0 / 12.0},
    "count": {"1": 1.0, "{count}": 1.0, "{trials}": 1.0},
    "dose": {"mg": 1.0, "g": 1000.0, "ug": 0.001},
}
#: Kinds whose value may come without any unit (scores and counts are unitless).
UNITLESS_ALLOWED: Final = frozenset({"score", "steps", "count", "fraction"})


class UnitError(ValueError):
    """A quantity's unit is missing or not one the field accepts."""


def to_mesh_unit(value: float, unit: str | None, kind: str) -> float:
    """``value`` in ``unit`` (a UCUM code) converted to the mesh's unit for ``kind``."""
    accepted = UNITS[kind]
    if unit is None or unit == "":
        if kind in UNITLESS_ALLOWED:
            return value
        raise UnitError(f"a unit is required (accepted UCUM units: {', '.join(accepted)})")
    factor = accepted.get(unit)
    if factor is None:
        raise UnitError(
            f"unit {unit!r} is not accepted here (accepted UCUM units: {', '.join(accepted)})"
        )
    return value * factor


def mesh_unit(kind: str) -> str:
    """The UCUM code of the mesh's own unit for ``kind`` (what the export writes)."""
    return next(iter(UNITS[kind]))
