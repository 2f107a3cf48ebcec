"""What every synthetic world shares: the interface, the data it returns, how it is sampled.

A *world* is a seeded generative model of patients. Each world differs from the
others in the dynamics a clinic meets (drift, step changes, treatment response,
floor effects, heavy-tailed noise, ...); benchmarks train on some worlds and
report on worlds held out of training, so a claim about a model is a claim
about the method, not about one generator.

``generate`` returns frames shaped exactly like ``common.synthetic.Cohort``'s
(one row per patient and day, NaN where nothing was observed), so the
training pipelines and benchmarks consume a world as they consume the cohort,
plus the ground truth the world knows and a model has to find out.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from common.synthetic import INSTRUMENTS, METRICS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: How often scores are asked. Daily: an app check-in. Weekly and fortnightly: the
#: questionnaires of a clinic (PHQ-9 asks about the last two weeks), so only PHQ-9 and
#: GAD-7 are recorded. Mixed: each patient gets one of the three (50/35/15 %).
CADENCES: Final = ("daily", "weekly", "fortnightly", "mixed")
#: Instruments a clinic records at weekly or fortnightly visits.
VISIT_INSTRUMENTS: Final = ("phq9", "gad7")
_MIXED_SHARES: Final = (0.50, 0.35, 0.15)
_CADENCE_DAYS: Final[Mapping[str, int]] = {"daily": 1, "weekly": 7, "fortnightly": 14}
_MISSING_RUN_MEAN_DAYS: Final = 3.0
_MISSING_RUN_MAX_DAYS: Final = 14


@dataclass(frozen=True)
class Sampling:
    """How a world's patients are observed (the same dynamics can be sampled many ways).

    history_days: inclusive range each patient's history length is drawn from.
    cadence: one of CADENCES.
    missing_rate: share of daily check-ins missed (in runs), or of visits missed.
    """

    history_days: tuple[int, int] = (180, 180)
    cadence: str = "daily"
    missing_rate: float = 0.05
    start_date: datetime.date = datetime.date(2026, 1, 1)

    def __post_init__(self) -> None:
        low, high = self.history_days
        if not 14 <= low <= high <= 730:
            raise ValueError("history_days must satisfy 14 <= low <= high <= 730")
        if self.cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {', '.join(CADENCES)}")
        if not 0.0 <= self.missing_rate < 0.9:
            raise ValueError("missing_rate must be within 0..0.9")

    @property
    def max_days(self) -> int:
        return int(self.history_days[1])


@dataclass(frozen=True)
class WorldData:
    """Observable frames, shaped like ``common.synthetic.Cohort``'s.

    symptoms: patient_id, date (datetime64[ns], midnight), phq9, gad7, mood, anxiety
        (float, NaN where not observed); one row per patient and day of its history.
    biometrics: patient_id, date and one float column per ``common.synthetic.METRICS``
        name (no rows for a world without wearables).
    medications: patient_id, date, medication, event (start/stop/dose_change),
        daily_dose_mg (no rows for a world without medication records).
    """

    symptoms: pd.DataFrame
    biometrics: pd.DataFrame = field(default_factory=lambda: empty_biometrics())
    medications: pd.DataFrame = field(default_factory=lambda: empty_medications())

    @property
    def patient_ids(self) -> list[str]:
        return sorted(self.symptoms["patient_id"].astype(str).unique())


@dataclass(frozen=True)
class WorldTruth:
    """What the world knows and a model has to find out.

    latent: patient_id, date, severity: the noise-free PHQ-9-scale severity on every
        day of each patient's history (observed or not).
    patients: one row per patient: patient_id, history_days, cadence, and the
        world's own per-patient parameters (documented in the world's module).
    details: world-specific extras (the reference world puts its ``CohortTruth`` here).
    """

    latent: pd.DataFrame
    patients: pd.DataFrame
    details: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class World(Protocol):
    """A seeded generator of patients: the same arguments always give the same data."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str:
        """Worlds of one family share their dynamics; hold out families, not just worlds."""
        ...

    @property
    def description(self) -> str: ...

    def generate(
        self, n_patients: int, seed: int, sampling: Sampling | None = None
    ) -> tuple[WorldData, WorldTruth]: ...


def empty_biometrics() -> pd.DataFrame:
    columns: dict[str, pd.Series] = {
        "patient_id": pd.Series([], dtype="str"),
        "date": pd.Series([], dtype="datetime64[ns]"),
    }
    for metric in METRICS:
        columns[metric] = pd.Series([], dtype="float64")
    return pd.DataFrame(columns)


def empty_medications() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.Series([], dtype="str"),
            "date": pd.Series([], dtype="datetime64[ns]"),
            "medication": pd.Series([], dtype="str"),
            "event": pd.Series([], dtype="str"),
            "daily_dose_mg": pd.Series([], dtype="float64"),
        }
    )


