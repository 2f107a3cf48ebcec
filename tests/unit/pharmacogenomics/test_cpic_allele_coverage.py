"""Every CPIC allele of CYP2D6, CYP2C19, CYP2C9 and CYP2B6 is in the allele table.

The reference list (cpic_allele_names.json, next to this file) is transcribed from CPIC's
allele functionality tables as exported by PharmCAT; its "sources" name the repository,
commit, file and CPIC data version. A missing allele makes every diplotype carrying it
Indeterminate (no guidance), which is how CYP2D6 *57 went unnoticed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pharmacogenomics_svc.guidance import guidance_for
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.phenotype import phenotype_for

REFERENCE = json.loads(
    (Path(__file__).with_name("cpic_allele_names.json")).read_text(encoding="utf-8")
)
GENES = ("CYP2D6", "CYP2C19", "CYP2C9", "CYP2B6")


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def test_reference_list_names_its_sources() -> None:
    source_ids = {source["id"] for source in REFERENCE["sources"]}
    for source in REFERENCE["sources"]:
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
        assert source["cpic_data_version"] and source["path"].endswith("{gene}.json")
    assert set(REFERENCE["alleles"]) == set(GENES)
    for gene in GENES:
        assert set(REFERENCE["alleles"][gene]["sources"]) <= source_ids


@pytest.mark.parametrize("gene", GENES)
def test_every_cpic_allele_is_in_the_allele_table(kb: KnowledgeBase, gene: str) -> None:
    expected = REFERENCE["alleles"][gene]["names"]
    missing = [name for name in expected if kb.allele(gene, name) is None]
    assert not missing, f"{gene} alleles in CPIC's table but not in allele_function.csv: {missing}"


def test_cyp2d6_star57_is_no_function_and_makes_a_poor_metabolizer(kb: KnowledgeBase) -> None:
    allele = kb.allele("CYP2D6", "*57")
    assert allele is not None and allele.function == "No function"
    result = phenotype_for("CYP2D6", "*4/*57", kb)
    assert (result.phenotype, result.activity_score) == ("Poor Metabolizer", 0.0)


# CPIC for poor metabolizers: TCA 2016 (nortriptyline) avoid; SSRI 2023 (paroxetine) 50 % dose.
@pytest.mark.parametrize(
    ("drug", "action"), [("nortriptyline", "avoid"), ("paroxetine", "adjust dose")]
)
def test_star4_star57_gets_the_same_guidance_as_star4_star4(
    kb: KnowledgeBase, drug: str, action: str
) -> None:
    def guidance(diplotype: str) -> list[tuple[str, str, str, str]]:
        phenotypes = {"CYP2D6": phenotype_for("CYP2D6", diplotype, kb)}
        return [
            (g.action, g.strength, g.recommendation, g.dose_adjustment)
            for g in guidance_for(drug, phenotypes, phenotypes, kb)
        ]

    reference = guidance("*4/*4")
    assert reference and reference[0][0] == action
    assert guidance("*4/*57") == reference


def _activity(value: str) -> tuple[float | None, bool]:
    """CPIC's activity text -> (value, is a minimum); "n/a" -> (None, False)."""
    if value == "n/a":
        return None, False
    return float(value.lstrip("≥")), value.startswith("≥")


@pytest.mark.parametrize(
    ("haplotype", "value"),
    sorted(REFERENCE["cyp2d6_duplications"]["activity_values"].items()),
)
def test_cyp2d6_duplications_have_cpic_activity(
    kb: KnowledgeBase, haplotype: str, value: str
) -> None:
    # Paired with *5 (gene deletion, activity 0) the diplotype score is the haplotype's.
    result = phenotype_for("CYP2D6", f"{haplotype}/*5", kb)
    expected, is_minimum = _activity(value)
    if expected is None:
        assert result.phenotype == "Indeterminate"
        return
    assert result.activity_score == pytest.approx(expected)
    assert result.activity_score_is_minimum == is_minimum
