"""The symptom instruments the service forecasts: score ranges, direction, clinical thresholds.

Thresholds are the published severity cut-points:

* PHQ-9: 5 / 10 / 15 / 20 = mild / moderate / moderately severe / severe depression
  (Kroenke, Spitzer & Williams, J Gen Intern Med 2001;16:606-613, PMID 11556941).
  Risk periods use 15 and 20.
* GAD-7: 5 / 10 / 15 = mild / moderate / severe anxiety (Spitzer, Kroenke, Williams &
  Löwe, Arch Intern Med 2006;166:1092-1097, PMID 16717171). Risk periods use 15.

The 0-10 daily mood and anxiety ratings are not validated instruments with
published cut-points, so no risk periods are computed for them.

Trends (direction, minimal important differences) are defined once, in
common/trend.py, for the forecast and the patient's progress alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Final

_LOGGER = logging.getLogger(__name__)


class Instrument(Enum):
    """A symptom instrument; the value is the column name in the data files."""

    PHQ9 = "phq9"
    GAD7 = "gad7"
    MOOD = "mood"
    ANXIETY = "anxiety"


@dataclass(frozen=True)
class ClinicalThreshold:
    """A published cut-point: scores at or above ``value`` fall in the named band."""

    value: float
    label: str


@dataclass(frozen=True)
class InstrumentSpec:
    """What the service needs to know about one instrument."""

    instrument: Instrument
    display_name: str
    max_score: float
    whole_numbers: bool
    higher_is_worse: bool
    thresholds: tuple[ClinicalThreshold, ...]


#: The position is the instrument's code inside trained models: append, never reorder.
INSTRUMENT_ORDER: Final = (Instrument.PHQ9, Instrument.GAD7, Instrument.MOOD, Instrument.ANXIETY)

SPECS: Final[dict[Instrument, InstrumentSpec]] = {
    Instrument.PHQ9: InstrumentSpec(
        instrument=Instrument.PHQ9,
        display_name="PHQ-9",
        max_score=27.0,
        whole_numbers=True,
        higher_is_worse=True,
        thresholds=(
            ClinicalThreshold(15.0, "PHQ-9 ≥ 15 (moderately severe)"),
            ClinicalThreshold(20.0, "PHQ-9 ≥ 20 (severe)"),
        ),
    ),
    Instrument.GAD7: InstrumentSpec(
        instrument=Instrument.GAD7,
        display_name="GAD-7",
        max_score=21.0,
        whole_numbers=True,
        higher_is_worse=True,
        thresholds=(ClinicalThreshold(15.0, "GAD-7 ≥ 15 (severe)"),),
    ),
    Instrument.MOOD: InstrumentSpec(
        instrument=Instrument.MOOD,
        display_name="mood",
        max_score=10.0,
        whole_numbers=False,
        higher_is_worse=False,
        thresholds=(),
    ),
    Instrument.ANXIETY: InstrumentSpec(
        instrument=Instrument.ANXIETY,
        display_name="anxiety",
        max_score=10.0,
        whole_numbers=False,
        higher_is_worse=True,
        thresholds=(),
    ),
}
