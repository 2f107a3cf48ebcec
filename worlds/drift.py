"""Drift: a slow, steady change of level, up or down, that does not revert.

Level ``b + slope * t`` with baseline ``b`` 5..22 PHQ-9 points and slope drawn
from -3..+3 points per 30 days (a patient slowly recovering or slowly sliding;
the severity is clipped to 0..27 so long drifts flatten at the ends). A model
that learnt mean reversion from the reference cohort forecasts these back
towards the middle, which is the failure this world is there to expose.
Per-patient parameters: ``baseline``, ``slope_per_30d``.
"""

from __future__ import annotations

import numpy as np

from worlds.symptom_process import Fluctuation, LevelResult, SymptomWorld


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(5.0, 22.0, n)
    slope = rng.uniform(-3.0, 3.0, n) / 30.0
    level = baseline[:, None] + slope[:, None] * np.arange(n_days)[None, :]
    return level, {"baseline": baseline, "slope_per_30d": slope * 30.0}, None


WORLD = SymptomWorld(
    name="drift",
    family="drift",
    description="slow linear drift of level, up or down, no mean reversion",
    level_path=_level,
    fluctuation=Fluctuation(ar_coefficient=(0.6, 0.9), ar_sd=(0.8, 1.8)),
)
