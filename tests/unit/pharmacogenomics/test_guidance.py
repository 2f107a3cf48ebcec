"""Phenotype -> drug guidance, with literal expectations taken from the CPIC tables / FDA labels."""

from __future__ import annotations

import pytest

from pharmacogenomics_svc.guidance import GeneDrugGuidance, guidance_for
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.phenoconversion import apply_phenoconversions, effective_phenotypes
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_for

UM, RM, NM = "Ultrarapid Metabolizer", "Rapid Metabolizer", "Normal Metabolizer"
IM, PM = "Intermediate Metabolizer", "Poor Metabolizer"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _genotype(kb: KnowledgeBase, calls: dict[str, str]) -> dict[str, PhenotypeResult]:
    return {gene: phenotype_for(gene, text, kb) for gene, text in calls.items()}


def _only(results: list[GeneDrugGuidance]) -> GeneDrugGuidance:
    assert len(results) == 1, [r.recommendation for r in results]
    return results[0]


def _static(
    kb: KnowledgeBase, drug: str, calls: dict[str, str], population: str | None = None
) -> GeneDrugGuidance:
    """Guidance without interacting drugs (effective phenotypes = genotype phenotypes)."""
    phenotypes = _genotype(kb, calls)
    return _only(guidance_for(drug, phenotypes, phenotypes, kb, population=population))


# --- HLA-B*15:02 ------------------------------------------------------------------------------


@pytest.mark.parametrize("drug", ["carbamazepine", "oxcarbazepine", "phenytoin", "fosphenytoin"])
def test_hla_b_1502_positive_means_avoid_strong(kb: KnowledgeBase, drug: str) -> None:
    result = _static(kb, drug, {"HLA-B*15:02": "positive"})
    assert (result.action, result.strength) == ("avoid", "Strong")
    assert result.evidence is not None
    assert result.evidence.pmid in {"29392710", "32779747"}


@pytest.mark.parametrize("cyp2c9", ["*1/*1", "*1/*3", "*3/*3", "*1/*999"])
def test_hla_b_positive_overrides_cyp2c9_for_phenytoin(kb: KnowledgeBase, cyp2c9: str) -> None:
    result = _static(kb, "phenytoin", {"HLA-B*15:02": "positive", "CYP2C9": cyp2c9})
    assert (result.action, result.strength) == ("avoid", "Strong")
    assert "do not use phenytoin" in result.recommendation


def test_carbamazepine_hla_a_3101_positive_alone(kb: KnowledgeBase) -> None:
    # CPIC 2017 update: HLA-A*31:01 positive, CBZ-naive -> avoid carbamazepine (Strong).
    result = _static(kb, "carbamazepine", {"HLA-B*15:02": "negative", "HLA-A*31:01": "positive"})
    assert (result.action, result.strength) == ("avoid", "Strong")


def test_carbamazepine_population_can_be_selected(kb: KnowledgeBase) -> None:
    result = _static(
        kb,
        "carbamazepine",
        {"HLA-B*15:02": "positive", "HLA-A*31:01": "negative"},
        population="CBZ use >3mos",
    )
    assert result.population == "CBZ use >3mos"
    assert result.action != "avoid"  # long-term users without reactions may continue


# --- phenytoin CYP2C9 (HLA-B negative) --------------------------------------------------------


@pytest.mark.parametrize(
    ("cyp2c9", "action", "strength", "fragment"),
    [
        ("*1/*1", "use standard", "Strong", "No adjustments needed"),
        ("*1/*2", "use standard", "Moderate", "No adjustments needed"),  # AS 1.5
        ("*1/*3", "adjust dose", "Moderate", "approximately 25% less"),  # AS 1.0
        ("*2/*3", "adjust dose", "Strong", "approximately 50% less"),  # AS 0.5
        ("*3/*3", "adjust dose", "Strong", "approximately 50% less"),  # AS 0
    ],
)
def test_phenytoin_by_cyp2c9(
    kb: KnowledgeBase, cyp2c9: str, action: str, strength: str, fragment: str
) -> None:
    result = _static(kb, "phenytoin", {"HLA-B*15:02": "negative", "CYP2C9": cyp2c9})
    assert (result.action, result.strength) == (action, strength)
    assert fragment in result.recommendation


# --- SSRIs ------------------------------------------------------------------------------------


def test_citalopram_cyp2c19_poor(kb: KnowledgeBase) -> None:
    result = _static(kb, "citalopram", {"CYP2C19": "*2/*2"})
    assert result.action == "consider alternative"
    # CPIC 2023 (Bousman, PMID 37032427) grades this recommendation Strong.
    assert result.strength == "Strong"
    assert result.recommendation == (
        "Consider a clinically appropriate antidepressant not predominantly metabolized by "
        "CYP2C19. If citalopram or escitalopram are clinically appropriate, consider a lower "
        "starting dose, slower titration schedule and 50% reduction of the standard maintenance "
        "dose as compared to normal metabolizers."
    )
    assert "20 mg/day" in result.comments  # FDA maximum for CYP2C19 poor metabolizers
    assert result.evidence is not None
    assert result.evidence.pmid == "37032427"


