"""The request of the patient RPCs, its validation, and the phenotypes derived from it.

AnalyzeGeneMedicationInteractions, PredictMedicationResponse and
PredictSideEffects all start from :func:`build_context`: every violation of the
request is collected before failing, each naming its field (e.g.
``genotype.diplotypes[0].diplotype``), gene and allele token, never a patient
value; diplotypes, HLA results and rsID calls (for genes without a diplotype)
become CPIC phenotypes; current medications that inhibit CYP2D6/CYP2C19 turn
them into effective phenotypes. One function, so the three RPCs cannot
disagree about a patient's phenotypes.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from common.errors import ValidationCollector
from common.limits import (
    MAX_DIPLOTYPES,
    MAX_DOSE_MG,
    MAX_HLA_RESULTS,
    MAX_MEDICATIONS,
    MAX_TEXT,
    MAX_VARIANT_CALLS,
)
from common.pseudonym import is_pseudonym
from pharmacogenomics_svc.genotype import RSID_VARIANTS, GenotypeError, translate_rsids
from pharmacogenomics_svc.knowledge_base import NEGATIVE, POSITIVE, KnowledgeBase
from pharmacogenomics_svc.models.features import ClinicalFeatures
from pharmacogenomics_svc.phenoconversion import (
    Phenoconversion,
    apply_phenoconversions,
    effective_phenotypes,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_for, phenotype_for_hla

_LOGGER = logging.getLogger(__name__)

MAX_PRIOR_FAILURES: Final = 20
AGE_RANGE: Final = (5, 120)
PHQ9_RANGE: Final = (0.0, 27.0)
SEXES: Final = ("female", "male", "other")
HLA_STATUSES: Final = ("positive", "negative")

_GENE_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
_HLA_ALLELE = re.compile(r"^HLA-[A-Z0-9]{1,5}\*(\d{2,3}:\d{2,3})(?::\d{2,3}){0,2}$")
_RSID = re.compile(r"^rs\d{1,12}$")
_MEDICATION_NAME = re.compile(r"^[a-z][a-z0-9 ()/+.,'-]{0,63}$")


# ----------------------------------------------------------------------------- request types


@dataclass(frozen=True)
class DiplotypeInput:
    gene: str
    diplotype: str


@dataclass(frozen=True)
class HlaInput:
    allele: str
    status: str  # "positive", "negative", or "" when not set


@dataclass(frozen=True)
class VariantCallInput:
    rsid: str
    genotype: str


@dataclass(frozen=True)
class GenotypeInput:
    diplotypes: tuple[DiplotypeInput, ...] = ()
    hla_results: tuple[HlaInput, ...] = ()
    variant_calls: tuple[VariantCallInput, ...] = ()


@dataclass(frozen=True)
class MedicationInput:
    name: str
    daily_dose_mg: float = 0.0


@dataclass(frozen=True)
class ClinicalInput:
    age_years: int = 0  # 0 = unknown
    sex: str = ""  # "female", "male", "other" or "" (not recorded)
    baseline_phq9: float | None = None
    prior_treatment_failures: int = 0


@dataclass(frozen=True)
class PatientRequest:
    """The patient part every RPC but ListSupportedMedications and GetModelInfo shares."""

    patient_pseudonym: str
    genotype: GenotypeInput
    current_medications: tuple[MedicationInput, ...] = ()
    candidate_medications: tuple[str, ...] = ()
    clinical: ClinicalInput = field(default_factory=ClinicalInput)


# ----------------------------------------------------------------------------- patient context


@dataclass(frozen=True)
class PatientContext:
    """The validated request with genotype and effective phenotypes, shared by every RPC."""

    genotype: dict[str, PhenotypeResult]  # by gene, in request order
    notes: dict[str, str]  # how a phenotype was obtained when not from a diplotype
    current: tuple[str, ...]  # current medications, knowledge-base names where known
    candidates: tuple[str, ...]
    conversions: tuple[Phenoconversion, ...]
    effective: dict[str, PhenotypeResult]
    clinical: ClinicalFeatures

    def phenotypes_for(self, drug: str, kb: KnowledgeBase) -> dict[str, PhenotypeResult]:
        """Effective phenotypes for assessing ``drug``: it is not its own perpetrator."""
        if drug not in self.current:
            return self.effective
        conversions = effective_phenotypes(self.genotype, self.current, kb, target_drug=drug)
        return apply_phenoconversions(self.genotype, conversions)


def _genotype_violation(out: ValidationCollector, field_name: str, exc: GenotypeError) -> None:
    details = []
    if exc.gene:
        details.append(f"gene {exc.gene}")
    if exc.allele:
        details.append(f"offending token '{exc.allele}'")
    suffix = f" ({', '.join(details)})" if details else ""
    out.add(field_name, exc.rule + suffix)


def _medication_name(raw: str, kb: KnowledgeBase) -> str:
    med = kb.medication(raw)
    return med.name if med is not None else " ".join(raw.lower().split())


def _check_name(out: ValidationCollector, field_name: str, raw: str) -> bool:
    name = " ".join(raw.lower().split())
    if not name:
        out.add(field_name, "required")
        return False
    return out.check(
        len(name) <= MAX_TEXT and _MEDICATION_NAME.fullmatch(name) is not None,
        field_name,
        f"must be a generic or brand drug name (letters, digits, spaces, ()/+.,'-; at most "
        f"{MAX_TEXT} characters)",
    )


def _diplotype_phenotypes(
    out: ValidationCollector, entries: Sequence[DiplotypeInput], kb: KnowledgeBase
) -> dict[str, PhenotypeResult]:
    results: dict[str, PhenotypeResult] = {}
    for i, entry in enumerate(entries):
        where = f"genotype.diplotypes[{i}]"
        gene = entry.gene.strip().upper()
        if not gene:
            out.add(f"{where}.gene", "required")
            continue
        if gene.startswith("HLA-"):
            out.add(f"{where}.gene", "HLA alleles are reported in genotype.hla_results")
            continue
        if not _GENE_SYMBOL.fullmatch(gene):
            out.add(f"{where}.gene", "must be an HGNC gene symbol such as CYP2D6")
            continue
        if gene in results:
            out.add(f"{where}.gene", f"at most one diplotype per gene; {gene} appears twice")
            continue
        if len(entry.diplotype) > MAX_TEXT:
            out.add(f"{where}.diplotype", f"must be at most {MAX_TEXT} characters (gene {gene})")
            continue
        try:
            results[gene] = phenotype_for(gene, entry.diplotype, kb)
        except GenotypeError as exc:
            _genotype_violation(out, f"{where}.diplotype", exc)
    return results


def _hla_phenotypes(
    out: ValidationCollector, entries: Sequence[HlaInput], kb: KnowledgeBase
) -> tuple[dict[str, PhenotypeResult], dict[str, str]]:
    results: dict[str, PhenotypeResult] = {}
    notes: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = f"genotype.hla_results[{i}]"
        allele = entry.allele.strip().upper()
        match = _HLA_ALLELE.fullmatch(allele)
        if match is None:
            out.add(f"{where}.allele", "must be an HLA allele with its locus, e.g. HLA-B*15:02")
            continue
        # CPIC's markers are two-field alleles; HLA-B*15:02:01 is a carrier of HLA-B*15:02.
        marker = allele.split("*")[0] + "*" + match.group(1)
        if entry.status not in HLA_STATUSES:
            out.add(
                f"{where}.status",
                f"must be HLA_STATUS_POSITIVE or HLA_STATUS_NEGATIVE (allele {marker})",
            )
            continue
        if marker in results:
            out.add(f"{where}.allele", f"at most one result per allele; {marker} appears twice")
            continue
        if marker in kb.hla_markers:
            results[marker] = phenotype_for_hla(marker, entry.status, kb)
        else:
            status = POSITIVE if entry.status == "positive" else NEGATIVE
            results[marker] = PhenotypeResult(marker, status, None, status, "")
            notes[marker] = (
                f"{marker} is not used by any guidance in knowledge base "
                f"{kb.data_version.label}; reported as given."
            )
    return results, notes


def _translated_phenotypes(
    out: ValidationCollector,
    entries: Sequence[VariantCallInput],
    with_diplotype: set[str],
    kb: KnowledgeBase,
) -> tuple[dict[str, PhenotypeResult], dict[str, str]]:
    """Diplotypes from rsID calls, for genes that have no diplotype in the request."""
    variant_of = {v.rsid: v for v in RSID_VARIANTS}
    index_of: dict[str, int] = {}
    by_gene: dict[str, dict[str, str]] = {}
    for i, entry in enumerate(entries):
        where = f"genotype.variant_calls[{i}]"
        rsid = entry.rsid.strip().lower()
        if not _RSID.fullmatch(rsid):
            out.add(f"{where}.rsid", "must be a dbSNP identifier such as rs4244285")
            continue
        if rsid in index_of:
            out.add(f"{where}.rsid", f"at most one call per variant; {rsid} appears twice")
            continue
        index_of[rsid] = i
        variant = variant_of.get(rsid)
        if variant is None:
            supported = ", ".join(f"{v.rsid} ({v.gene} {v.star_allele})" for v in RSID_VARIANTS)
            out.add(
                f"{where}.rsid",
                f"rsID is not in the translation table (offending token '{rsid}'); "
                f"supported: {supported}",
            )
            continue
        if variant.gene in with_diplotype:
            continue  # a diplotype for the gene takes precedence over its variant calls
        by_gene.setdefault(variant.gene, {})[rsid] = entry.genotype
    results: dict[str, PhenotypeResult] = {}
    notes: dict[str, str] = {}
    for gene, calls in by_gene.items():
        try:
            diplotype = translate_rsids(calls)[gene]
        except GenotypeError as exc:
            rsid = exc.field.removeprefix("genotype.rsids[").removesuffix("]")
            position = index_of.get(rsid)
            field_name = (
                f"genotype.variant_calls[{position}].genotype"
                if position is not None and rsid in calls
                else "genotype.variant_calls"
            )
            _genotype_violation(out, field_name, exc)
            continue
        results[gene] = phenotype_for(gene, diplotype, kb)
        notes[gene] = (
            f"{gene} {diplotype.text} translated from rsID calls ({', '.join(sorted(calls))}); "
            "only the panel's variants are tested, so an allele defined by another variant "
            "would read as *1, and two heterozygous variants are assumed to be in trans."
        )
    return results, notes


def _clinical(out: ValidationCollector, clinical: ClinicalInput) -> ClinicalFeatures:
    age = clinical.age_years
    out.check(
        age == 0 or AGE_RANGE[0] <= age <= AGE_RANGE[1],
        "clinical.age_years",
        f"must be 0 (unknown) or {AGE_RANGE[0]}..{AGE_RANGE[1]}",
    )
    out.check(
        clinical.sex in ("", *SEXES),
        "clinical.sex",
        "must be SEX_UNSPECIFIED, SEX_FEMALE, SEX_MALE or SEX_OTHER",
    )
    phq9 = clinical.baseline_phq9
    out.check(
        phq9 is None or (math.isfinite(phq9) and PHQ9_RANGE[0] <= phq9 <= PHQ9_RANGE[1]),
        "clinical.baseline_phq9",
        "must be within 0..27 when set",
    )
    out.check(
        0 <= clinical.prior_treatment_failures <= MAX_PRIOR_FAILURES,
        "clinical.prior_treatment_failures",
        f"must be 0..{MAX_PRIOR_FAILURES}",
    )
    return ClinicalFeatures(
        age_years=float(age) if age else None,
        sex=clinical.sex or None,
        prior_treatment_failures=float(clinical.prior_treatment_failures),
        baseline_phq9=phq9,
    )


def build_context(request: PatientRequest, kb: KnowledgeBase) -> PatientContext:
    """Validate the request and derive genotype and effective phenotypes.

    Raises InvalidArgumentError listing every violation.
    """
    genotype = request.genotype
    limits = (
        ("genotype.diplotypes", len(genotype.diplotypes), MAX_DIPLOTYPES),
        ("genotype.hla_results", len(genotype.hla_results), MAX_HLA_RESULTS),
        ("genotype.variant_calls", len(genotype.variant_calls), MAX_VARIANT_CALLS),
        ("current_medications", len(request.current_medications), MAX_MEDICATIONS),
        ("candidate_medications", len(request.candidate_medications), MAX_MEDICATIONS),
    )
    # Oversized lists are refused before any entry is looked at.
    sizes = ValidationCollector()
    for name, count, limit in limits:
        sizes.check(count <= limit, name, f"at most {limit} entries")
    sizes.raise_if_any()

    out = ValidationCollector()
    if not is_pseudonym(request.patient_pseudonym):
        out.add("patient_pseudonym", "must be 'psn_' followed by 32 lowercase hex characters")

    diplotypes = _diplotype_phenotypes(out, genotype.diplotypes, kb)
    given = {e.gene.strip().upper() for e in genotype.diplotypes}
    translated, translation_notes = _translated_phenotypes(out, genotype.variant_calls, given, kb)
    hla, hla_notes = _hla_phenotypes(out, genotype.hla_results, kb)

    current: list[str] = []
    for i, medication in enumerate(request.current_medications):
        where = f"current_medications[{i}]"
        if _check_name(out, f"{where}.name", medication.name):
            name = _medication_name(medication.name, kb)
            if name not in current:
                current.append(name)
        dose = medication.daily_dose_mg
        out.check(
            math.isfinite(dose) and 0.0 <= dose <= MAX_DOSE_MG,
            f"{where}.daily_dose_mg",
            f"must be 0 (unknown) .. {MAX_DOSE_MG:,.0f} mg",
        )
    candidates: list[str] = []
    for i, raw in enumerate(request.candidate_medications):
        if _check_name(out, f"candidate_medications[{i}]", raw):
            name = _medication_name(raw, kb)
            if name not in candidates:
                candidates.append(name)
    clinical = _clinical(out, request.clinical)
    out.raise_if_any()

    phenotypes = {**diplotypes, **translated, **hla}
    conversions = tuple(effective_phenotypes(phenotypes, current, kb))
    return PatientContext(
        genotype=phenotypes,
        notes={**translation_notes, **hla_notes},
        current=tuple(current),
        candidates=tuple(candidates),
        conversions=conversions,
        effective=apply_phenoconversions(phenotypes, conversions),
        clinical=clinical,
    )
