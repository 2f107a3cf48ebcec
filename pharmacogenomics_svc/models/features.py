"""Genotype-derived and clinical features of one (patient, medication) pair.

The same function builds the rows the models are trained on and the rows they
score, so training and serving cannot drift apart. Features:

* ``medication=<name>``: one-hot over the medications seen in training.
* ``<gene>_reduced`` / ``<gene>_increased`` for CYP2D6, CYP2C19, CYP2C9 and
  CYP2B6: how far below / above a Normal Metabolizer the gene is, counted only
  when the knowledge base lists the gene for *this* drug (0 otherwise). Each
  CPIC phenotype is placed on an ordinal capacity scale (Poor 0, Likely Poor
  0.25, Intermediate 0.5, Likely Intermediate 0.75, Normal 1, Rapid 1.5,
  Ultrarapid 2): an ordering of the CPIC categories, not a measured enzyme
  activity. An Indeterminate or untested gene of the drug's pathway is missing.
  Folding gene and drug into one number lets a shallow tree express "a CYP2C19
  Poor Metabolizer on citalopram" in one split, where a phenotype column and a
  drug column would need an interaction that few carriers could reveal.
* ``hla_b_15_02`` / ``hla_a_31_01``: carrier 1, non-carrier 0, untested missing.
* ``prior_treatment_failures``, ``age_years``, ``sex_female``, ``baseline_phq9``.

Scoring uses the *effective* phenotypes (after phenoconversion): drug exposure
follows enzyme activity whatever lowered it, which is the premise of CPIC's own
phenoconversion approach (Cicali et al. 2020, PMID 31910286).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pharmacogenomics_svc.knowledge_base import (
    INTERMEDIATE,
    LIKELY_INTERMEDIATE,
    LIKELY_POOR,
    NORMAL,
    POOR,
    POSITIVE,
    RAPID,
    ULTRARAPID,
    KnowledgeBase,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult

_LOGGER = logging.getLogger(__name__)

FloatMatrix = npt.NDArray[np.float32]

METABOLIC_GENES: Final = ("CYP2D6", "CYP2C19", "CYP2C9", "CYP2B6")
HLA_MARKERS: Final = {"HLA-B*15:02": "hla_b_15_02", "HLA-A*31:01": "hla_a_31_01"}
CAPACITY: Final[Mapping[str, float]] = {
    POOR: 0.0,
    LIKELY_POOR: 0.25,
    INTERMEDIATE: 0.5,
    LIKELY_INTERMEDIATE: 0.75,
    NORMAL: 1.0,
    RAPID: 1.5,
    ULTRARAPID: 2.0,
}
#: Share of training rows in which each feature group is blanked (see ``mask_at_random``).
MASK_RATE: Final = 0.1
RESPONSE: Final = "response"
SIDE_EFFECT: Final = "side_effect"
TARGETS: Final = (RESPONSE, SIDE_EFFECT)
PATHWAY_FEATURES: Final = tuple(
    f"{gene.lower()}_{way}" for gene in METABOLIC_GENES for way in ("reduced", "increased")
)
PATIENT_FEATURES: Final = (
    *HLA_MARKERS.values(),
    *PATHWAY_FEATURES,
    "prior_treatment_failures",
    "age_years",
    "sex_female",
    "baseline_phq9",
)
# Directions the trees may not contradict (+1 rising, -1 falling, 0 free). They encode the CPIC
# implications, not effect sizes: slower metabolism raises exposure and the chance of side effects,
# which is why CPIC advises lower doses or alternatives rather than expecting more benefit; faster
# metabolism lowers exposure and the chance of benefit (CPIC 2023 SSRI/SNRI, Bousman et al., PMID
# 37032427; CPIC TCA, Hicks et al. 2017, PMID 27997040). Each failed adequate trial lowers the
# chance of response (STAR*D, Rush et al. 2006, PMID 17074942). Without them, noise in a few hundred
# carriers could make a Poor Metabolizer look like a better responder.
_MONOTONE: Final[Mapping[str, Mapping[str, int]]] = {
    RESPONSE: {
        **{name: -1 for name in PATHWAY_FEATURES},
        "prior_treatment_failures": -1,
    },
    SIDE_EFFECT: {name: 1 for name in PATHWAY_FEATURES if name.endswith("_reduced")},
}


@dataclass(frozen=True)
class ClinicalFeatures:
    """Clinical covariates; None where unknown."""

    age_years: float | None = None
    sex: str | None = None  # "female", "male" or "other"
    prior_treatment_failures: float | None = None
    baseline_phq9: float | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """What the feature vector is made of; saved with the model so serving matches training."""

    medications: tuple[str, ...]
    pathway_genes: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> tuple[str, ...]:
        return (*(f"medication={m}" for m in self.medications), *PATIENT_FEATURES)

    def monotone_constraints(self, target: str) -> tuple[int, ...]:
        directions = _MONOTONE[target]
        return tuple(directions.get(name, 0) for name in self.names)

    def to_json(self) -> dict[str, object]:
        return {
            "medications": list(self.medications),
            "pathway_genes": {m: list(g) for m, g in sorted(self.pathway_genes.items())},
            "features": list(self.names),
        }

    @classmethod
    def from_json(cls, raw: object) -> FeatureSpec:
        if not isinstance(raw, dict):
            raise ValueError("features.json: must be an object")
        medications = raw.get("medications")
        pathway = raw.get("pathway_genes")
        if not isinstance(medications, list) or not all(isinstance(m, str) for m in medications):
            raise ValueError("features.json: medications must be a list of names")
        if not isinstance(pathway, dict):
            raise ValueError("features.json: pathway_genes must be an object")
        spec = cls(
            medications=tuple(medications),
            pathway_genes={str(m): tuple(str(g) for g in genes) for m, genes in pathway.items()},
        )
        if raw.get("features") != list(spec.names):
            raise ValueError("features.json: feature list does not match this code's features")
        return spec


def feature_spec(medications: Sequence[str], kb: KnowledgeBase) -> FeatureSpec:
    """The spec for a model trained on ``medications``; drug genes come from the knowledge base."""
    pathway: dict[str, tuple[str, ...]] = {}
    for name in sorted(set(medications)):
        med = kb.medication(name)
        genes = med.genes if med is not None else ()
        pathway[name] = tuple(g for g in genes if g in METABOLIC_GENES)
    return FeatureSpec(medications=tuple(sorted(set(medications))), pathway_genes=pathway)


def capacity_of(result: PhenotypeResult | None) -> float:
    if result is None:
        return math.nan
    return CAPACITY.get(result.phenotype, math.nan)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def feature_row(
    spec: FeatureSpec,
    medication: str,
    phenotypes: Mapping[str, PhenotypeResult],
    clinical: ClinicalFeatures,
) -> list[float]:
    """One feature vector, in ``spec.names`` order (NaN = missing)."""
    one_hot = [1.0 if medication == m else 0.0 for m in spec.medications]
    capacities = {gene: capacity_of(phenotypes.get(gene)) for gene in METABOLIC_GENES}
    hla = []
    for marker in HLA_MARKERS:
        result = phenotypes.get(marker)
        hla.append(math.nan if result is None else float(result.phenotype == POSITIVE))
    pathway = spec.pathway_genes.get(medication, ())
    deviations: list[float] = []
    for gene in METABOLIC_GENES:
        capacity = capacities[gene] if gene in pathway else 1.0  # off-pathway: no effect
        if math.isnan(capacity):
            deviations += [math.nan, math.nan]  # (max() would turn NaN into 0)
        else:
            deviations += [max(0.0, 1.0 - capacity), max(0.0, capacity - 1.0)]
    sex = clinical.sex
    sex_female = math.nan if sex is None else float(sex == "female")
    return [
        *one_hot,
        *hla,
        *deviations,
        _number(clinical.prior_treatment_failures),
        _number(clinical.age_years),
        sex_female,
        _number(clinical.baseline_phq9),
    ]


def feature_matrix(rows: Sequence[Sequence[float]], spec: FeatureSpec) -> FloatMatrix:
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(spec.names))
    return matrix


def mask_at_random(
    matrix: FloatMatrix, spec: FeatureSpec, rng: np.random.Generator, rate: float = MASK_RATE
) -> FloatMatrix:
    """A copy with each patient feature group blanked in ``rate`` of the rows.

    Requests often lack a gene or a covariate, while a synthetic cohort never
    does; trees that never saw a missing value send it down an arbitrary branch.
    Training on rows where, say, a gene is missing teaches them the average over
    its genotypes instead. A gene's two columns go together (one untested gene),
    every other column on its own.
    """
    masked = matrix.copy()
    names = list(spec.names)
    groups = [[f"{g.lower()}_reduced", f"{g.lower()}_increased"] for g in METABOLIC_GENES] + [
        [name] for name in PATIENT_FEATURES if name not in PATHWAY_FEATURES
    ]
    for group in groups:
        rows = rng.random(masked.shape[0]) < rate
        for name in group:
            masked[rows, names.index(name)] = np.nan
    return masked
