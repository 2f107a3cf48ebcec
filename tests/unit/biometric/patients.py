"""Requests built from synthetic patients, in domain and protobuf form."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from biometric_svc.domain import BiometricSamples, IndicatorObservations
from common.biometric_metrics import METRICS as ACCEPTED_METRICS
from common.proto_convert import to_timestamp
from common.synthetic import INSTRUMENTS, METRICS, Cohort
from novamind.common.v1 import common_pb2

PSEUDONYM = "psn_" + "0123456789abcdef" * 2
#: Symptoms are scored in the evening, wearables report the day at midnight UTC.
_SYMPTOM_OFFSET_NS = 20 * 3600 * 10**9


def _long(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return frame.melt(id_vars="date", value_vars=list(columns)).dropna(subset=["value"])


def patient_frames(cohort: Cohort, patient_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    bio = cohort.biometrics[cohort.biometrics.patient_id == patient_id]
    sym = cohort.symptoms[cohort.symptoms.patient_id == patient_id]
    return bio.reset_index(drop=True), sym.reset_index(drop=True)


def domain_request_data(
    cohort: Cohort, patient_id: str
) -> tuple[BiometricSamples, IndicatorObservations]:
    bio, sym = patient_frames(cohort, patient_id)
    long_bio, long_sym = _long(bio, METRICS), _long(sym, INSTRUMENTS)
    samples = BiometricSamples(
        metric=np.array([METRICS.index(m) for m in long_bio["variable"]], dtype=np.int64),
        measured_at_ns=long_bio["date"].to_numpy().astype("datetime64[ns]").astype(np.int64),
        value=long_bio["value"].to_numpy(np.float64),
        granularity=np.full(len(long_bio), 2, dtype=np.int64),
    )
    indicators = IndicatorObservations(
        instrument=np.array([INSTRUMENTS.index(i) for i in long_sym["variable"]], dtype=np.int64),
        observed_at_ns=long_sym["date"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        + _SYMPTOM_OFFSET_NS,
        score=long_sym["value"].to_numpy(np.float64),
    )
    return samples, indicators


def _moment(date: object, hour: int = 0) -> dt.datetime:
    stamp = pd.Timestamp(date)
    return dt.datetime(stamp.year, stamp.month, stamp.day, hour, tzinfo=dt.UTC)


def proto_request_data(
    cohort: Cohort, patient_id: str
) -> tuple[list[common_pb2.BiometricSample], list[common_pb2.SymptomObservation]]:
    bio, sym = patient_frames(cohort, patient_id)
    samples = []
    for row in _long(bio, METRICS).itertuples(index=False):
        sample = common_pb2.BiometricSample(
            metric=f"BIOMETRIC_METRIC_{row.variable.upper()}",
            value=float(row.value),
            granularity=common_pb2.SAMPLE_GRANULARITY_DAY,
        )
        sample.measured_at.CopyFrom(to_timestamp(_moment(row.date)))
        samples.append(sample)
    observations = []
    for row in _long(sym, INSTRUMENTS).itertuples(index=False):
        observation = common_pb2.SymptomObservation(
            instrument=f"INSTRUMENT_{row.variable.upper()}",
            score=float(row.value),
        )
        observation.observed_at.CopyFrom(to_timestamp(_moment(row.date, hour=20)))
        observations.append(observation)
    return samples, observations


def sample_arrays(
    rows: list[tuple[str, dt.datetime, float, str]],
) -> BiometricSamples:
    """Samples from (metric, UTC time, value, granularity) tuples; unknown names map to -1."""
    granularities = ("minute", "hour", "day")
    return BiometricSamples(
        metric=np.array(
            [ACCEPTED_METRICS.index(m) if m in ACCEPTED_METRICS else -1 for m, *_ in rows],
            np.int64,
        ),
        measured_at_ns=np.array(
            [int(t.timestamp()) * 10**9 + t.microsecond * 1000 for _, t, _, _ in rows], np.int64
        ),
        value=np.array([v for _, _, v, _ in rows], np.float64),
        granularity=np.array(
            [granularities.index(g) if g in granularities else -1 for *_, g in rows], np.int64
        ),
    )
