"""Minute, hour and day samples become one value per UTC day: totals summed, rates averaged."""

from __future__ import annotations

import datetime as dt

import numpy as np

from biometric_svc.aggregation import daily_series
from biometric_svc.domain import IndicatorObservations
from common.synthetic import INSTRUMENTS, METRICS
from tests.unit.biometric.patients import sample_arrays

START = dt.datetime(2026, 4, 6, tzinfo=dt.UTC)


def test_minute_hour_and_day_samples_aggregate_per_utc_day():
    rows = []
    # Day 1: 90 minutes of 12 steps each from 23:00 the evening before UTC midnight crosses.
    for minute in range(90):
        rows.append(("steps", START + dt.timedelta(hours=23, minutes=minute), 12.0, "minute"))
    # Hourly heart rate on day 0: 60, 62, ..., 106 bpm.
    hourly_hr = [60.0 + 2 * h for h in range(24)]
    rows += [
        ("resting_heart_rate", START + dt.timedelta(hours=h), v, "hour")
        for h, v in enumerate(hourly_hr)
    ]
    # Sleep in two day-level chunks on day 2 (a nap and the night).
    rows += [
        ("sleep_duration", START + dt.timedelta(days=2, hours=1), 6.5, "day"),
        ("sleep_duration", START + dt.timedelta(days=2, hours=14), 0.75, "day"),
    ]
    daily = daily_series(sample_arrays(rows))
    steps = daily.biometrics[:, METRICS.index("steps")]
    hr = daily.biometrics[:, METRICS.index("resting_heart_rate")]
    sleep = daily.biometrics[:, METRICS.index("sleep_duration")]

    assert list(daily.dates.strftime("%Y-%m-%d")) == ["2026-04-06", "2026-04-07", "2026-04-08"]
    # 60 minutes fall before UTC midnight, 30 after.
    assert steps[0] == 60 * 12.0 and steps[1] == 30 * 12.0 and np.isnan(steps[2])
    assert hr[0] == sum(hourly_hr) / 24 and np.isnan(hr[1])
    assert sleep[2] == 7.25 and np.isnan(sleep[0])
    assert np.isnan(daily.indicators).all()


def test_gaps_stay_missing_and_indicators_share_the_calendar():
    rows = [
        ("hrv_rmssd", START, 40.0, "day"),
        ("hrv_rmssd", START + dt.timedelta(days=3), 50.0, "day"),
    ]
    day_ns = 86_400 * 10**9
    start_ns = int(START.timestamp()) * 10**9
    indicators = IndicatorObservations(
        instrument=np.array([INSTRUMENTS.index("mood")] * 3, np.int64),
        observed_at_ns=np.array(
            [start_ns + 8 * 3600 * 10**9, start_ns + 20 * 3600 * 10**9, start_ns + 5 * day_ns]
        ),
        score=np.array([4.0, 6.0, 7.5]),
    )
    daily = daily_series(sample_arrays(rows), indicators)
    hrv = daily.biometrics[:, METRICS.index("hrv_rmssd")]
    mood = daily.indicators[:, INSTRUMENTS.index("mood")]
    assert daily.days == 6
    assert hrv[0] == 40.0 and hrv[3] == 50.0 and np.isnan(hrv[[1, 2, 4, 5]]).all()
    assert mood[0] == 5.0 and mood[5] == 7.5 and np.isnan(mood[1:5]).all()
    assert (
        daily.tail(2).days == 2 and daily.tail(2).indicators[-1, INSTRUMENTS.index("mood")] == 7.5
    )
