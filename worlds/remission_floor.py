"""Remission floor: patients in remission, scores piled up at the bottom of the scale.

Level 0.5..4 PHQ-9 points (minimal symptoms: < 5; Kroenke et al. 2001, PMID
11556941) with transient flare-ups (Poisson, 4 per year) of 3..8 points that
decay with a 5..12-day time constant. Clipping the readouts at 0 makes many
zeros and a skewed error: the floor effect a forecaster's symmetric error
model gets wrong. Per-patient parameters: ``baseline``, ``n_flares``.
"""

from __future__ import annotations

import numpy as np

from worlds.symptom_process import Fluctuation, LevelResult, SymptomWorld

_FLARES_PER_DAY = 4.0 / 365.0


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(0.5, 4.0, n)
    level = np.repeat(baseline[:, None], n_days, axis=1)
    counts = rng.poisson(_FLARES_PER_DAY * n_days, n)
    days = np.arange(n_days)
    for i in range(n):
        for _ in range(int(counts[i])):
            onset = int(rng.integers(0, n_days))
            size = rng.uniform(3.0, 8.0)
            tau = rng.uniform(5.0, 12.0)
            after = days >= onset
            level[i, after] += size * np.exp(-(days[after] - onset) / tau)
    return level, {"baseline": baseline, "n_flares": counts}, None


WORLD = SymptomWorld(
    name="remission_floor",
    family="remission_floor",
    description="remission near the scale's floor with short flare-ups",
    level_path=_level,
    fluctuation=Fluctuation(ar_coefficient=(0.5, 0.8), ar_sd=(0.4, 1.0)),
)
