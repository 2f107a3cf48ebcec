"""Request validation and phenotype derivation shared by every patient RPC (no server)."""

from __future__ import annotations

import pytest

from common.errors import InvalidArgumentError
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.patient_context import (
    ClinicalInput,
    DiplotypeInput,
    GenotypeInput,
    HlaInput,
    MedicationInput,
    PatientRequest,
    VariantCallInput,
    build_context,
)

PSEUDONYM = "psn_" + "ab" * 16


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def _fields(error: InvalidArgumentError) -> dict[str, str]:
    return {v.field: v.rule for v in error.violations}


def test_every_violation_is_reported_at_once_with_field_gene_and_token(kb: KnowledgeBase) -> None:
    secret_name = "jane.doe@example.org"
    request = PatientRequest(
        patient_pseudonym="MRN-1234567",
        genotype=GenotypeInput(
            diplotypes=(
                DiplotypeInput("CYP2D6", "*1//*4"),
                DiplotypeInput("CYP2C19", "*1/*2"),
                DiplotypeInput("cyp2c19", "*1/*1"),
                DiplotypeInput("HLA-B*15:02", "positive"),
            ),
            hla_results=(HlaInput("HLA-B*15:02", ""), HlaInput("B*57", "positive")),
            variant_calls=(VariantCallInput("rs999999999", "A/G"),),
        ),
        current_medications=(MedicationInput(secret_name, -5.0),),
        candidate_medications=("",),
        clinical=ClinicalInput(age_years=300, sex="unrecognized", baseline_phq9=40.0),
    )
    with pytest.raises(InvalidArgumentError) as failed:
        build_context(request, kb)
    fields = _fields(failed.value)
    assert set(fields) == {
        "patient_pseudonym",
        "genotype.diplotypes[0].diplotype",
        "genotype.diplotypes[2].gene",
        "genotype.diplotypes[3].gene",
        "genotype.hla_results[0].status",
        "genotype.hla_results[1].allele",
        "genotype.variant_calls[0].rsid",
        "current_medications[0].name",
        "current_medications[0].daily_dose_mg",
        "candidate_medications[0]",
        "clinical.age_years",
        "clinical.sex",
        "clinical.baseline_phq9",
    }
    syntax = fields["genotype.diplotypes[0].diplotype"]
    assert "CYP2D6" in syntax and "'//'" in syntax
    assert "CYP2C19 appears twice" in fields["genotype.diplotypes[2].gene"]
    assert "rs999999999" in fields["genotype.variant_calls[0].rsid"]
    # Patient values never come back: not the raw id, the medication text or the numbers.
    message = failed.value.message
    for value in ("MRN-1234567", secret_name, "300", "40.0", "-5"):
        assert value not in message


def test_rsid_calls_fill_genes_without_a_diplotype(kb: KnowledgeBase) -> None:
    calls = (
        VariantCallInput("rs4244285", "G/A"),  # CYP2C19 *2 heterozygous
        VariantCallInput("rs4986893", "GG"),
        VariantCallInput("rs12248560", "C|T"),  # CYP2C19 *17 heterozygous
        VariantCallInput("rs1799853", "C/C"),
        VariantCallInput("rs1057910", "A/C"),  # CYP2C9 *3 heterozygous
    )
    context = build_context(PatientRequest(PSEUDONYM, GenotypeInput(variant_calls=calls)), kb)
    assert context.genotype["CYP2C19"].diplotype == "*2/*17"
    assert context.genotype["CYP2C19"].phenotype == "Intermediate Metabolizer"
    assert context.genotype["CYP2C9"].diplotype == "*1/*3"
    assert "translated from rsID calls" in context.notes["CYP2C19"]

    with_diplotype = build_context(
        PatientRequest(
            PSEUDONYM,
            GenotypeInput(diplotypes=(DiplotypeInput("CYP2C19", "*1/*1"),), variant_calls=calls),
        ),
        kb,
    )
    assert with_diplotype.genotype["CYP2C19"].diplotype == "*1/*1"  # the diplotype wins
    assert with_diplotype.genotype["CYP2C9"].diplotype == "*1/*3"


def test_an_untested_defining_variant_is_named(kb: KnowledgeBase) -> None:
    calls = (VariantCallInput("rs4244285", "G/A"), VariantCallInput("rs4986893", "G/G"))
    with pytest.raises(InvalidArgumentError) as failed:
        build_context(PatientRequest(PSEUDONYM, GenotypeInput(variant_calls=calls)), kb)
    [violation] = failed.value.violations
    assert violation.field == "genotype.variant_calls"
    assert "rs12248560" in violation.rule and "CYP2C19" in violation.rule


def test_a_drug_is_not_its_own_phenoconverter(kb: KnowledgeBase) -> None:
    context = build_context(
        PatientRequest(
            PSEUDONYM,
            GenotypeInput(diplotypes=(DiplotypeInput("CYP2D6", "*1/*1"),)),
            current_medications=(MedicationInput("Paxil", 20.0),),  # brand name of paroxetine
            candidate_medications=("paroxetine", "aripiprazole"),
        ),
        kb,
    )
    assert context.current == ("paroxetine",)
    assert context.candidates == ("paroxetine", "aripiprazole")
    assert context.effective["CYP2D6"].phenotype == "Poor Metabolizer"
    assert context.phenotypes_for("aripiprazole", kb)["CYP2D6"].phenotype == "Poor Metabolizer"
    assert context.phenotypes_for("paroxetine", kb)["CYP2D6"].phenotype == "Normal Metabolizer"


def test_hla_results_normalise_to_two_field_markers(kb: KnowledgeBase) -> None:
    context = build_context(
        PatientRequest(
            PSEUDONYM,
            GenotypeInput(
                hla_results=(
                    HlaInput("hla-b*15:02:01", "positive"),
                    HlaInput("HLA-B*57:01", "negative"),
                )
            ),
        ),
        kb,
    )
    assert context.genotype["HLA-B*15:02"].phenotype == "Positive"
    assert context.genotype["HLA-B*57:01"].phenotype == "Negative"
    assert "not used by any guidance" in context.notes["HLA-B*57:01"]
