"""Daily arrays the models read: one row per (patient, instrument) series.

Scores are divided by the instrument's maximum, so every instrument lives on
0..1 and one global model serves all of them (the instrument is a feature).
Days without an observation are NaN. Covariates are per-day totals (sleep
hours, steps); medication events become three daily state features.
Training builds a panel from the cohort frames (each patient's series starts
on its own first day and is NaN-padded at the end); a request builds a
one-patient panel over the window that ends on its last observed day.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting_svc.instruments import INSTRUMENT_ORDER, SPECS

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MEDICATION_FEATURES: Final = ("meds_active", "days_since_med_change", "days_since_med_start")
#: Day counts are capped: beyond this, "long ago" is all a model needs to know.
MAX_DAYS_SINCE: Final = 90.0
#: A series needs this many observed days to be used for training.
MIN_TRAINING_OBSERVATIONS: Final = 14


@dataclass(frozen=True)
class MedicationDay:
    """A medication event on a day of the series (day index relative to column 0)."""

    day: int
    medication: str
    kind: str  # "start" | "stop" | "dose_change"


@dataclass(frozen=True)
class Panel:
    """Aligned daily arrays of N series over T days."""

    values: FloatArray  # (N, T) score / max_score, NaN where not observed
    instrument: IntArray  # (N,) index into INSTRUMENT_ORDER
    sleep: FloatArray  # (N, T) hours slept, NaN where unknown
    steps: FloatArray  # (N, T) steps, NaN where unknown
    meds: FloatArray  # (N, T, len(MEDICATION_FEATURES))
    first_weekday: IntArray  # (N,) weekday of column 0, Monday = 0
    group: IntArray  # (N,) patient index (series of one patient share it)

    @property
    def n_series(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.values.shape[1])

    def weekdays(self) -> IntArray:
        days = np.arange(self.n_days, dtype=np.int64)[None, :]
        return ((self.first_weekday[:, None] + days) % 7).astype(np.int64)

    def history_days(self, series: IntArray, origins: IntArray) -> IntArray:
        """Days from each series' first observed value up to and including ``origins`` (>= 0)."""
        observed = np.isfinite(self.values)
        first = np.where(observed.any(axis=1), observed.argmax(axis=1), self.n_days)
        result: IntArray = np.maximum(origins - first[series] + 1, 0).astype(np.int64)
        return result

    def take(self, rows: npt.ArrayLike) -> Panel:
        index = np.asarray(rows, dtype=np.int64)
        return Panel(
            values=self.values[index],
            instrument=self.instrument[index],
            sleep=self.sleep[index],
            steps=self.steps[index],
            meds=self.meds[index],
            first_weekday=self.first_weekday[index],
            group=self.group[index],
        )


def max_scores(instrument_codes: IntArray) -> FloatArray:
    table = np.array([SPECS[i].max_score for i in INSTRUMENT_ORDER], dtype=np.float64)
    return np.asarray(table[instrument_codes], dtype=np.float64)


def concat_panels(panels: Sequence[Panel]) -> Panel:
    """Stack panels of equal length (used to batch request windows)."""
    return Panel(
        values=np.concatenate([p.values for p in panels]),
        instrument=np.concatenate([p.instrument for p in panels]),
        sleep=np.concatenate([p.sleep for p in panels]),
        steps=np.concatenate([p.steps for p in panels]),
        meds=np.concatenate([p.meds for p in panels]),
        first_weekday=np.concatenate([p.first_weekday for p in panels]),
        group=np.concatenate([p.group for p in panels]),
    )


def medication_features(events: Iterable[MedicationDay], n_days: int) -> FloatArray:
    """(n_days, 3): active medications, days since the last change, days since the last start.

    Events before day 0 (negative days) set the state the window starts in.
    """
    ordered = [e for e in sorted(events, key=lambda e: e.day) if e.day < n_days]
    days = np.arange(n_days, dtype=np.int64)
    result = np.zeros((n_days, len(MEDICATION_FEATURES)), dtype=np.float64)
    active: set[str] = set()
    for event in ordered:
        if event.kind == "stop":
            active.discard(event.medication)
        else:
            active.add(event.medication)
        # Later events overwrite: each day ends up with the state after its last event.
        result[max(event.day, 0) :, 0] = len(active)
    result[:, 1] = _days_since([e.day for e in ordered], days)
    result[:, 2] = _days_since([e.day for e in ordered if e.kind == "start"], days)
    return result


