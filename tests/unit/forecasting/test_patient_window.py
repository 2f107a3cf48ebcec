"""The daily window of a request: history length counts the whole request, not the window."""

from __future__ import annotations

import math

import numpy as np

from forecasting_svc.instruments import Instrument
from forecasting_svc.patient_window import build_window
from tests.unit.forecasting.requests import daily, request


def test_history_days_count_from_each_instruments_first_observation():
    # PHQ-9 on 200 days with the window's first day missing; GAD-7 only on the last 20.
    phq9 = [10.0] * 200
    phq9[200 - 90] = math.nan
    gad7 = [math.nan] * 180 + [8.0] * 20
    window = build_window(request(daily(Instrument.PHQ9, phq9) + daily(Instrument.GAD7, gad7)), 90)
    assert window.instruments == (Instrument.PHQ9, Instrument.GAD7)
    assert window.history_days == (200, 20)
    # The panel alone sees at most the window, and not its missing first day.
    series = np.arange(2, dtype=np.int64)
    assert window.panel.history_days(series, np.full(2, 89)).tolist() == [89, 20]
    assert window.observed_days == (89, 20)
