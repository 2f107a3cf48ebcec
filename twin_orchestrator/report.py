"""The clinician-facing insights report: one self-contained, printable HTML page.

Built from a ``GenerateInsightsResponse`` and the ``PatientData`` it was made
from. No JavaScript, no external URL: styles are inline and figures are
embedded as base64 PNG. The markup lives in Jinja2 templates
(``twin_orchestrator/templates/``, one per section) with autoescape on, so
every string that comes from a service (recommendation texts, rationales,
guidance, details) is HTML-escaped without anyone having to remember it: the
report stays inert whatever those services return. This module only turns the
response into plain values (labels, formatted numbers, encoded figures) for
the templates. The report is a clinical document and may show clinical
values; it never shows the real patient identifier (the response has none),
only an optional display label chosen by the caller.

Each section follows its status: OK and DEGRADED sections show what they have
(a degraded one under a notice saying it is partial); UNAVAILABLE,
DEADLINE_EXCEEDED, SKIPPED and unset statuses show one sentence instead.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import Environment, PackageLoader, StrictUndefined

from common import wording
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.report_plots import (
    CLINICAL_THRESHOLDS,
    RISK_LABELS,
    SEVERITY_LABELS,
    RenderedPlot,
    anomaly_timeline,
    correlation_chart,
    forecast_fan_chart,
    instrument_label,
    metric_label,
    risk_timeline,
    to_datetime,
)
from twin_orchestrator.triggers import own_history_words, trend_evidence, trend_words

_LOGGER = logging.getLogger(__name__)

#: Request ids are uuid4 hex (common.request_context); only that shape may name a file.
REQUEST_ID_SHAPE = re.compile(r"^[0-9a-f]{32}$")

_SHOWN_STATUSES = frozenset({common_pb2.SECTION_STATUS_OK, common_pb2.SECTION_STATUS_DEGRADED})

STATUS_LABELS: dict[int, str] = {
    common_pb2.SECTION_STATUS_UNSPECIFIED: "No status",
    common_pb2.SECTION_STATUS_OK: "OK",
    common_pb2.SECTION_STATUS_DEGRADED: "Degraded",
    common_pb2.SECTION_STATUS_UNAVAILABLE: "Unavailable",
    common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED: "Deadline exceeded",
    common_pb2.SECTION_STATUS_SKIPPED: "Skipped",
}

_STATUS_SENTENCES: dict[int, str] = {
    common_pb2.SECTION_STATUS_UNSPECIFIED: "The {name} reported no status, so it is not shown.",
    common_pb2.SECTION_STATUS_DEGRADED: (
        "The {name} is incomplete: what is shown below is partial and should be read with care."
    ),
    common_pb2.SECTION_STATUS_UNAVAILABLE: (
        "The {name} is unavailable: the service behind it could not be reached or failed, "
        "so nothing is shown for it."
    ),
    common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED: (
        "The {name} is missing: its service did not answer in time, so nothing is shown for it."
    ),
    common_pb2.SECTION_STATUS_SKIPPED: (
        "The {name} was not run: there was no input data for it, or it was not requested."
    ),
}

_SECTION_NAMES: dict[int, str] = {
    twin_pb2.SECTION_FORECAST: "symptom forecast",
    twin_pb2.SECTION_BIOMETRIC: "biometric analysis",
    twin_pb2.SECTION_PHARMACOGENOMICS: "pharmacogenomic analysis",
}

PRIORITY_LABELS: dict[int, str] = {
    common_pb2.PRIORITY_UNSPECIFIED: "Unranked",
    common_pb2.PRIORITY_URGENT: "Urgent",
    common_pb2.PRIORITY_HIGH: "High",
    common_pb2.PRIORITY_MEDIUM: "Medium",
    common_pb2.PRIORITY_LOW: "Low",
}

CATEGORY_LABELS: dict[int, str] = {
    common_pb2.RECOMMENDATION_CATEGORY_UNSPECIFIED: "General",
    common_pb2.RECOMMENDATION_CATEGORY_CLINICAL_FOLLOW_UP: "Clinical follow-up",
    common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW: "Medication review",
    common_pb2.RECOMMENDATION_CATEGORY_MONITORING: "Monitoring",
    common_pb2.RECOMMENDATION_CATEGORY_DATA_QUALITY: "Data quality",
}

PHENOTYPE_LABELS: dict[int, str] = {
    pgx_pb2.PHENOTYPE_UNSPECIFIED: "Not assessed",
    pgx_pb2.PHENOTYPE_ULTRARAPID_METABOLIZER: "Ultrarapid metabolizer",
    pgx_pb2.PHENOTYPE_RAPID_METABOLIZER: "Rapid metabolizer",
    pgx_pb2.PHENOTYPE_NORMAL_METABOLIZER: "Normal metabolizer",
    pgx_pb2.PHENOTYPE_LIKELY_INTERMEDIATE_METABOLIZER: "Likely intermediate metabolizer",
    pgx_pb2.PHENOTYPE_INTERMEDIATE_METABOLIZER: "Intermediate metabolizer",
    pgx_pb2.PHENOTYPE_LIKELY_POOR_METABOLIZER: "Likely poor metabolizer",
    pgx_pb2.PHENOTYPE_POOR_METABOLIZER: "Poor metabolizer",
    pgx_pb2.PHENOTYPE_INDETERMINATE: "Indeterminate",
    pgx_pb2.PHENOTYPE_POSITIVE: "Positive (carrier)",
    pgx_pb2.PHENOTYPE_NEGATIVE: "Negative",
}

ACTION_LABELS: dict[int, str] = {
    pgx_pb2.GUIDANCE_ACTION_UNSPECIFIED: "Not stated",
    pgx_pb2.GUIDANCE_ACTION_USE_STANDARD: "Use standard",
    pgx_pb2.GUIDANCE_ACTION_ADJUST_DOSE: "Adjust dose",
    pgx_pb2.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE: "Consider alternative",
    pgx_pb2.GUIDANCE_ACTION_AVOID: "Avoid",
    pgx_pb2.GUIDANCE_ACTION_USE_WITH_CAUTION: "Use with caution",
    pgx_pb2.GUIDANCE_ACTION_NO_RECOMMENDATION: "No recommendation",
}

# Most restrictive first, so the rows a prescriber must not miss lead the table.
_ACTION_ORDER: tuple[int, ...] = (
    pgx_pb2.GUIDANCE_ACTION_AVOID,
    pgx_pb2.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE,
    pgx_pb2.GUIDANCE_ACTION_ADJUST_DOSE,
    pgx_pb2.GUIDANCE_ACTION_USE_WITH_CAUTION,
    pgx_pb2.GUIDANCE_ACTION_USE_STANDARD,
    pgx_pb2.GUIDANCE_ACTION_NO_RECOMMENDATION,
    pgx_pb2.GUIDANCE_ACTION_UNSPECIFIED,
)

STRENGTH_LABELS: dict[int, str] = {
    pgx_pb2.CLASSIFICATION_STRENGTH_UNSPECIFIED: "Not graded",
    pgx_pb2.CLASSIFICATION_STRENGTH_STRONG: "Strong",
    pgx_pb2.CLASSIFICATION_STRENGTH_MODERATE: "Moderate",
    pgx_pb2.CLASSIFICATION_STRENGTH_OPTIONAL: "Optional",
    pgx_pb2.CLASSIFICATION_STRENGTH_NO_RECOMMENDATION: "No recommendation",
    pgx_pb2.CLASSIFICATION_STRENGTH_FDA_LABEL: "FDA label",
}

_INHIBITOR_LABELS: dict[int, str] = {
    pgx_pb2.INHIBITOR_STRENGTH_UNSPECIFIED: "",
    pgx_pb2.INHIBITOR_STRENGTH_STRONG: "strong ",
    pgx_pb2.INHIBITOR_STRENGTH_MODERATE: "moderate ",
    pgx_pb2.INHIBITOR_STRENGTH_WEAK: "weak ",
}

TREND_LABELS: dict[int, str] = {
    forecasting_pb2.TREND_DIRECTION_UNSPECIFIED: "not assessed",
    forecasting_pb2.TREND_DIRECTION_IMPROVING: "improving",
    forecasting_pb2.TREND_DIRECTION_STABLE: "stable",
    forecasting_pb2.TREND_DIRECTION_WORSENING: "worsening",
}

_IMPORTANCE_LABELS: dict[int, str] = {
    forecasting_pb2.IMPORTANCE_SOURCE_UNSPECIFIED: "",
    forecasting_pb2.IMPORTANCE_SOURCE_SHAP: "SHAP",
    forecasting_pb2.IMPORTANCE_SOURCE_ATTENTION: "attention",
}

_RELIABILITY_LABELS: dict[int, str] = {
    biometric_pb2.RELIABILITY_GRADE_UNSPECIFIED: "not assessed",
    biometric_pb2.RELIABILITY_GRADE_HIGH: "high",
    biometric_pb2.RELIABILITY_GRADE_MODERATE: "moderate",
    biometric_pb2.RELIABILITY_GRADE_LOW: "low — read with caution",
    biometric_pb2.RELIABILITY_GRADE_INSUFFICIENT: "insufficient",
}

_FREQUENCY_LABELS: dict[int, str] = {
    biometric_pb2.MONITORING_FREQUENCY_UNSPECIFIED: "Not stated",
    biometric_pb2.MONITORING_FREQUENCY_CONTINUOUS: "Continuous, with alerts",
    biometric_pb2.MONITORING_FREQUENCY_DAILY: "Daily",
    biometric_pb2.MONITORING_FREQUENCY_WEEKLY: "Weekly",
}

_DETECTOR_LABELS: dict[int, str] = {
    biometric_pb2.DETECTION_METHOD_UNSPECIFIED: "—",
    biometric_pb2.DETECTION_METHOD_ROBUST_Z: "Robust z-score",
    biometric_pb2.DETECTION_METHOD_ISOLATION_FOREST: "Isolation forest",
    biometric_pb2.DETECTION_METHOD_BOTH: "Both detectors",
}

_MEDICATION_CHANGE_LABELS: dict[int, str] = {
    common_pb2.MEDICATION_EVENT_TYPE_UNSPECIFIED: "changed",
    common_pb2.MEDICATION_EVENT_TYPE_START: "started",
    common_pb2.MEDICATION_EVENT_TYPE_STOP: "stopped",
    common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE: "dose changed",
}

OVERRIDE_FLAG = "Guidance overrides prediction"

#: autoescape=True for every template (not by extension): no template can opt out by
#: its file name. StrictUndefined turns a misspelt field into an error in the tests
#: instead of a silently empty cell in a clinician's report.
_TEMPLATES = Environment(
    loader=PackageLoader("twin_orchestrator", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_report(
    response: twin_pb2.GenerateInsightsResponse,
    data: twin_pb2.PatientData,
    *,
    progress: twin_pb2.GetPatientProgressResponse | None = None,
    title: str = "Digital twin insights",
    patient_label: str | None = None,
) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    return _TEMPLATES.get_template("report.html").render(
        title=title,
        patient_label=patient_label,
        header=_header(response),
        summary=_summary(response),
        recommendations=[_recommendation(rec) for rec in response.recommendations],
        status_rows=_status_rows(response),
        forecast=_forecast_section(response.forecast, data),
        biometric=_biometric_section(response.biometric, data),
        pgx=_pharmacogenomics_section(response.pharmacogenomics),
        progress=_progress_section(progress) if progress is not None else None,
        provenance=_provenance(response),
        override_flag=OVERRIDE_FLAG,
    )


def write_report(
    directory: Path,
    response: twin_pb2.GenerateInsightsResponse,
    data: twin_pb2.PatientData,
    progress: twin_pb2.GetPatientProgressResponse | None = None,
    *,
    patient_label: str | None = None,
) -> Path:
    """Write ``<directory>/<request_id>.html`` and return its path.

    The file name comes from the response, so only the exact request-id shape is
    accepted: anything else could climb out of ``directory``.
    """
    if not REQUEST_ID_SHAPE.match(response.request_id):
        raise ValueError("request_id must be 32 lowercase hex characters")
    document = render_report(response, data, progress=progress, patient_label=patient_label)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{response.request_id}.html"
    path.write_text(document, encoding="utf-8")
    _LOGGER.info("insights report written", extra={"section": "report"})
    return path


# -- values for the templates ---------------------------------------------------------


def _when(timestamp: Timestamp) -> str:
    return f"{to_datetime(timestamp):%d %b %Y %H:%M} UTC"


def _day(timestamp: Timestamp) -> str:
    return wording.day(to_datetime(timestamp))


def _latency(duration: Duration) -> str:
    millis = duration.ToMilliseconds()
    if millis <= 0:
        return "—"
    return f"{millis} ms" if millis < 1000 else f"{millis / 1000:.1f} s"


@dataclass(frozen=True)
class Figure:
    """An embedded PNG, or (``png_base64`` empty) the sentence saying it could not be drawn."""

    key: str
    caption: str
    png_base64: str = ""
    alt: str = ""
    width_px: int = 0
    height_px: int = 0


def _figure(key: str, build: Callable[[], RenderedPlot], caption: str) -> Figure:
    try:
        plot = build()
    except Exception as exc:  # a bad figure must not cost the clinician the whole report
        _LOGGER.warning(
            "report figure failed", extra={"section": key, "status": type(exc).__name__}
        )
        return Figure(key, caption)
    encoded = base64.b64encode(plot.png).decode("ascii")
    return Figure(key, caption, encoded, plot.alt, plot.width_px, plot.height_px)


def _header(response: twin_pb2.GenerateInsightsResponse) -> dict[str, str]:
    return {
        "generated": (
            _when(response.generated_at) if response.HasField("generated_at") else "not recorded"
        ),
        "request_id": response.request_id,
        "snapshot_id": response.snapshot_id,
    }


def _risk_class(level: int) -> str:
    classes: dict[int, str] = {
        common_pb2.RISK_LEVEL_LOW: "risk-low",
        common_pb2.RISK_LEVEL_ELEVATED: "risk-elevated",
        common_pb2.RISK_LEVEL_HIGH: "risk-high",
        common_pb2.RISK_LEVEL_CRITICAL: "risk-critical",
    }
    return classes.get(level, "risk-none")


_RISK_MEANINGS: dict[int, str] = {
    common_pb2.RISK_LEVEL_UNSPECIFIED: "The overall risk could not be assessed.",
    common_pb2.RISK_LEVEL_LOW: "No sign of deterioration.",
    common_pb2.RISK_LEVEL_ELEVATED: "Some signs of deterioration; watch more closely.",
    common_pb2.RISK_LEVEL_HIGH: "Deterioration likely; clinical contact advised.",
    common_pb2.RISK_LEVEL_CRITICAL: "Deterioration likely and severe; urgent contact advised.",
}


def _summary(response: twin_pb2.GenerateInsightsResponse) -> dict[str, Any]:
    level = response.overall_risk
    return {
        "css": _risk_class(level),
        "label": RISK_LABELS.get(level, "Unknown"),
        "meaning": _RISK_MEANINGS.get(level, ""),
        "drivers": list(response.risk_drivers),
    }


def _priority_class(priority: int) -> str:
    classes: dict[int, str] = {
        common_pb2.PRIORITY_URGENT: "priority-urgent",
        common_pb2.PRIORITY_HIGH: "priority-high",
        common_pb2.PRIORITY_MEDIUM: "priority-medium",
    }
    return classes.get(priority, "")


def _recommendation(rec: common_pb2.Recommendation) -> dict[str, Any]:
    return {
        "rule_id": rec.rule_id,
        "priority": PRIORITY_LABELS.get(rec.priority, "Unranked"),
        "priority_css": _priority_class(rec.priority),
        "category": CATEGORY_LABELS.get(rec.category, "General"),
        "confidence": f"{rec.confidence:.0%}",
        "source_section": rec.source_section,
        "text": rec.text,
        "rationale": rec.rationale,
        "evidence": list(rec.evidence),
    }


def _status_class(status: int) -> str:
    if status == common_pb2.SECTION_STATUS_OK:
        return "status-ok"
    if status in (common_pb2.SECTION_STATUS_DEGRADED, common_pb2.SECTION_STATUS_SKIPPED):
        return "status-degraded"
    return "status-failed"


def _section_results(
    response: twin_pb2.GenerateInsightsResponse,
) -> list[tuple[int, twin_pb2.SectionResult]]:
    return [
        (twin_pb2.SECTION_FORECAST, response.forecast.result),
        (twin_pb2.SECTION_BIOMETRIC, response.biometric.result),
        (twin_pb2.SECTION_PHARMACOGENOMICS, response.pharmacogenomics.result),
    ]


def _status_rows(response: twin_pb2.GenerateInsightsResponse) -> list[dict[str, Any]]:
    return [
        {
            "section": section,
            "name": _SECTION_NAMES[section].capitalize(),
            "css": _status_class(result.status),
            "label": STATUS_LABELS.get(result.status, "No status"),
            "detail": result.detail,
            "latency": _latency(result.latency),
        }
        for section, result in _section_results(response)
    ]


def _notice(section: int, result: twin_pb2.SectionResult) -> dict[str, str] | None:
    """The sentence standing in for (or above) a section that is not OK."""
    if result.status == common_pb2.SECTION_STATUS_OK:
        return None
    template = _STATUS_SENTENCES.get(result.status, _STATUS_SENTENCES[0])
    sentence = template.format(name=_SECTION_NAMES[section])
    if result.detail:
        sentence += f" Detail: {result.detail}"
    return {
        "css": "notice"
        if result.status == common_pb2.SECTION_STATUS_DEGRADED
        else "notice missing",
        "status": STATUS_LABELS.get(result.status, ""),
        "sentence": sentence,
    }


# -- forecast --------------------------------------------------------------------------


def _forecast_section(
    section: twin_pb2.ForecastSection, data: twin_pb2.PatientData
) -> dict[str, Any]:
    shown = section.result.status in _SHOWN_STATUSES
    coverage = section.forecast.validation_interval_coverage
    instruments = []
    for forecast in section.forecast.forecasts if shown else ():
        if not forecast.points:
            continue
        label = instrument_label(forecast.instrument)
        instruments.append(
            {
                "label": label,
                "observed_days": forecast.observed_days,
                "trend": _trend(forecast) if forecast.HasField("trend") else None,
                "own_history": (
                    own_history_words(forecast.own_history)
                    if forecast.HasField("own_history")
                    else None
                ),
                "unfamiliar": forecast.own_history.unfamiliar,
                "risk_periods": [
                    {
                        "start": _day(p.start_date),
                        "end": _day(p.end_date),
                        "label": p.threshold_label,
                        "peak": wording.percent(p.peak_probability),
                        "peak_day": _day(p.peak_date),
                    }
                    for p in forecast.risk_periods
                ],
                "figure": _figure(
                    f"forecast-{label.lower()}",
                    partial(
                        forecast_fan_chart, forecast, data.symptoms, validation_coverage=coverage
                    ),
                    _fan_caption(label, forecast),
                ),
                "drivers": [
                    {
                        # Servers older than the label field send only the raw name.
                        "label": fi.label or fi.feature,
                        "feature": fi.feature,
                        "share": f"{fi.importance:.0%}",
                        "source": _IMPORTANCE_LABELS.get(fi.source, ""),
                    }
                    for fi in forecast.feature_importance[:5]
                ],
            }
        )
    return {
        "notice": _notice(twin_pb2.SECTION_FORECAST, section.result),
        "shown": shown,
        "instruments": instruments,
    }


def _fan_caption(label: str, forecast: forecasting_pb2.InstrumentForecast) -> str:
    drawn = [
        "observed scores (dark dots)",
        "point forecast (blue line)",
        "quantile band (shaded)",
        "calibrated interval (dashed)",
    ]
    if forecast.instrument in CLINICAL_THRESHOLDS:
        drawn.append("severity thresholds (dotted)")
    if forecast.risk_periods:
        drawn.append("risk periods (red shade)")
    return f"{label}: " + ", ".join(drawn) + "."


def _trend(forecast: forecasting_pb2.InstrumentForecast) -> dict[str, str]:
    trend = forecast.trend
    return {
        "words": trend_words(trend),
        "slope": f"{trend.slope_per_week:+.1f}",
        "evidence": trend_evidence(trend, digits=1),
    }


# -- biometrics ------------------------------------------------------------------------


def _biometric_section(
    section: twin_pb2.BiometricSection, data: twin_pb2.PatientData
) -> dict[str, Any]:
    shown = section.result.status in _SHOWN_STATUSES
    view: dict[str, Any] = {
        "notice": _notice(twin_pb2.SECTION_BIOMETRIC, section.result),
        "shown": shown,
        "warning": None,
        "correlations": None,
        "anomalies": None,
        "plan": None,
    }
    if not shown:
        return view
    if section.HasField("correlations"):
        view["warning"] = _early_warning(section.correlations.early_warning)
        view["correlations"] = _correlations(section.correlations)
    if section.HasField("anomalies"):
        view["anomalies"] = _anomalies(section.anomalies, data)
    if section.HasField("monitoring_plan"):
        view["plan"] = _monitoring_plan(section.monitoring_plan)
    return view


def _early_warning(warning: biometric_pb2.EarlyWarning) -> dict[str, Any]:
    if warning.insufficient_data:
        return {"insufficient": True, "detail": warning.detail}
    level = warning.level
    # The lead is how early this patient's biometrics move, not a date of deterioration:
    # beside a low warning it would read as a forecast that contradicts it.
    lead = ""
    if warning.expected_lead_days and level >= common_pb2.RISK_LEVEL_ELEVATED:
        lead = f"about {wording.plural(warning.expected_lead_days, 'day')}"
    return {
        "insufficient": False,
        "css": _risk_class(level),
        "label": RISK_LABELS.get(level, "Not assessed"),
        "probability": wording.percent(warning.probability),
        "lead": lead,
        "detail": warning.detail,
        "out_of_distribution": warning.out_of_distribution,
        "out_of_distribution_reason": warning.out_of_distribution_reason,
        "drivers": [
            {
                "description": d.description or metric_label(d.metric),
                "day": _day(d.date),
                "weight": f"{d.weight:.0%}",
            }
            for d in warning.drivers
        ],
    }


def _correlations(correlations: biometric_pb2.AnalyzeCorrelationsResponse) -> dict[str, Any]:
    coverage = correlations.coverage
    significant = sum(1 for c in correlations.correlations if c.significant)
    return {
        "reliability": _RELIABILITY_LABELS.get(correlations.reliability, "not assessed"),
        "window_days": coverage.window_days,
        "indicator_days": coverage.indicator_days,
        "any": bool(correlations.correlations),
        "not_significant": len(correlations.correlations) - significant,
        "figure": _figure(
            "correlations",
            lambda: correlation_chart(correlations.correlations, correlations.key_indicators),
            "Left: strongest lagged Pearson r per biometric and symptom (* = significant after "
            "false-discovery-rate correction). Right: r at each lead for the key indicators.",
        )
        if correlations.correlations
        else None,
        "key_indicators": [
            {
                "metric": metric_label(k.metric),
                "indicator": instrument_label(k.indicator),
                "reading": k.reading,
                "lead": wording.plural(k.lead_days, "day"),
                "strength": f"{k.strength:.2f}",
            }
            for k in sorted(correlations.key_indicators, key=lambda k: k.rank)
        ],
    }


def _anomalies(
    anomalies: biometric_pb2.DetectAnomaliesResponse, data: twin_pb2.PatientData
) -> dict[str, Any]:
    rows = []
    for anomaly in anomalies.anomalies:
        deviations = "; ".join(
            f"{metric_label(d.metric)} {d.value:g} vs baseline {d.baseline_median:g} "
            f"(z {d.robust_z:+.1f})"
            for d in anomaly.deviations
        )
        rows.append(
            {
                "day": _day(anomaly.date),
                "severity": SEVERITY_LABELS.get(anomaly.severity, "Unrated"),
                "deviations": deviations or "Several metrics together (multivariate)",
                "detector": _DETECTOR_LABELS.get(anomaly.method, "—"),
            }
        )
    drawable = bool(anomalies.anomalies or anomalies.missing) and not anomalies.insufficient_data
    return {
        "insufficient": anomalies.insufficient_data,
        "rows": rows,
        "gaps": [
            {
                "metric": metric_label(m.metric),
                "days": wording.plural(m.days, "day"),
                "start": _day(m.start_date),
                "end": _day(m.end_date),
            }
            for m in anomalies.missing
        ],
        "figure": _figure(
            "anomalies",
            lambda: anomaly_timeline(anomalies, data.biometrics),
            "Anomalous days by metric, coloured and shaped by severity; thin bars mark days "
            "with data, hatched blocks mark missing data.",
        )
        if drawable
        else None,
    }


def _monitoring_plan(plan: biometric_pb2.RecommendMonitoringPlanResponse) -> dict[str, Any]:
    return {
        "summary": plan.summary,
        "rows": [
            {
                "priority": m.priority,
                "metric": metric_label(m.metric),
                "frequency": _FREQUENCY_LABELS.get(m.frequency, "Not stated"),
                "alert_below": f"{m.alert_below:g}" if m.HasField("alert_below") else "—",
                "alert_above": f"{m.alert_above:g}" if m.HasField("alert_above") else "—",
                "reason": m.reason,
            }
            for m in sorted(plan.metrics, key=lambda m: m.priority)
        ],
    }


# -- pharmacogenomics ------------------------------------------------------------------


def _pharmacogenomics_section(section: twin_pb2.PharmacogenomicsSection) -> dict[str, Any]:
    shown = section.result.status in _SHOWN_STATUSES
    interactions = section.interactions
    # One rule across the service's answers: a name neither guidance nor prediction
    # knows is said once as "not recognised", not as a mere lack of guidance.
    unpredicted = set(section.responses.unsupported_medications) | set(
        section.side_effects.unsupported_medications
    )
    without_guidance = list(interactions.unsupported_medications)
    unrecognised = [m for m in without_guidance if m in unpredicted]
    version = interactions.knowledge_base_version
    return {
        "notice": _notice(twin_pb2.SECTION_PHARMACOGENOMICS, section.result),
        "shown": shown,
        "phenotypes": [_phenotype_row(p) for p in interactions.phenotypes],
        "conversions": [
            {
                "inhibitor": c.inhibitor,
                "strength": _INHIBITOR_LABELS.get(c.strength, ""),
                "gene": c.gene,
                "from_phenotype": PHENOTYPE_LABELS.get(c.from_phenotype, "Not assessed").lower(),
                "to_phenotype": PHENOTYPE_LABELS.get(c.to_phenotype, "Not assessed").lower(),
                "what_would_change": c.what_would_change,
                "evidence": c.evidence if c.evidence.source else None,
            }
            for c in interactions.phenoconversions
        ],
        "guidance": _guidance_rows(section) if shown else [],
        "guidance_caption": "Guidance per medication and gene, most restrictive first"
        + (f" (knowledge base {version})." if version else "."),
        "unrecognised": unrecognised,
        "without_guidance": [m for m in without_guidance if m not in unrecognised],
    }


def _phenotype_row(p: pgx_pb2.GenePhenotype) -> dict[str, str]:
    score = f"{p.activity_score:g}" if p.HasField("activity_score") else "—"
    if p.HasField("effective_activity_score") and p.effective_activity_score != p.activity_score:
        score += f" → {p.effective_activity_score:g}"
    return {
        "gene": p.gene,
        "diplotype": p.diplotype,
        "score": score,
        "from_genotype": PHENOTYPE_LABELS.get(p.genotype_phenotype, "Not assessed"),
        "effective": PHENOTYPE_LABELS.get(p.effective_phenotype, "Not assessed"),
        "explanation": p.explanation,
    }


def _phenotype_cell(
    interaction: pgx_pb2.GeneDrugInteraction,
    phenotypes: Sequence[pgx_pb2.GenePhenotype],
    conversions: Sequence[pgx_pb2.Phenoconversion],
) -> dict[str, Any]:
    effective = PHENOTYPE_LABELS.get(interaction.phenotype, "Not assessed")
    if not interaction.phenoconverted:
        return {"phenotype": effective, "phenoconverted": False, "inhibitors": ""}
    genes = set(interaction.gene.split("+"))
    from_genotype = next(
        (
            PHENOTYPE_LABELS.get(p.genotype_phenotype, "Not assessed")
            for p in phenotypes
            if p.gene in genes and p.genotype_phenotype != p.effective_phenotype
        ),
        None,
    )
    return {
        "phenotype": f"{from_genotype} (genotype) → {effective}" if from_genotype else effective,
        "phenoconverted": True,
        "inhibitors": ", ".join(sorted({c.inhibitor for c in conversions if c.gene in genes})),
    }


def _probability(value: float | None) -> str:
    return "—" if value is None else wording.percent(value)


def _sentence(text: str) -> str:
    stripped = text.strip()
    return stripped if stripped.endswith((".", "!", "?")) else f"{stripped}."


def _details(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The full-width row under a medication: the source's wording and the rationales,
    which would make the columns unreadably narrow."""
    return [(label, _sentence(text)) for label, text in pairs if text]


