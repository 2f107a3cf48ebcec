"""Phenotype -> per-drug prescribing guidance, looked up in ``data/guidance.csv``.

Rows are grouped by their source family (CPIC guideline or FDA label) and gene set; for every
group the row matching the patient's effective phenotypes is chosen. Two-gene drugs use the
guideline's combined table directly (TCAs: CYP2D6 x CYP2C19; sertraline: CYP2C19 x CYP2B6;
phenytoin: HLA-B*15:02 x CYP2C9, where every HLA-B*15:02-positive row says "avoid" so the HLA
result overrides CYP2C9). A gene without a result is looked up as "No Result"; in a two-gene
table without an "Indeterminate" row, an indeterminate gene is also looked up as "No Result"
(the guideline's recommendation for the other gene alone) and the rationale says so.

The guidance is computed twice - from the effective (phenoconverted) phenotypes and from the
genotype alone - so the result can say what would change if an interacting drug were stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pharmacogenomics_svc.knowledge_base import (
    ANY_PHENOTYPE,
    INDETERMINATE,
    NO_RESULT,
    POOR,
    GuidanceRow,
    KnowledgeBase,
    Medication,
)
from pharmacogenomics_svc.phenoconversion import (
    Phenoconversion,
    apply_phenoconversions,
    effective_phenotypes,
)
from pharmacogenomics_svc.phenotype import PhenotypeResult

_LOGGER = logging.getLogger(__name__)

FDA_LABEL = "FDA label"
NO_RECOMMENDATION = "no recommendation"
NO_RECOMMENDATION_STRENGTH = "No recommendation"
# Enzymes a current medication can inhibit (see inhibitors.csv); used for the "what would
# change" hint when no phenoconversion is present.
_INHIBITABLE = ("CYP2D6", "CYP2C19")
_SCORE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Evidence:
    source: str
    strength: str
    pmid: str | None


@dataclass(frozen=True)
class GeneDrugGuidance:
    drug: str
    genes: tuple[str, ...]
    phenotypes: tuple[str, ...]  # effective phenotypes used, aligned with ``genes``
    genotype_phenotypes: tuple[str, ...]  # phenotypes from genotype alone, aligned with genes
    population: str
    action: str
    strength: str
    recommendation: str
    dose_adjustment: str
    alternatives: tuple[str, ...]
    rationale: str
    evidence: Evidence | None
    what_would_change: str
    phenoconverted: bool
    in_knowledge_base: bool = True
    implications: tuple[str, ...] = ()
    comments: str = ""


@dataclass(frozen=True)
class _GeneState:
    gene: str
    phenotype: str  # a phenotype, or NO_RESULT when the gene was not tested
    activity_score: float | None


def guidance_for(
    drug: str,
    phenotypes_effective: Mapping[str, PhenotypeResult],
    phenotypes_genotype: Mapping[str, PhenotypeResult],
    kb: KnowledgeBase,
    population: str | None = None,
    conversions: Sequence[Phenoconversion] = (),
) -> list[GeneDrugGuidance]:
    """Guidance for ``drug`` (generic or brand name) given the patient's phenotypes.

    ``phenotypes_effective`` are the phenotypes after phenoconversion (pass the genotype ones
    if there is none); ``conversions`` (from ``effective_phenotypes``) lets the result name the
    interacting drug and lets a drug's inhibition of its own enzyme be set aside: CPIC's
    recommendations for e.g. paroxetine already account for paroxetine's CYP2D6 autoinhibition,
    so paroxetine is not counted as a perpetrator in its own guidance. ``population`` selects
    e.g. "pediatrics" or "CBZ use >3mos" for drugs whose guideline distinguishes populations;
    by default the populations listed in medications.csv are used. A drug outside the knowledge
    base yields one result with ``in_knowledge_base=False`` instead of an exception.
    """
    med = kb.medication(drug)
    if med is None:
        return [_not_in_knowledge_base(drug, kb)]
    rows = kb.guidance_for_drug(med.name)
    phenotypes_effective, conversions = _without_self_inhibition(
        med.name, phenotypes_effective, phenotypes_genotype, conversions, kb
    )
    results: list[GeneDrugGuidance] = []
    for pop in _populations(med, rows, population):
        groups = _groups(row for row in rows if row.population == pop)
        cpic_genes = {_genes(g) for g in groups if g[0].strength != FDA_LABEL}
        for group in groups:
            result, matched = _evaluate_group(
                med, pop, group, phenotypes_effective, phenotypes_genotype, conversions
            )
            # An FDA label row set that does not name this phenotype adds nothing when a CPIC
            # table for the same genes already answered.
            if not matched and group[0].strength == FDA_LABEL and _genes(group) in cpic_genes:
                continue
            results.append(result)
    _LOGGER.debug("guidance computed for %s: %d result(s)", med.name, len(results))
    return results


def _without_self_inhibition(
    drug: str,
    effective: Mapping[str, PhenotypeResult],
    genotype: Mapping[str, PhenotypeResult],
    conversions: Sequence[Phenoconversion],
    kb: KnowledgeBase,
) -> tuple[Mapping[str, PhenotypeResult], Sequence[Phenoconversion]]:
    if not any(drug in conv.inhibitors for conv in conversions):
        return effective, conversions
    adjusted = dict(effective)
    kept: list[Phenoconversion] = []
    for conv in conversions:
        base = genotype.get(conv.gene)
        if drug not in conv.inhibitors or base is None:
            kept.append(conv)
            continue
        # Re-derive the conversion from the other perpetrators only.
        others = [name for name in conv.inhibitors if name != drug]
        redone = effective_phenotypes({conv.gene: base}, others, kb)
        adjusted.update(apply_phenoconversions({conv.gene: base}, redone))
        kept.extend(redone)
    return adjusted, kept


def _genes(group: list[GuidanceRow]) -> tuple[str, ...]:
    return tuple(g for g in (group[0].gene, group[0].gene2) if g)


def _not_in_knowledge_base(drug: str, kb: KnowledgeBase) -> GeneDrugGuidance:
    # Drug names are not patient data, but free text is trimmed before it goes into a message.
    name = " ".join(drug.split())[:64]
    return GeneDrugGuidance(
        drug=name,
        genes=(),
        phenotypes=(),
        genotype_phenotypes=(),
        population="general",
        action=NO_RECOMMENDATION,
        strength=NO_RECOMMENDATION_STRENGTH,
        recommendation=(
            f"'{name}' is not in the pharmacogenomic knowledge base (data version "
            f"{kb.data_version.label}); no genotype-guided recommendation is available."
        ),
        dose_adjustment="",
        alternatives=(),
        rationale="The drug has no CPIC guideline or FDA label pharmacogenomic entry here.",
        evidence=None,
        what_would_change="",
        phenoconverted=False,
        in_knowledge_base=False,
    )


def _populations(
    med: Medication, rows: tuple[GuidanceRow, ...], requested: str | None
) -> tuple[str, ...]:
    available = list(dict.fromkeys(row.population for row in rows))
    if requested is not None:
        wanted = requested.strip().lower()
        for pop in available:
            if pop.lower() == wanted:
                return (pop,)
    # A population the guideline does not distinguish falls back to the drug's defaults.
    return tuple(p for p in med.default_populations if p in available) or tuple(available[:1])


def _groups(rows: Iterable[GuidanceRow]) -> list[list[GuidanceRow]]:
    grouped: dict[tuple[str, str, str], list[GuidanceRow]] = {}
    for row in rows:
        family = FDA_LABEL if row.strength == FDA_LABEL else "CPIC"
        grouped.setdefault((family, row.gene, row.gene2 or ""), []).append(row)
    # CPIC groups first: they are the primary source; FDA label rows supplement them.
    return [grouped[key] for key in sorted(grouped, key=lambda k: k[0] == FDA_LABEL)]


def _state(gene: str, phenotypes: Mapping[str, PhenotypeResult]) -> _GeneState:
    result = phenotypes.get(gene)
    if result is None:
        return _GeneState(gene, NO_RESULT, None)
    return _GeneState(gene, result.phenotype, result.activity_score)


def _evaluate_group(
    med: Medication,
    population: str,
    group: list[GuidanceRow],
    effective: Mapping[str, PhenotypeResult],
    genotype: Mapping[str, PhenotypeResult],
    conversions: Sequence[Phenoconversion],
) -> tuple[GeneDrugGuidance, bool]:
    """The guidance for one row group and whether a data row matched."""
    genes = _genes(group)
    eff_states = tuple(_state(g, effective) for g in genes)
    geno_states = tuple(_state(g, genotype) for g in genes)
    row, fallback_note = _match(group, eff_states)
    geno_row, _ = _match(group, geno_states)
    phenoconverted = eff_states != geno_states
    is_fda = group[0].strength == FDA_LABEL
    geno_text = geno_row.recommendation if geno_row is not None else None
    if geno_row is None and is_fda and _all_determinate(geno_states):
        geno_text = _label_default_text(group, geno_states)
    what = _what_would_change(
        group, eff_states, geno_states, row, geno_text, conversions, phenoconverted
    )
    rationale = _rationale(eff_states, geno_states, effective, conversions, row, fallback_note)
    if row is None:
        unmatched = _unmatched(
            med, population, genes, eff_states, geno_states, is_fda, group, rationale, what
        )
        return unmatched, False
    matched = GeneDrugGuidance(
        drug=med.name,
        genes=genes,
        phenotypes=tuple(s.phenotype for s in eff_states),
        genotype_phenotypes=tuple(s.phenotype for s in geno_states),
        population=population,
        action=row.action,
        strength=row.strength,
        recommendation=row.recommendation,
        dose_adjustment=row.dose_adjustment,
        alternatives=row.alternatives,
        rationale=rationale,
        evidence=Evidence(row.source, row.strength, row.pmid),
        what_would_change=what,
        phenoconverted=phenoconverted,
        implications=tuple(i for i in (row.implication, row.implication2) if i),
        comments=row.comments,
    )
    return matched, True


def _match(
    group: list[GuidanceRow], states: tuple[_GeneState, ...]
) -> tuple[GuidanceRow | None, str]:
    row = _find(group, states)
    if row is not None:
        return row, ""
    if len(states) == 2:
        # A two-gene table without an Indeterminate row: use the other gene's recommendation
        # ("No Result" row), which is what the guideline gives when this gene is unknown.
        relaxed = tuple(
            _GeneState(s.gene, NO_RESULT, None) if s.phenotype == INDETERMINATE else s
            for s in states
        )
        if relaxed != states:
            row = _find(group, relaxed)
            if row is not None:
                unknown = ", ".join(s.gene for s in states if s.phenotype == INDETERMINATE)
                return row, (
                    f"The {unknown} result is indeterminate, so the guideline's recommendation "
                    "for an untested gene is used."
                )
    return None, ""


def _find(group: list[GuidanceRow], states: tuple[_GeneState, ...]) -> GuidanceRow | None:
    for row in group:
        specs = [(row.phenotype, row.as_min, row.as_max)]
        if row.gene2:
            specs.append((row.phenotype2 or "", row.as2_min, row.as2_max))
        if all(_matches(spec, state) for spec, state in zip(specs, states, strict=True)):
            return row
    return None


def _matches(spec: tuple[str, float | None, float | None], state: _GeneState) -> bool:
    phenotype, low, high = spec
    if phenotype == ANY_PHENOTYPE:
        return True
    if phenotype != state.phenotype:
        return False
    if low is None or high is None:
        return True
    score = state.activity_score
    if score is None or not math.isfinite(score):
        return False
    return low - _SCORE_TOLERANCE <= score <= high + _SCORE_TOLERANCE


def _describe(state: _GeneState) -> str:
    if state.phenotype == NO_RESULT:
        return f"{state.gene} not tested"
    if state.activity_score is not None:
        return f"{state.gene} {state.phenotype} (activity score {state.activity_score:g})"
    return f"{state.gene} {state.phenotype}"


def _rationale(
    eff_states: tuple[_GeneState, ...],
    geno_states: tuple[_GeneState, ...],
    effective: Mapping[str, PhenotypeResult],
    conversions: Sequence[Phenoconversion],
    row: GuidanceRow | None,
    fallback_note: str,
) -> str:
    parts: list[str] = []
    for eff, geno in zip(eff_states, geno_states, strict=True):
        if eff == geno:
            parts.append(f"{_describe(eff)}.")
            continue
        conv = next((c for c in conversions if c.gene == eff.gene), None)
        cause = (
            f"{_join(conv.inhibitors)} ({conv.strength} {eff.gene} inhibitor)"
            if conv is not None
            else "a current medication"
        )
        parts.append(
            f"Genotype predicts {_describe(geno)}, but {cause} makes the effective phenotype "
            f"{eff.phenotype}."
        )
        if conv is not None and conv.caveat:
            parts.append(conv.caveat)
    if row is not None:
        parts.extend(text for text in (row.implication, row.implication2) if text)
    if fallback_note:
        parts.append(fallback_note)
    for state in eff_states:
        result = effective.get(state.gene)
        if state.phenotype == INDETERMINATE and result is not None:
            parts.append(result.explanation)
    return " ".join(parts)


def _what_would_change(
    group: list[GuidanceRow],
    eff_states: tuple[_GeneState, ...],
    geno_states: tuple[_GeneState, ...],
    row: GuidanceRow | None,
    geno_text: str | None,
    conversions: Sequence[Phenoconversion],
    phenoconverted: bool,
) -> str:
    if phenoconverted:
        changed = [e.gene for e, g in zip(eff_states, geno_states, strict=True) if e != g]
        texts = [c.what_would_change.rstrip(".") for c in conversions if c.gene in changed]
        if not texts:
            texts = [
                f"If the interacting medication is stopped, {g.gene} phenotype reverts to "
                f"{g.phenotype}"
                for e, g in zip(eff_states, geno_states, strict=True)
                if e != g
            ]
        lead = "; ".join(texts)
        if geno_text is None:
            return f"{lead}; the guideline would then give no specific recommendation."
        if row is not None and geno_text == row.recommendation:
            return f"{lead}; the recommendation would stay the same."
        return f"{lead} and the recommendation would be: {geno_text}"
    # No phenoconversion: say whether starting a strong inhibitor would change the advice.
    hints: list[str] = []
    for index, state in enumerate(eff_states):
        if state.gene not in _INHIBITABLE or state.phenotype in (POOR, NO_RESULT):
            continue
        inhibited = list(eff_states)
        inhibited[index] = _GeneState(state.gene, POOR, 0.0 if state.gene == "CYP2D6" else None)
        alt_row, _ = _match(group, tuple(inhibited))
        if alt_row is not None and (row is None or alt_row.recommendation != row.recommendation):
            hints.append(
                f"Starting a strong {state.gene} inhibitor would make the effective "
                f"{state.gene} phenotype Poor Metabolizer and change this recommendation to: "
                f"{alt_row.recommendation}"
            )
    return " ".join(hints)


def _unmatched(
    med: Medication,
    population: str,
    genes: tuple[str, ...],
    eff_states: tuple[_GeneState, ...],
    geno_states: tuple[_GeneState, ...],
    is_fda: bool,
    group: list[GuidanceRow],
    rationale: str,
    what: str,
) -> GeneDrugGuidance:
    described = "; ".join(_describe(s) for s in eff_states)
    all_untested = all(s.phenotype == NO_RESULT for s in eff_states)
    action, strength, evidence = NO_RECOMMENDATION, NO_RECOMMENDATION_STRENGTH, None
    if all_untested:
        text = f"No {' or '.join(genes)} result was provided; no genotype-guided recommendation."
    elif is_fda and _all_determinate(eff_states):
        text = _label_default_text(group, eff_states)
        action, strength = "use standard", FDA_LABEL
        evidence = Evidence(group[0].source, FDA_LABEL, None)
    else:
        text = f"The guideline gives no recommendation for {described}."
        evidence = Evidence(group[0].source, NO_RECOMMENDATION_STRENGTH, group[0].pmid)
    return GeneDrugGuidance(
        drug=med.name,
        genes=genes,
        phenotypes=tuple(s.phenotype for s in eff_states),
        genotype_phenotypes=tuple(s.phenotype for s in geno_states),
        population=population,
        action=action,
        strength=strength,
        recommendation=text,
        dose_adjustment="",
        alternatives=(),
        rationale=rationale or text,
        evidence=evidence,
        what_would_change=what,
        phenoconverted=eff_states != geno_states,
    )


def _all_determinate(states: tuple[_GeneState, ...]) -> bool:
    return all(s.phenotype not in (INDETERMINATE, NO_RESULT) for s in states)


def _label_default_text(group: list[GuidanceRow], states: tuple[_GeneState, ...]) -> str:
    # The label names only the phenotypes that need a change; others take labeled dosing.
    labeled = ", ".join(dict.fromkeys(r.phenotype for r in group))
    described = "; ".join(_describe(s) for s in states)
    return (
        f"The FDA label gives a genotype-specific adjustment only for {labeled}; for "
        f"{described} use the labeled dosing."
    )


def _join(names: Iterable[str]) -> str:
    items = list(names)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
