"""The clinician-facing insights report: one self-contained, printable HTML page.

Built from a ``GenerateInsightsResponse`` and the ``PatientData`` it was made
from. No JavaScript, no external URL: styles are inline and figures are
embedded as base64 PNG. Every string that comes from a service (recommendation
texts, rationales, guidance, details) is HTML-escaped, because the report must
stay inert whatever those services return. The report is a clinical document
and may show clinical values; it never shows the real patient identifier (the
response has none), only an optional display label chosen by the caller.

Each section follows its status: OK and DEGRADED sections show what they have
(a degraded one under a notice saying it is partial); UNAVAILABLE,
DEADLINE_EXCEEDED, SKIPPED and unset statuses show one sentence instead.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

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
_NUM = ' class="num"'

_STYLE = """
:root { --ink:#1f2933; --muted:#52606d; --line:#d9e2ec; --soft:#f5f7fa; --accent:#2f6f8f; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 28px 32px 40px; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 1.22rem; margin: 34px 0 10px; padding-bottom: 4px; font-weight: 600;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 1.02rem; margin: 22px 0 8px; font-weight: 600; }
p { margin: 6px 0; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 10px 0 0;
  color: var(--muted); font-size: 0.9rem; }
.meta dt { font-weight: 600; } .meta dd { margin: 0; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88em; }
.risk { display: inline-block; padding: 4px 14px; border-radius: 999px; font-weight: 600;
  border: 1px solid transparent; }
.risk-low { background: #e3f1e8; color: #1e5631; border-color: #a8d5b5; }
.risk-elevated { background: #fff4d6; color: #7a5200; border-color: #f0d27a; }
.risk-high { background: #fde6dc; color: #8a2c0d; border-color: #f2a98c; }
.risk-critical { background: #f9d4d4; color: #7b1010; border-color: #e08585; }
.risk-none { background: var(--soft); color: var(--muted); border-color: var(--line); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 0.8rem;
  font-weight: 600; background: var(--soft); color: var(--muted); border: 1px solid var(--line);
  white-space: nowrap; }
.priority-urgent { background: #7b1010; color: #fff; border-color: #7b1010; }
.priority-high { background: #fde6dc; color: #8a2c0d; border-color: #f2a98c; }
.priority-medium { background: #fff4d6; color: #7a5200; border-color: #f0d27a; }
.status-ok { background: #e3f1e8; color: #1e5631; border-color: #a8d5b5; }
.status-degraded { background: #fff4d6; color: #7a5200; border-color: #f0d27a; }
.status-failed { background: #fde6dc; color: #8a2c0d; border-color: #f2a98c; }
.flag { background: #7b1010; color: #fff; border-color: #7b1010; white-space: normal; }
.notice { border-left: 4px solid #f0d27a; background: #fffaeb; padding: 8px 12px; margin: 8px 0; }
.notice.missing { border-left-color: #9aa5b1; background: var(--soft); }
ol.recs { list-style: none; padding: 0; margin: 0; counter-reset: rec; }
.rec { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 8px 0;
  counter-increment: rec; }
.rec-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.rec-head::before { content: counter(rec) "."; font-weight: 600; color: var(--muted); }
.rec-text { font-weight: 600; margin: 4px 0 2px; }
.rec-why { color: var(--ink); }
.rec-evidence { margin: 4px 0 0; padding-left: 18px; color: var(--muted); font-size: 0.88rem; }
.small { font-size: 0.85rem; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 0.86rem; }
caption { text-align: left; color: var(--muted); font-size: 0.85rem; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
tbody th { font-weight: 600; }
tr.override td, tr.override th { background: #fdf0ec; }
#medication-guidance { font-size: 0.8rem; table-layout: fixed; }
#medication-guidance td, #medication-guidance th { overflow-wrap: break-word; }
#medication-guidance tr:has(+ tr.detail) > td { border-bottom: none; }
#medication-guidance tr.detail td { color: var(--muted); padding-top: 0; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
#medication-guidance td.num { white-space: normal; }
figure.plot { margin: 10px 0 14px; }
figure.plot img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 4px; }
figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px; }
ul.tight { margin: 4px 0; padding-left: 20px; }
footer { margin-top: 40px; padding-top: 10px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 0.82rem; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; } h3 { break-after: avoid; }
  figure.plot, .rec, tr, .notice { break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def render_report(
    response: twin_pb2.GenerateInsightsResponse,
    data: twin_pb2.PatientData,
    *,
    progress: twin_pb2.GetPatientProgressResponse | None = None,
    title: str = "Digital twin insights",
    patient_label: str | None = None,
) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    body = [
        _header(response, title, patient_label),
        "<main>",
        _summary(response),
        _recommendations(response.recommendations),
        _status_table(response),
        _forecast_section(response.forecast, data),
        _biometric_section(response.biometric, data),
        _pharmacogenomics_section(response.pharmacogenomics),
    ]
    if progress is not None:
        body.append(_progress_section(progress))
    body.append("</main>")
    body.append(_footer(response))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(timestamp: Timestamp) -> str:
    return f"{to_datetime(timestamp):%d %b %Y %H:%M} UTC"


def _day(timestamp: Timestamp) -> str:
    return _fmt_day(to_datetime(timestamp))


def _fmt_day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _latency(duration: Duration) -> str:
    millis = duration.ToMilliseconds()
    if millis <= 0:
        return "—"
    return f"{millis} ms" if millis < 1000 else f"{millis / 1000:.1f} s"


def _figure(key: str, build: Callable[[], RenderedPlot], caption: str) -> str:
    """An embedded PNG figure, or a sentence when the figure cannot be drawn."""
    try:
        plot = build()
    except Exception as exc:  # a bad figure must not cost the clinician the whole report
        _LOGGER.warning(
            "report figure failed", extra={"section": key, "status": type(exc).__name__}
        )
        return f'<p class="notice missing">The {_e(caption.lower())} chart could not be drawn.</p>'
    encoded = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure class="plot" data-plot="{_e(key)}">'
        f'<img src="data:image/png;base64,{encoded}" alt="{_e(plot.alt)}" '
        f'width="{plot.width_px}" height="{plot.height_px}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(
    caption: str,
    headers: Sequence[str],
    rows: Iterable[str],
    *,
    table_id: str = "",
    numeric: Sequence[int] = (),
    widths: Sequence[int] = (),
) -> str:
    """A table whose rows are pre-rendered ``<tr>`` strings (cells already escaped);
    ``widths`` (percent per column) fixes the layout of wide tables."""
    ident = f' id="{_e(table_id)}"' if table_id else ""
    columns = "".join(f'<col style="width:{w}%">' for w in widths)
    colgroup = f"<colgroup>{columns}</colgroup>" if widths else ""
    head = "".join(
        f'<th scope="col"{_NUM if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers)
    )
    return (
        f"<table{ident}><caption>{_e(caption)}</caption>{colgroup}"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _header(
    response: twin_pb2.GenerateInsightsResponse, title: str, patient_label: str | None
) -> str:
    items: list[tuple[str, str]] = []
    if patient_label:
        items.append(("Patient", _e(patient_label)))
    generated = (
        _when(response.generated_at) if response.HasField("generated_at") else "not recorded"
    )
    items.append(("Generated", _e(generated)))
    items.append(("Request id", f'<span class="mono">{_e(response.request_id or "—")}</span>'))
    if response.snapshot_id:
        items.append(("Snapshot", f'<span class="mono">{_e(response.snapshot_id)}</span>'))
    meta = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<header><h1>{_e(title)}</h1><dl class="meta">{meta}</dl></header>'


def _risk_class(level: common_pb2.RiskLevel) -> str:
    return {
        common_pb2.RISK_LEVEL_LOW: "risk-low",
        common_pb2.RISK_LEVEL_ELEVATED: "risk-elevated",
        common_pb2.RISK_LEVEL_HIGH: "risk-high",
        common_pb2.RISK_LEVEL_CRITICAL: "risk-critical",
    }.get(level, "risk-none")


_RISK_MEANINGS: dict[int, str] = {
    common_pb2.RISK_LEVEL_UNSPECIFIED: "The overall risk could not be assessed.",
    common_pb2.RISK_LEVEL_LOW: "No sign of deterioration.",
    common_pb2.RISK_LEVEL_ELEVATED: "Some signs of deterioration; watch more closely.",
    common_pb2.RISK_LEVEL_HIGH: "Deterioration likely; clinical contact advised.",
    common_pb2.RISK_LEVEL_CRITICAL: "Deterioration likely and severe; urgent contact advised.",
}


def _summary(response: twin_pb2.GenerateInsightsResponse) -> str:
    level = response.overall_risk
    parts = [
        '<section id="summary" aria-labelledby="summary-title">',
        '<h2 id="summary-title">Overall risk</h2>',
        f'<p><span class="risk {_risk_class(level)}">{_e(RISK_LABELS.get(level, "Unknown"))}'
        f"</span> {_e(_RISK_MEANINGS.get(level, ''))}</p>",
    ]
    if response.risk_drivers:
        drivers = "".join(f"<li>{_e(d)}</li>" for d in response.risk_drivers)
        parts.append(f'<p>What drove it, most important first:</p><ol class="tight">{drivers}</ol>')
    parts.append("</section>")
    return "".join(parts)


def _priority_class(priority: common_pb2.Priority) -> str:
    return {
        common_pb2.PRIORITY_URGENT: "priority-urgent",
        common_pb2.PRIORITY_HIGH: "priority-high",
        common_pb2.PRIORITY_MEDIUM: "priority-medium",
    }.get(priority, "")


def _evidence_line(evidence: common_pb2.Evidence) -> str:
    parts = [_e(evidence.source or "Unnamed source")]
    if evidence.strength:
        parts.append(f"strength: {_e(evidence.strength)}")
    if evidence.pmid:
        parts.append(f"PMID {_e(evidence.pmid)}")
    if evidence.detail:
        parts.append(_e(evidence.detail))
    return " · ".join(parts)


def _recommendations(recommendations: Sequence[common_pb2.Recommendation]) -> str:
    head = '<section id="recommendations" aria-labelledby="recs-title">'
    head += '<h2 id="recs-title">Recommendations</h2>'
    if not recommendations:
        return head + "<p>No recommendations were made for this run.</p></section>"
    items = []
    for rec in recommendations:
        evidence = "".join(f"<li>{_evidence_line(ev)}</li>" for ev in rec.evidence)
        source = f" · from the {_e(rec.source_section)} section" if rec.source_section else ""
        items.append(
            f'<li class="rec" data-rule="{_e(rec.rule_id)}">'
            '<div class="rec-head">'
            f'<span class="badge {_priority_class(rec.priority)}">'
            f"{_e(PRIORITY_LABELS.get(rec.priority, 'Unranked'))} priority</span>"
            f'<span class="badge">{_e(CATEGORY_LABELS.get(rec.category, "General"))}</span>'
            f'<span class="small">Confidence {rec.confidence:.0%}{source}</span></div>'
            f'<p class="rec-text">{_e(rec.text)}</p>'
            + (
                f'<p class="rec-why"><strong>Why:</strong> {_e(rec.rationale)}</p>'
                if rec.rationale
                else ""
            )
            + (
                f'<p class="small">Evidence:</p><ul class="rec-evidence">{evidence}</ul>'
                if evidence
                else ""
            )
            + "</li>"
        )
    return head + f'<ol class="recs">{"".join(items)}</ol></section>'


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


def _status_table(response: twin_pb2.GenerateInsightsResponse) -> str:
    rows = []
    for section, result in _section_results(response):
        label = STATUS_LABELS.get(result.status, "No status")
        rows.append(
            f'<tr data-section="{section}"><th scope="row">'
            f"{_e(_SECTION_NAMES[section].capitalize())}</th>"
            f'<td><span class="badge {_status_class(result.status)}">{_e(label)}</span></td>'
            f"<td>{_e(result.detail) if result.detail else '—'}</td>"
            f'<td class="num">{_e(_latency(result.latency))}</td></tr>'
        )
    table = _table(
        "How each part of the analysis fared in this run.",
        ["Section", "Status", "Detail", "Time"],
        rows,
        table_id="section-status",
        numeric=(3,),
    )
    return (
        '<section id="status" aria-labelledby="status-title">'
        f'<h2 id="status-title">Section status</h2>{table}</section>'
    )


def _notice(section: int, result: twin_pb2.SectionResult) -> str:
    """The sentence standing in for (or above) a section that is not OK."""
    if result.status == common_pb2.SECTION_STATUS_OK:
        return ""
    template = _STATUS_SENTENCES.get(result.status, _STATUS_SENTENCES[0])
    sentence = template.format(name=_SECTION_NAMES[section])
    if result.detail:
        sentence += f" Detail: {result.detail}"
    css = "notice" if result.status == common_pb2.SECTION_STATUS_DEGRADED else "notice missing"
    status = _e(STATUS_LABELS.get(result.status, ""))
    return f'<p class="{css}" data-status="{status}">{_e(sentence)}</p>'


def _open_section(ident: str, heading: str) -> str:
    return (
        f'<section id="{ident}" aria-labelledby="{ident}-title">'
        f'<h2 id="{ident}-title">{_e(heading)}</h2>'
    )


def _forecast_section(section: twin_pb2.ForecastSection, data: twin_pb2.PatientData) -> str:
    parts = [
        _open_section("forecast", "Symptom forecast"),
        _notice(twin_pb2.SECTION_FORECAST, section.result),
    ]
    if section.result.status not in _SHOWN_STATUSES:
        return "".join(parts) + "</section>"
    forecasts = [f for f in section.forecast.forecasts if f.points]
    if not forecasts:
        parts.append("<p>No forecast was produced for this run (no usable symptom history).</p>")
        return "".join(parts) + "</section>"
    coverage = section.forecast.validation_interval_coverage
    for forecast in forecasts:
        label = instrument_label(forecast.instrument)
        parts.append(f"<h3>{_e(label)}</h3>")
        parts.append(_trend_sentence(forecast))
        parts.append(_risk_periods(forecast.risk_periods))
        parts.append(
            _figure(
                f"forecast-{label.lower()}",
                partial(forecast_fan_chart, forecast, data.symptoms, validation_coverage=coverage),
                _fan_caption(label, forecast),
            )
        )
        if forecast.feature_importance:
            drivers = ", ".join(
                f"{fi.feature} ({fi.importance:.0%}"
                + (f", {_IMPORTANCE_LABELS.get(fi.source, '')})" if fi.source else ")")
                for fi in forecast.feature_importance[:5]
            )
            parts.append(f'<p class="small">Forecast drivers: {_e(drivers)}.</p>')
    return "".join(parts) + "</section>"


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


def _trend_sentence(forecast: forecasting_pb2.InstrumentForecast) -> str:
    if not forecast.HasField("trend"):
        return ""
    trend = forecast.trend
    direction = TREND_LABELS.get(trend.direction, "not assessed")
    significance = "significant" if trend.significant else "not significant"
    return (
        f"<p>Trend: <strong>{_e(direction)}</strong>, {trend.slope_per_week:+.1f} points per week "
        f"(p = {trend.p_value:.3g}, {significance}); based on {forecast.observed_days} observed "
        "days.</p>"
    )


def _risk_periods(periods: Sequence[forecasting_pb2.RiskPeriod]) -> str:
    if not periods:
        return "<p>No risk period: no run of days where a clinical threshold is likely crossed.</p>"
    items = "".join(
        f"<li><strong>{_e(_day(p.start_date))} – {_e(_day(p.end_date))}</strong>: "
        f"{_e(p.threshold_label)}, peak probability {p.peak_probability:.0%} on "
        f"{_e(_day(p.peak_date))}.</li>"
        for p in periods
    )
    return f'<p>Risk periods:</p><ul class="tight">{items}</ul>'


def _biometric_section(section: twin_pb2.BiometricSection, data: twin_pb2.PatientData) -> str:
    parts = [
        _open_section("biometric", "Biometrics"),
        _notice(twin_pb2.SECTION_BIOMETRIC, section.result),
    ]
    if section.result.status not in _SHOWN_STATUSES:
        return "".join(parts) + "</section>"
    has_correlations = section.HasField("correlations")
    if has_correlations:
        parts.append(_early_warning(section.correlations.early_warning))
    parts.append("<h3>Biometric–symptom correlations</h3>")
    parts.append(
        _correlations(section.correlations) if has_correlations else _missing("correlations")
    )
    parts.append("<h3>Anomalies and data gaps</h3>")
    parts.append(
        _anomalies(section.anomalies, data)
        if section.HasField("anomalies")
        else _missing("anomalies")
    )
    parts.append("<h3>Monitoring plan</h3>")
    parts.append(
        _monitoring_plan(section.monitoring_plan)
        if section.HasField("monitoring_plan")
        else _missing("monitoring plan")
    )
    return "".join(parts) + "</section>"


def _missing(what: str) -> str:
    return f'<p class="notice missing">No {_e(what)} were returned for this run.</p>'


def _early_warning(warning: biometric_pb2.EarlyWarning) -> str:
    if warning.insufficient_data:
        why = f" {warning.detail}" if warning.detail else ""
        return f"<p>Early warning: not scored — too little recent biometric data.{_e(why)}</p>"
    level = warning.level
    text = (
        f'<p>Early warning: <span class="risk {_risk_class(level)}">'
        f"{_e(RISK_LABELS.get(level, 'Not assessed'))}</span> — "
        f"{warning.probability:.0%} probability of deterioration within 7 days"
    )
    if warning.expected_lead_days:
        text += f", expected in about {warning.expected_lead_days} days"
    text += ".</p>"
    if warning.detail:
        text += f"<p>{_e(warning.detail)}.</p>"
    if warning.out_of_distribution:
        text += (
            '<p class="notice">Read with caution: this patient\'s wearable data are unlike the '
            f"data the model was trained on ({_e(warning.out_of_distribution_reason)}).</p>"
        )
    if warning.drivers:
        drivers = "".join(
            f"<li>{_e(d.description or metric_label(d.metric))} ({_e(_day(d.date))}, "
            f"weight {d.weight:.0%})</li>"
            for d in warning.drivers
        )
        text += f'<ul class="tight">{drivers}</ul>'
    return text


def _correlations(correlations: biometric_pb2.AnalyzeCorrelationsResponse) -> str:
    reliability = _RELIABILITY_LABELS.get(correlations.reliability, "not assessed")
    coverage = correlations.coverage
    intro = f"<p>Reliability of this analysis: {_e(reliability)}"
    if coverage.window_days:
        intro += f" ({coverage.indicator_days} of {coverage.window_days} days have a symptom score)"
    intro += ".</p>"
    if not correlations.correlations:
        return intro + "<p>No correlations were reported: too little paired data.</p>"
    parts = [
        intro,
        _figure(
            "correlations",
            lambda: correlation_chart(correlations.correlations, correlations.key_indicators),
            "Left: strongest lagged Pearson r per biometric and symptom (* = significant after "
            "false-discovery-rate correction). Right: r at each lead for the key indicators.",
        ),
    ]
    if correlations.key_indicators:
        items = "".join(
            f"<li><strong>{_e(metric_label(k.metric))} → {_e(instrument_label(k.indicator))}"
            f"</strong>: {_e(k.reading)} (lead {k.lead_days} days, |r| {k.strength:.2f})</li>"
            for k in sorted(correlations.key_indicators, key=lambda k: k.rank)
        )
        parts.append(f'<p>Key indicators, strongest first:</p><ol class="tight">{items}</ol>')
    else:
        parts.append("<p>No biometric significantly leads a symptom score.</p>")
    return "".join(parts)


def _anomalies(anomalies: biometric_pb2.DetectAnomaliesResponse, data: twin_pb2.PatientData) -> str:
    if anomalies.insufficient_data:
        return (
            "<p>Too few days of biometric data to form a personal baseline; "
            "no anomalies were assessed.</p>"
        )
    if not anomalies.anomalies and not anomalies.missing:
        return "<p>No anomalous days and no data gaps in the analysed period.</p>"
    parts = [
        _figure(
            "anomalies",
            lambda: anomaly_timeline(anomalies, data.biometrics),
            "Anomalous days by metric, coloured and shaped by severity; thin bars mark days "
            "with data, hatched blocks mark missing data.",
        )
    ]
    if anomalies.anomalies:
        rows = []
        for anomaly in anomalies.anomalies:
            deviations = "; ".join(
                f"{metric_label(d.metric)} {d.value:g} vs baseline {d.baseline_median:g} "
                f"(z {d.robust_z:+.1f})"
                for d in anomaly.deviations
            )
            rows.append(
                f"<tr><td>{_e(_day(anomaly.date))}</td>"
                f"<td>{_e(SEVERITY_LABELS.get(anomaly.severity, 'Unrated'))}</td>"
                f"<td>{_e(deviations or 'Several metrics together (multivariate)')}</td>"
                f"<td>{_e(_DETECTOR_LABELS.get(anomaly.method, '—'))}</td></tr>"
            )
        parts.append(
            _table(
                "Anomalous days, oldest first.",
                ["Date", "Severity", "What departed from baseline", "Detector"],
                rows,
                table_id="anomalies-table",
            )
        )
    if anomalies.missing:
        gaps = "".join(
            f"<li>{_e(metric_label(m.metric))}: no data for {m.days} days, "
            f"{_e(_day(m.start_date))} – {_e(_day(m.end_date))}</li>"
            for m in anomalies.missing
        )
        parts.append(f'<p>Data gaps (not counted as anomalies):</p><ul class="tight">{gaps}</ul>')
    return "".join(parts)


def _monitoring_plan(plan: biometric_pb2.RecommendMonitoringPlanResponse) -> str:
    parts = [f"<p>{_e(plan.summary)}</p>"] if plan.summary else []
    if not plan.metrics:
        parts.append("<p>No metrics were proposed for monitoring.</p>")
        return "".join(parts)
    rows = [
        f'<tr><td class="num">{m.priority}</td><th scope="row">{_e(metric_label(m.metric))}</th>'
        f"<td>{_e(_FREQUENCY_LABELS.get(m.frequency, 'Not stated'))}</td>"
        f'<td class="num">{f"{m.alert_below:g}" if m.HasField("alert_below") else "—"}</td>'
        f'<td class="num">{f"{m.alert_above:g}" if m.HasField("alert_above") else "—"}</td>'
        f"<td>{_e(m.reason)}</td></tr>"
        for m in sorted(plan.metrics, key=lambda m: m.priority)
    ]
    parts.append(
        _table(
            "Metrics to watch, most important first; alert thresholds are the patient's own.",
            ["#", "Metric", "Review", "Alert below", "Alert above", "Why"],
            rows,
            table_id="monitoring-plan",
            numeric=(0, 3, 4),
        )
    )
    return "".join(parts)


def _pharmacogenomics_section(section: twin_pb2.PharmacogenomicsSection) -> str:
    parts = [
        _open_section("pharmacogenomics", "Pharmacogenomics"),
        _notice(twin_pb2.SECTION_PHARMACOGENOMICS, section.result),
    ]
    if section.result.status not in _SHOWN_STATUSES:
        return "".join(parts) + "</section>"
    interactions = section.interactions
    if interactions.phenotypes:
        parts.append("<h3>Gene phenotypes</h3>")
        parts.append(_phenotype_table(interactions.phenotypes))
    for conversion in interactions.phenoconversions:
        parts.append(
            '<p class="notice">'
            f"<strong>Phenoconversion:</strong> {_e(conversion.inhibitor)}, a "
            f"{_e(_INHIBITOR_LABELS.get(conversion.strength, ''))}{_e(conversion.gene)} inhibitor, "
            f"changes {_e(conversion.gene)} from "
            f"{_e(PHENOTYPE_LABELS.get(conversion.from_phenotype, 'Not assessed').lower())} to "
            f"{_e(PHENOTYPE_LABELS.get(conversion.to_phenotype, 'Not assessed').lower())}. "
            f"{_e(conversion.what_would_change)}"
            + (f" ({_evidence_line(conversion.evidence)})" if conversion.evidence.source else "")
            + "</p>"
        )
    parts.append("<h3>Medication guidance</h3>")
    parts.append(_guidance_table(section))
    if interactions.unsupported_medications:
        names = ", ".join(interactions.unsupported_medications)
        parts.append(f"<p>No pharmacogenomic guidance is available for: {_e(names)}.</p>")
    return "".join(parts) + "</section>"


def _phenotype_table(phenotypes: Sequence[pgx_pb2.GenePhenotype]) -> str:
    rows = []
    for p in phenotypes:
        score = f"{p.activity_score:g}" if p.HasField("activity_score") else "—"
        if (
            p.HasField("effective_activity_score")
            and p.effective_activity_score != p.activity_score
        ):
            score += f" → {p.effective_activity_score:g}"
        rows.append(
            f'<tr><th scope="row">{_e(p.gene)}</th><td>{_e(p.diplotype)}</td>'
            f'<td class="num">{_e(score)}</td>'
            f"<td>{_e(PHENOTYPE_LABELS.get(p.genotype_phenotype, 'Not assessed'))}</td>"
            f"<td>{_e(PHENOTYPE_LABELS.get(p.effective_phenotype, 'Not assessed'))}</td>"
            f"<td>{_e(p.explanation)}</td></tr>"
        )
    return _table(
        "Phenotype from genotype, and after co-medication (effective).",
        ["Gene", "Diplotype / result", "Activity score", "From genotype", "Effective", "How"],
        rows,
        table_id="gene-phenotypes",
        numeric=(2,),
    )


def _phenotype_cell(
    interaction: pgx_pb2.GeneDrugInteraction,
    phenotypes: Sequence[pgx_pb2.GenePhenotype],
    conversions: Sequence[pgx_pb2.Phenoconversion],
) -> str:
    effective = PHENOTYPE_LABELS.get(interaction.phenotype, "Not assessed")
    if not interaction.phenoconverted:
        return _e(effective)
    genes = set(interaction.gene.split("+"))
    from_genotype = next(
        (
            PHENOTYPE_LABELS.get(p.genotype_phenotype, "Not assessed")
            for p in phenotypes
            if p.gene in genes and p.genotype_phenotype != p.effective_phenotype
        ),
        None,
    )
    inhibitors = sorted({c.inhibitor for c in conversions if c.gene in genes})
    cause = f" by {', '.join(inhibitors)}" if inhibitors else ""
    shown = f"{from_genotype} (genotype) → {effective}" if from_genotype else effective
    return f'{_e(shown)} <span class="badge">phenoconverted{_e(cause)}</span>'


def _guidance_table(section: twin_pb2.PharmacogenomicsSection) -> str:
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
        details = [
            ("Guidance as the source words it", interaction.recommendation),
            ("Why", interaction.rationale),
            ("What would change it", interaction.what_would_change),
            ("Response prediction", response.rationale if response else ""),
            ("Side-effect prediction", side_effect.rationale if side_effect else ""),
        ]
        rows.append(
            _guidance_rows(
                interaction.medication,
                overridden,
                interaction.is_current,
                [
                    _e(interaction.gene),
                    _phenotype_cell(
                        interaction, interactions.phenotypes, interactions.phenoconversions
                    ),
                    f"<strong>{_e(ACTION_LABELS.get(interaction.action, 'Not stated'))}</strong>",
                    _e(STRENGTH_LABELS.get(interaction.strength, "Not graded")),
                    _e(interaction.dose_adjustment or "—"),
                    _e(", ".join(interaction.alternatives) or "—"),
                    _evidence_line(interaction.evidence) if interaction.evidence.source else "—",
                    _probability(response.response_probability if response else None, overridden),
                    _probability(
                        side_effect.side_effect_probability if side_effect else None, overridden
                    ),
                ],
                details,
            )
        )
    covered = {i.medication for i in interactions.interactions}
    for medication in sorted((set(response_of) | set(side_effect_of)) - covered):
        response = response_of.get(medication)
        side_effect = side_effect_of.get(medication)
        rows.append(
            _guidance_rows(
                medication,
                False,
                False,
                [
                    "—",
                    "—",
                    "No pharmacogenomic guidance",
                    "—",
                    "—",
                    "—",
                    "—",
                    _probability(response.response_probability if response else None, False),
                    _probability(
                        side_effect.side_effect_probability if side_effect else None, False
                    ),
                ],
                [
                    ("Response prediction", response.rationale if response else ""),
                    ("Side-effect prediction", side_effect.rationale if side_effect else ""),
                ],
            )
        )
    if not rows:
        return "<p>No current or candidate medication has pharmacogenomic guidance.</p>"
    version = interactions.knowledge_base_version
    caption = "Guidance per medication and gene, most restrictive first"
    caption += f" (knowledge base {version})." if version else "."
    return _table(
        caption,
        _GUIDANCE_HEADERS,
        rows,
        table_id="medication-guidance",
        numeric=(8, 9),
        widths=(12, 8, 12, 8, 8, 12, 10, 12, 9, 9),
    )


_GUIDANCE_HEADERS = (
    "Medication",
    "Gene",
    "Phenotype",
    "Action",
    "Strength",
    "Dose adjustment",
    "Alternatives",
    "Evidence",
    "Response probability",
    "Side-effect probability",
)


def _guidance_rows(
    medication: str,
    overridden: bool,
    is_current: bool,
    cells: Sequence[str],
    details: Sequence[tuple[str, str]],
) -> str:
    """One medication's row, then a full-width row with the source's wording and
    the rationales, which would make the columns unreadably narrow."""
    status = "current" if is_current else "candidate"
    flag = f'<br><span class="badge flag">⚠ {_e(OVERRIDE_FLAG)}</span>' if overridden else ""
    override = " override" if overridden else ""
    shown = [(label, text) for label, text in details if text]
    span = ' rowspan="2"' if shown else ""
    body = "".join(f"<td{_NUM if i >= 7 else ''}>{c}</td>" for i, c in enumerate(cells))
    first = (
        f'<tr class="guidance{override}" data-medication="{_e(medication)}">'
        f'<th scope="row"{span}>{_e(medication)}'
        f'<br><span class="small">{status}</span>{flag}</th>{body}</tr>'
    )
    if not shown:
        return first
    text = " ".join(
        f"<strong>{_e(label)}:</strong> {_e(_sentence(value))}" for label, value in shown
    )
    return (
        first + f'<tr class="detail{override}" data-medication="{_e(medication)}">'
        f'<td colspan="{len(cells)}">{text}</td></tr>'
    )


def _sentence(text: str) -> str:
    stripped = text.strip()
    return stripped if stripped.endswith((".", "!", "?")) else f"{stripped}."


def _probability(value: float | None, overridden: bool) -> str:
    if value is None:
        return "—"
    text = f"{value:.0%}"
    return f'{text}<br><span class="small">overridden</span>' if overridden else text


def _progress_section(progress: twin_pb2.GetPatientProgressResponse) -> str:
    parts = [_open_section("progress", "Progress")]
    if not progress.timeline:
        parts.append("<p>No earlier snapshots are stored for this patient.</p>")
        return "".join(parts) + "</section>"
    parts.append(
        _figure(
            "progress-risk",
            lambda: risk_timeline(progress.timeline),
            f"Overall risk at each of the {len(progress.timeline)} stored snapshots.",
        )
    )
    if progress.symptom_trends:
        items = "".join(
            f"<li>{_e(instrument_label(t.instrument))}: "
            f"{_e(TREND_LABELS.get(t.direction, 'not assessed'))} "
            f"(change {t.change:+g} points from first to last snapshot, "
            f"{t.slope_per_week:+.1f} per week)</li>"
            for t in progress.symptom_trends
        )
        parts.append(f'<p>Symptom trends over the timeline:</p><ul class="tight">{items}</ul>')
    when_of = {p.snapshot_id: p.generated_at for p in progress.timeline}
    if progress.forecast_accuracy:
        rows = [
            f'<tr><td class="mono">{_e(a.snapshot_id)}</td>'
            f"<td>{_e(_day(when_of[a.snapshot_id])) if a.snapshot_id in when_of else '—'}</td>"
            f"<td>{_e(instrument_label(a.instrument))}</td>"
            f'<td class="num">{a.days_compared}</td><td class="num">{a.mae:.2f}</td>'
            f'<td class="num">{a.interval_coverage:.0%}</td></tr>'
            for a in progress.forecast_accuracy
        ]
        parts.append(
            _table(
                "How past forecasts matched later observations.",
                [
                    "Snapshot",
                    "Forecast made",
                    "Instrument",
                    "Days compared",
                    "Mean abs. error",
                    "Inside interval",
                ],
                rows,
                table_id="forecast-accuracy",
                numeric=(3, 4, 5),
            )
        )
    else:
        parts.append("<p>No earlier forecast can be compared with later observations yet.</p>")
    if progress.medication_changes:
        items = "".join(
            f"<li>{_e(c.medication)} {_e(_MEDICATION_CHANGE_LABELS.get(c.change, 'changed'))} "
            f"(seen {_e(_day(c.detected_at))})</li>"
            for c in progress.medication_changes
        )
        parts.append(f'<p>Medication changes between snapshots:</p><ul class="tight">{items}</ul>')
    return "".join(parts) + "</section>"


def _footer(response: twin_pb2.GenerateInsightsResponse) -> str:
    models: list[common_pb2.ModelInfo] = []
    if response.forecast.HasField("forecast"):
        models.extend(response.forecast.forecast.models)
    if response.biometric.HasField("correlations"):
        models.extend(response.biometric.correlations.models)
    for prediction in (response.pharmacogenomics.responses, response.pharmacogenomics.side_effects):
        if prediction.HasField("model"):
            models.append(prediction.model)
    provenance = "; ".join(
        f"{m.name} {m.version}" + (" (signature verified)" if m.signature_verified else "")
        for m in models
    )
    lines = [
        "This report supports clinical judgement and does not replace it. Forecasts and "
        "predictions are estimates with the uncertainty shown; pharmacogenomic guidance "
        "follows the cited source.",
        f"Request id {response.request_id or '—'}"
        + (f" · snapshot {response.snapshot_id}" if response.snapshot_id else ""),
    ]
    if provenance:
        lines.append(f"Models: {provenance}.")
    return "<footer>" + "".join(f"<p>{_e(line)}</p>" for line in lines) + "</footer>"
