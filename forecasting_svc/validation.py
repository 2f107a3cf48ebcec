"""Request rules of ForecastSymptoms.

Every violation names the field (``history[3].score``) and the rule, never the
value. All rules are checked before failing, so one round trip shows every
problem; after ``_MAX_REPORTED`` violations checking stops (a 20,000-point
history with one systematic error would otherwise produce 20,000 entries).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from common.errors import FieldViolation, InvalidArgumentError
from common.limits import (
    DEFAULT_HORIZON_DAYS,
    FUTURE_TOLERANCE,
    MAX_DOSE_MG,
    MAX_HORIZON_DAYS,
    MAX_MEDICATION_EVENTS,
    MAX_TEXT,
)
from common.pseudonym import is_pseudonym
from forecasting_svc.domain import (
    CovariateKind,
    ForecastRequest,
    MedicationEventKind,
    ModelChoice,
)
from forecasting_svc.instruments import SPECS, Instrument

_LOGGER = logging.getLogger(__name__)

MIN_HORIZON_DAYS: Final = 1
DEFAULT_QUANTILE_LEVELS: Final = (0.1, 0.5, 0.9)
DEFAULT_INTERVAL_COVERAGE: Final = 0.8
DEFAULT_RISK_PROBABILITY: Final = 0.5
MAX_QUANTILE_LEVELS: Final = 99
MAX_MEDICATION_NAME: Final = MAX_TEXT
#: Days before the last observation that the models read; older points are ignored.
WINDOW_DAYS: Final = 90
COVARIATE_DAILY_LIMITS: Final = {CovariateKind.SLEEP_HOURS: 24.0, CovariateKind.STEPS: 100_000.0}
_COVARIATE_NAMES: Final = {CovariateKind.SLEEP_HOURS: "sleep hours", CovariateKind.STEPS: "steps"}
_MAX_DOSE_MG: Final = MAX_DOSE_MG
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Device clocks drift; a reading a few minutes "ahead" is not a future observation.
_FUTURE_TOLERANCE: Final = FUTURE_TOLERANCE
_MAX_REPORTED: Final = 50
_INSTRUMENT_RULE: Final = "must be one of INSTRUMENT_PHQ9, INSTRUMENT_GAD7, INSTRUMENT_MOOD, " + (
    "INSTRUMENT_ANXIETY"
)


@dataclass(frozen=True)
class ForecastSpec:
    """The request's options with defaults applied."""

    horizon_days: int
    quantile_levels: tuple[float, ...]
    interval_coverage: float
    model: ModelChoice
    risk_probability: float


class _Violations:
    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= _MAX_REPORTED

    def add(self, field: str, rule: str) -> None:
        if not self.full:
            self.items.append(FieldViolation(field, rule))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgumentError(self.items)


def _probability_field(value: float) -> bool:
    return math.isfinite(value) and 0.0 < value < 1.0


def _check_time(moment: datetime | None, field: str, now: datetime, out: _Violations) -> bool:
    if moment is None:
        out.add(field, "must be set")
        return False
    if moment < _EPOCH or moment > now + _FUTURE_TOLERANCE:
        out.add(field, "must be a valid time between 1970 and now (not in the future)")
        return False
    return True


def _check_history(request: ForecastRequest, now: datetime, out: _Violations) -> None:
    last_time: dict[Instrument, datetime] = {}
    for i, observation in enumerate(request.history):
        if out.full:
            return
        field = f"history[{i}]"
        instrument = observation.instrument
        if instrument is None:
            out.add(f"{field}.instrument", _INSTRUMENT_RULE)
        else:
            spec = SPECS[instrument]
            score = observation.score
            if not math.isfinite(score):
                out.add(f"{field}.score", "must be a finite number")
            elif not 0.0 <= score <= spec.max_score:
                out.add(
                    f"{field}.score",
                    f"must be within 0..{spec.max_score:g} for {spec.display_name}",
                )
            elif spec.whole_numbers and score != round(score):
                out.add(f"{field}.score", f"must be a whole number for {spec.display_name}")
        time_ok = _check_time(observation.observed_at, f"{field}.observed_at", now, out)
        if instrument is None or not time_ok or observation.observed_at is None:
            continue
        previous = last_time.get(instrument)
        if previous is not None:
            name = SPECS[instrument].display_name
            if observation.observed_at == previous:
                out.add(
                    f"{field}.observed_at",
                    f"duplicate timestamp: another {name} observation has the same time",
                )
            elif observation.observed_at < previous:
                out.add(
                    f"{field}.observed_at",
                    f"history must be sorted by time per instrument; this {name} "
                    "observation is earlier than the one before it",
                )
        last_time[instrument] = max(observation.observed_at, previous or observation.observed_at)
    _check_recent_per_instrument(last_time, out)


def _check_recent_per_instrument(last_time: dict[Instrument, datetime], out: _Violations) -> None:
    if not last_time:
        return
    newest = max(last_time.values())
    for instrument, moment in last_time.items():
        if (newest.date() - moment.date()).days >= WINDOW_DAYS:
            out.add(
                "history",
                f"every instrument needs an observation within {WINDOW_DAYS} days of the "
                f"last observation; {SPECS[instrument].display_name} has none",
            )


