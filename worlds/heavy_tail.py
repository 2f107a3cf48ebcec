"""Heavy tails: a slowly wandering level read through Student-t noise with outliers.

Level: baseline 5..22 PHQ-9 points plus a random walk (daily SD 0.12 points,
so ~1.5 points a quarter). Measurement error is Student-t with 2..4 degrees
of freedom (a bad night, a misread item, a different rater) and 2 % of days
carry an extra 5..10-point outlier of either sign. Squared-error fits and
Gaussian intervals are both wrong here. Per-patient parameters: ``baseline``.
"""

from __future__ import annotations

import numpy as np

from worlds.symptom_process import Fluctuation, LevelResult, Readout, SymptomWorld


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(5.0, 22.0, n)
    walk = np.cumsum(rng.normal(0.0, 0.12, (n, n_days)), axis=1)
    return baseline[:, None] + walk, {"baseline": baseline}, None


WORLD = SymptomWorld(
    name="heavy_tail",
    family="heavy_tail",
    description="random-walk level, Student-t measurement noise and outliers",
    level_path=_level,
    fluctuation=Fluctuation(ar_coefficient=(0.3, 0.7), ar_sd=(0.5, 1.2)),
    readout=Readout(phq9_sd=1.3, t_df=(2.0, 4.0), outlier_rate=0.02),
)
