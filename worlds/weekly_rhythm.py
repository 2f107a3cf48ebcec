"""Weekly rhythm: a strong, random-phase weekly pattern over a slow monthly wave.

Weekly amplitude 1.5..4 PHQ-9 points with a per-patient profile and phase
(worse on the patient's own hard days, not on a fixed weekday), over a slow
sinusoid of period 30..120 days and amplitude 0..3 points around a baseline
of 5..20. Per-patient parameters: ``baseline``, ``wave_period_days``,
``wave_amplitude``.
"""

from __future__ import annotations

import numpy as np

from worlds.symptom_process import Fluctuation, LevelResult, SymptomWorld


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(5.0, 20.0, n)
    period = rng.uniform(30.0, 120.0, n)
    amplitude = rng.uniform(0.0, 3.0, n)
    phase = rng.uniform(0.0, 2 * np.pi, n)
    days = np.arange(n_days)[None, :]
    wave = amplitude[:, None] * np.sin(2 * np.pi * days / period[:, None] + phase[:, None])
    params = {"baseline": baseline, "wave_period_days": period, "wave_amplitude": amplitude}
    return baseline[:, None] + wave, params, None


WORLD = SymptomWorld(
    name="weekly_rhythm",
    family="weekly_rhythm",
    description="strong random-phase weekly rhythm over a slow monthly wave",
    level_path=_level,
    fluctuation=Fluctuation(
        ar_coefficient=(0.4, 0.7), ar_sd=(0.6, 1.2), weekly_amplitude=(1.5, 4.0)
    ),
)
