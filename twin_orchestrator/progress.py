"""GetPatientProgress: the patient's timeline over stored snapshots.

- risk level and latest scores per snapshot;
- per instrument, the change between the first and the last snapshot's latest
  score, and the trend of the last six weeks of every observation seen (daily
  means) by the one trend definition the forecast uses too (common/trend.py);
- for each past forecast, its error against what was observed later (taken
  from the histories of later snapshots): MAE of the point forecast and the
  share of observations inside the interval — how well the twin predicts
  this patient;
- medication starts and stops between consecutive snapshots.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import numpy as np

from common.clinical_scales import INSTRUMENT_BY_NAME
from common.proto_convert import from_timestamp, to_timestamp
from common.trend import TREND_RULES, SymptomTrend, TrendDirection, symptom_trend
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator.store import Snapshot

#: Trend directions of the shared definition as the proto spells them.
_DIRECTIONS = {
    TrendDirection.NOT_ASSESSED: forecasting_pb2.TREND_DIRECTION_UNSPECIFIED,
    TrendDirection.IMPROVING: forecasting_pb2.TREND_DIRECTION_IMPROVING,
    TrendDirection.STABLE: forecasting_pb2.TREND_DIRECTION_STABLE,
    TrendDirection.WORSENING: forecasting_pb2.TREND_DIRECTION_WORSENING,
}
_NAMES = {number: name for name, number in INSTRUMENT_BY_NAME.items()}


def _daily_means(snapshots: list[Snapshot]) -> dict[common_pb2.Instrument, dict[date, float]]:
    """Every observation seen in any snapshot, de-duplicated by time, as daily means."""
    seen: dict[tuple[common_pb2.Instrument, int, int], float] = {}
    for snapshot in snapshots:
        for obs in snapshot.data.symptoms:
            seen[(obs.instrument, obs.observed_at.seconds, obs.observed_at.nanos)] = obs.score
    by_day: dict[common_pb2.Instrument, dict[date, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (instrument, seconds, _), score in seen.items():
        day = datetime.fromtimestamp(seconds, UTC).date()
        by_day[instrument][day].append(score)
    return {
        instrument: {day: float(np.mean(scores)) for day, scores in days.items()}
        for instrument, days in by_day.items()
    }


def _latest_scores(snapshot: Snapshot) -> list[common_pb2.SymptomObservation]:
    latest: dict[int, common_pb2.SymptomObservation] = {}
    for obs in snapshot.data.symptoms:
        current = latest.get(obs.instrument)
        if current is None or obs.observed_at.seconds >= current.observed_at.seconds:
            latest[obs.instrument] = obs
    return [latest[k] for k in sorted(latest)]


def trend_message(trend: SymptomTrend) -> forecasting_pb2.Trend:
    return forecasting_pb2.Trend(
        direction=_DIRECTIONS[trend.direction],
        slope_per_week=trend.slope_per_week,
        p_value=trend.p_value,
        significant=trend.significant,
        slope_lower_per_week=trend.slope_lower_per_week,
        slope_upper_per_week=trend.slope_upper_per_week,
        scores=trend.scores,
        fitted_change=trend.fitted_change,
    )


def _change(instrument: common_pb2.Instrument, snapshots: list[Snapshot]) -> float:
    """Latest score in the last snapshot holding the instrument minus that of the first."""
    latest = [
        obs.score
        for snapshot in snapshots
        for obs in _latest_scores(snapshot)
        if obs.instrument == instrument
    ]
    return float(latest[-1] - latest[0]) if latest else 0.0


def _summary(
    instrument: common_pb2.Instrument, daily: dict[date, float], snapshots: list[Snapshot]
) -> twin_pb2.SymptomTrendSummary | None:
    name = _NAMES.get(instrument)
    if name is None or not daily:
        return None
    days = sorted(daily)
    trend = symptom_trend(
        np.array([d.toordinal() for d in days], dtype=np.float64),
        np.array([daily[d] for d in days]),
        TREND_RULES[name],
    )
    message = trend_message(trend)
    return twin_pb2.SymptomTrendSummary(
        instrument=instrument,
        direction=message.direction,
        change=_change(instrument, snapshots),
        slope_per_week=trend.slope_per_week,
        trend=message,
    )


def _accuracy(
    snapshot: Snapshot, daily: dict[common_pb2.Instrument, dict[date, float]]
) -> list[twin_pb2.ForecastAccuracy]:
    out = []
    for forecast in snapshot.response.forecast.forecast.forecasts:
        observed = daily.get(forecast.instrument, {})
        errors, inside = [], []
        for point in forecast.points:
            day = from_timestamp(point.date).date()
            if day in observed:
                actual = observed[day]
                errors.append(abs(actual - point.point))
                inside.append(point.lower <= actual <= point.upper)
        if errors:
            out.append(
                twin_pb2.ForecastAccuracy(
                    snapshot_id=snapshot.snapshot_id,
                    instrument=forecast.instrument,
                    days_compared=len(errors),
                    mae=float(np.mean(errors)),
                    interval_coverage=float(np.mean(inside)),
                )
            )
    return out


def _medication_changes(snapshots: list[Snapshot]) -> list[twin_pb2.MedicationChange]:
    changes = []
    previous: set[str] | None = None
    for snapshot in snapshots:
        current = {
            m.name.lower() for m in snapshot.data.current_medications if not m.stopped_at.seconds
        }
        if previous is not None:
            started = [
                (n, common_pb2.MEDICATION_EVENT_TYPE_START) for n in sorted(current - previous)
            ]
            stopped = [
                (n, common_pb2.MEDICATION_EVENT_TYPE_STOP) for n in sorted(previous - current)
            ]
            for name, kind in started + stopped:
                change = twin_pb2.MedicationChange(
                    snapshot_id=snapshot.snapshot_id, medication=name, change=kind
                )
                change.detected_at.CopyFrom(to_timestamp(snapshot.generated_at))
                changes.append(change)
        previous = current
    return changes


def build_progress(snapshots: list[Snapshot]) -> twin_pb2.GetPatientProgressResponse:
    response = twin_pb2.GetPatientProgressResponse()
    daily = _daily_means(snapshots)
    for snapshot in snapshots:
        point = response.timeline.add(
            snapshot_id=snapshot.snapshot_id,
            overall_risk=snapshot.response.overall_risk,
            recommendation_count=len(snapshot.response.recommendations),
        )
        point.generated_at.CopyFrom(to_timestamp(snapshot.generated_at))
        point.latest_scores.extend(_latest_scores(snapshot))
        response.forecast_accuracy.extend(_accuracy(snapshot, daily))
    for instrument in sorted(daily):
        summary = _summary(instrument, daily[instrument], snapshots)
        if summary is not None:
            response.symptom_trends.append(summary)
    response.medication_changes.extend(_medication_changes(snapshots))
    return response