def _days_since(event_days: Sequence[int], days: IntArray) -> FloatArray:
    """Days since the most recent event on or before each day, capped at MAX_DAYS_SINCE."""
    result = np.full(len(days), MAX_DAYS_SINCE, dtype=np.float64)
    if not event_days:
        return result
    marks = np.sort(np.asarray(event_days, dtype=np.int64))
    position = np.searchsorted(marks, days, side="right") - 1
    has_event = position >= 0
    since = days[has_event] - marks[position[has_event]]
    result[has_event] = np.minimum(since, MAX_DAYS_SINCE)
    return result


def panel_from_frames(
    symptoms: pd.DataFrame,
    biometrics: pd.DataFrame | None = None,
    medications: pd.DataFrame | None = None,
    *,
    min_observations: int = MIN_TRAINING_OBSERVATIONS,
) -> tuple[Panel, list[str]]:
    """Training panel from daily frames shaped like ``Cohort.symptoms``/``.biometrics``.

    ``medications`` has patient_id, date (day), medication, event. Returns the
    panel and the patient id of each group index (kept out of artifacts).
    """
    frame = symptoms.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.floor("D")
    patients = sorted(frame["patient_id"].astype(str).unique())
    first = frame.groupby("patient_id")["date"].min()
    last = frame.groupby("patient_id")["date"].max()
    n_days = int(((last - first).dt.days + 1).max())
    bio = _biometric_lookup(biometrics)
    med_events = _medication_lookup(medications, first)

    rows_values: list[FloatArray] = []
    rows_instrument: list[int] = []
    rows_sleep: list[FloatArray] = []
    rows_steps: list[FloatArray] = []
    rows_meds: list[FloatArray] = []
    rows_weekday: list[int] = []
    rows_group: list[int] = []
    by_patient = dict(tuple(frame.groupby("patient_id", sort=True)))
    for group, patient in enumerate(patients):
        part = by_patient[patient]
        start = first[patient]
        index = (part["date"] - start).dt.days.to_numpy(np.int64)
        sleep = np.full(n_days, np.nan)
        steps = np.full(n_days, np.nan)
        if bio is not None and patient in bio:
            b = bio[patient]
            b_index = (b["date"] - start).dt.days.to_numpy(np.int64)
            keep = (b_index >= 0) & (b_index < n_days)
            sleep[b_index[keep]] = b["sleep_duration"].to_numpy(np.float64)[keep]
            steps[b_index[keep]] = b["steps"].to_numpy(np.float64)[keep]
        meds = medication_features(med_events.get(patient, []), n_days)
        for code, instrument in enumerate(INSTRUMENT_ORDER):
            column = instrument.value
            if column not in part.columns:
                continue
            values = np.full(n_days, np.nan)
            values[index] = part[column].to_numpy(np.float64) / SPECS[instrument].max_score
            if int(np.isfinite(values).sum()) < min_observations:
                continue
            rows_values.append(values)
            rows_instrument.append(code)
            rows_sleep.append(sleep)
            rows_steps.append(steps)
            rows_meds.append(meds)
            rows_weekday.append(int(start.weekday()))
            rows_group.append(group)
    if not rows_values:
        raise ValueError(
            f"symptoms: no series with at least {min_observations} observed days to train on"
        )
    panel = Panel(
        values=np.stack(rows_values),
        instrument=np.asarray(rows_instrument, dtype=np.int64),
        sleep=np.stack(rows_sleep),
        steps=np.stack(rows_steps),
        meds=np.stack(rows_meds),
        first_weekday=np.asarray(rows_weekday, dtype=np.int64),
        group=np.asarray(rows_group, dtype=np.int64),
    )
    return panel, patients


def _biometric_lookup(biometrics: pd.DataFrame | None) -> dict[str, pd.DataFrame] | None:
    if biometrics is None or biometrics.empty:
        return None
    frame = biometrics.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.floor("D")
    for column in ("sleep_duration", "steps"):
        if column not in frame.columns:
            frame[column] = np.nan
    return {str(k): v for k, v in frame.groupby("patient_id", sort=False)}


def _medication_lookup(
    medications: pd.DataFrame | None, first_day: pd.Series
) -> dict[str, list[MedicationDay]]:
    if medications is None or medications.empty:
        return {}
    frame = medications.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.floor("D")
    frame = frame[frame["patient_id"].isin(first_day.index)]
    start = frame["patient_id"].map(first_day)
    days = (frame["date"] - start).dt.days.to_numpy(np.int64)
    lookup: dict[str, list[MedicationDay]] = {}
    for patient, day, medication, kind in zip(
        frame["patient_id"], days, frame["medication"], frame["event"], strict=True
    ):
        lookup.setdefault(str(patient), []).append(
            MedicationDay(day=int(day), medication=str(medication), kind=str(kind))
        )
    return lookup