def _guidance_rows(section: twin_pb2.PharmacogenomicsSection) -> list[dict[str, Any]]:
    interactions = section.interactions
    response_of = {p.medication: p for p in section.responses.predictions}
    side_effect_of = {p.medication: p for p in section.side_effects.predictions}
    ordered = sorted(
        interactions.interactions,
        key=lambda i: (
            _ACTION_ORDER.index(i.action) if i.action in _ACTION_ORDER else len(_ACTION_ORDER),
            i.medication,
        ),
    )
    rows = []
    for interaction in ordered:
        response = response_of.get(interaction.medication)
        side_effect = side_effect_of.get(interaction.medication)
        overridden = bool(
            (response and response.guidance_overrides_prediction)
            or (side_effect and side_effect.guidance_overrides_prediction)
        )
        rows.append(
            {
                "medication": interaction.medication,
                "status": "current" if interaction.is_current else "candidate",
                "overridden": overridden,
                "gene": interaction.gene,
                **_phenotype_cell(
                    interaction, interactions.phenotypes, interactions.phenoconversions
                ),
                "action": ACTION_LABELS.get(interaction.action, "Not stated"),
                "action_strong": True,
                "strength": STRENGTH_LABELS.get(interaction.strength, "Not graded"),
                "dose_adjustment": interaction.dose_adjustment or "—",
                "alternatives": ", ".join(interaction.alternatives) or "—",
                "evidence": interaction.evidence if interaction.evidence.source else None,
                "response": _probability(response.response_probability if response else None),
                "side_effect": _probability(
                    side_effect.side_effect_probability if side_effect else None
                ),
                "details": _details(
                    [
                        ("Guidance as the source words it", interaction.recommendation),
                        ("Why", interaction.rationale),
                        ("What would change it", interaction.what_would_change),
                        ("Response prediction", response.rationale if response else ""),
                        ("Side-effect prediction", side_effect.rationale if side_effect else ""),
                    ]
                ),
            }
        )
    covered = {i.medication for i in interactions.interactions}
    for medication in sorted((set(response_of) | set(side_effect_of)) - covered):
        response = response_of.get(medication)
        side_effect = side_effect_of.get(medication)
        rows.append(
            {
                "medication": medication,
                "status": "candidate",
                "overridden": False,
                "gene": "—",
                "phenotype": "—",
                "phenoconverted": False,
                "inhibitors": "",
                "action": "No pharmacogenomic guidance",
                "action_strong": False,
                "strength": "—",
                "dose_adjustment": "—",
                "alternatives": "—",
                "evidence": None,
                "response": _probability(response.response_probability if response else None),
                "side_effect": _probability(
                    side_effect.side_effect_probability if side_effect else None
                ),
                "details": _details(
                    [
                        ("Response prediction", response.rationale if response else ""),
                        ("Side-effect prediction", side_effect.rationale if side_effect else ""),
                    ]
                ),
            }
        )
    return rows


