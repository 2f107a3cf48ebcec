"""Protobuf <-> domain conversion for the pharmacogenomics service (no logic, no ML).

The domain speaks the knowledge base's words ("Poor Metabolizer", "consider
alternative", "Strong"); the enums of the contract are chosen here only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from common.artifacts import ArtifactManifest
from common.proto_convert import model_info_from_manifest
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from pharmacogenomics_svc import service as domain
from pharmacogenomics_svc.knowledge_base import (
    INDETERMINATE,
    INTERMEDIATE,
    LIKELY_INTERMEDIATE,
    LIKELY_POOR,
    NEGATIVE,
    NORMAL,
    POOR,
    POSITIVE,
    RAPID,
    ULTRARAPID,
)
from pharmacogenomics_svc.models.explanations import Evidence
from pharmacogenomics_svc.patient_context import (
    ClinicalInput,
    DiplotypeInput,
    GenotypeInput,
    HlaInput,
    MedicationInput,
    PatientRequest,
    VariantCallInput,
)

_LOGGER = logging.getLogger(__name__)

PHENOTYPES: Final = {
    ULTRARAPID: pb.PHENOTYPE_ULTRARAPID_METABOLIZER,
    RAPID: pb.PHENOTYPE_RAPID_METABOLIZER,
    NORMAL: pb.PHENOTYPE_NORMAL_METABOLIZER,
    LIKELY_INTERMEDIATE: pb.PHENOTYPE_LIKELY_INTERMEDIATE_METABOLIZER,
    INTERMEDIATE: pb.PHENOTYPE_INTERMEDIATE_METABOLIZER,
    LIKELY_POOR: pb.PHENOTYPE_LIKELY_POOR_METABOLIZER,
    POOR: pb.PHENOTYPE_POOR_METABOLIZER,
    INDETERMINATE: pb.PHENOTYPE_INDETERMINATE,
    POSITIVE: pb.PHENOTYPE_POSITIVE,
    NEGATIVE: pb.PHENOTYPE_NEGATIVE,
}
ACTIONS: Final = {
    "use standard": pb.GUIDANCE_ACTION_USE_STANDARD,
    "adjust dose": pb.GUIDANCE_ACTION_ADJUST_DOSE,
    "consider alternative": pb.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE,
    "avoid": pb.GUIDANCE_ACTION_AVOID,
    "use with caution": pb.GUIDANCE_ACTION_USE_WITH_CAUTION,
    "no recommendation": pb.GUIDANCE_ACTION_NO_RECOMMENDATION,
}
STRENGTHS: Final = {
    "Strong": pb.CLASSIFICATION_STRENGTH_STRONG,
    "Moderate": pb.CLASSIFICATION_STRENGTH_MODERATE,
    "Optional": pb.CLASSIFICATION_STRENGTH_OPTIONAL,
    "No recommendation": pb.CLASSIFICATION_STRENGTH_NO_RECOMMENDATION,
    "FDA label": pb.CLASSIFICATION_STRENGTH_FDA_LABEL,
}
INHIBITOR_STRENGTHS: Final = {
    "strong": pb.INHIBITOR_STRENGTH_STRONG,
    "moderate": pb.INHIBITOR_STRENGTH_MODERATE,
    "weak": pb.INHIBITOR_STRENGTH_WEAK,
}
RISK_LEVELS: Final = {
    "low": common_pb2.RISK_LEVEL_LOW,
    "elevated": common_pb2.RISK_LEVEL_ELEVATED,
    "high": common_pb2.RISK_LEVEL_HIGH,
    "critical": common_pb2.RISK_LEVEL_CRITICAL,
}
HLA_STATUSES: Final = {
    common_pb2.HLA_STATUS_POSITIVE: "positive",
    common_pb2.HLA_STATUS_NEGATIVE: "negative",
}
SEXES: Final = {
    common_pb2.SEX_UNSPECIFIED: "",
    common_pb2.SEX_FEMALE: "female",
    common_pb2.SEX_MALE: "male",
    common_pb2.SEX_OTHER: "other",
}
#: An enum number this build does not know; the domain rejects it by field name.
UNRECOGNIZED: Final = "unrecognized"


# ----------------------------------------------------------------------------- requests


def genotype_from_proto(genotype: common_pb2.Genotype) -> GenotypeInput:
    return GenotypeInput(
        diplotypes=tuple(DiplotypeInput(d.gene, d.diplotype) for d in genotype.diplotypes),
        hla_results=tuple(
            HlaInput(h.allele, HLA_STATUSES.get(h.status, "")) for h in genotype.hla_results
        ),
        variant_calls=tuple(VariantCallInput(v.rsid, v.genotype) for v in genotype.variant_calls),
    )


def clinical_from_proto(clinical: common_pb2.ClinicalProfile) -> ClinicalInput:
    return ClinicalInput(
        age_years=clinical.age_years,
        sex=SEXES.get(clinical.sex, UNRECOGNIZED),
        baseline_phq9=clinical.baseline_phq9 if clinical.HasField("baseline_phq9") else None,
        prior_treatment_failures=clinical.prior_treatment_failures,
    )


def patient_request(
    request: pb.AnalyzeGeneMedicationInteractionsRequest
    | pb.PredictMedicationResponseRequest
    | pb.PredictSideEffectsRequest,
) -> PatientRequest:
    clinical = (
        clinical_from_proto(request.clinical)
        if isinstance(request, pb.PredictMedicationResponseRequest | pb.PredictSideEffectsRequest)
        else ClinicalInput()
    )
    return PatientRequest(
        patient_pseudonym=request.patient_pseudonym,
        genotype=genotype_from_proto(request.genotype),
        current_medications=tuple(
            MedicationInput(m.name, m.daily_dose_mg) for m in request.current_medications
        ),
        candidate_medications=tuple(request.candidate_medications),
        clinical=clinical,
    )


# ----------------------------------------------------------------------------- responses


def evidence_to_proto(evidence: Evidence) -> common_pb2.Evidence:
    return common_pb2.Evidence(
        source=evidence.source,
        strength=evidence.strength,
        pmid=evidence.pmid,
        detail=evidence.detail,
    )


def _phenotype(value: str) -> pb.Phenotype:
    return PHENOTYPES.get(value, pb.PHENOTYPE_UNSPECIFIED)


def _action(value: str | None) -> pb.GuidanceAction:
    return ACTIONS.get(value or "", pb.GUIDANCE_ACTION_UNSPECIFIED)


def _strength(value: str | None) -> pb.ClassificationStrength:
    return STRENGTHS.get(value or "", pb.CLASSIFICATION_STRENGTH_UNSPECIFIED)


def gene_phenotype_to_proto(item: domain.GenePhenotype) -> pb.GenePhenotype:
    message = pb.GenePhenotype(
        gene=item.gene,
        diplotype=item.diplotype,
        genotype_phenotype=_phenotype(item.genotype_phenotype),
        effective_phenotype=_phenotype(item.effective_phenotype),
        explanation=item.explanation,
    )
    if item.activity_score is not None:
        message.activity_score = item.activity_score
    if item.effective_activity_score is not None:
        message.effective_activity_score = item.effective_activity_score
    return message


def interaction_to_proto(item: domain.Interaction) -> pb.GeneDrugInteraction:
    message = pb.GeneDrugInteraction(
        medication=item.medication,
        gene="+".join(item.genes),
        phenotype=_phenotype(item.phenotype),
        action=_action(item.action),
        strength=_strength(item.strength),
        recommendation=item.recommendation,
        dose_adjustment=item.dose_adjustment,
        alternatives=list(item.alternatives),
        rationale=item.rationale,
        what_would_change=item.what_would_change,
        is_current=item.is_current,
        phenoconverted=item.phenoconverted,
    )
    if item.evidence is not None:
        message.evidence.CopyFrom(evidence_to_proto(item.evidence))
    return message


def phenoconversion_to_proto(item: domain.PhenoconversionFinding) -> pb.Phenoconversion:
    return pb.Phenoconversion(
        gene=item.gene,
        inhibitor=item.inhibitor,
        strength=INHIBITOR_STRENGTHS.get(item.strength, pb.INHIBITOR_STRENGTH_UNSPECIFIED),
        from_phenotype=_phenotype(item.from_phenotype),
        to_phenotype=_phenotype(item.to_phenotype),
        what_would_change=item.what_would_change,
        evidence=evidence_to_proto(item.evidence),
    )


def analysis_to_proto(
    analysis: domain.InteractionAnalysis,
) -> pb.AnalyzeGeneMedicationInteractionsResponse:
    return pb.AnalyzeGeneMedicationInteractionsResponse(
        phenotypes=[gene_phenotype_to_proto(p) for p in analysis.phenotypes],
        interactions=[interaction_to_proto(i) for i in analysis.interactions],
        phenoconversions=[phenoconversion_to_proto(c) for c in analysis.phenoconversions],
        unsupported_medications=list(analysis.unsupported_medications),
        knowledge_base_version=analysis.knowledge_base_version,
    )


def _evidence_list(items: Iterable[Evidence]) -> list[common_pb2.Evidence]:
    return [evidence_to_proto(e) for e in items]


def response_predictions_to_proto(
    result: domain.ResponsePredictions,
) -> pb.PredictMedicationResponseResponse:
    return pb.PredictMedicationResponseResponse(
        predictions=[
            pb.MedicationResponsePrediction(
                medication=p.medication,
                response_probability=p.probability,
                guidance_action=_action(p.guidance_action),
                guidance_strength=_strength(p.guidance_strength),
                guidance_overrides_prediction=p.guidance_overrides_prediction,
                rank=p.rank,
                rationale=p.rationale,
                evidence=_evidence_list(p.evidence),
                what_would_change=p.what_would_change,
            )
            for p in result.predictions
        ],
        model=model_info_from_manifest(result.model),
        unsupported_medications=list(result.unsupported_medications),
    )


def side_effect_predictions_to_proto(
    result: domain.SideEffectPredictions,
) -> pb.PredictSideEffectsResponse:
    return pb.PredictSideEffectsResponse(
        predictions=[
            pb.SideEffectPrediction(
                medication=p.medication,
                side_effect_probability=p.probability,
                risk_level=RISK_LEVELS.get(p.risk_level, common_pb2.RISK_LEVEL_UNSPECIFIED),
                guidance_action=_action(p.guidance_action),
                guidance_strength=_strength(p.guidance_strength),
                guidance_overrides_prediction=p.guidance_overrides_prediction,
                rationale=p.rationale,
                evidence=_evidence_list(p.evidence),
                what_would_change=p.what_would_change,
            )
            for p in result.predictions
        ],
        model=model_info_from_manifest(result.model),
        unsupported_medications=list(result.unsupported_medications),
    )


def supported_to_proto(result: domain.SupportedMedications) -> pb.ListSupportedMedicationsResponse:
    return pb.ListSupportedMedicationsResponse(
        medications=[
            pb.SupportedMedication(
                name=m.name,
                drug_class=m.drug_class,
                genes=list(m.genes),
                evidence=_evidence_list(m.evidence),
            )
            for m in result.medications
        ],
        knowledge_base_version=result.knowledge_base_version,
    )


def model_info_to_proto(
    models: Iterable[ArtifactManifest], knowledge_base_version: str
) -> pb.GetModelInfoResponse:
    return pb.GetModelInfoResponse(
        models=[model_info_from_manifest(m) for m in models],
        knowledge_base_version=knowledge_base_version,
    )
