"""Genotype -> phenotype translation following the CPIC rules in ``data/phenotype_rules.yaml``.

Two methods, chosen per gene by the data file:

* activity score (CYP2D6, CYP2C9): the activity values of the alleles (times their copy number)
  are summed and the sum is placed in a CPIC band;
* function pair (CYP2C19, CYP2B6): the unordered pair of allele functions is looked up.

Anything the tables do not define - an allele missing from the table, an allele of uncertain or
unknown function, copy numbers for a gene whose table has none - yields "Indeterminate" with an
explanation; the translation never guesses.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from pharmacogenomics_svc.genotype import Diplotype, GenotypeError, parse_diplotype
from pharmacogenomics_svc.genotype import parse_hla_result as _parse_hla_result
from pharmacogenomics_svc.knowledge_base import (
    INDETERMINATE,
    METHOD_ACTIVITY_SCORE,
    AlleleFunction,
    GeneRule,
    KnowledgeBase,
    default_knowledge_base,
)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhenotypeResult:
    gene: str
    diplotype: str  # canonical diplotype text, or the HLA carrier status
    activity_score: float | None
    phenotype: str
    explanation: str
    # True when the diplotype has an unreported copy number ("xN") and the score is a minimum.
    activity_score_is_minimum: bool = False

    @property
    def is_determinate(self) -> bool:
        return self.phenotype != INDETERMINATE


def phenotype_from_activity_score(gene: str, score: float, kb: KnowledgeBase | None = None) -> str:
    """The CPIC phenotype for an activity score of ``gene`` (CYP2D6 or CYP2C9)."""
    knowledge = kb if kb is not None else default_knowledge_base()
    rule = knowledge.gene_rules.get(gene)
    if rule is None or rule.method != METHOD_ACTIVITY_SCORE:
        raise ValueError(f"{gene} is not translated by activity score")
    if not math.isfinite(score) or score < 0:
        raise ValueError("activity score must be a finite number >= 0")
    for band in rule.bands:
        if band.contains(score):
            return band.phenotype
    # Scores between bands (e.g. CYP2C9 0.75, reachable only by inhibition) are not defined.
    return INDETERMINATE


def phenotype_for(gene: str, diplotype: Diplotype | str, kb: KnowledgeBase) -> PhenotypeResult:
    """Translates one gene's diplotype (or, for HLA markers, carrier status) to a phenotype.

    Raises GenotypeError only for unparsable input; anything parsable but undefined by CPIC
    is returned as an Indeterminate result with the reason.
    """
    if gene in kb.hla_markers:
        if isinstance(diplotype, Diplotype):
            raise GenotypeError(
                f"genotype.hla[{gene}]", "HLA markers take a positive/negative result", gene=gene
            )
        return phenotype_for_hla(gene, diplotype, kb)
    parsed = parse_diplotype(gene, diplotype) if isinstance(diplotype, str) else diplotype
    if parsed.gene != gene:
        raise GenotypeError(
            f"genotype.diplotypes[{gene}]", "diplotype belongs to a different gene", gene=gene
        )
    rule = kb.gene_rules.get(gene)
    if rule is None:
        return _indeterminate(parsed, f"{gene} is not in the pharmacogenomic knowledge base.")
    functions: list[AlleleFunction] = []
    unknown: list[str] = []
    for allele in parsed.alleles:
        entry = kb.allele(gene, allele)
        if entry is None:
            unknown.append(allele)
        else:
            functions.append(entry)
    if unknown:
        names = ", ".join(dict.fromkeys(unknown))
        return _indeterminate(
            parsed,
            f"{gene} {names} is not in the CPIC allele functionality table used here, so its "
            "function is unknown and no phenotype can be assigned.",
        )
    uncertain = [f for f in functions if f.function in kb.indeterminate_functions]
    if uncertain:
        described = ", ".join(
            dict.fromkeys(f"{f.allele} ({f.function.lower()})" for f in uncertain)
        )
        return _indeterminate(
            parsed,
            f"{gene} {described}: CPIC assigns no phenotype to a diplotype containing an allele "
            "of uncertain or unknown function.",
        )
    if gene not in kb.copy_number_genes and not all(h.is_simple for h in parsed.haplotypes):
        return _indeterminate(
            parsed,
            f"CPIC defines no copy-number or tandem haplotypes for {gene}; "
            f"{parsed.text} cannot be translated.",
        )
    if rule.method == METHOD_ACTIVITY_SCORE:
        return _by_activity_score(parsed, rule, kb)
    return _by_function_pair(parsed, rule, kb)


def phenotype_for_hla(marker: str, result: str, kb: KnowledgeBase) -> PhenotypeResult:
    """Carrier status of an HLA risk allele (e.g. HLA-B*15:02) as a phenotype result."""
    spec = kb.hla_markers.get(marker)
    if spec is None:
        raise GenotypeError(
            f"genotype.hla[{marker}]", "HLA marker is not in the knowledge base", gene=marker
        )
    status = _parse_hla_result(marker, result)
    carrier = "carries" if status == "Positive" else "does not carry"
    return PhenotypeResult(
        gene=marker,
        diplotype=status,
        activity_score=None,
        phenotype=status,
        explanation=f"Patient {carrier} {marker} ({spec.source}).",
    )


def _indeterminate(diplotype: Diplotype, reason: str) -> PhenotypeResult:
    _LOGGER.info("phenotype indeterminate for %s", diplotype.gene)
    return PhenotypeResult(diplotype.gene, diplotype.text, None, INDETERMINATE, reason)


def _by_activity_score(diplotype: Diplotype, rule: GeneRule, kb: KnowledgeBase) -> PhenotypeResult:
    gene = diplotype.gene
    terms: list[str] = []
    minimum = 0.0
    # Activity that grows with every extra copy beyond the reported minimum ("xN"): if it is
    # positive, the score has no upper bound and the phenotype may be any band above `minimum`.
    open_ended = False
    for haplotype in diplotype.haplotypes:
        for component in haplotype.components:
            entry = kb.allele(gene, component.allele)
            value = entry.activity_value if entry is not None else None
            if value is None:  # guarded by the caller; kept so a bad table cannot crash here
                return _indeterminate(diplotype, f"{gene} {component.allele} has no activity value")
            minimum += value * component.copies
            if not component.copies_exact and value > 0:
                open_ended = True
            terms.append(_term(component.allele, component.copies, component.copies_exact, value))
    score = round(minimum, 4)
    low = phenotype_from_activity_score(gene, score, kb)
    summary = f"{gene} {diplotype.text}: {' + '.join(terms)} = activity score {score:g}"
    if open_ended:
        top_band = next(b for b in rule.bands if b.upper is None)
        if not top_band.contains(score):
            return PhenotypeResult(
                gene,
                diplotype.text,
                score,
                INDETERMINATE,
                f"{summary} or more. The number of gene copies was not reported (xN = two or "
                "more copies), and different copy numbers fall into different CPIC phenotype "
                "groups, so no phenotype is assigned.",
                activity_score_is_minimum=True,
            )
        return PhenotypeResult(
            gene,
            diplotype.text,
            score,
            low,
            f"{summary} or more (xN = two or more copies); every possible copy number gives "
            f"{low} per CPIC ({rule.source}).",
            activity_score_is_minimum=True,
        )
    if low == INDETERMINATE:
        return PhenotypeResult(
            gene,
            diplotype.text,
            score,
            INDETERMINATE,
            f"{summary}, which CPIC does not map to a phenotype.",
        )
    return PhenotypeResult(
        gene, diplotype.text, score, low, f"{summary} -> {low} per CPIC ({rule.source})."
    )


def _term(allele: str, copies: int, exact: bool, value: float) -> str:
    if copies == 1 and exact:
        return f"{allele} ({value:g})"
    count = f"{copies}" if exact else f">={copies}"
    return f"{allele} ({count} copies x {value:g})"


def _by_function_pair(diplotype: Diplotype, rule: GeneRule, kb: KnowledgeBase) -> PhenotypeResult:
    gene = diplotype.gene
    first, second = (h.components[0].allele for h in diplotype.haplotypes)
    entries = [kb.allele(gene, a) for a in (first, second)]
    functions = [e.function for e in entries if e is not None]
    described = f"{first} ({functions[0].lower()}) / {second} ({functions[1].lower()})"
    phenotype = rule.pairs.get(frozenset(functions))
    if phenotype is None:
        return _indeterminate(
            diplotype, f"{gene} {described}: CPIC defines no phenotype for this combination."
        )
    return PhenotypeResult(
        gene,
        diplotype.text,
        None,
        phenotype,
        f"{gene} {described} -> {phenotype} per CPIC ({rule.source}).",
    )
