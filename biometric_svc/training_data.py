"""Training data of the early warning: the synthetic cohort or the documented CSV files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biometric_svc.labels import UNKNOWN_LABEL, phq9_deterioration_labels
from biometric_svc.training import PatientSeries
from common.datasets import (
    biometrics_to_daily,
    load_biometrics,
    load_symptoms,
    sha256_of_frames,
    symptoms_to_daily,
)
from common.synthetic import INSTRUMENTS, METRICS, Cohort, deterioration_labels

_LOGGER = logging.getLogger(__name__)

HORIZON_DAYS = 7


@dataclass(frozen=True)
class TrainingSet:
    patients: list[PatientSeries]
    sha256: str
    description: str


def synthetic_patients(cohort: Cohort) -> list[PatientSeries]:
    """One series per synthetic patient, labelled from the cohort's true relapse onsets."""
    labels = deterioration_labels(cohort, horizon_days=HORIZON_DAYS)
    n_patients, n_days = cohort.config.n_patients, cohort.config.n_days
    bio = cohort.biometrics[list(METRICS)].to_numpy(np.float64).reshape(n_patients, n_days, -1)
    ind = cohort.symptoms[list(INSTRUMENTS)].to_numpy(np.float64).reshape(n_patients, n_days, -1)
    lab = labels["label"].to_numpy(np.int64).reshape(n_patients, n_days)
    # The last HORIZON_DAYS days cannot see onsets after the cohort window.
    lab[:, n_days - HORIZON_DAYS :] = np.where(
        lab[:, n_days - HORIZON_DAYS :] == 1, 1, UNKNOWN_LABEL
    )
    return [PatientSeries(bio[i], ind[i], lab[i]) for i in range(n_patients)]


def synthetic_training_set(cohort: Cohort) -> TrainingSet:
    return TrainingSet(
        patients=synthetic_patients(cohort),
        sha256=sha256_of_frames(cohort.biometrics, cohort.symptoms, cohort.truth.relapse_onsets),
        description=(
            f"synthetic cohort: {cohort.config.n_patients} patients x {cohort.config.n_days} days, "
            f"seed {cohort.config.seed}"
        ),
    )


def csv_training_set(data_dir: Path) -> TrainingSet:
    """Patients from biometrics.csv and symptoms.csv; labels from the PHQ-9 onset rule."""
    bio_daily = biometrics_to_daily(load_biometrics(data_dir / "biometrics.csv"))
    sym_daily = symptoms_to_daily(load_symptoms(data_dir / "symptoms.csv"))
    patients: list[PatientSeries] = []
    bio_groups = dict(tuple(bio_daily.groupby("patient_id", sort=True)))
    sym_groups = dict(tuple(sym_daily.groupby("patient_id", sort=True)))
    for patient_id in sorted(set(bio_groups) & set(sym_groups)):
        bio, sym = bio_groups[patient_id], sym_groups[patient_id]
        dates = pd.date_range(
            min(bio["date"].min(), sym["date"].min()),
            max(bio["date"].max(), sym["date"].max()),
            freq="D",
        )
        bio_values = bio.set_index("date").reindex(dates)[list(METRICS)].to_numpy(np.float64)
        sym_values = sym.set_index("date").reindex(dates)[list(INSTRUMENTS)].to_numpy(np.float64)
        labels = phq9_deterioration_labels(sym_values[:, INSTRUMENTS.index("phq9")], HORIZON_DAYS)
        patients.append(PatientSeries(bio_values, sym_values, labels))
    return TrainingSet(
        patients=patients,
        sha256=sha256_of_frames(bio_daily, sym_daily),
        description=f"{len(patients)} patients from {data_dir.name}/ (PHQ-9 onset labels)",
    )
