"""The reference world seen through noisier wearables.

Every biometric gets extra independent day-to-day measurement noise with the
SD of that patient's own metric series times ``NOISE_RATIO`` (1.0 doubles
the variance), as a cheaper device or a looser wrist strap would add; values
stay non-negative. Symptoms, couplings, onsets and prodromes are the
reference world's, so the signal is the same and only harder to see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from common.synthetic import METRICS
from worlds.base import Sampling, WorldData, WorldTruth
from worlds.reference import ReferenceWorld

NOISE_RATIO: Final = 1.0
_STREAM: Final = 0x401


@dataclass(frozen=True)
class NoisyWearablesWorld:
    name: str = "noisy_wearables"
    family: str = "noisy_wearables"
    description: str = "the reference cohort with twice the biometric measurement variance"

    def generate(
        self, n_patients: int, seed: int, sampling: Sampling | None = None
    ) -> tuple[WorldData, WorldTruth]:
        data, truth = ReferenceWorld().generate(n_patients, seed, sampling)
        biometrics = data.biometrics.copy()
        if len(biometrics):
            rng = np.random.default_rng([seed, _STREAM])
            for metric in METRICS:
                sd = biometrics.groupby("patient_id")[metric].transform("std").fillna(0.0)
                noise = rng.normal(0.0, 1.0, len(biometrics)) * sd.to_numpy() * NOISE_RATIO
                biometrics[metric] = (biometrics[metric] + noise).clip(lower=0.0)
        return WorldData(data.symptoms, biometrics, data.medications), truth


WORLD = NoisyWearablesWorld()
