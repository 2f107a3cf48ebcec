"""Phenoconversion by current CYP2D6 / CYP2C19 inhibitors."""

from __future__ import annotations

import pytest

from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.phenoconversion import apply_phenoconversions, effective_phenotypes
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_for

UM, RM, NM = "Ultrarapid Metabolizer", "Rapid Metabolizer", "Normal Metabolizer"
LIM, IM = "Likely Intermediate Metabolizer", "Intermediate Metabolizer"
LPM, PM = "Likely Poor Metabolizer", "Poor Metabolizer"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _genotype(kb: KnowledgeBase, **diplotypes: str) -> dict[str, PhenotypeResult]:
    return {gene: phenotype_for(gene, text, kb) for gene, text in diplotypes.items()}


def test_paroxetine_turns_cyp2d6_normal_into_poor(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1")
    [conversion] = effective_phenotypes(genotype, ["paroxetine"], kb)
    assert (conversion.gene, conversion.from_phenotype, conversion.to_phenotype) == (
        "CYP2D6",
        NM,
        PM,
    )
    assert (conversion.from_activity_score, conversion.to_activity_score) == (2.0, 0.0)
    assert conversion.inhibitor == "paroxetine"
    assert conversion.strength == "strong"
    assert conversion.changed
    assert conversion.what_would_change == (
        "If paroxetine is stopped, CYP2D6 phenotype reverts to Normal Metabolizer."
    )
    assert "33387367" in conversion.source


@pytest.mark.parametrize("drug", ["bupropion", "fluoxetine", "quinidine", "terbinafine", "Paxil"])
def test_strong_cyp2d6_inhibitors_give_poor(kb: KnowledgeBase, drug: str) -> None:
    genotype = _genotype(kb, CYP2D6="*1x2/*1")  # Ultrarapid, AS 3
    [conversion] = effective_phenotypes(genotype, [drug], kb)
    assert (conversion.to_phenotype, conversion.to_activity_score) == (PM, 0.0)


@pytest.mark.parametrize(
    ("diplotype", "halved", "expected"),
    [
        ("*1/*1", 1.0, IM),  # 2.0 x 0.5
        ("*1x2/*1", 1.5, NM),  # 3.0 x 0.5
        ("*1/*10", 0.625, IM),  # 1.25 x 0.5
        ("*1x2/*2x2", 2.0, NM),  # 4.0 x 0.5
        ("*1x3/*2x2", 2.5, UM),  # 5.0 x 0.5
    ],
)
def test_moderate_cyp2d6_inhibitor_halves_the_score(
    kb: KnowledgeBase, diplotype: str, halved: float, expected: str
) -> None:
    [conversion] = effective_phenotypes(_genotype(kb, CYP2D6=diplotype), ["duloxetine"], kb)
    assert conversion.to_activity_score == pytest.approx(halved)
    assert conversion.to_phenotype == expected


def test_weak_inhibitor_changes_nothing(kb: KnowledgeBase) -> None:
    assert effective_phenotypes(_genotype(kb, CYP2D6="*1/*1"), ["sertraline"], kb) == []


def test_non_inhibitor_changes_nothing(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1", CYP2C19="*1/*1")
    assert effective_phenotypes(genotype, ["metformin", "lisinopril"], kb) == []


def test_strongest_inhibitor_decides_and_all_are_listed(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1")
    [conversion] = effective_phenotypes(genotype, ["duloxetine", "bupropion"], kb)
    assert conversion.inhibitor == "bupropion"
    assert set(conversion.inhibitors) == {"duloxetine", "bupropion"}
    assert conversion.to_phenotype == PM
    assert "duloxetine" in conversion.what_would_change
    assert "bupropion" in conversion.what_would_change


def test_target_drug_is_not_its_own_perpetrator(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1")
    assert effective_phenotypes(genotype, ["paroxetine"], kb, target_drug="paroxetine") == []


def test_strong_inhibitor_makes_even_an_indeterminate_cyp2d6_poor(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*999")
    [conversion] = effective_phenotypes(genotype, ["quinidine"], kb)
    assert (conversion.from_phenotype, conversion.to_phenotype) == ("Indeterminate", PM)
    # A moderate inhibitor cannot be applied to an unknown score.
    assert effective_phenotypes(genotype, ["duloxetine"], kb) == []


def test_moderate_inhibitor_with_unreported_copy_number_is_not_guessed(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1xN/*1")  # >= 3.0, Ultrarapid
    [conversion] = effective_phenotypes(genotype, ["duloxetine"], kb)
    # >= 1.5 after halving: Normal for 3 copies, Ultrarapid for 5 or more copies.
    assert conversion.to_phenotype == "Indeterminate"


@pytest.mark.parametrize(
    ("diplotype", "drug", "expected"),
    [
        ("*1/*1", "fluvoxamine", PM),
        ("*17/*17", "fluconazole", PM),
        ("*1/*17", "ticlopidine", PM),
        ("*1/*1", "omeprazole", IM),
        ("*17/*17", "esomeprazole", RM),
        ("*1/*17", "omeprazole", NM),
        ("*1/*2", "omeprazole", PM),
        ("*1/*9", "omeprazole", LPM),
        ("*2/*9", "omeprazole", PM),
    ],
)
def test_cyp2c19_convention(kb: KnowledgeBase, diplotype: str, drug: str, expected: str) -> None:
    [conversion] = effective_phenotypes(_genotype(kb, CYP2C19=diplotype), [drug], kb)
    assert conversion.to_phenotype == expected
    assert conversion.to_activity_score is None


def test_fluoxetine_inhibits_both_enzymes_and_carries_washout_caveat(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1", CYP2C19="*1/*1")
    conversions = {c.gene: c for c in effective_phenotypes(genotype, ["fluoxetine"], kb)}
    assert conversions["CYP2D6"].to_phenotype == PM
    assert conversions["CYP2C19"].to_phenotype == IM  # moderate CYP2C19 inhibitor
    assert "weeks" in conversions["CYP2D6"].caveat


def test_already_poor_is_reported_as_unchanged(kb: KnowledgeBase) -> None:
    [conversion] = effective_phenotypes(_genotype(kb, CYP2D6="*4/*4"), ["paroxetine"], kb)
    assert not conversion.changed
    assert "with or without paroxetine" in conversion.what_would_change


def test_apply_phenoconversions_builds_effective_results(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, CYP2D6="*1/*1", CYP2C19="*1/*1")
    conversions = effective_phenotypes(genotype, ["paroxetine"], kb)
    effective = apply_phenoconversions(genotype, conversions)
    assert effective["CYP2D6"].phenotype == PM
    assert effective["CYP2D6"].activity_score == 0.0
    assert "paroxetine" in effective["CYP2D6"].explanation
    assert effective["CYP2C19"] == genotype["CYP2C19"]
    assert genotype["CYP2D6"].phenotype == NM  # the input is not modified
