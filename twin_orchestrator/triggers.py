"""Predicates over merged section results, named by the rules in rules.yaml.

Each trigger returns one Match per thing it found, with the fields the rule's
text and rationale may use, a confidence in [0, 1], the section it comes from
and its evidence. Triggers only read; they never call services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from common import wording
from common.clinical_scales import INSTRUMENT_LABELS
from common.proto_convert import from_timestamp
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.twin.v1 import twin_pb2

METRIC_NAMES = {
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: "resting heart rate",
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: "heart-rate variability (RMSSD)",
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: "sleep duration",
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: "sleep efficiency",
    common_pb2.BIOMETRIC_METRIC_STEPS: "steps",
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: "active minutes",
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "heart rate",
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: "heart-rate variability (SDNN)",
}
SECTION_NAMES = {
    twin_pb2.SECTION_FORECAST: "forecast",
    twin_pb2.SECTION_BIOMETRIC: "biometric",
    twin_pb2.SECTION_PHARMACOGENOMICS: "pharmacogenomics",
}


def risk_level_name(level: int) -> str:
    return common_pb2.RiskLevel.Name(level).removeprefix("RISK_LEVEL_")


def risk_level_value(name: str) -> int:
    return int(common_pb2.RiskLevel.Value(f"RISK_LEVEL_{name}"))


def phenotype_name(value: int) -> str:
    return pgx_pb2.Phenotype.Name(value).removeprefix("PHENOTYPE_").replace("_", " ").title()


def trend_words(trend: forecasting_pb2.Trend) -> str:
    """A trend that is not significant is not a finding: "no clear change", whichever
    way its slope happens to point."""
    if trend.direction == forecasting_pb2.TREND_DIRECTION_UNSPECIFIED:
        return "not assessed"
    if not trend.significant:
        return "no clear change"
    return (
        forecasting_pb2.TrendDirection.Name(trend.direction)
        .removeprefix("TREND_DIRECTION_")
        .lower()
    )


def trend_evidence(trend: forecasting_pb2.Trend, digits: int = 2) -> str:
    """The uncertainty a reader needs beside the slope: the 90 % interval of the slope
    and how many scores it rests on (the interval decides the direction, so a bare
    p-value would mislead); a trend without them (older responses) keeps its p-value."""
    if trend.scores > 0:
        lower, upper = trend.slope_lower_per_week, trend.slope_upper_per_week
        scores = "score" if trend.scores == 1 else "scores"
        interval = f"{lower:+.{digits}f} to {upper:+.{digits}f}/week"
        return f"90% interval {interval} from {trend.scores} {scores}"
    significance = "significant" if trend.significant else "not significant"
    return f"p = {trend.p_value:.3g}, {significance}"


def own_history_words(check: forecasting_pb2.OwnHistoryCheck) -> str:
    """How far to trust a forecast, from how it did on the patient's own earlier scores."""
    if check.pairs == 0:
        return (
            "not checked on this patient's own scores (too few yet): "
            "it rests on the training patients alone"
        )
    scores = "score" if check.pairs == 1 else "scores"
    words = (
        f"checked on {check.pairs} of this patient's earlier {scores}: typical error "
        f"{check.ensemble_mae:.1f} points (repeating last week's or the last visit's score: "
        f"{check.seasonal_naive_mae:.1f})"
    )
    if check.unfamiliar:
        words += (
            "; this patient's scores are far less predictable than the training "
            "patients', so the interval may be too narrow"
        )
    return words


