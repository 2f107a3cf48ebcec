"""The one guidance result that decides how a drug is ranked, and when guidance overrides a model.

A drug can have several guidance results (one per gene table and source). The
decisive one is the most restrictive action; among equally restrictive ones,
the strongest classification. A Strong CPIC "avoid" overrides any prediction:
the model learned from outcomes, not from the harms (e.g. HLA-B*15:02 and
SJS/TEN) that make the guideline say "do not use".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pharmacogenomics_svc.guidance import GeneDrugGuidance

AVOID: Final = "avoid"
STRONG: Final = "Strong"
#: Most restrictive first.
ACTION_SEVERITY: Final = (
    "avoid",
    "consider alternative",
    "adjust dose",
    "use with caution",
    "use standard",
    "no recommendation",
)
STRENGTH_ORDER: Final = ("Strong", "Moderate", "FDA label", "Optional", "No recommendation")


def _rank(values: tuple[str, ...], value: str) -> int:
    return values.index(value) if value in values else len(values)


def decisive_guidance(results: Iterable[GeneDrugGuidance]) -> GeneDrugGuidance | None:
    """The most restrictive, then strongest, result; None when the drug has no guidance."""
    known = [r for r in results if r.in_knowledge_base]
    if not known:
        return None
    return min(
        known,
        key=lambda r: (_rank(ACTION_SEVERITY, r.action), _rank(STRENGTH_ORDER, r.strength)),
    )


def overrides_prediction(result: GeneDrugGuidance | None) -> bool:
    """True for a Strong "avoid": guidance wins over any model prediction."""
    return result is not None and result.action == AVOID and result.strength == STRONG
