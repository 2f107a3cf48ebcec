"""Score ranges of the symptom instruments, keyed by proto enum value.

One table (common.synthetic.INSTRUMENT_RANGES, by column name) is the source;
this is the same table keyed the way requests carry instruments.
PHQ-9: 9 items scored 0-3, total 0-27 (Kroenke, Spitzer & Williams 2001,
PMID 11556941). GAD-7: 7 items scored 0-3, total 0-21 (Spitzer et al. 2006,
PMID 16717171). Mood and anxiety: daily self-ratings on 0-10 scales.
"""

from __future__ import annotations

from common.synthetic import INSTRUMENT_RANGES as RANGES_BY_NAME
from novamind.common.v1 import common_pb2

INSTRUMENT_BY_NAME: dict[str, int] = {
    "phq9": common_pb2.INSTRUMENT_PHQ9,
    "gad7": common_pb2.INSTRUMENT_GAD7,
    "mood": common_pb2.INSTRUMENT_MOOD,
    "anxiety": common_pb2.INSTRUMENT_ANXIETY,
}

#: How clinicians name each instrument (reports, summaries, recommendation texts).
INSTRUMENT_LABELS: dict[int, str] = {
    common_pb2.INSTRUMENT_PHQ9: "PHQ-9",
    common_pb2.INSTRUMENT_GAD7: "GAD-7",
    common_pb2.INSTRUMENT_MOOD: "Mood",
    common_pb2.INSTRUMENT_ANXIETY: "Anxiety",
}

INSTRUMENT_RANGES: dict[int, tuple[float, float]] = {
    INSTRUMENT_BY_NAME[name]: limits for name, limits in RANGES_BY_NAME.items()
}
