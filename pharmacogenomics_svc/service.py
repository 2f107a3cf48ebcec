"""Pharmacogenomics domain service (plain async Python; no gRPC here).

Every patient RPC starts from the same validated ``PatientContext``
(``patient_context.py``), so analysis, response and side-effect predictions
always agree on the phenotypes they use. AnalyzeGeneMedicationInteractions and
ListSupportedMedications work from the knowledge base alone;
PredictMedicationResponse and PredictSideEffects raise ``ModelUnavailableError``
until ``python -m pharmacogenomics_svc.train`` has written a model. A Strong
CPIC "avoid" always wins over a prediction (``models/guidance_summary.py``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from common.artifacts import ArtifactError, ArtifactManifest, ArtifactStore
from common.errors import ModelUnavailableError
from common.tracing import model_span
from pharmacogenomics_svc.guidance import GeneDrugGuidance, guidance_for
from pharmacogenomics_svc.knowledge_base import (
    INDETERMINATE,
    NO_RESULT,
    NORMAL,
    KnowledgeBase,
    default_knowledge_base,
)
from pharmacogenomics_svc.models.explanations import (
    Evidence,
    ModelEstimate,
    PatientFacts,
    guidance_evidence,
    model_evidence,
    response_text,
    risk_level,
    side_effect_text,
)
from pharmacogenomics_svc.models.features import (
    RESPONSE,
    SIDE_EFFECT,
    FeatureSpec,
    feature_matrix,
    feature_row,
)
from pharmacogenomics_svc.models.guidance_summary import (
    STRENGTH_ORDER,
    decisive_guidance,
    overrides_prediction,
)
from pharmacogenomics_svc.models.response_model import MODEL_NAME, ResponseModels
from pharmacogenomics_svc.patient_context import PatientContext, PatientRequest, build_context
from pharmacogenomics_svc.phenoconversion import effective_phenotypes
from pharmacogenomics_svc.phenotype import PhenotypeResult

_LOGGER = logging.getLogger(__name__)

TRAIN_COMMAND: Final = "python -m pharmacogenomics_svc.train"
RESPONSE_MODEL: Final = MODEL_NAME

_ANTIDEPRESSANT = "antidepressant"


# ----------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class GenePhenotype:
    gene: str
    diplotype: str
    activity_score: float | None
    genotype_phenotype: str
    effective_phenotype: str
    effective_activity_score: float | None
    explanation: str


@dataclass(frozen=True)
class PhenoconversionFinding:
    gene: str
    inhibitor: str
    strength: str  # "strong" / "moderate"
    from_phenotype: str
    to_phenotype: str
    what_would_change: str
    evidence: Evidence


@dataclass(frozen=True)
class Interaction:
    medication: str
    genes: tuple[str, ...]
    phenotype: str  # the (effective) phenotype the guidance rests on; NO_RESULT when untested
    action: str
    strength: str
    recommendation: str
    dose_adjustment: str
    alternatives: tuple[str, ...]
    rationale: str
    evidence: Evidence | None
    what_would_change: str
    is_current: bool
    phenoconverted: bool


@dataclass(frozen=True)
class InteractionAnalysis:
    phenotypes: tuple[GenePhenotype, ...]
    interactions: tuple[Interaction, ...]
    phenoconversions: tuple[PhenoconversionFinding, ...]
    unsupported_medications: tuple[str, ...]
    knowledge_base_version: str


@dataclass(frozen=True)
class ResponsePrediction:
    medication: str
    probability: float
    guidance_action: str | None  # None: the drug has no pharmacogenomic guidance here
    guidance_strength: str | None
    guidance_overrides_prediction: bool
    rank: int
    rationale: str
    evidence: tuple[Evidence, ...]
    what_would_change: str


@dataclass(frozen=True)
class SideEffectPrediction:
    medication: str
    probability: float
    risk_level: str  # "low", "elevated", "high", "critical"
    guidance_action: str | None
    guidance_strength: str | None
    guidance_overrides_prediction: bool
    rationale: str
    evidence: tuple[Evidence, ...]
    what_would_change: str


@dataclass(frozen=True)
class ResponsePredictions:
    predictions: tuple[ResponsePrediction, ...]
    model: ArtifactManifest
    #: Asked-for medications unknown to both knowledge base and model: never given a number.
    unsupported_medications: tuple[str, ...] = ()


@dataclass(frozen=True)
class SideEffectPredictions:
    predictions: tuple[SideEffectPrediction, ...]
    model: ArtifactManifest
    #: Asked-for medications unknown to both knowledge base and model: never given a number.
    unsupported_medications: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupportedMedication:
    name: str
    drug_class: str
    genes: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class SupportedMedications:
    medications: tuple[SupportedMedication, ...]
    knowledge_base_version: str


@dataclass(frozen=True)
class ModelInfo:
    models: tuple[ArtifactManifest, ...]
    knowledge_base_version: str


# ----------------------------------------------------------------------------- analysis


_PMID = re.compile(r"PMID[ :]*(\d+)")


def _first_pmid(text: str) -> str:
    match = _PMID.search(text)
    return match.group(1) if match else ""


def _gene_phenotypes(context: PatientContext) -> tuple[GenePhenotype, ...]:
    rows = []
    for gene, result in context.genotype.items():
        effective = context.effective.get(gene, result)
        parts = [context.notes.get(gene, ""), result.explanation]
        if effective is not result:
            parts.append(effective.explanation)
        is_hla = gene.startswith("HLA-")
        rows.append(
            GenePhenotype(
                gene=gene,
                diplotype=result.diplotype.lower() if is_hla else result.diplotype,
                activity_score=result.activity_score,
                genotype_phenotype=result.phenotype,
                effective_phenotype=effective.phenotype,
                effective_activity_score=effective.activity_score,
                explanation=" ".join(p for p in parts if p),
            )
        )
    return tuple(rows)


def _conversion_findings(
    context: PatientContext, kb: KnowledgeBase
) -> tuple[PhenoconversionFinding, ...]:
    findings = []
    for conv in context.conversions:
        if not conv.changed:
            continue
        inhibitor = next(
            (i for i in kb.inhibitors_of(conv.inhibitor) if i.enzyme == conv.gene), None
        )
        source = inhibitor.source if inhibitor is not None else conv.source
        detail = f"{conv.rule}. Method: {conv.source}."
        if conv.caveat:
            detail += f" {conv.caveat}"
        findings.append(
            PhenoconversionFinding(
                gene=conv.gene,
                inhibitor=conv.inhibitor,
                strength=conv.strength,
                from_phenotype=conv.from_phenotype,
                to_phenotype=conv.to_phenotype,
                what_would_change=conv.what_would_change,
                evidence=Evidence(
                    source=source,
                    strength=f"{conv.strength} {conv.gene} inhibitor",
                    pmid=_first_pmid(source) or _first_pmid(conv.source),
                    detail=detail,
                ),
            )
        )
    return tuple(findings)


def _phenotype_used(result: GeneDrugGuidance) -> str:
    """One phenotype for a (possibly two-gene) guidance: a phenoconverted gene's, else the
    first tested gene's."""
    pairs = list(zip(result.phenotypes, result.genotype_phenotypes, strict=True))
    for effective, genotype in pairs:
        if effective != genotype:
            return effective
    return next((effective for effective, _ in pairs if effective != NO_RESULT), NO_RESULT)


