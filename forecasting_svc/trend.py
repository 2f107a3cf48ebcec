"""The forecast's trend: the shared definition (common/trend.py) on the request's observed scores.

The trend describes the patient's observed course over the last six weeks, the
same way GetPatientProgress describes it; the forecast's own points show
where the models expect it to go.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from common.trend import TREND_RULES, SymptomTrend, symptom_trend
from forecasting_svc.instruments import Instrument

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def compute_trend(
    day_offsets: FloatArray, daily_scores: FloatArray, instrument: Instrument
) -> SymptomTrend:
    """Trend of one instrument from its observed days (offsets <= 0 from the last day)."""
    return symptom_trend(day_offsets, daily_scores, TREND_RULES[instrument.value])
