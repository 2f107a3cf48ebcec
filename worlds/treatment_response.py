"""Treatment response: a new antidepressant starts and severity follows a response curve.

Baseline 12..23 PHQ-9 points (moderate to severe, as when treatment starts).
The start day is 0..30; from there the level falls by ``r * baseline`` along a
logistic curve with a delay of 7..21 days and a slope time of 3..10 days, so
a responder's improvement shows after 2-6 weeks (antidepressant effects build
over weeks; response = a >= 50 % fall, STAR*D, Trivedi et al. 2006, PMID
16390886). 55 % are responders (r 0.5..0.95: some reach remission and sit on
the instrument's floor), the rest partial or non-responders (r 0..0.35).
A third of responders lose part of the effect later (a partial relapse of
20..60 % of it, from day 90..200, over 2..4 weeks). Medication starts are
recorded in the medications frame. Per-patient parameters: ``baseline``,
``start_day``, ``response_fraction``, ``delay_days``, ``relapse_day`` (-1 for none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from worlds.symptom_process import Fluctuation, LevelResult, Readout, SymptomWorld

_MEDICATIONS = ("sertraline", "escitalopram", "fluoxetine", "venlafaxine", "bupropion")
_START_DOSE_MG = {
    "sertraline": 50.0,
    "escitalopram": 10.0,
    "fluoxetine": 20.0,
    "venlafaxine": 75.0,
    "bupropion": 150.0,
}


def _level(rng: np.random.Generator, n: int, n_days: int) -> LevelResult:
    baseline = rng.uniform(12.0, 23.0, n)
    start = rng.integers(0, 31, n)
    responder = rng.random(n) < 0.55
    fraction = np.where(responder, rng.uniform(0.5, 0.95, n), rng.uniform(0.0, 0.35, n))
    delay = rng.uniform(7.0, 21.0, n)
    slope = rng.uniform(3.0, 10.0, n)
    days = np.arange(n_days)[None, :]
    since = days - start[:, None]
    effect = fraction[:, None] / (1.0 + np.exp(-(since - delay[:, None]) / slope[:, None]))
    effect = np.where(since >= 0, effect, 0.0)
    relapses = responder & (rng.random(n) < 1 / 3)
    relapse_day = np.where(relapses, rng.integers(90, 201, n), -1)
    lost = rng.uniform(0.2, 0.6, n)
    ramp = rng.uniform(14.0, 28.0, n)
    loss = np.clip((days - relapse_day[:, None]) / ramp[:, None], 0.0, 1.0) * lost[:, None]
    effect = effect * np.where(relapses[:, None], 1.0 - loss, 1.0)
    level = baseline[:, None] * (1.0 - effect)
    medication = rng.choice(len(_MEDICATIONS), n)
    events = pd.DataFrame(
        {
            "patient": np.arange(n),
            "day": start,
            "medication": [_MEDICATIONS[k] for k in medication],
            "event": "start",
            "daily_dose_mg": [_START_DOSE_MG[_MEDICATIONS[k]] for k in medication],
        }
    )
    params = {
        "baseline": baseline,
        "start_day": start,
        "response_fraction": fraction,
        "delay_days": delay,
        "relapse_day": relapse_day,
    }
    return level, params, events


WORLD = SymptomWorld(
    name="treatment_response",
    family="treatment_response",
    description="logistic response curves after a medication start, floors near remission",
    level_path=_level,
    fluctuation=Fluctuation(ar_coefficient=(0.6, 0.85), ar_sd=(0.8, 1.5)),
    readout=Readout(phq9_sd=1.0),
)