def _interaction(result: GeneDrugGuidance, is_current: bool) -> Interaction:
    genes = " and ".join(result.genes)
    what = result.what_would_change or (
        f"No current medication changes the {genes} phenotype used here; only a different "
        f"{genes} test result would change this recommendation."
    )
    evidence = guidance_evidence(result)
    return Interaction(
        medication=result.drug,
        genes=result.genes,
        phenotype=_phenotype_used(result),
        action=result.action,
        strength=result.strength,
        recommendation=result.recommendation,
        dose_adjustment=result.dose_adjustment,
        alternatives=result.alternatives,
        rationale=result.rationale,
        evidence=evidence,
        what_would_change=what,
        is_current=is_current,
        phenoconverted=result.phenoconverted,
    )


# ----------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class _Candidate:
    """One candidate's guidance, the rows it contributes to the model batch, and its facts."""

    medication: str
    guidance: GeneDrugGuidance | None
    overrides: bool
    facts: PatientFacts
    rows: dict[str, slice]  # "patient", and for modelled drugs "genotype" and "reference"


@dataclass(frozen=True)
class _Scored:
    candidate: _Candidate
    estimate: ModelEstimate


def _reference_phenotypes(
    phenotypes: Mapping[str, PhenotypeResult], genes: Sequence[str]
) -> dict[str, PhenotypeResult]:
    """The same phenotypes with ``genes`` set to Normal Metabolizer (the comparison in texts)."""
    reference = dict(phenotypes)
    for gene in genes:
        base = reference.get(gene)
        if base is None or base.phenotype in (NORMAL, INDETERMINATE):
            continue
        reference[gene] = replace(base, phenotype=NORMAL)
    return reference


