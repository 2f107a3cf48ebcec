"""The biometric kernels as they were before vectorisation, kept to pin equivalence.

Verbatim copies (pandas groupby daily aggregation, np.nanmedian trailing
baselines, the per-lag Python loop of the lagged correlation grid with its
per-pair autocorrelations, and anomaly detection on those baselines) of the
code that served before one-pass analysis, and of the isolation forest before
it skipped empty nodes. ``test_biometric_one_pass`` compares the service's
responses with responses built from these functions. Nothing in the services
imports this module.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from biometric_svc.aggregation import DailySeries
from biometric_svc.anomalies import (
    FOREST_THRESHOLD,
    MIN_DAYS_WITH_DATA,
    Z_THRESHOLD,
    _as_date,
    _deviations,
    _severity,
    _z_score_to_unit,
    missing_spans,
)
from biometric_svc.baseline import (
    LOG_SCALE_METRICS,
    MAD_FLOOR,
    MAD_TO_SD,
    MIN_BASELINE_DAYS,
    MIN_SAME_TYPE,
    SCALE_WINDOWS,
    DailyBaseline,
    current_baselines,
    is_weekend,
)
from biometric_svc.correlation import (
    _ACF_LAGS,
    MIN_PAIRS,
    benjamini_hochberg,
    correlation_p_value,
    effective_sample_size,
    prepare_indicator,
    prepare_metric,
    reading,
    sidak,
    variance_inflation,
)
from biometric_svc.domain import (
    Anomaly,
    AnomalyReport,
    BiometricSamples,
    DetectionMethod,
    IndicatorObservations,
    LaggedCorrelation,
)
from biometric_svc.models.isolation_forest import (
    _Z_CLIP,
    MAX_SAMPLES,
    MIN_DAYS,
    N_TREES,
    average_path_length,
)
from biometric_svc.models.isolation_forest import MIN_DAYS as FOREST_MIN_DAYS
from common.biometric_metrics import METRICS
from common.datasets import biometrics_to_daily, symptoms_to_daily
from common.synthetic import INSTRUMENTS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_PATIENT = "patient"


def _daily_biometric_frame(samples: BiometricSamples) -> pd.DataFrame:
    long_df = pd.DataFrame(
        {
            "patient_id": _PATIENT,
            "measured_at": pd.to_datetime(samples.measured_at_ns, unit="ns", utc=True),
            "metric": np.asarray(METRICS, dtype=object)[samples.metric],
            "value": samples.value,
        }
    )
    return biometrics_to_daily(long_df)


def _daily_indicator_frame(indicators: IndicatorObservations) -> pd.DataFrame:
    long_df = pd.DataFrame(
        {
            "patient_id": _PATIENT,
            "observed_at": pd.to_datetime(indicators.observed_at_ns, unit="ns", utc=True),
            "instrument": np.asarray(INSTRUMENTS, dtype=object)[indicators.instrument],
            "score": indicators.score,
        }
    )
    return symptoms_to_daily(long_df)


def daily_series(
    biometrics: BiometricSamples, indicators: IndicatorObservations | None = None
) -> DailySeries:
    """Aggregate validated samples to days spanning the first to the last sample of either kind."""
    frames: list[pd.DataFrame] = []
    if len(biometrics):
        frames.append(_daily_biometric_frame(biometrics))
    if indicators is not None and len(indicators):
        frames.append(_daily_indicator_frame(indicators))
    if not frames:
        return DailySeries(
            dates=pd.DatetimeIndex([]),
            biometrics=np.zeros((0, len(METRICS))),
            indicators=np.zeros((0, len(INSTRUMENTS))),
        )
    first = min(frame["date"].min() for frame in frames)
    last = max(frame["date"].max() for frame in frames)
    dates = pd.date_range(first, last, freq="D")
    bio = np.full((len(dates), len(METRICS)), np.nan)
    ind = np.full((len(dates), len(INSTRUMENTS)), np.nan)
    if len(biometrics):
        frame = frames[0].set_index("date").reindex(dates)
        bio = frame[list(METRICS)].to_numpy(np.float64)
    if indicators is not None and len(indicators):
        frame = frames[-1].set_index("date").reindex(dates)
        ind = frame[list(INSTRUMENTS)].to_numpy(np.float64)
    return DailySeries(dates=dates, biometrics=bio, indicators=ind)


def _nan_median(windows: FloatArray) -> FloatArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows -> NaN, by design
        result: FloatArray = np.nanmedian(windows, axis=1)
    return result


def _windows(values: npt.NDArray[Any], window_days: int, fill: float | bool) -> npt.NDArray[Any]:
    """Row t holds the ``window_days`` values before day t (padded with ``fill``)."""
    padded = np.concatenate([np.full(window_days, fill, dtype=values.dtype), values])
    result: npt.NDArray[Any] = sliding_window_view(padded, window_days)[: values.shape[0]]
    return result


def trailing_baseline(
    values: FloatArray, weekend: BoolArray, window_days: int
) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of the days before each day (NaN where too few days).

    The median is that of the day's own type (weekday or weekend) over the
    ``window_days`` before it, when the window holds ``MIN_SAME_TYPE`` such
    days, else over all of them. The MAD is the median absolute distance of
    earlier days from *their own* trailing medians, over ``SCALE_WINDOWS``
    times as many days: day-to-day variability changes more slowly than the
    level, and a MAD from a few weeks of autocorrelated data is noisy enough
    to double the rate of spurious |z| >= 3 days.
    """
    windows = _windows(values, window_days, np.nan)
    window_types = _windows(weekend, window_days, False)
    all_median = _nan_median(windows)
    all_count = np.isfinite(windows).sum(axis=1)
    type_median = {}
    for kind in (False, True):
        of_kind = np.where(window_types == kind, windows, np.nan)
        enough = np.isfinite(of_kind).sum(axis=1) >= MIN_SAME_TYPE
        type_median[kind] = np.where(enough, _nan_median(of_kind), all_median)
    own_type = np.where(weekend, type_median[True], type_median[False])
    median = np.where(all_count >= MIN_BASELINE_DAYS, own_type, np.nan)
    residual = np.abs(values - median)
    scale_windows = _windows(residual, window_days * SCALE_WINDOWS, np.nan)
    mad = _nan_median(scale_windows)
    mad = np.where(np.isfinite(scale_windows).sum(axis=1) >= MIN_BASELINE_DAYS, mad, np.nan)
    return median, mad


