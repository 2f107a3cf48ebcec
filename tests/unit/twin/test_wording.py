"""What the orchestrator says, read as a clinician reads it: articles, dates that
leave a day to act on, horizons that match the request, no "1 days"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common import wording
from common.proto_convert import to_timestamp
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx
from tests.unit.twin import builders as b
from twin_orchestrator.prioritization import load_rules, recommend
from twin_orchestrator.risk import overall_risk

BOOK = load_rules()


def _texts(response) -> dict[str, str]:
    return {
        rec.rule_id: f"{rec.text} {rec.rationale}" for rec in recommend(BOOK, b.context(response))
    }


@pytest.mark.parametrize(
    ("number", "article"),
    [
        (1, "a"),
        (7, "a"),
        (8, "an"),
        (11, "an"),
        (18, "an"),
        (10, "a"),
        (61, "a"),
        (80, "an"),
        (85, "an"),
        (89, "an"),
        (90, "a"),
        (100, "a"),
        (180, "a"),
        (800, "an"),
        (11_000, "an"),
        (18_500, "an"),
        (1_800, "a"),
    ],
)
def test_article_follows_how_the_number_is_spoken(number: int, article: str) -> None:
    assert wording.article_for_number(number) == article


def test_probabilities_never_read_as_impossible_or_certain() -> None:
    assert wording.percent(0.0) == "under 1%"
    assert wording.percent(0.004) == "under 1%"
    assert wording.percent(0.61) == "61%"
    assert wording.percent(0.999) == "over 99%"
    assert wording.chance(0.8) == "an 80% chance"
    assert wording.chance(0.18) == "an 18% chance"
    assert wording.chance(0.7) == "a 70% chance"
    assert wording.chance(0.001) == "a chance of under 1%"


def test_an_80_percent_chance_in_the_recommendations() -> None:
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8)
    b.set_warning(response, common_pb2.RISK_LEVEL_ELEVATED, 0.4)
    urgent = _texts(response)["urgent-follow-up"]
    assert "an 80% chance" in urgent
    assert "a 80%" not in urgent

    high = b.empty_response()
    b.add_risk_period(high, threshold=20, peak=0.83)
    text = _texts(high)["forecast-risk-period"]
    assert "an 83% chance" in text


def test_review_date_is_never_today_or_earlier() -> None:
    # The risk period starts on the day of the request: "before" it would already be too late.
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.7, start_in_days=0)
    response.generated_at.CopyFrom(to_timestamp(b.NOW))
    text = _texts(response)["forecast-risk-period"]
    assert "before" not in text.split(":")[0]
    assert text.startswith("Schedule a review as soon as possible")
    assert "forecast from today" in text

    # Data that ends two days before the request: a period starting "tomorrow" of the
    # data has already started by the request's own day.
    stale = b.empty_response()
    b.add_risk_period(stale, threshold=20, peak=0.7, start_in_days=1)
    stale.generated_at.CopyFrom(to_timestamp(b.NOW + timedelta(days=2)))
    assert _texts(stale)["forecast-risk-period"].startswith("Schedule a review as soon as possible")


def test_review_date_ahead_names_the_day_in_words() -> None:
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.7, start_in_days=5)
    response.generated_at.CopyFrom(to_timestamp(b.NOW))
    text = _texts(response)["forecast-risk-period"]
    assert text.startswith("Schedule a review before 6 Jun 2026:")
    assert "(4 days at risk)" in text


def _forecast_points(response, horizon_days: int) -> None:
    for forecast in response.forecast.forecast.forecasts:
        for day in range(1, horizon_days + 1):
            forecast.points.add(horizon_day=day, point=10, lower=5, upper=15)


def test_risk_driver_names_the_requested_horizon() -> None:
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8, start_in_days=3)
    _forecast_points(response, 7)
    _, drivers = overall_risk(b.context(response), BOOK.overall_risk)
    forecast_drivers = [d for d in drivers if d.startswith("forecast")]
    assert forecast_drivers == ["forecast: an 80% chance of PHQ-9 >= 20 (severe) within 7 days"]

    # A 30-day forecast is still summarised over the configured 14-day window.
    longer = b.empty_response()
    b.add_risk_period(longer, threshold=20, peak=0.8, start_in_days=3)
    _forecast_points(longer, 30)
    _, drivers = overall_risk(b.context(longer), BOOK.overall_risk)
    assert any(d.endswith("within 14 days") for d in drivers)


def test_risk_period_past_a_short_horizon_is_not_counted() -> None:
    # Only a 5-day forecast was asked for; a period on day 10 cannot come from it and
    # must not be summarised as "within 14 days".
    response = b.empty_response()
    b.add_risk_period(response, threshold=20, peak=0.8, start_in_days=10)
    _forecast_points(response, 5)
    _, drivers = overall_risk(b.context(response), BOOK.overall_risk)
    assert not [d for d in drivers if d.startswith("forecast")]


def test_early_warning_driver_has_no_zero_percent() -> None:
    response = b.empty_response()
    b.set_warning(response, common_pb2.RISK_LEVEL_HIGH, 0.0001)
    _, drivers = overall_risk(b.context(response), BOOK.overall_risk)
    assert "0%" not in " ".join(drivers)
    assert any("under 1% probability of deterioration within 7 days" in d for d in drivers)


def test_key_indicator_lead_of_one_day_and_the_plan_frequency() -> None:
    response = b.empty_response()
    b.add_key_indicator(response, strength=0.6)
    indicator = response.biometric.correlations.key_indicators[0]
    indicator.lead_days = 1
    indicator.indicator = common_pb2.INSTRUMENT_PHQ9
    response.biometric.monitoring_plan.metrics.add(
        metric=common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
        frequency=biometric_pb2.MONITORING_FREQUENCY_CONTINUOUS,
        priority=1,
    )
    text = _texts(response)["key-biometric-indicator"]
    assert text.startswith(
        "Monitor sleep duration continuously, with alerts: for this patient it changes about "
        "1 day before PHQ-9 does."
    )
    assert "1 days" not in text and "phq-9" not in text
    assert "Sleep duration falls" in text


def test_section_status_reads_as_english() -> None:
    response = b.empty_response()
    response.forecast.result.status = common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
    response.biometric.result.status = common_pb2.SECTION_STATUS_DEGRADED
    recs = [r.text for r in recommend(BOOK, b.context(response))]
    assert (
        "The forecast section is missing (its service did not answer in time); "
        "read these insights as partial." in recs
    )
    assert "The biometric section is incomplete; read these insights as partial." in recs
    assert all("is deadline exceeded" not in r and "is degraded" not in r for r in recs)


def test_a_sentence_opening_with_a_medication_name_starts_with_a_capital() -> None:
    response = b.empty_response()
    response.pharmacogenomics.result.status = common_pb2.SECTION_STATUS_OK
    response.pharmacogenomics.interactions.phenoconversions.add(
        gene="CYP2D6",
        inhibitor="paroxetine",
        to_phenotype=pgx.PHENOTYPE_POOR_METABOLIZER,
        what_would_change="if paroxetine is stopped, CYP2D6 reverts to Normal Metabolizer.",
    )
    (rec,) = [r for r in recommend(BOOK, b.context(response)) if r.rule_id == "phenoconversion"]
    assert rec.text.startswith("Paroxetine makes this patient an effective poor metabolizer")
    assert rec.rationale.startswith("If paroxetine is stopped")
