"""Step changes: the level jumps and stays (a life event, a new job, a medication switch).

Level: baseline 6..22 PHQ-9 points plus persistent steps. Steps arrive as a
Poisson process of 1.2 per 90 days; each moves the level up or down (equal
odds) by 3..8 points, reflected so the level stays within 2..25. Nothing
decays back: after a step the new level is the level. Per-patient
parameters: ``baseline``, ``n_steps``, ``step_days`` (tuple), ``step_sizes`` (tuple).
"""

from __future__ import annotations

import numpy as np

from worlds.symptom_process import Fluctuation, LevelResult, SymptomWorld

_RATE_PER_DAY = 1.2 / 90.0


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(6.0, 22.0, n)
    level = np.repeat(baseline[:, None], n_days, axis=1)
    days_out, sizes_out = [], []
    for i in range(n):
        count = int(rng.poisson(_RATE_PER_DAY * n_days))
        days = np.sort(rng.integers(1, n_days, count)) if count else np.zeros(0, np.int64)
        current = baseline[i]
        sizes = []
        for day in days:
            size = rng.uniform(3.0, 8.0) * rng.choice([-1.0, 1.0])
            if not 2.0 <= current + size <= 25.0:
                size = -size
            current += size
            sizes.append(float(size))
            level[i, day:] += size
        days_out.append(tuple(int(d) for d in days))
        sizes_out.append(tuple(sizes))
    params = {
        "baseline": baseline,
        "n_steps": np.array([len(d) for d in days_out]),
        "step_days": np.array(days_out, dtype=object),
        "step_sizes": np.array(sizes_out, dtype=object),
    }
    return level, params, None


WORLD = SymptomWorld(
    name="step_change",
    family="step_change",
    description="persistent step changes of level, up or down, at random times",
    level_path=_level,
    fluctuation=Fluctuation(ar_coefficient=(0.5, 0.8), ar_sd=(0.8, 1.6)),
)