def history_lengths(rng: np.random.Generator, n: int, sampling: Sampling) -> npt.NDArray[np.int64]:
    low, high = sampling.history_days
    return rng.integers(low, high + 1, n).astype(np.int64)


def patient_cadences(rng: np.random.Generator, n: int, sampling: Sampling) -> list[str]:
    if sampling.cadence != "mixed":
        return [sampling.cadence] * n
    drawn = rng.choice(3, n, p=_MIXED_SHARES)
    names = ("daily", "weekly", "fortnightly")
    return [names[int(k)] for k in drawn]


def missing_runs(rng: np.random.Generator, n: int, n_days: int, rate: float) -> BoolArray:
    """(n, n_days) mask of missed daily check-ins, in runs of mean 3 days, expected share rate."""
    mask = np.zeros((n, n_days), dtype=np.bool_)
    if rate <= 0.0:
        return mask
    continue_probability = 1.0 - 1.0 / _MISSING_RUN_MEAN_DAYS
    expected_length = float(np.sum(continue_probability ** np.arange(_MISSING_RUN_MAX_DAYS)))
    start_probability = -np.log1p(-rate) / expected_length
    starts = rng.random((n, n_days)) < start_probability
    length = np.minimum(rng.geometric(1.0 / _MISSING_RUN_MEAN_DAYS, (n, n_days)), 14)
    for d in range(_MISSING_RUN_MAX_DAYS):
        mask[:, d:] |= (starts & (length > d))[:, : n_days - d]
    return mask


def observation_mask(
    rng: np.random.Generator,
    cadences: list[str],
    lengths: npt.NDArray[np.int64],
    n_days: int,
    missing_rate: float,
) -> tuple[BoolArray, BoolArray]:
    """(daily_mask, visit_mask), each (n, n_days): which days carry which instruments.

    Daily patients report every instrument on the days of ``daily_mask``; weekly and
    fortnightly patients report PHQ-9 and GAD-7 on visit days, which drift by a day
    now and then (clinics reschedule), and a share ``missing_rate`` of visits is missed.
    Days beyond a patient's history length are never observed.
    """
    n = len(cadences)
    days = np.arange(n_days)
    inside = days[None, :] < lengths[:, None]
    daily = ~missing_runs(rng, n, n_days, missing_rate) & inside
    visits = np.zeros((n, n_days), dtype=np.bool_)
    for i, cadence in enumerate(cadences):
        step = _CADENCE_DAYS[cadence]
        if step == 1:
            visits[i] = daily[i]
            continue
        daily[i] = False
        # Visits are planned back from the last day of the history (which is always a
        # kept visit: a history ends when the last score came in), +-1 day of drift.
        planned = np.arange(int(lengths[i]) - 1, -1, -step)[::-1]
        jitter = rng.choice([-1, 0, 0, 0, 0, 1], len(planned))
        jitter[-1] = 0
        day = np.clip(planned + jitter, 0, int(lengths[i]) - 1)
        kept = rng.random(len(day)) >= missing_rate
        kept[-1] = True
        visits[i, day[kept]] = True
    return daily, visits


def symptom_frame(
    patient_ids: list[str],
    readouts: Mapping[str, FloatArray],
    daily: BoolArray,
    visits: BoolArray,
    lengths: npt.NDArray[np.int64],
    start_date: datetime.date,
) -> pd.DataFrame:
    """Long frame (one row per patient and day of its history) with NaN where not observed."""
    n_days = int(daily.shape[1])
    dates = pd.date_range(start_date, periods=n_days, freq="D").astype("datetime64[ns]")
    inside = np.arange(n_days)[None, :] < lengths[:, None]
    rows, cols = np.nonzero(inside)
    frame = pd.DataFrame(
        {"patient_id": np.asarray(patient_ids)[rows], "date": dates.to_numpy()[cols]}
    )
    for name in INSTRUMENTS:
        seen = visits | daily if name in VISIT_INSTRUMENTS else daily
        values = np.where(seen, readouts[name], np.nan)
        frame[name] = values[rows, cols]
    return frame


def latent_frame(
    patient_ids: list[str],
    severity: FloatArray,
    lengths: npt.NDArray[np.int64],
    start_date: datetime.date,
) -> pd.DataFrame:
    n_days = int(severity.shape[1])
    dates = pd.date_range(start_date, periods=n_days, freq="D").astype("datetime64[ns]")
    inside = np.arange(n_days)[None, :] < lengths[:, None]
    rows, cols = np.nonzero(inside)
    return pd.DataFrame(
        {
            "patient_id": np.asarray(patient_ids)[rows],
            "date": dates.to_numpy()[cols],
            "severity": severity[rows, cols],
        }
    )
