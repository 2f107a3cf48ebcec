"""Samples at any granularity -> one row per UTC calendar day.

The daily rules are those of the CSV loaders (``common.datasets``): sleep
duration, steps and active minutes are summed over the day, heart rate
(resting or any), HRV (RMSSD, SDNN) and sleep efficiency averaged; indicator
scores are averaged per day.
Requests carry UTC timestamps without the patient's offset, so days are UTC
days. A day without any sample of a metric is NaN: missing, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from biometric_svc.domain import BiometricSamples, IndicatorObservations
from common.biometric_metrics import METRICS
from common.datasets import ADDITIVE_METRICS
from common.synthetic import INSTRUMENTS

FloatArray = npt.NDArray[np.float64]

DAY_NS: Final = 86_400 * 1_000_000_000
#: Per METRICS column: summed over the day (True) or averaged (False), as the CSV loaders do.
_ADDITIVE: Final = np.array([name in ADDITIVE_METRICS for name in METRICS])


@dataclass(frozen=True)
class DailySeries:
    """Daily biometrics and indicators on one shared, gap-free calendar."""

    dates: pd.DatetimeIndex  # UTC midnights, naive, consecutive
    biometrics: FloatArray  # (days, len(METRICS)), NaN = no data
    indicators: FloatArray  # (days, len(INSTRUMENTS)), NaN = no data

    @property
    def days(self) -> int:
        return len(self.dates)

    def tail(self, days: int) -> DailySeries:
        """The last ``days`` days (all of them when fewer)."""
        start = max(0, self.days - days)
        return DailySeries(
            dates=self.dates[start:],
            biometrics=self.biometrics[start:],
            indicators=self.indicators[start:],
        )

    def trimmed(self) -> DailySeries:
        """Without leading days that hold no data at all."""
        has_data = ~np.all(np.isnan(self.biometrics), axis=1) | ~np.all(
            np.isnan(self.indicators), axis=1
        )
        if not has_data.any():
            return self.tail(0)
        first = int(np.argmax(has_data))
        return self.tail(self.days - first)


def _day_numbers(times_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """UTC calendar day of each instant, as days since the epoch (floor, also before 1970)."""
    result: npt.NDArray[np.int64] = np.floor_divide(times_ns, DAY_NS)
    return result


def _daily_grid(
    days: npt.NDArray[np.int64],
    columns: npt.NDArray[np.int64],
    values: FloatArray,
    first_day: int,
    n_days: int,
    n_columns: int,
) -> tuple[FloatArray, FloatArray]:
    """Per (day, column): the sum of the values and their count, by one bincount each."""
    cell = (days - first_day) * n_columns + columns
    size = n_days * n_columns
    totals = np.bincount(cell, weights=values, minlength=size).astype(np.float64, copy=False)
    counts = np.bincount(cell, minlength=size).astype(np.float64)
    return totals.reshape(n_days, n_columns), counts.reshape(n_days, n_columns)


def daily_series(
    biometrics: BiometricSamples, indicators: IndicatorObservations | None = None
) -> DailySeries:
    """Aggregate validated samples to days spanning the first to the last sample of either kind.

    One ``np.bincount`` per quantity over flat (day, column) cells: sums for the
    additive metrics, sum / count for the rest. Sums run in sample order, so a
    day of many sub-daily samples may differ from a compensated (pandas) sum in
    the last bits; a day with one sample per metric is exact.
    """
    bio_days = _day_numbers(biometrics.measured_at_ns)
    ind_days = (
        _day_numbers(indicators.observed_at_ns) if indicators is not None else np.zeros(0, np.int64)
    )
    every_day = np.concatenate([bio_days, ind_days])
    if every_day.size == 0:
        return DailySeries(
            dates=pd.DatetimeIndex([]),
            biometrics=np.zeros((0, len(METRICS))),
            indicators=np.zeros((0, len(INSTRUMENTS))),
        )
    first, last = int(every_day.min()), int(every_day.max())
    n_days = last - first + 1
    dates = pd.date_range(pd.Timestamp(first * DAY_NS), periods=n_days, freq="D")
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 -> NaN: a day without data
        totals, counts = _daily_grid(
            bio_days, biometrics.metric, biometrics.value, first, n_days, len(METRICS)
        )
        bio = np.where(_ADDITIVE, np.where(counts > 0, totals, np.nan), totals / counts)
        ind = np.full((n_days, len(INSTRUMENTS)), np.nan)
        if indicators is not None and len(indicators):
            sums, seen = _daily_grid(
                ind_days, indicators.instrument, indicators.score, first, n_days, len(INSTRUMENTS)
            )
            ind = sums / seen
    return DailySeries(dates=dates, biometrics=bio, indicators=ind)