@pytest.mark.parametrize(
    ("diplotype", "strength", "fragment"),
    [
        (
            "*17/*17",
            "Strong",
            "alternative antidepressant not predominantly metabolized by CYP2C19",
        ),
        ("*1/*17", "Optional", "Initiate therapy with recommended starting dose"),
        ("*1/*1", "Strong", "Initiate therapy with recommended starting dose"),
        ("*1/*2", "Moderate", "slower titration schedule and lower maintenance dose"),
        ("*2/*9", "Strong", "50% reduction of the standard maintenance dose"),
    ],
)
def test_escitalopram_by_cyp2c19(
    kb: KnowledgeBase, diplotype: str, strength: str, fragment: str
) -> None:
    result = _static(kb, "escitalopram", {"CYP2C19": diplotype})
    assert result.strength == strength
    assert fragment in result.recommendation


def test_sertraline_combines_cyp2c19_and_cyp2b6(kb: KnowledgeBase) -> None:
    both_poor = _static(kb, "sertraline", {"CYP2C19": "*2/*2", "CYP2B6": "*6/*6"})
    assert both_poor.genes == ("CYP2C19", "CYP2B6")
    assert (both_poor.action, both_poor.strength) == ("consider alternative", "Optional")
    assert "not primarily metabolized by CYP2C19 or CYP2B6" in both_poor.recommendation
    c19_only = _static(kb, "sertraline", {"CYP2C19": "*2/*2"})
    assert c19_only.phenotypes == (PM, "No Result")
    assert (c19_only.action, c19_only.strength) == ("adjust dose", "Moderate")


def test_fluoxetine_has_no_cpic_recommendation(kb: KnowledgeBase) -> None:
    phenotypes = _genotype(kb, {"CYP2D6": "*4/*4", "CYP2C19": "*2/*2"})
    results = guidance_for("fluoxetine", phenotypes, phenotypes, kb)
    assert {r.genes for r in results} == {("CYP2D6",), ("CYP2C19",)}
    assert all(r.action == "no recommendation" for r in results)


def test_vortioxetine_poor_gets_cpic_and_fda_rows(kb: KnowledgeBase) -> None:
    phenotypes = _genotype(kb, {"CYP2D6": "*4/*4"})
    results = guidance_for("vortioxetine", phenotypes, phenotypes, kb)
    by_strength = {r.strength: r for r in results}
    assert set(by_strength) == {"Moderate", "FDA label"}
    assert "10 mg/day" in by_strength["FDA label"].recommendation
    normal = _genotype(kb, {"CYP2D6": "*1/*1"})
    # A Normal Metabolizer gets only the CPIC row; the label has nothing to add.
    assert [r.strength for r in guidance_for("vortioxetine", normal, normal, kb)] == ["Strong"]


# --- TCAs (CPIC 2016, Hicks 2017 Table 4) -------------------------------------------------------


@pytest.mark.parametrize(
    ("cyp2d6", "cyp2c19", "action", "strength", "fragment"),
    [
        ("*1/*1", "*1/*1", "use standard", "Strong", "Initiate therapy with recommended"),
        ("*1x2/*1", "*1/*1", "avoid", "Strong", "titrating to a higher target dose"),
        ("*4/*4", "*1/*1", "avoid", "Strong", "50% reduction"),
        ("*1/*1", "*2/*2", "avoid", "Moderate", "50% reduction"),
        ("*1/*4", "*1/*1", "adjust dose", "Moderate", "25% reduction"),
        ("*1/*1", "*17/*17", "consider alternative", "Optional", "not metabolized by CYP2C19"),
        ("*4/*4", "*2/*2", "avoid", "Optional", "Avoid amitriptyline use"),
    ],
)
def test_amitriptyline_combined_table(
    kb: KnowledgeBase, cyp2d6: str, cyp2c19: str, action: str, strength: str, fragment: str
) -> None:
    result = _static(kb, "amitriptyline", {"CYP2D6": cyp2d6, "CYP2C19": cyp2c19})
    assert result.genes == ("CYP2D6", "CYP2C19")
    assert (result.action, result.strength) == (action, strength)
    assert fragment in result.recommendation


def test_tca_with_indeterminate_cyp2d6_uses_the_cyp2c19_only_row(kb: KnowledgeBase) -> None:
    result = _static(kb, "amitriptyline", {"CYP2D6": "*1/*999", "CYP2C19": "*2/*2"})
    assert (result.action, result.strength) == ("consider alternative", "Moderate")
    assert "Avoid tertiary amine use" in result.recommendation
    assert "indeterminate" in result.rationale
    assert "*999" in result.rationale


def test_nortriptyline_intermediate_strength_depends_on_activity_score(kb: KnowledgeBase) -> None:
    high = _static(kb, "nortriptyline", {"CYP2D6": "*1/*4"})  # AS 1.0
    low = _static(kb, "nortriptyline", {"CYP2D6": "*4/*17"})  # AS 0.5
    assert (high.strength, low.strength) == ("Optional", "Moderate")
    assert "25% reduction" in high.recommendation


