"""What the report says and how it is made: the templates escape every service
string, only significant findings read as findings, no contradictory warning,
forecast drivers in clinical words, and the templates ship with the package."""

from __future__ import annotations

import tomllib
from pathlib import Path

from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from tests.unit.twin import report_fixtures as fx
from tests.unit.twin.test_report import parse
from twin_orchestrator.report import render_report
from twin_orchestrator.summary import format_insights

REPO_ROOT = Path(__file__).resolve().parents[3]
HOSTILE = '<script>alert("pwn")</script><img src=x onerror=alert(1)>'


def _render(response) -> str:
    return render_report(response, fx.patient_data())


def test_a_hostile_medication_name_is_shown_as_text_everywhere() -> None:
    response = fx.insights_response()
    section = response.pharmacogenomics
    section.interactions.interactions[0].medication = HOSTILE
    section.interactions.interactions[0].recommendation = f"Avoid {HOSTILE}"
    section.interactions.unsupported_medications.append(HOSTILE + "zine")
    section.responses.predictions.add(medication=HOSTILE + "pam", response_probability=0.5)
    response.forecast.forecast.forecasts[0].feature_importance.add(
        feature='"><script>x</script>', label=HOSTILE, importance=0.1
    )
    document = _render(response)
    lowered = document.lower()
    assert "<script" not in lowered and "<img src=x" not in lowered
    assert "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt;" in document
    parsed = parse(document)
    assert "script" not in parsed.tags
    text = parsed.all_text()
    # The reader still sees the name exactly as the service sent it.
    assert HOSTILE in text
    assert f"{HOSTILE}zine" in text and f"{HOSTILE}pam" in text
    # An attribute cannot be broken out of either.
    rows = [r for r in parsed.tables["medication-guidance"] if r.attrs.get("data-medication")]
    assert HOSTILE in {r.attrs["data-medication"] for r in rows}


def test_a_low_warning_has_no_expected_deterioration_and_no_zero_percent() -> None:
    response = fx.insights_response()
    warning = response.biometric.correlations.early_warning
    warning.level = common_pb2.RISK_LEVEL_LOW
    warning.probability = 0.001
    warning.expected_lead_days = 7
    biometric = parse(_render(response)).section("biometric")
    assert "expected in" not in biometric
    assert "7 days before symptoms" not in biometric
    assert "Early warning: Low — under 1% probability of deterioration within 7 days." in biometric
    assert " 0% " not in biometric


def test_an_elevated_warning_states_the_lead_as_a_lead() -> None:
    biometric = parse(_render(fx.insights_response())).section("biometric")
    assert (
        "41% probability of deterioration within 7 days; the patient's leading biometrics "
        "usually change about 3 days before symptoms do." in biometric
    )
    assert "expected in" not in biometric


def test_forecast_drivers_in_clinical_words_with_the_raw_name_kept() -> None:
    response = fx.insights_response()
    phq9 = response.forecast.forecast.forecasts[0]
    del phq9.feature_importance[:]
    phq9.feature_importance.add(
        feature="rolling_std_28",
        label="recent variability (28 days)",
        importance=0.4,
        source=forecasting_pb2.IMPORTANCE_SOURCE_SHAP,
    )
    # A server older than the label field: the raw name is all there is.
    phq9.feature_importance.add(feature="horizon", importance=0.2)
    document = _render(response)
    forecast = parse(document).section("forecast")
    assert "Forecast drivers: recent variability (28 days) (40%, SHAP), horizon (20%)." in forecast
    assert "rolling_std_28" not in forecast
    assert '<span title="rolling_std_28">recent variability (28 days)</span>' in document


def test_a_trend_that_is_not_significant_is_not_called_worsening() -> None:
    response = fx.insights_response()
    trend = response.forecast.forecast.forecasts[1].trend
    trend.direction = forecasting_pb2.TREND_DIRECTION_WORSENING
    trend.p_value = 0.4
    trend.significant = False
    forecast = parse(_render(response)).section("forecast")
    assert "Trend: no clear change, -0.3 points per week (p = 0.4, not significant)" in forecast


