"""Genotype-rule-only baseline: outcome rate per CPIC guidance action, nothing else.

Each trial is put in the group of its drug's decisive guidance action for the
patient's phenotypes (``use standard``, ``adjust dose``, ``consider
alternative``, ..., or ``not in knowledge base``); the prediction is that
group's outcome rate in the training trials, shrunk towards the overall rate
with a prior of ``PRIOR_TRIALS`` pseudo-trials so tiny groups do not get 0 or 1.
It is what a rules engine could say about response without a model, and the
yardstick the benchmark and the manifest compare the model with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pharmacogenomics_svc.guidance import guidance_for
from pharmacogenomics_svc.knowledge_base import KnowledgeBase
from pharmacogenomics_svc.models.guidance_summary import decisive_guidance
from pharmacogenomics_svc.models.training_data import Phenotypes, Trial

_LOGGER = logging.getLogger(__name__)

NOT_IN_KNOWLEDGE_BASE: Final = "not in knowledge base"
PRIOR_TRIALS: Final = 10.0


class GuidanceTiers:
    """The decisive guidance action of (drug, phenotypes), cached: cohorts repeat them a lot."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        self._cache: dict[tuple[object, ...], str] = {}

    def tier(self, medication: str, phenotypes: Phenotypes) -> str:
        key = (
            medication,
            *sorted((g, r.phenotype, r.activity_score) for g, r in phenotypes.items()),
        )
        if key not in self._cache:
            decisive = decisive_guidance(guidance_for(medication, phenotypes, phenotypes, self._kb))
            self._cache[key] = decisive.action if decisive is not None else NOT_IN_KNOWLEDGE_BASE
        return self._cache[key]

    def tiers(self, trials: Sequence[Trial]) -> list[str]:
        return [self.tier(t.medication, t.phenotypes) for t in trials]


@dataclass(frozen=True)
class RuleBaseline:
    rates: Mapping[str, float]
    overall: float

    def predict(self, tiers: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.array([self.rates.get(t, self.overall) for t in tiers], dtype=np.float64)


def fit_rule_baseline(tiers: Sequence[str], outcome: npt.NDArray[np.bool_]) -> RuleBaseline:
    y = np.asarray(outcome, dtype=np.float64)
    overall = float(y.mean()) if y.size else 0.5
    groups: dict[str, list[float]] = {}
    for tier, value in zip(tiers, y.tolist(), strict=True):
        groups.setdefault(tier, []).append(value)
    rates = {
        tier: (sum(values) + PRIOR_TRIALS * overall) / (len(values) + PRIOR_TRIALS)
        for tier, values in groups.items()
    }
    return RuleBaseline(rates=rates, overall=overall)
