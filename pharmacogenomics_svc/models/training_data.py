"""Medication trials as model rows: from the synthetic cohort or from the documented CSVs.

One row per trial (patient x medication). Genotypes are turned into phenotypes
by the same CPIC rules the service applies (``phenotype.phenotype_for``), so a
model sees in training exactly the kind of phenotype it is given when serving.

``prior_treatment_failures`` of a trial is the number of adequate trials that
failed before it: in the synthetic cohort the patient's failures before the
window plus the earlier trials in the window (a patient gets a further trial
only after a failure, see ``common/synthetic.py``); from CSVs it is counted
from the trials before it in ``medications.csv`` (their start dates), and is
missing when that file is absent. Training uses the phenotypes implied by the
genotype: the cohort's outcome model has no co-medication effects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from common.datasets import CYP_GENES, HLA_COLUMNS, genotypes_to_wide, sha256_of_frames
from common.synthetic import Cohort
from pharmacogenomics_svc.genotype import GenotypeError
from pharmacogenomics_svc.knowledge_base import KnowledgeBase
from pharmacogenomics_svc.models.features import (
    ClinicalFeatures,
    FeatureSpec,
    FloatMatrix,
    feature_matrix,
    feature_row,
    feature_spec,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_for, phenotype_for_hla

_LOGGER = logging.getLogger(__name__)

Phenotypes = Mapping[str, PhenotypeResult]


@dataclass(frozen=True)
class Trial:
    """One medication trial with everything a feature row or a rule needs."""

    patient: int  # index of the patient (for patient-level splits)
    medication: str
    phenotypes: Phenotypes
    clinical: ClinicalFeatures


@dataclass(frozen=True)
class TrainingSet:
    trials: tuple[Trial, ...]
    responded: npt.NDArray[np.bool_]
    side_effect: npt.NDArray[np.bool_]
    #: The generator's true probabilities (synthetic cohort only), for scoring against truth.
    true_response: npt.NDArray[np.float64] | None
    true_side_effect: npt.NDArray[np.float64] | None
    data_sha256: str
    source: str

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def patients(self) -> npt.NDArray[np.int64]:
        return np.array([t.patient for t in self.trials], dtype=np.int64)

    @property
    def medications(self) -> tuple[str, ...]:
        return tuple(t.medication for t in self.trials)

    def spec(self, kb: KnowledgeBase) -> FeatureSpec:
        return feature_spec(self.medications, kb)

    def matrix(self, spec: FeatureSpec) -> FloatMatrix:
        return feature_matrix(
            [feature_row(spec, t.medication, t.phenotypes, t.clinical) for t in self.trials], spec
        )

    def subset(self, index: npt.NDArray[np.int64]) -> TrainingSet:
        def pick(values: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64] | None:
            return None if values is None else values[index]

        return TrainingSet(
            trials=tuple(self.trials[i] for i in index.tolist()),
            responded=self.responded[index],
            side_effect=self.side_effect[index],
            true_response=pick(self.true_response),
            true_side_effect=pick(self.true_side_effect),
            data_sha256=self.data_sha256,
            source=self.source,
        )


class _PhenotypeCache:
    """Phenotypes per (gene, diplotype): a cohort has a few dozen distinct diplotypes."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        self._cache: dict[tuple[str, str], PhenotypeResult] = {}

    def cyp(self, gene: str, diplotype: str) -> PhenotypeResult:
        key = (gene, diplotype)
        if key not in self._cache:
            self._cache[key] = phenotype_for(gene, diplotype, self._kb)
        return self._cache[key]

    def hla(self, marker: str, carrier: bool) -> PhenotypeResult:
        key = (marker, str(carrier))
        if key not in self._cache:
            result = "positive" if carrier else "negative"
            self._cache[key] = phenotype_for_hla(marker, result, self._kb)
        return self._cache[key]


def _patient_phenotypes(row: Mapping[str, object], cache: _PhenotypeCache) -> Phenotypes:
    phenotypes: dict[str, PhenotypeResult] = {}
    for gene in CYP_GENES:
        diplotype = row.get(gene.lower())
        if isinstance(diplotype, str) and diplotype:
            phenotypes[gene] = cache.cyp(gene, diplotype)
    for marker, column in HLA_COLUMNS.items():
        carrier = row.get(column)
        if carrier is not None and not (isinstance(carrier, float) and np.isnan(carrier)):
            phenotypes[marker] = cache.hla(marker, bool(carrier))
    return phenotypes


def _optional_number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if np.isnan(number) else number


