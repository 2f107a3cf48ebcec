"""Each rule in rules.yaml fires on its signal, and only on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx
from tests.unit.twin import builders as b
from twin_orchestrator.prioritization import RulesError, load_rules, recommend

BOOK = load_rules()


def _fired(response, data=None) -> dict[str, list]:
    out: dict[str, list] = {}
    for rec in recommend(BOOK, b.context(response, data)):
        out.setdefault(rec.rule_id, []).append(rec)
    return out


def test_every_rule_in_the_book_is_covered_here():
    tested = {
        "urgent-follow-up",
        "forecast-risk-period",
        "early-warning",
        "early-warning-unfamiliar-data",
        "worsening-trend",
        "current-medication-avoid",
        "current-medication-adjust",
        "candidate-medication-caution",
        "phenoconversion",
        "key-biometric-indicator",
        "recent-anomalies",
        "section-unavailable",
        "low-data-reliability",
    }
    assert {rule.rule_id for rule in BOOK.rules} == tested


def test_nothing_fires_on_an_empty_response():
    assert recommend(BOOK, b.context(b.empty_response())) == []


def test_severe_forecast_plus_rising_warning_is_urgent_and_suppresses_the_parts():
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8)
    b.set_warning(response, common_pb2.RISK_LEVEL_ELEVATED, 0.4)
    fired = _fired(response)
    urgent = fired["urgent-follow-up"][0]
    assert urgent.priority == common_pb2.PRIORITY_URGENT
    assert urgent.category == common_pb2.RECOMMENDATION_CATEGORY_CLINICAL_FOLLOW_UP
    assert "80%" in urgent.rationale and "elevated" in urgent.rationale
    assert "forecast-risk-period" not in fired
    # The ranked list starts with the urgent one.
    assert recommend(BOOK, b.context(response))[0].rule_id == "urgent-follow-up"


def test_severe_forecast_without_warning_is_high_not_urgent():
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8)
    b.set_warning(response, common_pb2.RISK_LEVEL_LOW, 0.05)
    fired = _fired(response)
    assert "urgent-follow-up" not in fired
    assert fired["forecast-risk-period"][0].priority == common_pb2.PRIORITY_HIGH


def test_risk_period_beyond_window_or_unlikely_does_not_fire():
    response = b.empty_response()
    b.add_risk_period(response, start_in_days=40, peak=0.9)
    b.add_risk_period(response, start_in_days=2, peak=0.3)
    assert "forecast-risk-period" not in _fired(response)


def test_high_early_warning_alone_fires_early_warning():
    response = b.empty_response()
    b.set_warning(response, common_pb2.RISK_LEVEL_HIGH, 0.7)
    rec = _fired(response)["early-warning"][0]
    assert rec.priority == common_pb2.PRIORITY_HIGH
    assert "heart-rate variability" in rec.rationale
    low = b.empty_response()
    b.set_warning(low, common_pb2.RISK_LEVEL_ELEVATED, 0.3)
    assert "early-warning" not in _fired(low)


def test_unfamiliar_wearable_data_are_flagged_with_the_reason():
    response = b.empty_response()
    b.set_warning(response, common_pb2.RISK_LEVEL_HIGH, 0.6)
    assert "early-warning-unfamiliar-data" not in _fired(response)
    warning = response.biometric.correlations.early_warning
    warning.out_of_distribution = True
    warning.out_of_distribution_reason = "resting heart rate usual level is above the range"
    (rec,) = _fired(response)["early-warning-unfamiliar-data"]
    assert rec.category == common_pb2.RECOMMENDATION_CATEGORY_DATA_QUALITY
    assert rec.rationale == "Resting heart rate usual level is above the range."
    assert "with caution" in rec.text


def test_significant_worsening_trend_fires_and_insignificant_does_not():
    response = b.empty_response()
    b.set_trend(response, forecasting_pb2.TREND_DIRECTION_WORSENING, 0.01, 1.5)
    rec = _fired(response)["worsening-trend"][0]
    assert "+1.5" in rec.text and "rose by 9.0 points" in rec.rationale
    weak = b.empty_response()
    b.set_trend(weak, forecasting_pb2.TREND_DIRECTION_WORSENING, 0.3, 1.5)
    assert "worsening-trend" not in _fired(weak)


def test_strong_avoid_for_current_medication_is_medication_review():
    response = b.empty_response()
    b.add_interaction(
        response,
        medication="carbamazepine",
        action=pgx.GUIDANCE_ACTION_AVOID,
        strength=pgx.CLASSIFICATION_STRENGTH_STRONG,
        current=True,
        gene="HLA-B*15:02",
    )
    rec = _fired(response)["current-medication-avoid"][0]
    assert rec.priority == common_pb2.PRIORITY_HIGH
    assert rec.category == common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW
    assert "carbamazepine" in rec.text and rec.evidence[0].pmid == "37032427"
    assert rec.confidence == pytest.approx(0.95)


def test_dose_adjustment_for_current_and_caution_for_candidate():
    response = b.empty_response()
    b.add_interaction(
        response,
        medication="citalopram",
        action=pgx.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE,
        strength=pgx.CLASSIFICATION_STRENGTH_MODERATE,
        current=True,
    )
    b.add_interaction(
        response,
        medication="escitalopram",
        action=pgx.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE,
        strength=pgx.CLASSIFICATION_STRENGTH_MODERATE,
        current=False,
    )
    b.add_interaction(
        response,
        medication="sertraline",
        action=pgx.GUIDANCE_ACTION_USE_STANDARD,
        strength=pgx.CLASSIFICATION_STRENGTH_STRONG,
        current=False,
    )
    fired = _fired(response)
    assert [r.text for r in fired["current-medication-adjust"]] == [
        "Review citalopram: Consider an alternative."
    ]
    assert [r.text for r in fired["candidate-medication-caution"]] == [
        "Before starting escitalopram: Consider an alternative."
    ]
    assert "current-medication-avoid" not in fired


def test_phenoconversion_fires_with_reversal_note():
    response = b.empty_response()
    response.pharmacogenomics.result.status = common_pb2.SECTION_STATUS_OK
    response.pharmacogenomics.interactions.phenoconversions.add(
        gene="CYP2D6",
        inhibitor="paroxetine",
        to_phenotype=pgx.PHENOTYPE_POOR_METABOLIZER,
        what_would_change="If paroxetine is stopped, CYP2D6 reverts to Normal Metabolizer.",
    )
    rec = _fired(response)["phenoconversion"][0]
    assert "poor metabolizer" in rec.text and "reverts" in rec.rationale


def test_key_indicator_above_strength_gets_monitoring():
    strong = b.empty_response()
    b.add_key_indicator(strong, 0.55)
    rec = _fired(strong)["key-biometric-indicator"][0]
    assert rec.category == common_pb2.RECOMMENDATION_CATEGORY_MONITORING
    assert "sleep duration" in rec.text and "3 days" in rec.text
    weak = b.empty_response()
    b.add_key_indicator(weak, 0.2)
    assert "key-biometric-indicator" not in _fired(weak)


def test_recent_anomalies_need_count_recency_and_severity():
    response = b.empty_response()
    b.add_anomaly(response, 1, biometric_pb2.ANOMALY_SEVERITY_HIGH)
    b.add_anomaly(response, 3, biometric_pb2.ANOMALY_SEVERITY_MODERATE)
    b.add_anomaly(response, 30, biometric_pb2.ANOMALY_SEVERITY_HIGH)
    assert "2 anomalous days" in _fired(response)["recent-anomalies"][0].text
    mild = b.empty_response()
    b.add_anomaly(mild, 1, biometric_pb2.ANOMALY_SEVERITY_LOW)
    b.add_anomaly(mild, 2, biometric_pb2.ANOMALY_SEVERITY_LOW)
    assert "recent-anomalies" not in _fired(mild)


def test_unavailable_section_and_low_reliability_are_data_quality():
    response = b.empty_response()
    response.forecast.result.status = common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
    response.forecast.result.detail = "forecasting: DEADLINE_EXCEEDED"
    response.biometric.result.status = common_pb2.SECTION_STATUS_OK
    response.biometric.correlations.reliability = biometric_pb2.RELIABILITY_GRADE_LOW
    fired = _fired(response)
    assert fired["section-unavailable"][0].text.startswith("The forecast section is missing")
    assert fired["low-data-reliability"][0].priority == common_pb2.PRIORITY_LOW
    assert all(
        r.category == common_pb2.RECOMMENDATION_CATEGORY_DATA_QUALITY
        for r in fired["section-unavailable"] + fired["low-data-reliability"]
    )


def test_recommendations_are_ordered_by_priority_then_confidence():
    response = b.empty_response()
    b.add_key_indicator(response, 0.9)
    b.set_warning(response, common_pb2.RISK_LEVEL_HIGH, 0.7)
    response.forecast.result.status = common_pb2.SECTION_STATUS_UNAVAILABLE
    priorities = [r.priority for r in recommend(BOOK, b.context(response))]
    assert priorities == sorted(priorities)
    assert priorities[0] == common_pb2.PRIORITY_HIGH and priorities[-1] == common_pb2.PRIORITY_LOW


def test_broken_rule_files_are_refused(tmp_path: Path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: x\n    trigger: no_such_trigger\n")
    with pytest.raises(RulesError, match="trigger"):
        load_rules(bad)
    bad.write_text(
        "rules:\n  - {id: x, trigger: early_warning, priority: SOON, category: MONITORING,"
        " text: t, rationale: r}\n"
    )
    with pytest.raises(RulesError, match="unknown value"):
        load_rules(bad)
