"""A validated request as the models see it: a daily window ending on the last observed day.

Days are UTC calendar days. Several scores of one instrument on one day are
averaged; covariate values of a day are summed (sleep segments, step counts);
medication events before the window set the state it starts in. Observations
older than the window are not used.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import numpy.typing as npt

from forecasting_svc.domain import CovariateKind, ForecastRequest
from forecasting_svc.instruments import INSTRUMENT_ORDER, SPECS, Instrument
from forecasting_svc.models.panel import MedicationDay, Panel, medication_features

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PatientWindow:
    """One series per instrument present in the history, over ``n_days`` ending on ``last_day``."""

    panel: Panel
    instruments: tuple[Instrument, ...]
    last_day: date
    observed_days: tuple[int, ...]
    #: Days from each instrument's first observation (in the whole request, not only
    #: the window) to the last day, inclusive: the history length the intervals use.
    history_days: tuple[int, ...]

    @property
    def n_days(self) -> int:
        return self.panel.n_days

    def forecast_dates(self, horizon: int) -> list[datetime]:
        midnight = datetime.combine(self.last_day, time(0), tzinfo=UTC)
        return [midnight + timedelta(days=h) for h in range(1, horizon + 1)]

    def recent_scores(self, row: int) -> tuple[FloatArray, FloatArray]:
        """(day offsets <= 0 from the last day, daily mean scores) of one series' observed days."""
        normalized = self.panel.values[row]
        observed = np.nonzero(np.isfinite(normalized))[0]
        scale = SPECS[self.instruments[row]].max_score
        offsets = (observed - (self.n_days - 1)).astype(np.float64)
        return offsets, normalized[observed] * scale


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def build_window(
    request: ForecastRequest, n_days: int, counted_days: int | None = None
) -> PatientWindow:
    """Daily arrays of a request that passed validation.

    ``observed_days`` counts days with a score in the last ``counted_days`` days
    (all ``n_days`` when None): the days the models read, when the window also
    holds older days for the interval backtests.
    """
    stamped = [o for o in request.history if o.observed_at is not None and o.instrument]
    last_day = max(_day(o.observed_at) for o in stamped if o.observed_at is not None)
    first_day = last_day - timedelta(days=n_days - 1)

    first_seen: dict[Instrument, date] = {}
    for observation in stamped:
        if observation.observed_at is None or observation.instrument is None:
            continue
        day = _day(observation.observed_at)
        if day < first_seen.get(observation.instrument, day + timedelta(days=1)):
            first_seen[observation.instrument] = day

    sums: dict[Instrument, FloatArray] = defaultdict(lambda: np.zeros(n_days))
    counts: dict[Instrument, FloatArray] = defaultdict(lambda: np.zeros(n_days))
    for observation in stamped:
        if observation.observed_at is None or observation.instrument is None:
            continue
        index = (_day(observation.observed_at) - first_day).days
        if index < 0:
            continue
        sums[observation.instrument][index] += observation.score
        counts[observation.instrument][index] += 1.0

    covariates = {kind: np.zeros(n_days) for kind in CovariateKind}
    covariate_seen = {kind: np.zeros(n_days, dtype=bool) for kind in CovariateKind}
    for covariate in request.covariates:
        if covariate.kind is None or covariate.observed_at is None:
            continue
        index = (_day(covariate.observed_at) - first_day).days
        if 0 <= index < n_days:
            covariates[covariate.kind][index] += covariate.value
            covariate_seen[covariate.kind][index] = True
    sleep = np.where(
        covariate_seen[CovariateKind.SLEEP_HOURS], covariates[CovariateKind.SLEEP_HOURS], np.nan
    )
    steps = np.where(covariate_seen[CovariateKind.STEPS], covariates[CovariateKind.STEPS], np.nan)

    events = [
        MedicationDay(
            day=(_day(event.occurred_at) - first_day).days,
            medication=event.medication.strip().lower(),
            kind=event.kind.value,
        )
        for event in request.medication_events
        if event.occurred_at is not None and event.kind is not None
    ]
    meds = medication_features(events, n_days)

    instruments = tuple(i for i in INSTRUMENT_ORDER if i in counts and counts[i].any())
    rows = len(instruments)
    values = np.full((rows, n_days), np.nan)
    for row, instrument in enumerate(instruments):
        seen = counts[instrument] > 0
        values[row, seen] = sums[instrument][seen] / counts[instrument][seen]
        values[row] /= SPECS[instrument].max_score
    panel = Panel(
        values=values,
        instrument=np.array([INSTRUMENT_ORDER.index(i) for i in instruments], dtype=np.int64),
        sleep=np.tile(sleep, (rows, 1)),
        steps=np.tile(steps, (rows, 1)),
        meds=np.tile(meds[None], (rows, 1, 1)),
        first_weekday=np.full(rows, first_day.weekday(), dtype=np.int64),
        group=np.zeros(rows, dtype=np.int64),
    )
    recent = slice(n_days - (counted_days if counted_days is not None else n_days), n_days)
    observed_days = tuple(int((counts[i][recent] > 0).sum()) for i in instruments)
    history_days = tuple((last_day - first_seen[i]).days + 1 for i in instruments)
    return PatientWindow(panel, instruments, last_day, observed_days, history_days)
