"""Samples at any granularity -> one row per UTC calendar day.

The daily rules are those of the CSV loaders (``common.datasets``): sleep
duration, steps and active minutes are summed over the day, resting heart
rate, HRV and sleep efficiency averaged; indicator scores are averaged per day.
Requests carry UTC timestamps without the patient's offset, so days are UTC
days. A day without any sample of a metric is NaN: missing, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from biometric_svc.domain import BiometricSamples, IndicatorObservations
from common.datasets import biometrics_to_daily, symptoms_to_daily
from common.synthetic import INSTRUMENTS, METRICS

FloatArray = npt.NDArray[np.float64]

_PATIENT = "patient"


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


def _daily_biometric_frame(samples: BiometricSamples) -> pd.DataFrame:
    long_df = pd.DataFrame(
        {
            "patient_id": _PATIENT,
            "measured_at": pd.to_datetime(samples.measured_at_ns, unit="ns", utc=True),
            "metric": np.asarray(METRICS, dtype=object)[samples.metric],
            "value": samples.value,
        }
    )
    return biometrics_to_daily(long_df)


def _daily_indicator_frame(indicators: IndicatorObservations) -> pd.DataFrame:
    long_df = pd.DataFrame(
        {
            "patient_id": _PATIENT,
            "observed_at": pd.to_datetime(indicators.observed_at_ns, unit="ns", utc=True),
            "instrument": np.asarray(INSTRUMENTS, dtype=object)[indicators.instrument],
            "score": indicators.score,
        }
    )
    return symptoms_to_daily(long_df)


def daily_series(
    biometrics: BiometricSamples, indicators: IndicatorObservations | None = None
) -> DailySeries:
    """Aggregate validated samples to days spanning the first to the last sample of either kind."""
    frames: list[pd.DataFrame] = []
    if len(biometrics):
        frames.append(_daily_biometric_frame(biometrics))
    if indicators is not None and len(indicators):
        frames.append(_daily_indicator_frame(indicators))
    if not frames:
        return DailySeries(
            dates=pd.DatetimeIndex([]),
            biometrics=np.zeros((0, len(METRICS))),
            indicators=np.zeros((0, len(INSTRUMENTS))),
        )
    first = min(frame["date"].min() for frame in frames)
    last = max(frame["date"].max() for frame in frames)
    dates = pd.date_range(first, last, freq="D")
    bio = np.full((len(dates), len(METRICS)), np.nan)
    ind = np.full((len(dates), len(INSTRUMENTS)), np.nan)
    if len(biometrics):
        frame = frames[0].set_index("date").reindex(dates)
        bio = frame[list(METRICS)].to_numpy(np.float64)
    if indicators is not None and len(indicators):
        frame = frames[-1].set_index("date").reindex(dates)
        ind = frame[list(INSTRUMENTS)].to_numpy(np.float64)
    return DailySeries(dates=dates, biometrics=bio, indicators=ind)
