"""Phenoconversion: how current CYP2D6/CYP2C19 inhibitors shift the genotype-predicted phenotype.

CYP2D6 (CPIC approach, Crews et al. 2021 PMID 33387367, building on Cicali et al. 2020
PMID 31910286 and the Caudle et al. 2020 activity-score system PMID 31647186): with a strong
inhibitor the activity score is multiplied by 0 (-> Poor Metabolizer); with a moderate inhibitor
it is multiplied by 0.5 and re-classified; weak inhibitors are ignored.

CYP2C19 has no CPIC activity score. Convention used here (documented in data/README.md, not a
CPIC rule - Bousman et al. 2023 PMID 37032427 states no consensus exists): a strong inhibitor
-> Poor Metabolizer; a moderate inhibitor moves the phenotype one step towards Poor.

When several inhibitors of one enzyme are taken, the strongest one decides (effects are not
added); every contributing drug is listed so the clinician sees all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from pharmacogenomics_svc.knowledge_base import (
    INDETERMINATE,
    INTERMEDIATE,
    LIKELY_INTERMEDIATE,
    LIKELY_POOR,
    NORMAL,
    POOR,
    RAPID,
    ULTRARAPID,
    Inhibitor,
    KnowledgeBase,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult, phenotype_from_activity_score

_LOGGER = logging.getLogger(__name__)

CYP2D6_SOURCE = (
    "CPIC CYP2D6 phenoconversion approach: strong inhibitor -> activity score x 0, moderate "
    "-> x 0.5 (Crews et al. 2021 PMID 33387367; Cicali et al. 2020 PMID 31910286; Caudle et al. "
    "2020 PMID 31647186)"
)
CYP2C19_SOURCE = (
    "Service convention (no CPIC consensus for CYP2C19 phenoconversion, Bousman et al. 2023 "
    "PMID 37032427): strong inhibitor -> Poor Metabolizer, moderate -> one step towards Poor"
)
CYP2D6_MULTIPLIERS = {"strong": 0.0, "moderate": 0.5}
# One step towards Poor for a moderate CYP2C19 inhibitor. "Likely" phenotypes stay "Likely"
# until they reach Poor so the genotype uncertainty is not hidden.
CYP2C19_ONE_STEP_DOWN = {
    ULTRARAPID: RAPID,
    RAPID: NORMAL,
    NORMAL: INTERMEDIATE,
    INTERMEDIATE: POOR,
    LIKELY_INTERMEDIATE: LIKELY_POOR,
    LIKELY_POOR: POOR,
    POOR: POOR,
}
_STRENGTH_RANK = {"strong": 2, "moderate": 1, "weak": 0}


@dataclass(frozen=True)
class Phenoconversion:
    gene: str
    from_phenotype: str
    to_phenotype: str
    from_activity_score: float | None
    to_activity_score: float | None
    inhibitor: str  # the strongest current inhibitor (the one that decides)
    inhibitors: tuple[str, ...]  # every current strong/moderate inhibitor of the enzyme
    strength: str  # "strong" or "moderate"
    rule: str
    source: str
    what_would_change: str
    caveat: str = ""

    @property
    def changed(self) -> bool:
        return (self.from_phenotype, self.from_activity_score) != (
            self.to_phenotype,
            self.to_activity_score,
        )


def effective_phenotypes(
    phenotypes: Mapping[str, PhenotypeResult] | Iterable[PhenotypeResult],
    current_medications: Iterable[str],
    kb: KnowledgeBase,
    target_drug: str | None = None,
) -> list[Phenoconversion]:
    """One entry per gene whose enzyme is inhibited (strong or moderate) by a current drug.

    ``target_drug`` (the drug being assessed) is not counted as its own perpetrator: CPIC's
    recommendations for e.g. paroxetine already account for its autoinhibition.
    """
    results = list(phenotypes.values()) if isinstance(phenotypes, Mapping) else list(phenotypes)
    excluded = _resolve(target_drug, kb) if target_drug else None
    perpetrators: dict[str, list[Inhibitor]] = {}
    for name in current_medications:
        drug = _resolve(name, kb)
        if drug == excluded:
            continue
        for inhibitor in kb.inhibitors_of(drug):
            if inhibitor.strength in CYP2D6_MULTIPLIERS:  # strong or moderate
                perpetrators.setdefault(inhibitor.enzyme, []).append(inhibitor)
    conversions: list[Phenoconversion] = []
    for result in results:
        found = perpetrators.get(result.gene)
        if not found:
            continue
        found.sort(key=lambda inh: -_STRENGTH_RANK[inh.strength])
        conversion = _convert(result, found, kb)
        if conversion is not None:
            conversions.append(conversion)
    _LOGGER.debug("phenoconversion: %d gene(s) affected", len(conversions))
    return conversions


def apply_phenoconversions(
    phenotypes: Mapping[str, PhenotypeResult], conversions: Iterable[Phenoconversion]
) -> dict[str, PhenotypeResult]:
    """The genotype phenotypes with each conversion applied (the "effective" phenotypes)."""
    effective = dict(phenotypes)
    for conv in conversions:
        base = effective.get(conv.gene)
        if base is None:
            continue
        effective[conv.gene] = replace(
            base,
            phenotype=conv.to_phenotype,
            activity_score=conv.to_activity_score,
            activity_score_is_minimum=base.activity_score_is_minimum and conv.strength != "strong",
            explanation=(
                f"{conv.from_phenotype} by genotype; effective {conv.to_phenotype} because of "
                f"{_join(conv.inhibitors)} ({conv.strength} {conv.gene} inhibitor): {conv.rule}."
            ),
        )
    return effective


def _resolve(name: str, kb: KnowledgeBase) -> str:
    med = kb.medication(name)
    return med.name if med is not None else name.strip().lower()


def _convert(
    result: PhenotypeResult, inhibitors: list[Inhibitor], kb: KnowledgeBase
) -> Phenoconversion | None:
    decisive = inhibitors[0]
    names = tuple(dict.fromkeys(inh.drug for inh in inhibitors))
    caveats = [inh.note for inh in inhibitors if inh.note]
    if result.gene == "CYP2D6":
        to_phenotype, to_score, rule = _cyp2d6(result, decisive.strength, kb)
        source = CYP2D6_SOURCE
    elif result.gene == "CYP2C19":
        to_phenotype, rule = _cyp2c19(result.phenotype, decisive.strength)
        to_score, source = None, CYP2C19_SOURCE
    else:
        return None
    if to_phenotype is None:
        return None
    if result.phenotype == INDETERMINATE:
        revert = f"the {result.gene} phenotype is again Indeterminate from genotype alone"
    else:
        revert = f"{result.gene} phenotype reverts to {result.phenotype}"
    stopped = "is" if len(names) == 1 else "are"
    what = f"If {_join(names)} {stopped} stopped, {revert}"
    if result.phenotype == to_phenotype and result.activity_score == to_score:
        what = f"{result.gene} phenotype is {to_phenotype} with or without {_join(names)}"
    return Phenoconversion(
        gene=result.gene,
        from_phenotype=result.phenotype,
        to_phenotype=to_phenotype,
        from_activity_score=result.activity_score,
        to_activity_score=to_score,
        inhibitor=decisive.drug,
        inhibitors=names,
        strength=decisive.strength,
        rule=rule,
        source=source,
        what_would_change=what + ".",
        caveat=" ".join(dict.fromkeys(caveats)),
    )


def _cyp2d6(
    result: PhenotypeResult, strength: str, kb: KnowledgeBase
) -> tuple[str | None, float | None, str]:
    multiplier = CYP2D6_MULTIPLIERS[strength]
    if multiplier == 0.0:
        # Any score times 0 is 0, so even an Indeterminate genotype becomes Poor.
        return POOR, 0.0, "strong CYP2D6 inhibitor: activity score x 0"
    if result.activity_score is None or result.phenotype == INDETERMINATE:
        return None, None, ""
    score = round(result.activity_score * multiplier, 4)
    phenotype = phenotype_from_activity_score("CYP2D6", score, kb)
    rule = f"moderate CYP2D6 inhibitor: activity score x 0.5 = {score:g}"
    if result.activity_score_is_minimum and phenotype != ULTRARAPID:
        # With an unreported copy number ("xN") the halved score is also only a minimum, and
        # more copies could reach a higher band: do not guess.
        return INDETERMINATE, score, rule + " or more (copy number not reported)"
    return phenotype, score, rule


def _cyp2c19(phenotype: str, strength: str) -> tuple[str | None, str]:
    if strength == "strong":
        return POOR, "strong CYP2C19 inhibitor: treated as Poor Metabolizer"
    shifted = CYP2C19_ONE_STEP_DOWN.get(phenotype)
    if shifted is None:  # Indeterminate: one step from an unknown start is still unknown
        return None, ""
    return shifted, "moderate CYP2C19 inhibitor: one phenotype step towards Poor"


def _join(names: Iterable[str]) -> str:
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