@dataclass(frozen=True)
class Match:
    fields: dict[str, Any]
    confidence: float
    source_section: str
    evidence: tuple[common_pb2.Evidence, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Context:
    response: twin_pb2.GenerateInsightsResponse
    data: twin_pb2.PatientData
    now: datetime

    def ok(self, section: twin_pb2.SectionResult) -> bool:
        return section.status in (common_pb2.SECTION_STATUS_OK, common_pb2.SECTION_STATUS_DEGRADED)

    @property
    def today(self) -> date:
        """The day the reader acts on: the request's own day, or the data's if later."""
        day = self.now.date()
        if self.response.HasField("generated_at"):
            day = max(day, from_timestamp(self.response.generated_at).date())
        return day

    def forecast_window_days(self, within_days: int) -> int:
        """``within_days``, cut to the horizon actually forecast: with a 7-day forecast
        nothing can be said about days 8..14."""
        horizons = [
            point.horizon_day
            for forecast in self.response.forecast.forecast.forecasts
            for point in forecast.points
        ]
        return min(within_days, max(horizons)) if horizons else within_days


def instrument_in_sentence(instrument: int, fallback: str = "symptoms") -> str:
    """The instrument's name inside a sentence: "mood", but "PHQ-9" keeps its capitals."""
    label = INSTRUMENT_LABELS.get(instrument, fallback)
    return label if any(c.isdigit() for c in label) else label.lower()


Trigger = Callable[[Context, Mapping[str, Any]], list[Match]]


def _risk_periods(
    ctx: Context, within_days: int, min_probability: float
) -> list[tuple[forecasting_pb2.InstrumentForecast, forecasting_pb2.RiskPeriod]]:
    section = ctx.response.forecast
    if not ctx.ok(section.result):
        return []
    horizon_end = ctx.now + timedelta(days=ctx.forecast_window_days(within_days))
    found = []
    for forecast in section.forecast.forecasts:
        for period in forecast.risk_periods:
            if period.peak_probability < min_probability:
                continue
            if from_timestamp(period.start_date) > horizon_end:
                continue
            found.append((forecast, period))
    return found


def _severe(
    forecast: forecasting_pb2.InstrumentForecast,
    period: forecasting_pb2.RiskPeriod,
    params: Mapping[str, Any],
) -> bool:
    if forecast.instrument == common_pb2.INSTRUMENT_PHQ9:
        return period.threshold >= float(params["phq9_threshold"])
    if forecast.instrument == common_pb2.INSTRUMENT_GAD7:
        return period.threshold >= float(params["gad7_threshold"])
    return False


def _period_fields(
    ctx: Context, forecast: forecasting_pb2.InstrumentForecast, period: forecasting_pb2.RiskPeriod
) -> dict[str, Any]:
    start = from_timestamp(period.start_date).date()
    end = from_timestamp(period.end_date).date()
    today = ctx.today
    # "Review before <date>" must leave a day to act on: a period starting today or
    # earlier asks for a review now, never "before" a day that has already come.
    return {
        "instrument": INSTRUMENT_LABELS.get(forecast.instrument, "score"),
        "threshold_label": period.threshold_label,
        "threshold": period.threshold,
        "start": wording.day(start),
        "from_when": f"from {wording.day(start)}" if start > today else "from today",
        "review_by": f"before {wording.day(start)}" if start > today else "as soon as possible",
        "peak_date": wording.day(from_timestamp(period.peak_date)),
        "peak": period.peak_probability,
        "peak_chance": wording.chance(period.peak_probability),
        "days": (end - start).days + 1,
        "days_at_risk": wording.plural((end - start).days + 1, "day"),
    }


def _forecast_evidence(ctx: Context) -> tuple[common_pb2.Evidence, ...]:
    models = ", ".join(f"{m.name} {m.version}" for m in ctx.response.forecast.forecast.models)
    return (common_pb2.Evidence(source="Novamind symptom forecast", detail=models),)


def severe_forecast_with_warning(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    warning = ctx.response.biometric.correlations.early_warning
    if not ctx.ok(ctx.response.biometric.result) or warning.insufficient_data:
        return []
    if warning.level < risk_level_value(str(params["min_warning_level"])):
        return []
    matches = []
    periods = _risk_periods(ctx, int(params["within_days"]), float(params["min_probability"]))
    for forecast, period in periods:
        if not _severe(forecast, period, params):
            continue
        fields = _period_fields(ctx, forecast, period)
        fields.update(
            warning_level=risk_level_name(warning.level).lower(),
            warning_probability=warning.probability,
            warning_percent=wording.percent(warning.probability),
        )
        matches.append(
            Match(
                fields,
                confidence=min(period.peak_probability, max(warning.probability, 0.5)),
                source_section="forecast+biometric",
                evidence=(
                    *_forecast_evidence(ctx),
                    common_pb2.Evidence(source="Novamind biometric early warning"),
                ),
            )
        )
    return matches[:1]


def forecast_risk_period(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    periods = _risk_periods(ctx, int(params["within_days"]), float(params["min_probability"]))
    best: dict[int, tuple[forecasting_pb2.InstrumentForecast, forecasting_pb2.RiskPeriod]] = {}
    for forecast, period in periods:
        current = best.get(forecast.instrument)
        if current is None or period.threshold > current[1].threshold:
            best[forecast.instrument] = (forecast, period)
    return [
        Match(
            _period_fields(ctx, f, p),
            p.peak_probability,
            "forecast",
            _forecast_evidence(ctx),
        )
        for f, p in best.values()
    ]


def early_warning(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    warning = ctx.response.biometric.correlations.early_warning
    if not ctx.ok(ctx.response.biometric.result) or warning.insufficient_data:
        return []
    if warning.level < risk_level_value(str(params["min_level"])):
        return []
    drivers = ", ".join(
        dict.fromkeys(METRIC_NAMES.get(d.metric, "other") for d in warning.drivers[:3])
    )
    return [
        Match(
            {
                "level": risk_level_name(warning.level).lower(),
                "probability": warning.probability,
                "percent": wording.percent(warning.probability),
                "lead_days": warning.expected_lead_days or 7,
                "lead": wording.plural(warning.expected_lead_days or 7, "day"),
                "drivers": drivers or "not reported",
            },
            warning.probability,
            "biometric",
            (common_pb2.Evidence(source="Novamind biometric early warning"),),
        )
    ]


def early_warning_out_of_distribution(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    warning = ctx.response.biometric.correlations.early_warning
    if not ctx.ok(ctx.response.biometric.result) or not warning.out_of_distribution:
        return []
    return [
        Match(
            {"reason": warning.out_of_distribution_reason or "outside the training range"},
            1.0,
            "biometric",
            (common_pb2.Evidence(source="Novamind biometric early warning"),),
        )
    ]


def worsening_trend(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.forecast.result):
        return []
    return [
        Match(
            {
                "instrument": INSTRUMENT_LABELS.get(f.instrument, "score"),
                "slope": f.trend.slope_per_week,
                "p_value": f.trend.p_value,
                "change": abs(f.trend.fitted_change),
                # Worsening mood is a falling score: say which way the scores went.
                "moved": "rose" if f.trend.fitted_change > 0 else "fell",
                "p_text": "p < 0.001" if f.trend.p_value < 0.001 else f"p = {f.trend.p_value:.3f}",
            },
            max(0.0, min(1.0, 1.0 - f.trend.p_value)),
            "forecast",
            _forecast_evidence(ctx),
        )
        for f in ctx.response.forecast.forecast.forecasts
        if f.trend.direction == forecasting_pb2.TREND_DIRECTION_WORSENING and f.trend.significant
    ]


_STRENGTH_CONFIDENCE = {
    pgx_pb2.CLASSIFICATION_STRENGTH_STRONG: 0.95,
    pgx_pb2.CLASSIFICATION_STRENGTH_MODERATE: 0.8,
    pgx_pb2.CLASSIFICATION_STRENGTH_FDA_LABEL: 0.8,
    pgx_pb2.CLASSIFICATION_STRENGTH_OPTIONAL: 0.6,
}


def medication_guidance(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.pharmacogenomics.result):
        return []
    actions = {pgx_pb2.GuidanceAction.Value(f"GUIDANCE_ACTION_{a}") for a in params["actions"]}
    strengths = {
        pgx_pb2.ClassificationStrength.Value(f"CLASSIFICATION_STRENGTH_{s}")
        for s in params["strengths"]
    }
    matches = []
    for item in ctx.response.pharmacogenomics.interactions.interactions:
        if item.is_current != bool(params["current"]):
            continue
        if item.action not in actions or item.strength not in strengths:
            continue
        matches.append(
            Match(
                {
                    "medication": item.medication,
                    "gene": item.gene,
                    "recommendation": item.recommendation,
                    "rationale": " ".join(
                        part for part in (item.rationale, item.what_would_change) if part
                    ),
                },
                _STRENGTH_CONFIDENCE.get(item.strength, 0.5),
                "pharmacogenomics",
                (item.evidence,),
            )
        )
    return matches


def phenoconversion(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.pharmacogenomics.result):
        return []
    return [
        Match(
            {
                "inhibitor": p.inhibitor,
                "gene": p.gene,
                "to_phenotype": phenotype_name(p.to_phenotype).lower(),
                "what_would_change": p.what_would_change,
            },
            0.8,
            "pharmacogenomics",
            (p.evidence,),
        )
        for p in ctx.response.pharmacogenomics.interactions.phenoconversions
    ]


_FREQUENCY_WORDS = {
    biometric_pb2.MONITORING_FREQUENCY_CONTINUOUS: "continuously, with alerts",
    biometric_pb2.MONITORING_FREQUENCY_DAILY: "daily",
    biometric_pb2.MONITORING_FREQUENCY_WEEKLY: "weekly",
}


def _sentence_start(text: str) -> str:
    return text[:1].upper() + text[1:]


def key_biometric_indicator(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.biometric.result):
        return []
    indicators = [
        k
        for k in ctx.response.biometric.correlations.key_indicators
        if k.strength >= float(params["min_strength"])
    ]
    # The recommendation repeats the monitoring plan's frequency, so the two never disagree.
    frequency = {
        m.metric: _FREQUENCY_WORDS[m.frequency]
        for m in ctx.response.biometric.monitoring_plan.metrics
        if m.frequency in _FREQUENCY_WORDS
    }
    matches = []
    for k in indicators[:1]:
        indicator = instrument_in_sentence(k.indicator)
        relation = (
            f"it changes about {wording.plural(k.lead_days, 'day')} before {indicator} does"
            if k.lead_days > 0
            else f"it changes on the same days as {indicator}"
        )
        matches.append(
            Match(
                {
                    "metric": METRIC_NAMES.get(k.metric, "a biometric"),
                    "indicator": indicator,
                    "lead_days": k.lead_days,
                    "relation": relation,
                    "frequency": frequency.get(k.metric, "daily"),
                    "strength": k.strength,
                    "reading": _sentence_start(k.reading),
                },
                min(1.0, k.strength),
                "biometric",
                (common_pb2.Evidence(source="Novamind lagged correlation", detail=k.reading),),
            )
        )
    return matches


def recent_anomalies(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.biometric.result):
        return []
    since = ctx.now - timedelta(days=int(params["days"]))
    floor = biometric_pb2.AnomalySeverity.Value(f"ANOMALY_SEVERITY_{params['min_severity']}")
    recent = [
        a
        for a in ctx.response.biometric.anomalies.anomalies
        if a.severity >= floor and from_timestamp(a.date) >= since
    ]
    if len(recent) < int(params["min_count"]):
        return []
    metrics = sorted({METRIC_NAMES.get(d.metric, "other") for a in recent for d in a.deviations})
    return [
        Match(
            {"count": len(recent), "metrics": ", ".join(metrics) or "several metrics"},
            min(1.0, 0.5 + 0.1 * len(recent)),
            "biometric",
            (common_pb2.Evidence(source="Novamind anomaly detection"),),
        )
    ]


_STATUS_WORDS = {
    common_pb2.SECTION_STATUS_DEGRADED: "incomplete",
    common_pb2.SECTION_STATUS_UNAVAILABLE: "unavailable",
    common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED: "missing (its service did not answer in time)",
}


def section_not_ok(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    sections = (
        ctx.response.forecast.result,
        ctx.response.biometric.result,
        ctx.response.pharmacogenomics.result,
    )
    bad = (
        common_pb2.SECTION_STATUS_DEGRADED,
        common_pb2.SECTION_STATUS_UNAVAILABLE,
        common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED,
    )
    return [
        Match(
            {
                "section": SECTION_NAMES.get(s.section, "a"),
                "status": _STATUS_WORDS[s.status],
                "detail": s.detail or "No detail.",
            },
            1.0,
            SECTION_NAMES.get(s.section, ""),
        )
        for s in sections
        if s.status in bad
    ]


def low_reliability(ctx: Context, params: Mapping[str, Any]) -> list[Match]:
    if not ctx.ok(ctx.response.biometric.result):
        return []
    grade = ctx.response.biometric.correlations.reliability
    if grade not in (
        biometric_pb2.RELIABILITY_GRADE_LOW,
        biometric_pb2.RELIABILITY_GRADE_INSUFFICIENT,
    ):
        return []
    name = biometric_pb2.ReliabilityGrade.Name(grade).removeprefix("RELIABILITY_GRADE_").lower()
    return [Match({"grade": f"{name} reliability"}, 1.0, "biometric")]


TRIGGERS: dict[str, Trigger] = {
    "severe_forecast_with_warning": severe_forecast_with_warning,
    "forecast_risk_period": forecast_risk_period,
    "early_warning": early_warning,
    "early_warning_out_of_distribution": early_warning_out_of_distribution,
    "worsening_trend": worsening_trend,
    "medication_guidance": medication_guidance,
    "phenoconversion": phenoconversion,
    "key_biometric_indicator": key_biometric_indicator,
    "recent_anomalies": recent_anomalies,
    "section_not_ok": section_not_ok,
    "low_reliability": low_reliability,
}
