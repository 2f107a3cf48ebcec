"""Request rules of the biometric service.

Every rule is checked over whole arrays at once (a request may hold hundreds
of thousands of samples), and every broken rule is collected before failing,
so one round trip shows all of them. A violation names the field with its
index (``biometrics[3].value``) and the rule; it never repeats the value.
Physiological ranges and daily limits are the ones the CSV loaders enforce
(``common.datasets``), so a sample accepted in one path is accepted in both.
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np
import numpy.typing as npt

from biometric_svc.domain import (
    GRANULARITIES,
    INSTRUMENT_LABELS,
    METRIC_LABELS,
    BiometricSamples,
    IndicatorObservations,
)
from common.biometric_metrics import METRICS
from common.datasets import DAILY_LIMITS, READING_RANGES
from common.errors import ValidationCollector
from common.limits import (
    EARLIEST_OBSERVATION,
    FUTURE_TOLERANCE,
    MAX_BIOMETRIC_SAMPLES,
    MAX_INDICATORS,
)
from common.pseudonym import is_pseudonym
from common.synthetic import INSTRUMENT_RANGES, INSTRUMENTS

BoolArray = npt.NDArray[np.bool_]

DAY_NS: Final = 86_400 * 1_000_000_000
#: Device clocks drift; a reading a few minutes "ahead" is not a future observation.
FUTURE_TOLERANCE_NS: Final = int(FUTURE_TOLERANCE.total_seconds()) * 1_000_000_000
#: 2000-01-01T00:00:00Z: anything earlier is an unset or corrupt timestamp.
EARLIEST_NS: Final = int(EARLIEST_OBSERVATION.timestamp()) * 1_000_000_000
#: Indices reported per broken rule; the rest are counted.
_EXAMPLES_PER_RULE: Final = 3

DEFAULT_LOOKBACK_DAYS: Final = 180
LOOKBACK_RANGE: Final = (14, 730)
DEFAULT_MAX_LAG_DAYS: Final = 14
MAX_LAG_RANGE: Final = (1, 30)
DEFAULT_FDR_ALPHA: Final = 0.05
DEFAULT_BASELINE_WINDOW_DAYS: Final = 28
BASELINE_WINDOW_RANGE: Final = (7, 180)

_GRANULARITY_HOURS: Final = np.array([1.0 / 60.0, 1.0, 24.0])
# Spelled as the protobuf JSON mapping accepts them (BIOMETRIC_METRIC_STEPS, not STEPS).
_ENUM_NAMES: Final = ", ".join(f"BIOMETRIC_METRIC_{name.upper()}" for name in METRICS)
_INSTRUMENT_NAMES: Final = ", ".join(f"INSTRUMENT_{name.upper()}" for name in INSTRUMENTS)
_RULE_TIME_SET: Final = "must be set to a UTC time on or after 2000-01-01"
_RULE_FUTURE: Final = "must not be in the future"


def _flag(
    collector: ValidationCollector, bad: BoolArray, field_of: str, suffix: str, rule: str
) -> None:
    """Report the first few indices where ``bad`` holds, and how many more there are."""
    indices = np.flatnonzero(bad)
    if indices.size == 0:
        return
    for index in indices[:_EXAMPLES_PER_RULE].tolist():
        collector.add(f"{field_of}[{index}].{suffix}", rule)
    extra = int(indices.size) - _EXAMPLES_PER_RULE
    if extra > 0:
        collector.add(f"{field_of}[*].{suffix}", f"{rule} ({extra} more samples break this rule)")


def _check_times(
    collector: ValidationCollector, times_ns: npt.NDArray[np.int64], field_of: str, suffix: str
) -> BoolArray:
    now_ns = time.time_ns()
    unset = times_ns < EARLIEST_NS
    future = times_ns > now_ns + FUTURE_TOLERANCE_NS
    _flag(collector, unset, field_of, suffix, _RULE_TIME_SET)
    _flag(collector, future, field_of, suffix, _RULE_FUTURE)
    return ~(unset | future)


def _first_duplicates(keys: npt.NDArray[np.int64], times_ns: npt.NDArray[np.int64]) -> BoolArray:
    """True for every (key, time) pair that repeats an earlier one, in request order."""
    duplicated = np.zeros(keys.shape[0], dtype=np.bool_)
    if keys.size < 2:
        return duplicated
    order = np.lexsort((np.arange(keys.size), times_ns, keys))
    same = (keys[order][1:] == keys[order][:-1]) & (times_ns[order][1:] == times_ns[order][:-1])
    duplicated[order[1:][same]] = True
    return duplicated


def validate_biometrics(
    collector: ValidationCollector, samples: BiometricSamples, field_of: str = "biometrics"
) -> None:
    """Check every sample and the daily totals; add violations to ``collector``."""
    if len(samples) > MAX_BIOMETRIC_SAMPLES:
        collector.add(field_of, f"must hold at most {MAX_BIOMETRIC_SAMPLES:,} samples")
        return
    metric, value, granularity = samples.metric, samples.value, samples.granularity
    known_metric = (metric >= 0) & (metric < len(METRICS))
    _flag(collector, ~known_metric, field_of, "metric", f"must be one of {_ENUM_NAMES}")
    known_granularity = (granularity >= 0) & (granularity < len(GRANULARITIES))
    _flag(
        collector,
        ~known_granularity,
        field_of,
        "granularity",
        "must be SAMPLE_GRANULARITY_MINUTE, SAMPLE_GRANULARITY_HOUR, SAMPLE_GRANULARITY_DAY "
        "or SAMPLE_GRANULARITY_UNSPECIFIED (treated as day)",
    )
    time_ok = _check_times(collector, samples.measured_at_ns, field_of, "measured_at")
    finite = np.isfinite(value)
    _flag(collector, ~finite, field_of, "value", "must be a finite number")

    usable = known_metric & known_granularity & finite
    span_hours = _GRANULARITY_HOURS[np.where(known_granularity, granularity, 2)]
    out_of_range = np.zeros(len(samples), dtype=np.bool_)

    def flag_value(bad: BoolArray, rule: str) -> None:
        nonlocal out_of_range
        out_of_range |= bad
        _flag(collector, bad, field_of, "value", rule)

    for name, (low, high) in READING_RANGES.items():
        is_metric = usable & (metric == METRICS.index(name))
        flag_value(
            is_metric & ((value < low) | (value > high)),
            f"{METRIC_LABELS[name]} must be within {low:g}..{high:g}",
        )
    for name in DAILY_LIMITS:
        is_metric = usable & (metric == METRICS.index(name))
        flag_value(is_metric & (value < 0), f"{METRIC_LABELS[name]} must not be negative")
    sleep = usable & (metric == METRICS.index("sleep_duration"))
    flag_value(
        sleep & (value > span_hours),
        "sleep duration (hours) must not exceed the period its granularity covers",
    )
    active = usable & (metric == METRICS.index("active_minutes"))
    flag_value(
        active & (value > span_hours * 60.0),
        "active minutes must not exceed the minutes in the period its granularity covers",
    )
    steps = usable & (metric == METRICS.index("steps"))
    flag_value(
        steps & (value > DAILY_LIMITS["steps"]),
        f"step count must be at most {DAILY_LIMITS['steps']:,.0f} per sample",
    )

    keyed = known_metric & time_ok
    duplicate = np.zeros(len(samples), dtype=np.bool_)
    duplicate[keyed] = _first_duplicates(metric[keyed], samples.measured_at_ns[keyed])
    _flag(
        collector,
        duplicate,
        field_of,
        "measured_at",
        "duplicates an earlier sample of the same metric at the same time",
    )
    _check_days(collector, samples, usable & time_ok & ~duplicate & ~out_of_range, field_of)


def _check_days(
    collector: ValidationCollector, samples: BiometricSamples, ok: BoolArray, field_of: str
) -> None:
    """One granularity per metric and UTC day; daily totals of additive metrics within limits."""
    index = np.flatnonzero(ok)
    if index.size == 0:
        return
    metric = samples.metric[index]
    day = samples.measured_at_ns[index] // DAY_NS
    granularity = samples.granularity[index]
    order = np.lexsort((samples.measured_at_ns[index], day, metric))
    metric, day, granularity = metric[order], day[order], granularity[order]
    value = samples.value[index][order]
    original = index[order]
    group_start = np.ones(order.size, dtype=np.bool_)
    group_start[1:] = (metric[1:] != metric[:-1]) | (day[1:] != day[:-1])
    group_id = np.cumsum(group_start) - 1
    first_granularity = granularity[group_start][group_id]
    mixed = np.zeros(samples.metric.shape[0], dtype=np.bool_)
    mixed[original[granularity != first_granularity]] = True
    _flag(
        collector,
        mixed,
        field_of,
        "granularity",
        "one metric must use one granularity per UTC day (mixing would count time twice)",
    )
    cumulative = np.cumsum(value)
    group_offset = (cumulative - value)[group_start][group_id]
    running_total = cumulative - group_offset
    for name, limit in DAILY_LIMITS.items():
        over = (metric == METRICS.index(name)) & (running_total > limit * (1 + 1e-9))
        # Only the sample that first crosses the limit in each day is named.
        crossing = over & ~np.r_[False, over[:-1] & ~group_start[1:]]
        bad = np.zeros(samples.metric.shape[0], dtype=np.bool_)
        bad[original[crossing]] = True
        unit = {"sleep_duration": " hours", "steps": "", "active_minutes": ""}[name]
        _flag(
            collector,
            bad,
            field_of,
            "value",
            f"daily total of {METRIC_LABELS[name]} must be at most {limit:,.0f}{unit} per UTC day",
        )


def validate_indicators(
    collector: ValidationCollector, indicators: IndicatorObservations, field_of: str = "indicators"
) -> None:
    if len(indicators) > MAX_INDICATORS:
        collector.add(field_of, f"must hold at most {MAX_INDICATORS:,} observations")
        return
    instrument, score = indicators.instrument, indicators.score
    known = (instrument >= 0) & (instrument < len(INSTRUMENTS))
    _flag(collector, ~known, field_of, "instrument", f"must be one of {_INSTRUMENT_NAMES}")
    time_ok = _check_times(collector, indicators.observed_at_ns, field_of, "observed_at")
    finite = np.isfinite(score)
    _flag(collector, ~finite, field_of, "score", "must be a finite number")
    for code, name in enumerate(INSTRUMENTS):
        low, high = INSTRUMENT_RANGES[name]
        is_instrument = known & finite & (instrument == code)
        _flag(
            collector,
            is_instrument & ((score < low) | (score > high)),
            field_of,
            "score",
            f"{INSTRUMENT_LABELS[name]} score must be within {low:g}..{high:g}",
        )
        if name in ("phq9", "gad7"):
            _flag(
                collector,
                is_instrument & (score != np.round(score)),
                field_of,
                "score",
                f"{INSTRUMENT_LABELS[name]} score must be a whole number",
            )
    keyed = known & time_ok
    duplicate = np.zeros(len(indicators), dtype=np.bool_)
    duplicate[keyed] = _first_duplicates(instrument[keyed], indicators.observed_at_ns[keyed])
    _flag(
        collector,
        duplicate,
        field_of,
        "observed_at",
        "duplicates an earlier score of the same instrument at the same time",
    )


def validate_pseudonym(collector: ValidationCollector, pseudonym: str) -> None:
    collector.check(
        is_pseudonym(pseudonym),
        "patient_pseudonym",
        "must be a pseudonym: 'psn_' followed by 32 lowercase hex characters",
    )


def _resolve_int(
    collector: ValidationCollector,
    value: int,
    field_name: str,
    default: int,
    allowed: tuple[int, int],
) -> int:
    if value == 0:
        return default
    low, high = allowed
    if not low <= value <= high:
        collector.add(field_name, f"must be 0 (meaning {default}) or within {low}..{high}")
        return default
    return value


def resolve_lookback_days(collector: ValidationCollector, value: int) -> int:
    return _resolve_int(collector, value, "lookback_days", DEFAULT_LOOKBACK_DAYS, LOOKBACK_RANGE)


def resolve_max_lag_days(collector: ValidationCollector, value: int) -> int:
    return _resolve_int(collector, value, "max_lag_days", DEFAULT_MAX_LAG_DAYS, MAX_LAG_RANGE)


def resolve_baseline_window_days(collector: ValidationCollector, value: int) -> int:
    return _resolve_int(
        collector,
        value,
        "baseline_window_days",
        DEFAULT_BASELINE_WINDOW_DAYS,
        BASELINE_WINDOW_RANGE,
    )


def resolve_fdr_alpha(collector: ValidationCollector, value: float) -> float:
    if value == 0.0:
        return DEFAULT_FDR_ALPHA
    if not (np.isfinite(value) and 0.0 < value <= 0.5):
        collector.add("fdr_alpha", f"must be 0 (meaning {DEFAULT_FDR_ALPHA}) or within (0, 0.5]")
        return DEFAULT_FDR_ALPHA
    return float(value)
