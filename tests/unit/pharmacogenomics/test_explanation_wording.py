"""Prediction rationales never print an estimate as impossible or certain."""

from __future__ import annotations

from pharmacogenomics_svc.models.explanations import (
    ModelEstimate,
    PatientFacts,
    response_text,
    side_effect_text,
)


def _estimate(probability: float) -> ModelEstimate:
    return ModelEstimate(
        medication="sertraline",
        modelled=True,
        probability=probability,
        without_phenoconversion=None,
        normal_metabolizer=None,
        pathway_genes=(),
        trained_medications=9,
    )


FACTS = PatientFacts(phenotypes={}, conversions=(), prior_failures=None)


def test_extreme_estimates_read_under_1_and_over_99_percent() -> None:
    low = side_effect_text(_estimate(0.002), None, FACTS, overridden=False).rationale
    assert "sertraline: under 1%." in low and " 0%" not in low
    high = response_text(_estimate(0.998), None, FACTS, overridden=False).rationale
    assert "sertraline: over 99%." in high and "100%" not in high
    usual = response_text(_estimate(0.61), None, FACTS, overridden=False).rationale
    assert "sertraline: 61%." in usual