def _check_covariates(request: ForecastRequest, now: datetime, out: _Violations) -> None:
    daily_totals: dict[tuple[CovariateKind, object], float] = {}
    for i, covariate in enumerate(request.covariates):
        if out.full:
            return
        field = f"covariates[{i}]"
        kind = covariate.kind
        time_ok = _check_time(covariate.observed_at, f"{field}.observed_at", now, out)
        if kind is None:
            out.add(f"{field}.kind", "must be COVARIATE_KIND_SLEEP_HOURS or COVARIATE_KIND_STEPS")
            continue
        limit = COVARIATE_DAILY_LIMITS[kind]
        name = _COVARIATE_NAMES[kind]
        if not math.isfinite(covariate.value):
            out.add(f"{field}.value", "must be a finite number")
            continue
        if not 0.0 <= covariate.value <= limit:
            out.add(f"{field}.value", f"{name} must be within 0..{limit:,.0f}")
            continue
        if not time_ok or covariate.observed_at is None:
            continue
        key = (kind, covariate.observed_at.astimezone(UTC).date())
        total = daily_totals.get(key, 0.0) + covariate.value
        daily_totals[key] = total
        if total > limit:
            out.add(f"{field}.value", f"daily total of {name} must be at most {limit:,.0f}")


def _check_medications(request: ForecastRequest, now: datetime, out: _Violations) -> None:
    for i, event in enumerate(request.medication_events):
        if out.full:
            return
        field = f"medication_events[{i}]"
        _check_time(event.occurred_at, f"{field}.occurred_at", now, out)
        if event.kind is None:
            out.add(
                f"{field}.type",
                "must be MEDICATION_EVENT_TYPE_START, MEDICATION_EVENT_TYPE_STOP or "
                "MEDICATION_EVENT_TYPE_DOSE_CHANGE",
            )
        name = event.medication.strip()
        if not name or len(name) > MAX_MEDICATION_NAME or not name.isprintable():
            out.add(
                f"{field}.medication",
                f"must be a generic drug name of 1..{MAX_MEDICATION_NAME} printable characters",
            )
        dose = event.daily_dose_mg
        if not math.isfinite(dose) or not 0.0 <= dose <= _MAX_DOSE_MG:
            out.add(f"{field}.daily_dose_mg", f"must be within 0..{_MAX_DOSE_MG:,.0f} mg")
        elif event.kind is MedicationEventKind.STOP and dose != 0.0:
            out.add(f"{field}.daily_dose_mg", "must be 0 for a stop")


def _check_levels(levels: Sequence[float], out: _Violations) -> tuple[float, ...]:
    if not levels:
        return DEFAULT_QUANTILE_LEVELS
    if len(levels) > MAX_QUANTILE_LEVELS:
        out.add("quantile_levels", f"must hold at most {MAX_QUANTILE_LEVELS} levels")
        return DEFAULT_QUANTILE_LEVELS
    for i, level in enumerate(levels):
        if not _probability_field(level):
            out.add(f"quantile_levels[{i}]", "must be within (0, 1)")
        elif i > 0 and math.isfinite(levels[i - 1]) and level <= levels[i - 1]:
            out.add(f"quantile_levels[{i}]", "levels must be strictly increasing")
    return tuple(float(v) for v in levels)


def _check_sizes(request: ForecastRequest, max_history_points: int) -> None:
    """Size limits first and alone: nothing else is inspected in an oversized request."""
    out = _Violations()
    if len(request.history) > max_history_points:
        out.add(
            "history",
            f"must hold at most {max_history_points} observations "
            "(limit NOVAMIND_MAX_HISTORY_POINTS)",
        )
    if len(request.covariates) > max_history_points:
        out.add(
            "covariates",
            f"must hold at most {max_history_points} observations "
            "(limit NOVAMIND_MAX_HISTORY_POINTS)",
        )
    if len(request.medication_events) > MAX_MEDICATION_EVENTS:
        out.add("medication_events", f"must hold at most {MAX_MEDICATION_EVENTS} events")
    out.raise_if_any()


def validate_request(
    request: ForecastRequest, *, max_history_points: int, now: datetime | None = None
) -> ForecastSpec:
    """Check every rule; raise InvalidArgumentError naming each broken field."""
    now = now or datetime.now(UTC)
    _check_sizes(request, max_history_points)
    out = _Violations()
    if not is_pseudonym(request.patient_pseudonym):
        out.add("patient_pseudonym", "must be 'psn_' followed by 32 lowercase hex characters")
    if not request.history:
        out.add("history", "must hold at least one observation")
    horizon = request.horizon_days
    if horizon != 0 and not MIN_HORIZON_DAYS <= horizon <= MAX_HORIZON_DAYS:
        out.add(
            "horizon_days",
            f"must be 0 (meaning {DEFAULT_HORIZON_DAYS}) or within "
            f"{MIN_HORIZON_DAYS}..{MAX_HORIZON_DAYS}",
        )
    levels = _check_levels(request.quantile_levels, out)
    coverage = request.interval_coverage
    if coverage != 0.0 and not _probability_field(coverage):
        out.add("interval_coverage", "must be 0 (default 0.8) or within (0, 1)")
    risk = request.risk_probability
    if risk != 0.0 and not _probability_field(risk):
        out.add("risk_probability", "must be 0 (default 0.5) or within (0, 1)")
    if request.model is None:
        out.add(
            "model",
            "must be FORECAST_MODEL_ENSEMBLE, FORECAST_MODEL_TRANSFORMER, "
            "FORECAST_MODEL_XGBOOST or FORECAST_MODEL_UNSPECIFIED (the ensemble)",
        )
    _check_history(request, now, out)
    _check_covariates(request, now, out)
    _check_medications(request, now, out)
    out.raise_if_any()
    return ForecastSpec(
        horizon_days=horizon if horizon != 0 else DEFAULT_HORIZON_DAYS,
        quantile_levels=levels,
        interval_coverage=coverage if coverage != 0.0 else DEFAULT_INTERVAL_COVERAGE,
        model=request.model or ModelChoice.ENSEMBLE,
        risk_probability=risk if risk != 0.0 else DEFAULT_RISK_PROBABILITY,
    )
