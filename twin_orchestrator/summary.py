"""Plain-text summaries of insights and progress, for the terminal (demo and CLI)."""

from __future__ import annotations

from common import wording
from common.clinical_scales import INSTRUMENT_LABELS
from common.proto_convert import from_timestamp
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.triggers import (
    METRIC_NAMES,
    SECTION_NAMES,
    own_history_words,
    phenotype_name,
    risk_level_name,
    trend_evidence,
    trend_words,
)


def _enum_name(enum: object, value: int, prefix: str) -> str:
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).replace("_", " ").lower()


def _section_line(result: twin_pb2.SectionResult) -> str:
    status = _enum_name(common_pb2.SectionStatus, result.status, "SECTION_STATUS_")
    latency = result.latency.ToMilliseconds()
    detail = f" — {result.detail}" if result.detail else ""
    return f"  {SECTION_NAMES.get(result.section, '?'):<17} {status:<18} {latency:>6} ms{detail}"


def format_insights(response: twin_pb2.GenerateInsightsResponse) -> str:
    lines = [
        f"request {response.request_id}  snapshot {response.snapshot_id}",
        f"generated {from_timestamp(response.generated_at):%Y-%m-%d %H:%M:%S} UTC",
        "",
        f"OVERALL RISK: {risk_level_name(response.overall_risk)}",
    ]
    lines += [f"  - {driver}" for driver in response.risk_drivers]
    lines += ["", "Sections:"]
    for section in (response.forecast, response.biometric, response.pharmacogenomics):
        lines.append(_section_line(section.result))

    forecast = response.forecast.forecast
    for item in forecast.forecasts:
        if not item.points:
            continue
        last = item.points[-1]
        lines.append(
            f"\nForecast {INSTRUMENT_LABELS.get(item.instrument, '?')}: day {last.horizon_day} "
            f"median {last.point:.1f} (interval {last.lower:.1f}–{last.upper:.1f}); "
            f"trend {_trend(item.trend)}"
        )
        if item.HasField("own_history"):
            lines.append(f"  {own_history_words(item.own_history)}")
        drivers = [d.label or d.feature for d in item.feature_importance[:3]]
        if drivers:
            lines.append(f"  main drivers: {', '.join(drivers)}")
        for period in item.risk_periods:
            lines.append(
                f"  risk period {from_timestamp(period.start_date):%Y-%m-%d}–"
                f"{from_timestamp(period.end_date):%Y-%m-%d}: {period.threshold_label} "
                f"(peak {wording.percent(period.peak_probability)})"
            )

    biometric = response.biometric
    warning = biometric.correlations.early_warning
    if biometric.result.status == common_pb2.SECTION_STATUS_OK or warning.level:
        if warning.level:
            lines.append(
                f"\nEarly warning: {risk_level_name(warning.level)} "
                f"({wording.percent(warning.probability)} probability of deterioration "
                "within 7 days)"
            )
        elif warning.insufficient_data:
            lines.append(f"\nEarly warning: not scored ({warning.detail})")
        if warning.unused_metrics:
            names = " and ".join(METRIC_NAMES.get(m, "?") for m in warning.unused_metrics)
            lines.append(
                f"  not used by the early-warning model (trained without them): {names}; "
                "they count in correlations, anomalies and the monitoring plan"
            )
        if warning.out_of_distribution:
            lines.append(
                f"  data unlike the model's training data: {warning.out_of_distribution_reason}"
            )
        for key in biometric.correlations.key_indicators[:3]:
            lines.append(f"  key indicator #{key.rank}: {key.reading}")
        if biometric.anomalies.anomalies:
            lines.append(f"  anomalous days: {len(biometric.anomalies.anomalies)}")
        for metric in biometric.monitoring_plan.metrics[:3]:
            lines.append(f"  monitor {METRIC_NAMES.get(metric.metric, '?')}: {metric.reason}")

    interactions = response.pharmacogenomics.interactions
    if interactions.phenotypes:
        lines.append("\nPharmacogenomics:")
        for phenotype in interactions.phenotypes:
            effective = ""
            if phenotype.effective_phenotype != phenotype.genotype_phenotype:
                effective = f" → effective {phenotype_name(phenotype.effective_phenotype)}"
            lines.append(
                f"  {phenotype.gene:<12} {phenotype.diplotype:<10} "
                f"{phenotype_name(phenotype.genotype_phenotype)}{effective}"
            )
        for guidance in interactions.interactions:
            if guidance.action == pgx_pb2.GUIDANCE_ACTION_USE_STANDARD:
                continue
            action = _enum_name(pgx_pb2.GuidanceAction, guidance.action, "GUIDANCE_ACTION_")
            lines.append(
                f"  {guidance.medication} ({guidance.gene}): {action} — {guidance.recommendation}"
            )

    lines += ["", "Recommendations:"]
    for rec in response.recommendations:
        priority = _enum_name(common_pb2.Priority, rec.priority, "PRIORITY_").upper()
        lines.append(f"  [{priority}] {rec.text}")
        lines.append(f"      why: {rec.rationale}")
    if not response.recommendations:
        lines.append("  none")
    return "\n".join(lines)


def _trend(trend: forecasting_pb2.Trend) -> str:
    return f"{trend_words(trend)} ({trend.slope_per_week:+.2f}/week; {trend_evidence(trend)})"


def format_progress(response: twin_pb2.GetPatientProgressResponse) -> str:
    lines = ["Timeline:"]
    for point in response.timeline:
        scores = ", ".join(
            f"{INSTRUMENT_LABELS.get(s.instrument, '?')} {s.score:g}" for s in point.latest_scores
        )
        data_to = max((from_timestamp(s.observed_at) for s in point.latest_scores), default=None)
        as_of = f"data to {data_to:%Y-%m-%d}" if data_to else "no scores"
        lines.append(
            f"  {from_timestamp(point.generated_at):%Y-%m-%d %H:%M} ({as_of})  "
            f"risk {risk_level_name(point.overall_risk):<10} {scores}"
        )
    for trend in response.symptom_trends:
        lines.append(
            f"Trend {INSTRUMENT_LABELS.get(trend.instrument, '?')}: "
            f"{trend.slope_per_week:+.2f}/week (change {trend.change:+.1f})"
        )
    for accuracy in response.forecast_accuracy:
        lines.append(
            f"Forecast accuracy {INSTRUMENT_LABELS.get(accuracy.instrument, '?')} "
            f"(snapshot {accuracy.snapshot_id[:8]}): MAE {accuracy.mae:.2f} over "
            f"{accuracy.days_compared} days, {accuracy.interval_coverage:.0%} inside the interval"
        )
    for change in response.medication_changes:
        kind = _enum_name(common_pb2.MedicationEventType, change.change, "MEDICATION_EVENT_TYPE_")
        lines.append(f"Medication {kind}: {change.medication}")
    return "\n".join(lines)