# -- progress and footer ---------------------------------------------------------------


def _progress_section(progress: twin_pb2.GetPatientProgressResponse) -> dict[str, Any]:
    when_of = {p.snapshot_id: p.generated_at for p in progress.timeline}
    return {
        "any": bool(progress.timeline),
        "figure": _figure(
            "progress-risk",
            lambda: risk_timeline(progress.timeline),
            f"Overall risk at each of the {len(progress.timeline)} stored snapshots.",
        )
        if progress.timeline
        else None,
        "trends": [
            {
                "instrument": instrument_label(t.instrument),
                "direction": TREND_LABELS.get(t.direction, "not assessed"),
                "change": f"{t.change:+g}",
                "slope": f"{t.slope_per_week:+.1f}",
            }
            for t in progress.symptom_trends
        ],
        "accuracy": [
            {
                "snapshot_id": a.snapshot_id,
                "made": _day(when_of[a.snapshot_id]) if a.snapshot_id in when_of else "—",
                "instrument": instrument_label(a.instrument),
                "days": a.days_compared,
                "mae": f"{a.mae:.2f}",
                "coverage": f"{a.interval_coverage:.0%}",
            }
            for a in progress.forecast_accuracy
        ],
        "medication_changes": [
            {
                "medication": c.medication,
                "what": _MEDICATION_CHANGE_LABELS.get(c.change, "changed"),
                "day": _day(c.detected_at),
            }
            for c in progress.medication_changes
        ],
    }


def _provenance(response: twin_pb2.GenerateInsightsResponse) -> str:
    models: list[common_pb2.ModelInfo] = []
    if response.forecast.HasField("forecast"):
        models.extend(response.forecast.forecast.models)
    if response.biometric.HasField("correlations"):
        models.extend(response.biometric.correlations.models)
    for prediction in (response.pharmacogenomics.responses, response.pharmacogenomics.side_effects):
        if prediction.HasField("model"):
            models.append(prediction.model)
    return "; ".join(
        f"{m.name} {m.version}" + (" (signature verified)" if m.signature_verified else "")
        for m in models
    )