def daily_baseline(
    biometrics: FloatArray, dates: pd.DatetimeIndex, window_days: int
) -> DailyBaseline:
    weekend = is_weekend(dates)
    medians = np.full_like(biometrics, np.nan)
    mads = np.full_like(biometrics, np.nan)
    robust_z = np.full_like(biometrics, np.nan)
    for j, name in enumerate(METRICS):
        log_scale = name in LOG_SCALE_METRICS
        values = np.log1p(np.clip(biometrics[:, j], 0.0, None)) if log_scale else biometrics[:, j]
        median, mad = trailing_baseline(values, weekend, window_days)
        mad = np.maximum(mad, MAD_FLOOR[name])
        robust_z[:, j] = (values - median) / (MAD_TO_SD * mad)
        medians[:, j] = np.expm1(median) if log_scale else median
        mads[:, j] = mad
    return DailyBaseline(median=medians, mad=mads, robust_z=robust_z)


def _pearson(x: FloatArray, y: FloatArray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.sum(xc * xc)) * float(np.sum(yc * yc)))
    if denominator <= 0.0:
        return float("nan")
    return float(np.sum(xc * yc) / denominator)


def _autocorrelation(values: FloatArray, max_lag: int) -> FloatArray:
    acf = np.zeros(max_lag + 1)
    for j in range(1, max_lag + 1):
        a, b = values[j:], values[:-j]
        both = np.isfinite(a) & np.isfinite(b)
        if both.sum() >= 5:
            r = _pearson(a[both], b[both])
            acf[j] = 0.0 if math.isnan(r) else r
    return acf


@dataclass(frozen=True)
class _PairResult:
    metric: str
    indicator: str
    lag_days: int
    pearson_r: float
    spearman_r: float
    n: int
    p_value: float
    profile: tuple[tuple[int, float], ...]


def _best_lag(
    x: FloatArray, y: FloatArray, max_lag: int
) -> tuple[int, float, int, list[tuple[int, float]]] | None:
    days = x.size
    profile: list[tuple[int, float]] = []
    best: tuple[int, float, int] | None = None
    for lag in range(min(max_lag, days - 1) + 1):
        xs, ys = x[: days - lag], y[lag:]
        both = np.isfinite(xs) & np.isfinite(ys)
        n = int(both.sum())
        if n < MIN_PAIRS:
            continue
        r = _pearson(xs[both], ys[both])
        if math.isnan(r):
            continue
        profile.append((lag, r))
        if best is None or abs(r) > abs(best[1]):
            best = (lag, r, n)
    if best is None:
        return None
    return best[0], best[1], best[2], profile


