"""Overall risk level of the twin and its drivers, from thresholds in rules.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from common import wording
from common.clinical_scales import INSTRUMENT_LABELS
from common.proto_convert import from_timestamp
from novamind.common.v1 import common_pb2
from twin_orchestrator.triggers import Context, risk_level_name, risk_level_value

LOW = common_pb2.RISK_LEVEL_LOW
ELEVATED = common_pb2.RISK_LEVEL_ELEVATED
HIGH = common_pb2.RISK_LEVEL_HIGH
CRITICAL = common_pb2.RISK_LEVEL_CRITICAL


def _latest_scores(ctx: Context) -> dict[int, float]:
    latest: dict[int, tuple[float, float]] = {}
    for obs in ctx.data.symptoms:
        when = obs.observed_at.seconds + obs.observed_at.nanos / 1e9
        if obs.instrument not in latest or when >= latest[obs.instrument][0]:
            latest[obs.instrument] = (when, obs.score)
    return {instrument: score for instrument, (_, score) in latest.items()}


def overall_risk(
    ctx: Context, thresholds: Mapping[str, Any]
) -> tuple[common_pb2.RiskLevel, list[str]]:
    """The highest level any signal supports, with the reasons, strongest first."""
    level: common_pb2.RiskLevel = common_pb2.RISK_LEVEL_UNSPECIFIED
    drivers: list[tuple[common_pb2.RiskLevel, str]] = []
    latest = _latest_scores(ctx)
    phq9 = latest.get(common_pb2.INSTRUMENT_PHQ9)
    if phq9 is not None:
        level = cast(common_pb2.RiskLevel, max(level, LOW))
        if phq9 >= float(thresholds["phq9_high"]):
            drivers.append((HIGH, f"latest PHQ-9 {phq9:g} (severe)"))
        elif phq9 >= float(thresholds["phq9_elevated"]):
            drivers.append((ELEVATED, f"latest PHQ-9 {phq9:g} (moderately severe)"))
    gad7 = latest.get(common_pb2.INSTRUMENT_GAD7)
    if gad7 is not None:
        level = cast(common_pb2.RiskLevel, max(level, LOW))
        if gad7 >= float(thresholds["gad7_elevated"]):
            drivers.append((ELEVATED, f"latest GAD-7 {gad7:g} (severe anxiety)"))

    severe_forecast = False
    forecast = ctx.response.forecast
    if ctx.ok(forecast.result):
        level = cast(common_pb2.RiskLevel, max(level, LOW))
        window_days = ctx.forecast_window_days(int(thresholds["forecast_window_days"]))
        window_end = ctx.now + timedelta(days=window_days)
        # One driver per instrument and threshold: the most likely of its risk periods.
        strongest: dict[tuple[int, float], tuple[str, float, bool]] = {}
        for item in forecast.forecast.forecasts:
            for period in item.risk_periods:
                if period.peak_probability < float(thresholds["forecast_min_probability"]):
                    continue
                if from_timestamp(period.start_date) > window_end:
                    continue
                name = INSTRUMENT_LABELS.get(item.instrument, "score")
                severe = (
                    item.instrument == common_pb2.INSTRUMENT_PHQ9
                    and period.threshold >= float(thresholds["phq9_high"])
                )
                key = (item.instrument, period.threshold)
                if key not in strongest or period.peak_probability > strongest[key][1]:
                    strongest[key] = (
                        period.threshold_label or name,
                        period.peak_probability,
                        severe,
                    )
        for label, peak, severe in strongest.values():
            severe_forecast = severe_forecast or severe
            drivers.append(
                (
                    HIGH if severe else ELEVATED,
                    f"forecast: {wording.chance(peak)} of {label} within "
                    f"{wording.plural(window_days, 'day')}",
                )
            )

    biometric = ctx.response.biometric
    warning = biometric.correlations.early_warning
    if ctx.ok(biometric.result) and not warning.insufficient_data and warning.level:
        level = cast(common_pb2.RiskLevel, max(level, LOW))
        if warning.level > LOW:
            drivers.append(
                (
                    warning.level,
                    f"early warning {risk_level_name(warning.level).lower()} "
                    f"({wording.percent(warning.probability)} probability of deterioration "
                    "within 7 days)",
                )
            )
        critical_at = risk_level_value(str(thresholds["critical_warning_level"]))
        if severe_forecast and warning.level >= critical_at:
            drivers.append((CRITICAL, "severe forecast together with a high early warning"))

    for driver_level, _ in drivers:
        level = cast(common_pb2.RiskLevel, max(level, driver_level))
    drivers.sort(key=lambda d: -d[0])
    return level, [text for _, text in drivers]
