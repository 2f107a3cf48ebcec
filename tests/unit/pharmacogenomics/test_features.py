"""Feature rows: per-gene pathway deviations, missing values, spec round trip, masking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.models.features import (
    PATIENT_FEATURES,
    RESPONSE,
    SIDE_EFFECT,
    ClinicalFeatures,
    FeatureSpec,
    feature_matrix,
    feature_row,
    feature_spec,
    mask_at_random,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_for, phenotype_for_hla

MEDICATIONS = ("amitriptyline", "bupropion", "citalopram", "paroxetine", "sertraline")
CLINICAL = ClinicalFeatures(age_years=40, sex="female", prior_treatment_failures=1)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


@pytest.fixture(scope="module")
def spec(kb: KnowledgeBase) -> FeatureSpec:
    return feature_spec(MEDICATIONS, kb)


def _row(spec: FeatureSpec, drug: str, phenotypes: dict[str, PhenotypeResult]) -> dict[str, float]:
    return dict(zip(spec.names, feature_row(spec, drug, phenotypes, CLINICAL), strict=True))


def _genotype(kb: KnowledgeBase, **diplotypes: str) -> dict[str, PhenotypeResult]:
    return {gene: phenotype_for(gene, text, kb) for gene, text in diplotypes.items()}


def test_pathway_genes_come_from_the_knowledge_base(spec: FeatureSpec) -> None:
    assert spec.pathway_genes["citalopram"] == ("CYP2C19",)
    assert set(spec.pathway_genes["amitriptyline"]) == {"CYP2D6", "CYP2C19"}
    assert set(spec.pathway_genes["sertraline"]) == {"CYP2C19", "CYP2B6"}
    assert spec.pathway_genes["bupropion"] == ()  # not in the knowledge base


def test_only_the_drugs_own_genes_count(kb: KnowledgeBase, spec: FeatureSpec) -> None:
    poor_both = _genotype(kb, CYP2D6="*4/*4", CYP2C19="*2/*2")
    citalopram = _row(spec, "citalopram", poor_both)
    assert citalopram["cyp2c19_reduced"] == 1.0  # Poor Metabolizer: capacity 0
    assert citalopram["cyp2d6_reduced"] == 0.0  # CYP2D6 does not metabolize citalopram here
    paroxetine = _row(spec, "paroxetine", poor_both)
    assert (paroxetine["cyp2d6_reduced"], paroxetine["cyp2c19_reduced"]) == (1.0, 0.0)
    bupropion = _row(spec, "bupropion", poor_both)
    assert all(bupropion[f"{g}_reduced"] == 0.0 for g in ("cyp2d6", "cyp2c19", "cyp2c9"))
    assert citalopram["medication=citalopram"] == 1.0
    assert sum(citalopram[f"medication={m}"] for m in MEDICATIONS) == 1.0


def test_capacity_scale_orders_the_cpic_phenotypes(kb: KnowledgeBase, spec: FeatureSpec) -> None:
    ultrarapid = _row(spec, "amitriptyline", _genotype(kb, CYP2D6="*1/*1", CYP2C19="*17/*17"))
    assert (ultrarapid["cyp2c19_increased"], ultrarapid["cyp2c19_reduced"]) == (1.0, 0.0)
    assert ultrarapid["cyp2d6_reduced"] == ultrarapid["cyp2d6_increased"] == 0.0
    rapid = _row(spec, "citalopram", _genotype(kb, CYP2C19="*1/*17"))
    intermediate = _row(spec, "citalopram", _genotype(kb, CYP2C19="*1/*2"))
    assert rapid["cyp2c19_increased"] == 0.5
    assert intermediate["cyp2c19_reduced"] == 0.5


def test_unknown_genes_and_covariates_are_missing(kb: KnowledgeBase, spec: FeatureSpec) -> None:
    indeterminate = _genotype(kb, CYP2C19="*1/*12")  # *12: uncertain function
    assert indeterminate["CYP2C19"].phenotype == "Indeterminate"
    row = _row(spec, "citalopram", indeterminate)
    assert math.isnan(row["cyp2c19_reduced"]) and math.isnan(row["cyp2c19_increased"])
    untested = _row(spec, "citalopram", {})
    assert math.isnan(untested["cyp2c19_reduced"])
    assert math.isnan(untested["hla_b_15_02"])
    carrier = _row(
        spec, "citalopram", {"HLA-B*15:02": phenotype_for_hla("HLA-B*15:02", "positive", kb)}
    )
    assert carrier["hla_b_15_02"] == 1.0
    unknown = dict(
        zip(spec.names, feature_row(spec, "citalopram", {}, ClinicalFeatures()), strict=True)
    )
    assert all(math.isnan(unknown[n]) for n in ("age_years", "sex_female", "baseline_phq9"))


def test_monotone_directions_follow_the_cpic_implications(spec: FeatureSpec) -> None:
    response = dict(zip(spec.names, spec.monotone_constraints(RESPONSE), strict=True))
    side_effect = dict(zip(spec.names, spec.monotone_constraints(SIDE_EFFECT), strict=True))
    assert response["cyp2c19_increased"] == -1  # less exposure, less benefit
    assert response["prior_treatment_failures"] == -1
    assert side_effect["cyp2d6_reduced"] == 1  # more exposure, more side effects
    assert side_effect["cyp2d6_increased"] == 0
    assert response["age_years"] == side_effect["age_years"] == 0


def test_spec_round_trips_and_refuses_a_different_feature_list(spec: FeatureSpec) -> None:
    raw = spec.to_json()
    assert FeatureSpec.from_json(raw) == spec
    tampered = {**raw, "features": [*raw["features"], "extra"]}  # type: ignore[misc]
    with pytest.raises(ValueError, match="feature list"):
        FeatureSpec.from_json(tampered)


def test_masking_blanks_whole_genes_and_never_the_medication(
    kb: KnowledgeBase, spec: FeatureSpec
) -> None:
    phenotypes = _genotype(kb, CYP2D6="*1/*4", CYP2C19="*1/*2", CYP2C9="*1/*1", CYP2B6="*1/*6")
    for marker in ("HLA-B*15:02", "HLA-A*31:01"):
        phenotypes[marker] = phenotype_for_hla(marker, "negative", kb)
    complete = ClinicalFeatures(40, "male", 0, 12.0)
    rows = [feature_row(spec, "amitriptyline", phenotypes, complete) for _ in range(20_000)]
    matrix = feature_matrix(rows, spec)
    masked = mask_at_random(matrix, spec, np.random.default_rng(0), rate=0.1)
    names = list(spec.names)
    assert not np.isnan(matrix).any()
    for name in PATIENT_FEATURES:
        share = np.isnan(masked[:, names.index(name)]).mean()
        assert share == pytest.approx(0.1, abs=0.01), name
    reduced, increased = names.index("cyp2d6_reduced"), names.index("cyp2d6_increased")
    assert (np.isnan(masked[:, reduced]) == np.isnan(masked[:, increased])).all()
    medication_columns = [i for i, n in enumerate(names) if n.startswith("medication=")]
    assert not np.isnan(masked[:, medication_columns]).any()