def _analyse_pair(
    metric: str, indicator: str, x: FloatArray, y: FloatArray, max_lag: int
) -> _PairResult | None:
    found = _best_lag(x, y, max_lag)
    if found is None:
        return None
    lag, r, n, profile = found
    xs, ys = x[: x.size - lag], y[lag:]
    both = np.isfinite(xs) & np.isfinite(ys)
    x_ranks, y_ranks = stats.rankdata(xs[both]), stats.rankdata(ys[both])
    spearman = _pearson(x_ranks, y_ranks)
    n_effective = effective_sample_size(
        n, _autocorrelation(x, _ACF_LAGS), _autocorrelation(y, _ACF_LAGS)
    )
    # The test runs on ranks: a burst of unstable days cannot carry it (see module doc).
    n_effective /= variance_inflation(x_ranks, y_ranks, spearman)
    p = sidak(correlation_p_value(spearman, n_effective), len(profile))
    return _PairResult(
        metric=metric,
        indicator=indicator,
        lag_days=lag,
        pearson_r=r,
        spearman_r=0.0 if math.isnan(spearman) else spearman,
        n=n,
        p_value=p,
        profile=tuple(profile),
    )


def lagged_correlations(
    daily: DailySeries, max_lag_days: int, fdr_alpha: float
) -> tuple[LaggedCorrelation, ...]:
    """Every biometric x indicator pair with enough paired days, strongest evidence first."""
    weekday = daily.dates.dayofweek.to_numpy().astype(np.int64)
    metrics = {
        name: prepare_metric(daily.biometrics[:, j], name, weekday)
        for j, name in enumerate(METRICS)
        if np.isfinite(daily.biometrics[:, j]).sum() >= MIN_PAIRS
    }
    indicators = {
        name: prepare_indicator(daily.indicators[:, j], weekday)
        for j, name in enumerate(INSTRUMENTS)
        if np.isfinite(daily.indicators[:, j]).sum() >= MIN_PAIRS
    }
    pairs = [
        result
        for metric, x in metrics.items()
        for indicator, y in indicators.items()
        if (result := _analyse_pair(metric, indicator, x, y, max_lag_days)) is not None
    ]
    if not pairs:
        return ()
    q_values = benjamini_hochberg(np.array([pair.p_value for pair in pairs]))
    results = [
        LaggedCorrelation(
            metric=pair.metric,
            indicator=pair.indicator,
            lag_days=pair.lag_days,
            pearson_r=pair.pearson_r,
            spearman_r=pair.spearman_r,
            n=pair.n,
            p_value=pair.p_value,
            q_value=float(q),
            significant=bool(q < fdr_alpha),
            # The one departure from the verbatim copy: readings follow the later wording
            # rule (a non-significant pair reads "no evidence that ..."), a deliberate
            # clinical-wording change made apart from the speed-up.
            reading=reading(
                pair.metric,
                pair.indicator,
                pair.pearson_r,
                pair.lag_days,
                q_value=None if q < fdr_alpha else float(q),
            ),
            profile=pair.profile,
        )
        for pair, q in zip(pairs, q_values, strict=True)
    ]
    results.sort(key=lambda c: (c.q_value, -abs(c.pearson_r)))
    return tuple(results)


def detect_anomalies(
    biometrics: FloatArray, dates: pd.DatetimeIndex, window_days: int
) -> AnomalyReport:
    """Anomalies, missing spans and current baselines of daily biometrics (days x METRICS)."""
    missing = missing_spans(biometrics, dates)
    baselines = current_baselines(biometrics, window_days)
    days_with_data = int(np.isfinite(biometrics).any(axis=1).sum())
    if days_with_data < MIN_DAYS_WITH_DATA:
        return AnomalyReport((), missing, baselines, insufficient_data=True)

    baseline = daily_baseline(biometrics, dates, window_days)
    robust_z = baseline.robust_z
    scored = np.isfinite(robust_z).any(axis=1)
    abs_z = np.where(np.isfinite(robust_z), np.abs(robust_z), 0.0)
    max_abs_z = abs_z.max(axis=1)
    z_flag = scored & (max_abs_z >= Z_THRESHOLD)

    forest = np.zeros(len(dates))
    forest_flag = np.zeros(len(dates), dtype=np.bool_)
    if scored.sum() >= FOREST_MIN_DAYS:
        supplied = np.isfinite(robust_z[scored]).any(axis=0)
        features = np.nan_to_num(robust_z[scored][:, supplied], nan=0.0)
        forest[scored] = isolation_scores(features)
        forest_flag = scored & (forest >= FOREST_THRESHOLD)

    anomalies: list[Anomaly] = []
    for row in np.flatnonzero(z_flag | forest_flag).tolist():
        if z_flag[row] and forest_flag[row]:
            method = DetectionMethod.BOTH
        elif z_flag[row]:
            method = DetectionMethod.ROBUST_Z
        else:
            method = DetectionMethod.ISOLATION_FOREST
        score = max(float(forest[row]), float(_z_score_to_unit(max_abs_z[row : row + 1])[0]))
        n_over = int((abs_z[row] >= Z_THRESHOLD).sum())
        anomalies.append(
            Anomaly(
                date=_as_date(dates[row]),
                deviations=_deviations(row, robust_z, biometrics, baseline.median),
                score=min(score, 1.0),
                severity=_severity(float(max_abs_z[row]), n_over, method, float(forest[row])),
                method=method,
            )
        )
    return AnomalyReport(tuple(anomalies), missing, baselines, insufficient_data=False)


