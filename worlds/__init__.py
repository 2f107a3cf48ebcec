"""Synthetic worlds: seeded generators of patients that differ in their dynamics.

Each world is one module exposing ``WORLD`` (see ``worlds.base.World``);
``WORLDS`` lists them by name. Benchmarks train on some worlds and report on
the others (docs/forecasting.md says which), so what they measure is a
property of a method, not of one generator. The reference world wraps the
original cohort of ``common/synthetic.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from worlds import (
    drift,
    heavy_tail,
    no_prodrome,
    noisy_wearables,
    reference,
    remission_floor,
    shifted_wearables,
    step_change,
    treatment_response,
    uncoupled_wearables,
    weekly_rhythm,
)
from worlds.base import CADENCES, Sampling, World, WorldData, WorldTruth

WORLDS: Final[Mapping[str, World]] = {
    w.name: w
    for w in (
        reference.WORLD,
        drift.WORLD,
        step_change.WORLD,
        treatment_response.WORLD,
        remission_floor.WORLD,
        heavy_tail.WORLD,
        weekly_rhythm.WORLD,
    )
}


#: Worlds for the biometric early warning: wearables with the reference's symptom
#: dynamics but other relapse warning signs, couplings and sensor noise. Kept apart
#: from WORLDS, whose members differ in symptom dynamics (the forecaster's worlds).
BIOMETRIC_WORLDS: Final[Mapping[str, World]] = {
    w.name: w
    for w in (
        reference.WORLD,
        no_prodrome.WORLD,
        uncoupled_wearables.WORLD,
        shifted_wearables.WORLD,
        noisy_wearables.WORLD,
    )
}


def get_world(name: str) -> World:
    """The world called ``name``; ValueError naming the known worlds otherwise."""
    known = {**WORLDS, **BIOMETRIC_WORLDS}
    try:
        return known[name]
    except KeyError:
        raise ValueError(f"unknown world {name!r}; known: {', '.join(sorted(known))}") from None


__all__ = [
    "BIOMETRIC_WORLDS",
    "CADENCES",
    "WORLDS",
    "Sampling",
    "World",
    "WorldData",
    "WorldTruth",
    "get_world",
]
