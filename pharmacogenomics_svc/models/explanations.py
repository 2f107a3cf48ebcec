"""Plain-language rationale, evidence and "what would change it" for model predictions.

Every number in a text comes from the model itself: the patient's estimate,
the estimate with the drug's genes set to Normal Metabolizer (how much the
genotype moves it) and the estimate without phenoconversion (what stopping the
interacting drug would do). Guidance that overrides the model is said so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from common import wording
from common.artifacts import ArtifactManifest
from pharmacogenomics_svc.guidance import GeneDrugGuidance
from pharmacogenomics_svc.knowledge_base import INDETERMINATE, NORMAL, POOR
from pharmacogenomics_svc.models.features import RESPONSE, SIDE_EFFECT
from pharmacogenomics_svc.phenoconversion import Phenoconversion
from pharmacogenomics_svc.phenotype import PhenotypeResult

_LOGGER = logging.getLogger(__name__)

#: Side-effect risk bands. The synthetic cohort's base rate is 20 %; CPIC-relevant genotypes
#: push single drugs to roughly 30-35 %. "critical" is reserved for a Strong CPIC "avoid".
ELEVATED_FROM: Final = 0.25
HIGH_FROM: Final = 0.40
#: Estimates closer than this are reported as "about the same".
SAME_WITHIN: Final = 0.01
STARD: Final = "STAR*D; Rush et al. 2006, PMID 17074942"
_INHIBITABLE: Final = ("CYP2D6", "CYP2C19")


@dataclass(frozen=True)
class Evidence:
    source: str
    strength: str
    pmid: str
    detail: str


@dataclass(frozen=True)
class ModelEstimate:
    """The model's numbers for one candidate medication."""

    medication: str
    modelled: bool  # False: the model never saw this drug; the estimate is its average
    probability: float
    without_phenoconversion: float | None
    normal_metabolizer: float | None
    pathway_genes: tuple[str, ...]
    trained_medications: int


@dataclass(frozen=True)
class PatientFacts:
    """What the texts say about the patient, for one candidate medication."""

    phenotypes: Mapping[str, PhenotypeResult]  # effective, the drug not counted as inhibitor
    conversions: Sequence[Phenoconversion]
    prior_failures: float | None


@dataclass(frozen=True)
class Explanation:
    rationale: str
    what_would_change: str


def risk_level(probability: float, overridden: bool) -> str:
    if overridden:
        return "critical"
    if probability >= HIGH_FROM:
        return "high"
    if probability >= ELEVATED_FROM:
        return "elevated"
    return "low"


def guidance_evidence(result: GeneDrugGuidance) -> Evidence | None:
    if result.evidence is None:
        return None
    states = "; ".join(f"{g} {p}" for g, p in zip(result.genes, result.phenotypes, strict=True))
    return Evidence(
        source=result.evidence.source,
        strength=result.evidence.strength,
        pmid=result.evidence.pmid or "",
        detail=f"{states} (population {result.population})",
    )


def model_evidence(manifest: ArtifactManifest, target: str) -> Evidence:
    m = manifest.metrics

    def metric(name: str, digits: int = 3) -> str:
        value = m.get(f"{target}_{name}")
        return "n/a" if value is None else f"{value:.{digits}f}"

    source = manifest.params.get("source", "unknown data")
    return Evidence(
        source=f"Model {manifest.name} {manifest.version}",
        strength="calibrated model estimate (XGBoost + Platt scaling)",
        pmid="",
        detail=(
            f"{target} on held-out patients: Brier {metric('brier')} (base rate "
            f"{metric('base_rate_brier')}), ECE {metric('ece')}, AUROC {metric('auroc', 2)}; "
            f"trained on {source}"
        ),
    )


def _percent(value: float) -> str:
    # Never "0%" or "100%": a calibrated estimate is neither impossible nor certain.
    return wording.percent(value)


def _state(result: PhenotypeResult | None) -> str:
    if result is None:
        return "not tested"
    return "indeterminate" if result.phenotype == INDETERMINATE else result.phenotype


def _converted(gene: str, facts: PatientFacts) -> Phenoconversion | None:
    return next((c for c in facts.conversions if c.gene == gene and c.changed), None)


def _genotype_sentences(estimate: ModelEstimate, facts: PatientFacts, what: str) -> list[str]:
    drug, genes = estimate.medication, estimate.pathway_genes
    if not genes:
        return [
            f"The knowledge base links no metabolizing gene to {drug}, so the estimate rests on "
            "the clinical profile."
        ]
    unknown = [g for g in genes if _state(facts.phenotypes.get(g)) in ("not tested", INDETERMINATE)]
    shifted = [g for g in genes if g not in unknown and facts.phenotypes[g].phenotype != NORMAL]
    sentences = []
    if shifted and estimate.normal_metabolizer is not None:
        described = []
        for gene in shifted:
            text = f"{gene} {facts.phenotypes[gene].phenotype}"
            conversion = _converted(gene, facts)
            if conversion is not None:
                text += f" (effective, because of {', '.join(conversion.inhibitors)})"
            described.append(text)
        reference = _percent(estimate.normal_metabolizer)
        if abs(estimate.probability - estimate.normal_metabolizer) < SAME_WITHIN:
            sentences.append(
                f"With {' and '.join(described)}, the model estimates {what} about as for a "
                f"Normal Metabolizer with the same clinical profile ({reference})."
            )
        else:
            sentences.append(
                f"With {' and '.join(described)}, the model estimates {what} at "
                f"{_percent(estimate.probability)}, against {reference} for a Normal "
                "Metabolizer with the same clinical profile."
            )
    elif not unknown:
        sentences.append(
            f"{' and '.join(genes)}: Normal Metabolizer, so no genotype effect on {drug} "
            "exposure is expected."
        )
    for gene in unknown:
        sentences.append(
            f"{gene} is {_state(facts.phenotypes.get(gene))}, so the model has no genotype "
            f"information for that part of {drug}'s metabolism."
        )
    return sentences


