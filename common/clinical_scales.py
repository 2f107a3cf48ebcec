"""Score ranges of the symptom instruments the mesh accepts, keyed by proto enum value.

PHQ-9: 9 items scored 0-3, total 0-27 (Kroenke, Spitzer & Williams 2001,
PMID 11556941). GAD-7: 7 items scored 0-3, total 0-21 (Spitzer et al. 2006,
PMID 16717171). Mood and anxiety: daily self-ratings on 0-10 scales.
"""

from __future__ import annotations

from novamind.common.v1 import common_pb2

INSTRUMENT_RANGES: dict[int, tuple[float, float]] = {
    common_pb2.INSTRUMENT_PHQ9: (0.0, 27.0),
    common_pb2.INSTRUMENT_GAD7: (0.0, 21.0),
    common_pb2.INSTRUMENT_MOOD: (0.0, 10.0),
    common_pb2.INSTRUMENT_ANXIETY: (0.0, 10.0),
}