class _Batch:
    """Feature rows of every candidate, scored in one model call."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.rows: list[list[float]] = []

    def add(self, rows: list[list[float]]) -> slice:
        start = len(self.rows)
        self.rows.extend(rows)
        return slice(start, len(self.rows))

    def candidate_rows(
        self, drug: str, context: PatientContext, phenotypes: Mapping[str, PhenotypeResult]
    ) -> dict[str, slice]:
        spec, clinical = self.spec, context.clinical
        if drug not in spec.medications:
            # Unknown to the model: its average over the drugs it knows, for this patient.
            return {
                "patient": self.add(
                    [feature_row(spec, m, context.effective, clinical) for m in spec.medications]
                )
            }
        reference = _reference_phenotypes(phenotypes, spec.pathway_genes.get(drug, ()))
        return {
            "patient": self.add([feature_row(spec, drug, phenotypes, clinical)]),
            "genotype": self.add([feature_row(spec, drug, context.genotype, clinical)]),
            "reference": self.add([feature_row(spec, drug, reference, clinical)]),
        }


class PharmacogenomicsService:
    """The domain API the gRPC servicer calls."""

    def __init__(
        self,
        models: ResponseModels | None,
        manifest: ArtifactManifest | None,
        kb: KnowledgeBase | None = None,
    ) -> None:
        self._models = models
        self._manifest = manifest
        self._kb = kb if kb is not None else default_knowledge_base()

    @classmethod
    def from_store(
        cls, store: ArtifactStore, kb: KnowledgeBase | None = None
    ) -> PharmacogenomicsService:
        """Load the latest signed model; without one the knowledge-base RPCs still work."""
        try:
            artifact = store.load(RESPONSE_MODEL, train_hint=TRAIN_COMMAND)
            models = ResponseModels.load(artifact)
        except ArtifactError as exc:
            _LOGGER.warning("pharmacogenomics model not loaded: %s", exc)
            return cls(None, None, kb)
        _LOGGER.info("loaded %s %s", RESPONSE_MODEL, artifact.manifest.version)
        return cls(models, artifact.manifest, kb)

    @property
    def knowledge_base(self) -> KnowledgeBase:
        return self._kb

    @property
    def manifest(self) -> ArtifactManifest | None:
        return self._manifest

    def require_model(self) -> tuple[ResponseModels, ArtifactManifest]:
        if self._models is None or self._manifest is None:
            raise ModelUnavailableError(RESPONSE_MODEL, TRAIN_COMMAND)
        return self._models, self._manifest

    # -- RPCs ---------------------------------------------------------------------------

    async def analyze_interactions(self, request: PatientRequest) -> InteractionAnalysis:
        return await asyncio.to_thread(self._analyze, request)

    async def predict_response(self, request: PatientRequest) -> ResponsePredictions:
        self.require_model()
        return await asyncio.to_thread(self._predict_response, request)

    async def predict_side_effects(self, request: PatientRequest) -> SideEffectPredictions:
        self.require_model()
        return await asyncio.to_thread(self._predict_side_effects, request)

    async def supported_medications(self, gene: str) -> SupportedMedications:
        return self._supported(gene)

    async def model_info(self) -> ModelInfo:
        models = (self._manifest,) if self._manifest is not None else ()
        return ModelInfo(models=models, knowledge_base_version=self._kb.data_version.label)

    # -- implementation -----------------------------------------------------------------

    def _analyze(self, request: PatientRequest) -> InteractionAnalysis:
        kb = self._kb
        context = build_context(request, kb)
        interactions: list[Interaction] = []
        unsupported: list[str] = []
        medications = [(m, True) for m in context.current] + [
            (m, False) for m in context.candidates if m not in context.current
        ]
        for drug, is_current in medications:
            results = guidance_for(
                drug, context.effective, context.genotype, kb, conversions=context.conversions
            )
            if not any(r.in_knowledge_base for r in results):
                unsupported.append(drug)
                continue
            interactions.extend(_interaction(r, is_current) for r in results)
        return InteractionAnalysis(
            phenotypes=_gene_phenotypes(context),
            interactions=tuple(interactions),
            phenoconversions=_conversion_findings(context, kb),
            unsupported_medications=tuple(unsupported),
            knowledge_base_version=kb.data_version.label,
        )

    def default_candidates(self, spec: FeatureSpec | None = None) -> tuple[str, ...]:
        """Every supported antidepressant: the knowledge base's, plus any the model knows
        that the knowledge base does not classify (e.g. bupropion)."""
        kb = self._kb
        names = {m.name for m in kb.medications.values() if _ANTIDEPRESSANT in m.drug_class.lower()}
        if spec is not None:
            names |= {m for m in spec.medications if kb.medication(m) is None}
        return tuple(sorted(names))

    def _score(self, request: PatientRequest, target: str) -> tuple[list[_Scored], list[str]]:
        """The scored candidates, and the names of those this service knows nothing about.

        One rule for every RPC: a medication neither in the knowledge base nor among the
        model's training medications (a typo, a made-up name) is listed as unsupported and
        gets no number; the model's average over other drugs would read as a prediction
        for it. AnalyzeGeneMedicationInteractions lists the same names as unsupported.
        """
        models, manifest = self.require_model()
        kb, spec = self._kb, models.spec
        context = build_context(request, kb)
        batch = _Batch(spec)
        candidates = []
        unsupported: list[str] = []
        for drug in context.candidates or self.default_candidates(spec):
            results = guidance_for(
                drug, context.effective, context.genotype, kb, conversions=context.conversions
            )
            if drug not in spec.medications and not any(r.in_knowledge_base for r in results):
                unsupported.append(drug)
                continue
            decisive = decisive_guidance(results)
            phenotypes = context.phenotypes_for(drug, kb)
            conversions = (
                context.conversions
                if phenotypes is context.effective
                else effective_phenotypes(context.genotype, context.current, kb, target_drug=drug)
            )
            facts = PatientFacts(
                phenotypes=phenotypes,
                conversions=tuple(conversions),
                prior_failures=context.clinical.prior_treatment_failures,
            )
            rows = batch.candidate_rows(drug, context, phenotypes)
            candidates.append(
                _Candidate(drug, decisive, overrides_prediction(decisive), facts, rows)
            )
        with model_span(RESPONSE_MODEL, manifest.version, batch_size=len(batch.rows)):
            probabilities = models.predict(target, feature_matrix(batch.rows, spec))
        scored = []
        for candidate in candidates:
            values = {k: float(probabilities[s].mean()) for k, s in candidate.rows.items()}
            estimate = ModelEstimate(
                medication=candidate.medication,
                modelled=candidate.medication in spec.medications,
                probability=values["patient"],
                without_phenoconversion=values.get("genotype"),
                normal_metabolizer=values.get("reference"),
                pathway_genes=spec.pathway_genes.get(candidate.medication, ()),
                trained_medications=len(spec.medications),
            )
            scored.append(_Scored(candidate, estimate))
        return scored, unsupported

    def _predict_response(self, request: PatientRequest) -> ResponsePredictions:
        _, manifest = self.require_model()
        # Strong "avoid" last whatever the model says; drugs the model never saw after the
        # ones it knows; then by estimated response, best first.
        scored, unsupported = self._score(request, RESPONSE)
        ordered = sorted(
            scored,
            key=lambda s: (s.candidate.overrides, not s.estimate.modelled, -s.estimate.probability),
        )
        predictions = []
        for rank, item in enumerate(ordered, start=1):
            candidate, estimate = item.candidate, item.estimate
            text = response_text(estimate, candidate.guidance, candidate.facts, candidate.overrides)
            predictions.append(
                ResponsePrediction(
                    medication=candidate.medication,
                    probability=estimate.probability,
                    guidance_action=candidate.guidance.action if candidate.guidance else None,
                    guidance_strength=candidate.guidance.strength if candidate.guidance else None,
                    guidance_overrides_prediction=candidate.overrides,
                    rank=rank,
                    rationale=text.rationale,
                    evidence=_prediction_evidence(candidate, manifest, RESPONSE),
                    what_would_change=text.what_would_change,
                )
            )
        return ResponsePredictions(
            predictions=tuple(predictions),
            model=manifest,
            unsupported_medications=tuple(unsupported),
        )

    def _predict_side_effects(self, request: PatientRequest) -> SideEffectPredictions:
        _, manifest = self.require_model()
        scored, unsupported = self._score(request, SIDE_EFFECT)
        ordered = sorted(
            scored,
            key=lambda s: (s.candidate.overrides, not s.estimate.modelled, s.estimate.probability),
        )
        predictions = []
        for item in ordered:
            candidate, estimate = item.candidate, item.estimate
            text = side_effect_text(
                estimate, candidate.guidance, candidate.facts, candidate.overrides
            )
            predictions.append(
                SideEffectPrediction(
                    medication=candidate.medication,
                    probability=estimate.probability,
                    risk_level=risk_level(estimate.probability, candidate.overrides),
                    guidance_action=candidate.guidance.action if candidate.guidance else None,
                    guidance_strength=candidate.guidance.strength if candidate.guidance else None,
                    guidance_overrides_prediction=candidate.overrides,
                    rationale=text.rationale,
                    evidence=_prediction_evidence(candidate, manifest, SIDE_EFFECT),
                    what_would_change=text.what_would_change,
                )
            )
        return SideEffectPredictions(
            predictions=tuple(predictions),
            model=manifest,
            unsupported_medications=tuple(unsupported),
        )

    def _supported(self, gene: str) -> SupportedMedications:
        kb = self._kb
        wanted = gene.strip().upper()
        medications = []
        for med in sorted(kb.medications.values(), key=lambda m: m.name):
            if wanted and wanted not in (g.upper() for g in med.genes):
                continue
            sources: dict[tuple[str, str], list[str]] = {}
            for row in kb.guidance_for_drug(med.name):
                sources.setdefault((row.source, row.pmid or ""), []).append(row.strength)
            evidence = tuple(
                Evidence(
                    source=source,
                    strength=_strongest(strengths),
                    pmid=pmid,
                    detail=f"{len(strengths)} recommendation rows",
                )
                for (source, pmid), strengths in sources.items()
            )
            medications.append(SupportedMedication(med.name, med.drug_class, med.genes, evidence))
        return SupportedMedications(tuple(medications), kb.data_version.label)


def _strongest(strengths: Sequence[str]) -> str:
    return min(strengths, key=lambda s: STRENGTH_ORDER.index(s) if s in STRENGTH_ORDER else 99)


def _prediction_evidence(
    candidate: _Candidate, manifest: ArtifactManifest, target: str
) -> tuple[Evidence, ...]:
    items = []
    if candidate.guidance is not None:
        guideline = guidance_evidence(candidate.guidance)
        if guideline is not None:
            items.append(guideline)
    items.append(model_evidence(manifest, target))
    return tuple(items)