def _node_ranges(
    keys: npt.NDArray[np.int64], values: FloatArray, n_nodes: int
) -> tuple[FloatArray, FloatArray]:
    """Per node and feature, the minimum and maximum of its sampled days (+-inf when empty)."""
    low = np.full((n_nodes, values.shape[1]), np.inf)
    high = np.full((n_nodes, values.shape[1]), -np.inf)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    low[ordered[starts]] = np.minimum.reduceat(values[order], starts, axis=0)
    high[ordered[starts]] = np.maximum.reduceat(values[order], starts, axis=0)
    return low, high


def isolation_scores(robust_z: FloatArray, seed: int = 0) -> FloatArray:
    """Anomaly score s in (0, 1] per row (Liu et al.: s > 0.5 leans anomalous, ~0.5 normal).

    ``robust_z`` is (days, metrics) without NaN: the caller sets a metric that
    is missing on a day to 0 (its baseline), so missing data never looks anomalous.
    """
    if robust_z.shape[0] < MIN_DAYS:
        raise ValueError(f"robust_z: needs at least {MIN_DAYS} days")
    x = np.clip(np.asarray(robust_z, dtype=np.float64), -_Z_CLIP, _Z_CLIP)
    n_days, n_features = x.shape
    sample_size = min(MAX_SAMPLES, n_days)
    max_depth = math.ceil(math.log2(sample_size))
    rng = np.random.default_rng(seed)
    trees = np.arange(N_TREES)[:, None]

    # Each tree's sample, and the node every sampled and every scored day is in.
    sample = np.argsort(rng.random((N_TREES, n_days)), axis=1)[:, :sample_size]
    sample_node = np.zeros((N_TREES, sample_size), dtype=np.int64)
    day_node = np.zeros((N_TREES, n_days), dtype=np.int64)
    open_day = np.ones((N_TREES, n_days), dtype=np.bool_)
    path = np.zeros((N_TREES, n_days))
    sample_values = x[sample]  # (trees, sample, features)
    days = np.broadcast_to(np.arange(n_days)[None, :], (N_TREES, n_days))

    for depth in range(max_depth + 1):
        width = 2**depth
        sample_key = (trees * width + sample_node).ravel()
        day_key = (trees * width + day_node).ravel()
        size = np.bincount(sample_key, minlength=N_TREES * width)
        low, high = _node_ranges(sample_key, sample_values.reshape(-1, n_features), N_TREES * width)
        splittable = high > low  # (nodes, features)
        is_leaf = (size <= 1) | ~splittable.any(axis=1) | (depth == max_depth)

        finished = open_day & is_leaf[day_key].reshape(N_TREES, n_days)
        leaf_size = size[day_key].reshape(N_TREES, n_days)
        path[finished] = depth + average_path_length(leaf_size[finished])
        open_day &= ~finished
        if not open_day.any():
            break

        # A random feature among those that vary in the node, a uniform threshold.
        draw = np.where(splittable, rng.random(splittable.shape), -1.0)
        feature = np.argmax(draw, axis=1)
        node_low = np.take_along_axis(low, feature[:, None], axis=1)[:, 0]
        node_high = np.take_along_axis(high, feature[:, None], axis=1)[:, 0]
        with np.errstate(invalid="ignore"):  # empty nodes have an infinite range
            threshold = node_low + rng.random(len(feature)) * (node_high - node_low)
        threshold = np.where(np.isfinite(threshold), threshold, 0.0)

        sample_feature = feature[sample_key].reshape(N_TREES, sample_size)
        sample_x = np.take_along_axis(sample_values, sample_feature[..., None], axis=2)[..., 0]
        sample_right = sample_x >= threshold[sample_key].reshape(N_TREES, sample_size)
        sample_node = 2 * sample_node + sample_right
        day_feature = feature[day_key].reshape(N_TREES, n_days)
        day_x = x[days, day_feature]
        day_right = day_x >= threshold[day_key].reshape(N_TREES, n_days)
        day_node = 2 * day_node + day_right

    scores: FloatArray = 2.0 ** (-path.mean(axis=0) / average_path_length(sample_size))
    return scores
