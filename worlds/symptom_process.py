"""The building blocks symptom worlds compose: day-to-day persistence, weekly rhythm, readouts.

A symptom world decides its patients' *level* path (drift, steps, a treatment
curve, ...); this module adds what every world shares and turns the latent
severity (PHQ-9 points, 0..27) into the four instruments:

``severity = clip(level + weekly + ar, 0, 27)``

* ``weekly``: a per-patient weekly profile with a random phase (not "weekends
  are better" for everyone: shift workers, weekend carers), zero mean,
  amplitude drawn from the world's range.
* ``ar``: AR(1) persistence with the world's coefficient and stationary SD.

Readouts as in ``common.synthetic``: ``phq9 = round(severity + e)`` (0..27),
``gad7 = round(0.65 severity + offset + anxiety_state + e)`` (0..21), ``mood``
(0..10, 10 best) and ``anxiety`` (0..10, 10 worst) with one decimal. The
measurement error ``e`` is Gaussian or Student-t (heavy tails: a bad night, a
misread item), at the world's choice. Scores are clipped at the instrument's
range, which is what gives floor effects near remission.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from worlds.base import (
    FloatArray,
    Sampling,
    WorldData,
    WorldTruth,
    empty_medications,
    history_lengths,
    latent_frame,
    observation_mask,
    patient_cadences,
    symptom_frame,
)

SEVERITY_MAX = 27.0


@dataclass(frozen=True)
class Readout:
    """Measurement error of the readouts: Gaussian when ``t_df`` is None, else Student-t."""

    phq9_sd: float = 1.1
    t_df: tuple[float, float] | None = None
    #: Share of days with an outlier (added on top, either sign), and its size range.
    outlier_rate: float = 0.0
    outlier_points: tuple[float, float] = (5.0, 10.0)


@dataclass(frozen=True)
class Fluctuation:
    """Day-to-day part of severity shared by every world."""

    ar_coefficient: tuple[float, float] = (0.6, 0.85)
    ar_sd: tuple[float, float] = (1.0, 2.0)
    weekly_amplitude: tuple[float, float] = (0.2, 1.0)


#: What a level path returns: level (n, n_days), per-patient parameters by name, and
#: medication events (patient index, day, medication, event, daily_dose_mg) or None.
LevelResult = tuple[FloatArray, dict[str, np.ndarray], pd.DataFrame | None]
#: A level path: (rng, n_patients, n_days) -> LevelResult.
LevelPath = Callable[[np.random.Generator, int, int], LevelResult]


@dataclass(frozen=True)
class SymptomWorld:
    """A world made of a level path plus the shared fluctuation and readouts."""

    name: str
    family: str
    description: str
    level_path: LevelPath
    fluctuation: Fluctuation = field(default_factory=Fluctuation)
    readout: Readout = field(default_factory=Readout)
    default_sampling: Sampling = field(default_factory=Sampling)

    def generate(
        self, n_patients: int, seed: int, sampling: Sampling | None = None
    ) -> tuple[WorldData, WorldTruth]:
        if n_patients < 1:
            raise ValueError("n_patients must be >= 1")
        sampling = sampling if sampling is not None else self.default_sampling
        rng = np.random.default_rng([seed, _stable_hash(self.name)])
        n, n_days = n_patients, sampling.max_days
        lengths = history_lengths(rng, n, sampling)
        cadences = patient_cadences(rng, n, sampling)
        level, params, medications = self.level_path(rng, n, n_days)
        severity = np.clip(level + self._fluctuation(rng, n, n_days), 0.0, SEVERITY_MAX)
        readouts = self._readouts(rng, severity)
        daily, visits = observation_mask(rng, cadences, lengths, n_days, sampling.missing_rate)
        ids = [f"{self.name}-{seed}-{i:05d}" for i in range(n)]
        symptoms = symptom_frame(ids, readouts, daily, visits, lengths, sampling.start_date)
        patients = pd.DataFrame({"patient_id": ids, "history_days": lengths, "cadence": cadences})
        for key, values in params.items():
            patients[key] = list(values)
        meds = empty_medications() if medications is None else _dated(medications, ids, sampling)
        if len(meds):
            ends = dict(zip(ids, lengths.tolist(), strict=True))
            day = (meds["date"] - pd.Timestamp(sampling.start_date)).dt.days
            meds = meds[day < meds["patient_id"].map(ends)].reset_index(drop=True)
        truth = WorldTruth(
            latent=latent_frame(ids, severity, lengths, sampling.start_date),
            patients=patients,
        )
        return WorldData(symptoms=symptoms, medications=meds), truth

    def _fluctuation(self, rng: np.random.Generator, n: int, n_days: int) -> FloatArray:
        f = self.fluctuation
        coefficient = rng.uniform(*f.ar_coefficient, n)[:, None]
        stationary_sd = rng.uniform(*f.ar_sd, n)[:, None]
        innovations = rng.standard_normal((n, n_days)) * stationary_sd * np.sqrt(1 - coefficient**2)
        ar = np.empty((n, n_days))
        ar[:, 0] = rng.standard_normal(n) * stationary_sd[:, 0]
        for t in range(1, n_days):
            ar[:, t] = coefficient[:, 0] * ar[:, t - 1] + innovations[:, t]
        profile = rng.standard_normal((n, 7))
        profile -= profile.mean(axis=1, keepdims=True)
        profile /= np.maximum(np.abs(profile).max(axis=1, keepdims=True), 1e-9)
        amplitude = rng.uniform(*f.weekly_amplitude, n)[:, None]
        phase = rng.integers(0, 7, n)[:, None]
        weekly = amplitude * np.take_along_axis(profile, (np.arange(n_days) + phase) % 7, axis=1)
        result: FloatArray = ar + weekly
        return result

    def _noise(self, rng: np.random.Generator, shape: tuple[int, int], sd: float) -> FloatArray:
        r = self.readout
        if r.t_df is None:
            base = rng.standard_normal(shape)
        else:
            df = rng.uniform(*r.t_df, shape[0])[:, None]
            # Scaled so the central spread (not the variance, infinite for df <= 2) matches sd.
            base = rng.standard_t(np.broadcast_to(df, shape)) * 0.8
        noise: FloatArray = base * sd
        if r.outlier_rate > 0:
            hit = rng.random(shape) < r.outlier_rate
            size = rng.uniform(*r.outlier_points, shape) * rng.choice([-1.0, 1.0], shape)
            noise = noise + np.where(hit, size * sd / r.phq9_sd, 0.0)
        return noise

    def _readouts(self, rng: np.random.Generator, severity: FloatArray) -> dict[str, FloatArray]:
        n, n_days = severity.shape
        sd = self.readout.phq9_sd
        anxiety_state = np.zeros((n, n_days))
        innovations = rng.standard_normal((n, n_days)) * 0.6
        for t in range(1, n_days):
            anxiety_state[:, t] = 0.8 * anxiety_state[:, t - 1] + innovations[:, t]
        gad_offset = np.asarray(rng.normal(0.0, 1.5, n))[:, None]
        mood_offset = np.asarray(rng.normal(0.0, 0.6, n))[:, None]
        anxiety_offset = np.asarray(rng.normal(1.0, 0.6, n))[:, None]
        shape = (n, n_days)
        phq9 = np.clip(np.rint(severity + self._noise(rng, shape, sd)), 0, 27)
        gad7 = np.clip(
            np.rint(0.65 * severity + gad_offset + anxiety_state + self._noise(rng, shape, sd)),
            0,
            21,
        )
        mood = np.clip(
            np.round(8.8 + mood_offset - 0.27 * severity + self._noise(rng, shape, sd * 0.4), 1),
            0,
            10,
        )
        anxiety = np.clip(
            np.round(
                0.25 * severity
                + anxiety_offset
                + 0.35 * anxiety_state
                + self._noise(rng, shape, sd * 0.4),
                1,
            ),
            0,
            10,
        )
        # Adding 0.0 turns the -0.0 that rounding leaves below zero into 0.0.
        return {
            "phq9": phq9 + 0.0,
            "gad7": gad7 + 0.0,
            "mood": mood + 0.0,
            "anxiety": anxiety + 0.0,
        }


def _dated(events: pd.DataFrame, ids: list[str], sampling: Sampling) -> pd.DataFrame:
    """Medication events given as (patient index, day) turned into (patient_id, date)."""
    start = pd.Timestamp(sampling.start_date)
    return pd.DataFrame(
        {
            "patient_id": [ids[int(i)] for i in events["patient"]],
            "date": (start + pd.to_timedelta(events["day"], unit="D")).astype("datetime64[ns]"),
            "medication": events["medication"].astype(str),
            "event": events["event"].astype(str),
            "daily_dose_mg": events["daily_dose_mg"].astype(np.float64),
        }
    )


def _stable_hash(name: str) -> int:
    """A seed component from the world's name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