def test_a_trend_states_its_interval_and_evidence_not_a_bare_p_value() -> None:
    # The direction is decided by the 90 % slope interval, so a "worsening" trend with
    # p = 0.054 must not be printed beside that p-value alone.
    response = fx.insights_response()
    trend = response.forecast.forecast.forecasts[0].trend
    trend.p_value = 0.054
    trend.slope_lower_per_week, trend.slope_upper_per_week, trend.scores = 0.12, 2.16, 6
    forecast = parse(_render(response)).section("forecast")
    assert (
        "Trend: worsening, +1.1 points per week (90% interval +0.1 to +2.2/week from 6 scores)"
        in forecast
    )
    assert "p = 0.054" not in forecast
    text = format_insights(response)
    assert "worsening (+1.10/week; 90% interval +0.12 to +2.16/week from 6 scores)" in text
    assert "p=0.054" not in text


def test_correlations_without_a_key_indicator_say_no_evidence() -> None:
    response = fx.insights_response()
    del response.biometric.correlations.key_indicators[:]
    for correlation in response.biometric.correlations.correlations:
        correlation.significant = False
    biometric = parse(_render(response)).section("biometric")
    assert "No evidence that any biometric leads a symptom score" in biometric
    assert "Key indicators" not in biometric


def test_a_medication_nobody_knows_is_not_recognised_and_has_no_number() -> None:
    response = fx.insights_response()
    section = response.pharmacogenomics
    section.interactions.unsupported_medications.append("madeupazine")
    section.responses.unsupported_medications.append("madeupazine")
    section.side_effects.unsupported_medications.append("madeupazine")
    parsed = parse(_render(response))
    text = parsed.section("pharmacogenomics")
    assert (
        "Not recognised by the pharmacogenomics service (no guidance and no prediction): "
        "madeupazine." in text
    )
    assert "No pharmacogenomic guidance is available for: madeupazine" not in text
    rows = parsed.tables["medication-guidance"]
    assert "madeupazine" not in {r.attrs.get("data-medication") for r in rows}


def test_the_templates_ship_as_package_data() -> None:
    """An installed (non-editable) package finds its templates only if pyproject lists them."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["twin_orchestrator"]
    package = REPO_ROOT / "twin_orchestrator"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    templates = {p for p in (package / "templates").iterdir() if p.is_file()}
    assert templates and templates <= shipped
    assert package / "rules.yaml" in shipped
    pins = config["project"]["dependencies"]
    assert any(pin.startswith("Jinja2==") for pin in pins)


def test_the_own_history_check_says_how_far_to_trust_the_forecast() -> None:
    response = fx.insights_response()
    phq9, mood = response.forecast.forecast.forecasts[0], response.forecast.forecast.forecasts[1]
    phq9.own_history.pairs = 150
    phq9.own_history.ensemble_mae = 2.04
    phq9.own_history.seasonal_naive_mae = 2.61
    phq9.own_history.interval_scale = 1.2
    mood.own_history.pairs = 40
    mood.own_history.ensemble_mae = 3.5
    mood.own_history.seasonal_naive_mae = 3.9
    mood.own_history.interval_scale = 3.0
    mood.own_history.unfamiliar = True
    forecast = parse(_render(response)).section("forecast")
    calm = (
        "Forecast checked on 150 of this patient's earlier scores: typical error 2.0 points "
        "(repeating last week's or the last visit's score: 2.6)."
    )
    assert calm in forecast
    assert "checked on 40 of this patient's earlier scores: typical error 3.5 points" in forecast
    assert forecast.count("far less predictable than the training patients") == 1
    text = format_insights(response)
    assert "typical error 2.0 points (repeating last week's or the last visit's score: 2.6)" in text
    assert text.count("so the interval may be too narrow") == 1


def test_a_forecast_without_own_history_is_said_to_rest_on_the_training_patients() -> None:
    response = fx.insights_response()
    response.forecast.forecast.forecasts[0].own_history.SetInParent()  # pairs = 0
    text = format_insights(response)
    assert text.count("not checked on this patient's own scores (too few yet)") == 1
    forecast = parse(_render(response)).section("forecast")
    assert "rests on the training patients alone" in forecast