def _guidance_sentence(guidance: GeneDrugGuidance | None, overridden: bool, target: str) -> str:
    if guidance is None:
        return "No pharmacogenomic guideline or label covers this medication here."
    if not overridden:
        return f"Guideline action: {guidance.action} ({guidance.strength})."
    harm = " ".join(guidance.implications) or "the harm the guideline warns of"
    if target == RESPONSE:
        return (
            f"Guidance overrides the prediction ({guidance.strength} '{guidance.action}'): "
            f"{guidance.recommendation} It is ranked last whatever the model estimates."
        )
    return (
        f"Guidance overrides the prediction ({guidance.strength} '{guidance.action}'): "
        f"{guidance.recommendation} The model learned trial-ending side effects from outcome data "
        f"and does not capture this risk ({harm})."
    )


def _what_would_change(
    estimate: ModelEstimate,
    guidance: GeneDrugGuidance | None,
    facts: PatientFacts,
    overridden: bool,
    target: str,
) -> str:
    what = "chance of response" if target == RESPONSE else "side-effect risk"
    genes = estimate.pathway_genes
    conversions = [c for g in genes if (c := _converted(g, facts)) is not None]
    if conversions and estimate.without_phenoconversion is not None:
        stops = " ".join(c.what_would_change for c in conversions)
        then = _percent(estimate.without_phenoconversion)
        return f"{stops} The estimated {what} would then be {then}."
    if overridden and guidance is not None:
        return guidance.what_would_change or (
            f"Only a different {' and '.join(guidance.genes)} result would lift the "
            f"'{guidance.action}' recommendation."
        )
    unknown = [g for g in genes if _state(facts.phenotypes.get(g)) in ("not tested", INDETERMINATE)]
    if unknown:
        return (
            f"A determinate {' and '.join(unknown)} result (e.g. testing the uncertain allele) "
            "would let the model and the guideline use it."
        )
    if guidance is not None and guidance.what_would_change:
        return guidance.what_would_change
    inhibitable = [g for g in genes if g in _INHIBITABLE and facts.phenotypes[g].phenotype != POOR]
    if inhibitable:
        return (
            f"No current medication changes this estimate; starting a strong {inhibitable[0]} "
            f"inhibitor would make {inhibitable[0]} effectively Poor Metabolizer and change it."
        )
    if target == RESPONSE:
        return (
            "No current medication changes this estimate; it would change with the clinical "
            "profile (each further failed trial lowers it)."
        )
    return "No current medication changes this estimate."


def _unmodelled_sentence(estimate: ModelEstimate, what: str) -> str:
    return (
        f"{estimate.medication} was not among the {estimate.trained_medications} medications the "
        f"model was trained on, so {_percent(estimate.probability)} is the model's average {what} "
        f"over those medications for this patient, not a {estimate.medication}-specific estimate; "
        "it is ranked after the medications the model knows."
    )


def response_text(
    estimate: ModelEstimate,
    guidance: GeneDrugGuidance | None,
    facts: PatientFacts,
    overridden: bool,
) -> Explanation:
    if estimate.modelled:
        parts = [
            f"Estimated chance of response (a fall of at least 50 % in depression score) on "
            f"{estimate.medication}: {_percent(estimate.probability)}.",
            *_genotype_sentences(estimate, facts, "the chance of response"),
        ]
    else:
        parts = [_unmodelled_sentence(estimate, "chance of response")]
    failures = facts.prior_failures
    if failures:
        trials, verb = ("trial", "lowers") if failures == 1 else ("trials", "lower")
        parts.append(
            f"{failures:g} failed adequate {trials} before this one {verb} the chance of "
            f"response ({STARD})."
        )
    parts.append(_guidance_sentence(guidance, overridden, RESPONSE))
    return Explanation(
        " ".join(parts), _what_would_change(estimate, guidance, facts, overridden, RESPONSE)
    )


def side_effect_text(
    estimate: ModelEstimate,
    guidance: GeneDrugGuidance | None,
    facts: PatientFacts,
    overridden: bool,
) -> Explanation:
    if estimate.modelled:
        parts = [
            f"Estimated risk of a side effect leading to a dose change or stop on "
            f"{estimate.medication}: {_percent(estimate.probability)}.",
            *_genotype_sentences(estimate, facts, "the risk"),
        ]
        if guidance is not None and not overridden and guidance.implications:
            parts.append("Mechanism: " + " ".join(guidance.implications))
    else:
        parts = [_unmodelled_sentence(estimate, "side-effect risk")]
    parts.append(_guidance_sentence(guidance, overridden, SIDE_EFFECT))
    return Explanation(
        " ".join(parts), _what_would_change(estimate, guidance, facts, overridden, SIDE_EFFECT)
    )