def from_cohort(cohort: Cohort, kb: KnowledgeBase) -> TrainingSet:
    """Every trial of a synthetic cohort, with the generator's true probabilities."""
    patients = cohort.patients.reset_index(drop=True)
    index_of = {pid: i for i, pid in enumerate(patients["patient_id"].tolist())}
    cache = _PhenotypeCache(kb)
    records = patients.to_dict("records")
    phenotypes = [_patient_phenotypes(r, cache) for r in records]
    outcomes = cohort.outcomes.reset_index(drop=True)
    # Outcomes are in trial order within each patient; every earlier trial in the window failed.
    earlier = outcomes.groupby("patient_id", sort=False).cumcount().to_numpy()
    trials = []
    for position, (pid, medication) in enumerate(
        zip(outcomes["patient_id"], outcomes["medication"], strict=True)
    ):
        i = index_of[str(pid)]
        record = records[i]
        clinical = ClinicalFeatures(
            age_years=float(record["age"]),
            sex=str(record["sex"]),
            prior_treatment_failures=float(record["prior_treatment_failures"]) + earlier[position],
            baseline_phq9=float(record["baseline_phq9"]),
        )
        trials.append(Trial(i, str(medication), phenotypes[i], clinical))
    data_hash = sha256_of_frames(cohort.patients, cohort.outcomes)
    return TrainingSet(
        trials=tuple(trials),
        responded=outcomes["responded"].to_numpy(dtype=np.bool_),
        side_effect=outcomes["side_effect"].to_numpy(dtype=np.bool_),
        true_response=outcomes["true_response_probability"].to_numpy(dtype=np.float64),
        true_side_effect=outcomes["true_side_effect_probability"].to_numpy(dtype=np.float64),
        data_sha256=data_hash,
        source=(
            f"synthetic cohort (patients={cohort.config.n_patients}, days={cohort.config.n_days}, "
            f"seed={cohort.config.seed})"
        ),
    )


def _failures_before(
    outcomes: pd.DataFrame, medications: pd.DataFrame | None
) -> list[float | None]:
    """Failed trials before each trial, ordered by first start date; None without the file."""
    if medications is None:
        return [None] * len(outcomes)
    starts = (
        medications[medications["event"] == "start"]
        .groupby(["patient_id", "medication"])["occurred_at"]
        .min()
    )
    result: list[float | None] = []
    by_patient: dict[str, list[tuple[object, str, bool]]] = {}
    for pid, medication, responded in zip(
        outcomes["patient_id"], outcomes["medication"], outcomes["responded"], strict=True
    ):
        start = starts.get((pid, medication))
        by_patient.setdefault(str(pid), []).append((start, str(medication), bool(responded)))
    for pid, medication in zip(outcomes["patient_id"], outcomes["medication"], strict=True):
        own = starts.get((pid, medication))
        if own is None:
            result.append(None)
            continue
        failed = sum(
            1
            for start, other, responded in by_patient[str(pid)]
            if other != medication and start is not None and start < own and not responded
        )
        result.append(float(failed))
    return result


def from_frames(
    genotypes: pd.DataFrame,
    outcomes: pd.DataFrame,
    medications: pd.DataFrame | None,
    kb: KnowledgeBase,
) -> TrainingSet:
    """Trials from ``load_genotypes`` / ``load_outcomes`` (/ ``load_medications``) frames.

    Patients without a genotype row are skipped (logged as a count); the files
    carry no age, sex or PHQ-9, so those features are missing.
    """
    wide = genotypes_to_wide(genotypes)
    cache = _PhenotypeCache(kb)
    by_patient: dict[str, tuple[int, Phenotypes]] = {}
    for i, record in enumerate(wide.to_dict("records")):
        try:
            by_patient[str(record["patient_id"])] = (i, _patient_phenotypes(record, cache))
        except GenotypeError as exc:
            raise ValueError(f"genotypes.csv: {exc}") from None
    failures = _failures_before(outcomes, medications)
    trials: list[Trial] = []
    kept: list[int] = []
    for position, (pid, medication) in enumerate(
        zip(outcomes["patient_id"], outcomes["medication"], strict=True)
    ):
        entry = by_patient.get(str(pid))
        if entry is None:
            continue
        clinical = ClinicalFeatures(prior_treatment_failures=failures[position])
        trials.append(Trial(entry[0], str(medication), entry[1], clinical))
        kept.append(position)
    skipped = len(outcomes) - len(kept)
    if skipped:
        _LOGGER.warning("%d outcome rows have no genotype and were skipped", skipped)
    if not trials:
        raise ValueError("outcomes.csv: no trial has a genotype in genotypes.csv")
    frames: Sequence[pd.DataFrame] = (
        (genotypes, outcomes) if medications is None else (genotypes, outcomes, medications)
    )
    kept_index = np.asarray(kept, dtype=np.int64)
    return TrainingSet(
        trials=tuple(trials),
        responded=outcomes["responded"].to_numpy(dtype=np.bool_)[kept_index],
        side_effect=outcomes["side_effect"].to_numpy(dtype=np.bool_)[kept_index],
        true_response=None,
        true_side_effect=None,
        data_sha256=sha256_of_frames(*frames),
        source="CSV files (genotypes.csv, outcomes.csv"
        + (", medications.csv)" if medications is not None else ")"),
    )
