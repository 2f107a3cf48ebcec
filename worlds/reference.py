"""The reference world: the project's original synthetic cohort (``common.synthetic``).

Mean-reverting AR(1) severity around a treated level, a fixed weekday/weekend
rhythm, medication trials with response, relapses with prodromes, and
wearable biometrics coupled to symptoms with known lags. The generator stays
in ``common/synthetic.py``; this module only wraps it in the world interface.

Without a ``Sampling`` the cohort is returned exactly as ``generate_cohort``
makes it. With one, each patient's history is cut to a length drawn from
``history_days`` and the cadence is applied (weekly/fortnightly patients keep
PHQ-9 and GAD-7 on visit days only); the missing days of the cohort stay missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from common.synthetic import INSTRUMENTS, CohortConfig, generate_cohort
from worlds.base import (
    Sampling,
    WorldData,
    WorldTruth,
    history_lengths,
    observation_mask,
    patient_cadences,
)

_STREAM = 0x5EF


@dataclass(frozen=True)
class ReferenceWorld:
    name: str = "reference"
    family: str = "reference"
    description: str = (
        "the original cohort: mean-reverting AR(1), weekend rhythm, treatment trials, "
        "relapses with prodromes, coupled biometrics"
    )
    dynamics: str = "default"
    #: Other CohortConfig fields of this variant, e.g. (("prodrome_fraction", 0.0),).
    cohort_overrides: tuple[tuple[str, Any], ...] = ()

    def generate(
        self, n_patients: int, seed: int, sampling: Sampling | None = None
    ) -> tuple[WorldData, WorldTruth]:
        n_days = sampling.max_days if sampling is not None else CohortConfig().n_days
        config = CohortConfig(
            n_patients=n_patients,
            n_days=n_days,
            seed=seed,
            dynamics=self.dynamics,
            missing_rate=CohortConfig().missing_rate if sampling is None else sampling.missing_rate,
        )
        cohort = generate_cohort(replace(config, **dict(self.cohort_overrides)))
        ids = sorted(cohort.patients["patient_id"].astype(str))
        lengths = np.full(n_patients, n_days, dtype=np.int64)
        cadences = ["daily"] * n_patients
        symptoms = cohort.symptoms
        biometrics = cohort.biometrics
        latent = cohort.truth.latent_severity
        if sampling is not None:
            rng = np.random.default_rng([seed, _STREAM])
            lengths = history_lengths(rng, n_patients, sampling)
            cadences = patient_cadences(rng, n_patients, sampling)
            _, visits = observation_mask(rng, cadences, lengths, n_days, 0.0)
            symptoms, biometrics, latent = _resample(
                cohort.symptoms, cohort.biometrics, latent, ids, lengths, cadences, visits
            )
        patients = pd.DataFrame({"patient_id": ids, "history_days": lengths, "cadence": cadences})
        patients = patients.merge(cohort.patients, on="patient_id", how="left")
        truth = WorldTruth(
            latent=latent,
            patients=patients,
            details={"cohort_truth": cohort.truth, "outcomes": cohort.outcomes},
        )
        return WorldData(symptoms, biometrics, cohort.medications), truth


def _resample(
    symptoms: pd.DataFrame,
    biometrics: pd.DataFrame,
    latent: pd.DataFrame,
    ids: list[str],
    lengths: np.ndarray,
    cadences: list[str],
    visits: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cut histories to their drawn lengths and keep only visit-day scores of sparse patients."""
    index = {patient: i for i, patient in enumerate(ids)}
    start = symptoms["date"].min()

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        row = frame["patient_id"].map(index).to_numpy(np.int64)
        day = (frame["date"] - start).dt.days.to_numpy(np.int64)
        return frame[day < lengths[row]].reset_index(drop=True)

    symptoms = cut(symptoms).copy()
    row = symptoms["patient_id"].map(index).to_numpy(np.int64)
    day = (symptoms["date"] - start).dt.days.to_numpy(np.int64)
    sparse = np.array([cadences[r] != "daily" for r in row])
    on_visit = visits[row, day]
    for name in INSTRUMENTS:
        drop = sparse & ~on_visit if name in ("phq9", "gad7") else sparse
        symptoms.loc[drop, name] = np.nan
    return symptoms, cut(biometrics), cut(latent)


WORLD = ReferenceWorld()
