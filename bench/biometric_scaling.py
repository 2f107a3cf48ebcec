"""How the biometric analysis scales with history length and the number of instruments.

Part of `python -m bench biometric`: AnalyzePatient timed in process (the
servicer called directly: protobuf to arrays, validation, one-pass analysis
with the early warning, responses built; no transport) for 30, 90, 180 and
365 days of daily wearable data and 1 to 4 symptom instruments (PHQ-9, GAD-7,
mood, anxiety, in that order), with the early-warning model just trained.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time
from dataclasses import dataclass
from typing import Final

from biometric_svc import server as transport
from biometric_svc.early_warning import EarlyWarningModel
from biometric_svc.service import BiometricService
from common.synthetic import INSTRUMENTS, CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from twin_orchestrator.patient_bundle import patient_data

HISTORY_DAYS: Final = (30, 90, 180, 365)
INSTRUMENT_COUNTS: Final = (1, 2, 3, 4)
PSEUDONYM: Final = "psn_" + "5" * 32
#: Timed calls per cell (after two warm-up calls).
REPEATS: Final = 25
_INSTRUMENT_ENUMS: Final = tuple(
    common_pb2.Instrument.Value(f"INSTRUMENT_{name.upper()}") for name in INSTRUMENTS
)


@dataclass(frozen=True)
class ScalingCell:
    days: int
    instruments: int
    samples: int
    scores: int
    p50_ms: float


def measure_scaling(model: EarlyWarningModel | None, repeats: int = REPEATS) -> list[ScalingCell]:
    import torch

    from biometric_svc.bootstrap import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
    days_needed = max(HISTORY_DAYS) + 20
    # Ends a week ago: the service refuses samples from the future.
    start = dt.date.today() - dt.timedelta(days=days_needed + 7)
    cohort = generate_cohort(
        CohortConfig(n_patients=4, n_days=days_needed, seed=77, start_date=start)
    )
    couplings = cohort.truth.couplings
    patient_id = str(couplings.loc[couplings.coupled, "patient_id"].iloc[0])
    servicer = transport.BiometricCorrelationServicer(BiometricService(early_warning=model))

    requests = []
    for days in HISTORY_DAYS:
        data = patient_data(cohort, patient_id, history_days=days)
        for count in INSTRUMENT_COUNTS:
            kept = set(_INSTRUMENT_ENUMS[:count])
            scores = [o for o in data.symptoms if o.instrument in kept]
            request = biometric_pb2.AnalyzePatientRequest(
                patient_pseudonym=PSEUDONYM, biometrics=data.biometrics, indicators=scores
            )
            requests.append((days, count, len(data.biometrics), len(scores), request))

    async def timed() -> list[list[float]]:
        for *_, request in requests:
            for _ in range(2):
                await servicer.AnalyzePatient(request, None)  # type: ignore[arg-type]
        times: list[list[float]] = [[] for _ in requests]
        # Round-robin over the cells: a burst of other work on the shared machine then
        # slows one call of every cell, not every call of a few cells.
        for _ in range(repeats):
            for cell, (*_, request) in enumerate(requests):
                started = time.perf_counter()
                await servicer.AnalyzePatient(request, None)  # type: ignore[arg-type]
                times[cell].append((time.perf_counter() - started) * 1000)
        return times

    times = asyncio.run(timed())
    return [
        ScalingCell(days, count, samples, scores, statistics.median(cell_times))
        for (days, count, samples, scores, _), cell_times in zip(requests, times, strict=True)
    ]


def scaling_lines(cells: list[ScalingCell], load_average: tuple[float, float]) -> list[str]:
    lines = [
        "## (e) Scaling: history length and instruments",
        "",
        "AnalyzePatient in process (bench/biometric_scaling.py: the servicer called directly, "
        "validation, one-pass analysis, early warning and response building included; no "
        f"transport), p50 ms of {REPEATS} calls per cell (the cells measured round-robin), one "
        "coupled synthetic patient, daily wearable samples. Load average (1/5 min) when measured: "
        f"{load_average[0]:.1f} / {load_average[1]:.1f}.",
        "",
        "| days of history | biometric samples | "
        + " | ".join(f"{n} instrument{'s' if n > 1 else ''}" for n in INSTRUMENT_COUNTS)
        + " |",
        "|---|---|" + "---|" * len(INSTRUMENT_COUNTS),
    ]
    for days in HISTORY_DAYS:
        row = [c for c in cells if c.days == days]
        lines.append(
            f"| {days} | {row[0].samples} | "
            + " | ".join(f"{c.p50_ms:.1f} ms ({c.scores} scores)" for c in row)
            + " |"
        )
    lines.append("")
    return lines


def with_section(document: str, section: list[str]) -> str:
    """``document`` with its scaling section replaced (or inserted before "## Model")."""
    heading = section[0]
    text = "\n".join(section)
    lines = document.splitlines()
    if heading in lines:
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        return "\n".join([*lines[:start], text.rstrip("\n"), "", *lines[end:]]) + "\n"
    if "## Model" in lines:
        at = lines.index("## Model")
        return "\n".join([*lines[:at], text.rstrip("\n"), "", *lines[at:]]) + "\n"
    return document.rstrip("\n") + "\n\n" + text + "\n"