# --- atomoxetine populations --------------------------------------------------------------------


def test_atomoxetine_reports_adults_and_children(kb: KnowledgeBase) -> None:
    phenotypes = _genotype(kb, {"CYP2D6": "*4/*4"})
    results = {r.population: r for r in guidance_for("atomoxetine", phenotypes, phenotypes, kb)}
    assert set(results) == {"adults", "pediatrics"}
    assert "40 mg/day" in results["adults"].recommendation
    assert "0.5 mg/kg/day" in results["pediatrics"].recommendation
    assert (results["adults"].strength, results["pediatrics"].strength) == ("Moderate", "Strong")
    only_children = guidance_for("Strattera", phenotypes, phenotypes, kb, population="pediatrics")
    assert [r.population for r in only_children] == ["pediatrics"]


# --- phenoconversion in guidance ----------------------------------------------------------------


def test_aripiprazole_uses_effective_poor_from_paroxetine(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, {"CYP2D6": "*1/*1"})
    conversions = effective_phenotypes(genotype, ["paroxetine"], kb)
    effective = apply_phenoconversions(genotype, conversions)
    result = _only(guidance_for("aripiprazole", effective, genotype, kb, conversions=conversions))
    assert result.phenotypes == (PM,)
    assert result.genotype_phenotypes == (NM,)
    assert result.phenoconverted
    assert result.action == "adjust dose"
    assert result.strength == "FDA label"
    assert "half of the usual dose" in result.recommendation
    assert result.evidence is not None
    assert result.evidence.source.startswith("FDA label")
    assert "paroxetine" in result.what_would_change
    assert "stopped" in result.what_would_change
    assert "Normal Metabolizer" in result.what_would_change
    assert "paroxetine" in result.rationale


def test_aripiprazole_without_inhibitor_uses_labeled_dosing(kb: KnowledgeBase) -> None:
    result = _static(kb, "aripiprazole", {"CYP2D6": "*1/*1"})
    assert (result.action, result.strength, result.phenoconverted) == (
        "use standard",
        "FDA label",
        False,
    )
    # ... and says a strong CYP2D6 inhibitor would change that.
    assert "strong CYP2D6 inhibitor" in result.what_would_change
    assert "half of the usual dose" in result.what_would_change


def test_paroxetine_is_not_phenoconverted_by_itself(kb: KnowledgeBase) -> None:
    genotype = _genotype(kb, {"CYP2D6": "*1/*1"})
    conversions = effective_phenotypes(genotype, ["paroxetine"], kb)
    effective = apply_phenoconversions(genotype, conversions)
    result = _only(guidance_for("paroxetine", effective, genotype, kb, conversions=conversions))
    assert result.phenotypes == (NM,)
    assert not result.phenoconverted
    assert result.strength == "Strong"


@pytest.mark.parametrize(
    ("drug", "fragment"),
    [
        ("pimozide", "4 mg/day"),
        ("brexpiprazole", "half of the recommended dosage"),
        ("deutetrabenazine", "should not exceed 36 mg"),
        ("valbenazine", "40 mg once daily"),
        ("iloperidone", "one-half"),
    ],
)
def test_fda_label_poor_metabolizer_rows(kb: KnowledgeBase, drug: str, fragment: str) -> None:
    result = _static(kb, drug, {"CYP2D6": "*4/*5"})
    assert result.strength == "FDA label"
    assert result.action == "adjust dose"
    assert fragment in result.recommendation


# --- edge cases -----------------------------------------------------------------------------


def test_drug_not_in_knowledge_base_is_a_result_not_an_exception(kb: KnowledgeBase) -> None:
    result = _static(kb, "metformin", {"CYP2D6": "*1/*1"})
    assert not result.in_knowledge_base
    assert result.action == "no recommendation"
    assert "not in the pharmacogenomic knowledge base" in result.recommendation
    assert kb.data_version.version in result.recommendation


def test_brand_name_lookup(kb: KnowledgeBase) -> None:
    assert _static(kb, "Celexa", {"CYP2C19": "*2/*2"}).drug == "citalopram"


def test_untested_gene_says_so(kb: KnowledgeBase) -> None:
    result = _static(kb, "citalopram", {"CYP2D6": "*1/*1"})
    assert result.action == "no recommendation"
    assert "No CYP2C19 result" in result.recommendation


def test_every_supported_drug_answers_for_normal_metabolizers(kb: KnowledgeBase) -> None:
    phenotypes = _genotype(
        kb,
        {
            "CYP2D6": "*1/*1",
            "CYP2C19": "*1/*1",
            "CYP2C9": "*1/*1",
            "CYP2B6": "*1/*1",
            "HLA-B*15:02": "negative",
            "HLA-A*31:01": "negative",
        },
    )
    for name in kb.medications:
        results = guidance_for(name, phenotypes, phenotypes, kb)
        assert results, name
        for result in results:
            assert result.in_knowledge_base
            assert result.action in {"use standard", "no recommendation"}, name
            assert result.evidence is not None, name
