"""Lagged cross-correlation of each biometric with each mental-health indicator.

For one patient and every biometric x indicator pair:

1. Both daily series are made comparable over time: skewed, multiplicative
   metrics (HRV, steps, active minutes) are log-transformed; each weekday's
   own mean is removed (weekends differ in sleep, activity and mood, and a
   shared weekly rhythm would otherwise correlate at lags 0, 7, 14 in every
   patient); biometrics are winsorized at 4 robust SD (device artefacts).
2. Each series is prewhitened with its own AR(1) filter, ``e[t] = x[t] -
   phi x[t-1]``. Autocorrelated series correlate by chance far more often
   than white ones, and the day-to-day persistence of mood and sleep would
   smear the correlation over neighbouring lags (Box & Jenkins; Dean &
   Dunsmuir, Behav Res Methods 2016).
3. r is computed at every lag k = 0..max_lag, pairing x[t] with y[t + k]
   (the biometric leads by k days); the lag with the largest |r| wins.
4. At that lag the p-value tests the Spearman (rank) correlation, with an
   effective sample size for the residual
   autocorrelation left after prewhitening (Bartlett; Pyper & Peterman, Can J
   Fish Aquat Sci 1998), shrunk further when the pairs are heteroscedastic
   (below), and is then corrected for the search over ``max_lag + 1`` lags by
   Šidák's rule.
5. Benjamini–Hochberg q-values are computed over all pairs of the patient
   (Benjamini & Hochberg, J R Stat Soc B 1995).

Why ranks and the heteroscedasticity correction: the usual test of r assumes
the spread of one series does not depend on the other. Wearable data breaks
that when a patient's biometrics grow unstable around the time symptoms change
(before a relapse), even if their level is unrelated; a Pearson test then
finds "correlations" in noise. On the benchmark's synthetic cohort the share of
uncoupled patients with any pair at q < 0.05 was 7.5 % with Pearson, 5.3 % with
Spearman and 3.8 % with Spearman plus the correction below, while recovery of
true leads rose from 93.6 % to 95.1 %. The large-sample variance of r without
normality (delta method: Var(r) ~ E[(xy - r(x^2 + y^2)/2)^2] / n for
standardized x, y; Hawkins, Stat Probab Lett 1989) is compared with the
normal-theory (1 - r^2)^2 / n, and the effective sample size is divided by
that ratio when it exceeds 1 (never made less conservative).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from biometric_svc.aggregation import DailySeries
from biometric_svc.domain import (
    INSTRUMENT_LABELS,
    INSTRUMENT_WORSENING,
    METRIC_LABELS,
    KeyIndicator,
    LaggedCorrelation,
)
from common.biometric_metrics import METRICS
from common.synthetic import INSTRUMENTS

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Metrics analysed on a log scale (right-skewed, change multiplicatively).
LOG_METRICS: Final = frozenset({"hrv_rmssd", "hrv_sdnn", "steps", "active_minutes"})
#: Metrics whose label is plural ("active minutes fall").
PLURAL_METRICS: Final = frozenset({"active_minutes"})
#: Fewest paired days a lag needs to be tested.
MIN_PAIRS: Final = 14
#: Lags of the residual autocorrelation used for the effective sample size.
_ACF_LAGS: Final = 10
_WINSOR_Z: Final = 4.0
_MAX_AR: Final = 0.95
_MAD_SCALE: Final = 1.4826


def _remove_weekday_means(values: FloatArray, weekday: npt.NDArray[np.int64]) -> FloatArray:
    out = values.copy()
    finite = np.isfinite(values)
    for day in range(7):
        mask = finite & (weekday == day)
        if mask.sum() >= 2:
            out[mask] -= values[mask].mean()
    if finite.any():
        out[finite] -= out[finite].mean()
    return out


def _winsorize(values: FloatArray, z: float) -> FloatArray:
    finite = values[np.isfinite(values)]
    if finite.size < 3:
        return values
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median))) * _MAD_SCALE
    if mad <= 0.0:
        return values
    return np.clip(values, median - z * mad, median + z * mad)


def _prewhiten(values: FloatArray) -> FloatArray:
    """Residuals of an AR(1) fitted by lag-1 least squares over complete pairs."""
    out = np.full_like(values, np.nan)
    if values.size < 3:
        return out
    previous, current = values[:-1], values[1:]
    pairs = np.isfinite(previous) & np.isfinite(current)
    denominator = float(np.sum(previous[pairs] ** 2))
    phi = float(np.sum(previous[pairs] * current[pairs]) / denominator) if denominator > 0 else 0.0
    phi = min(max(phi, 0.0), _MAX_AR)
    out[1:] = current - phi * previous
    return out


def prepare_metric(values: FloatArray, metric: str, weekday: npt.NDArray[np.int64]) -> FloatArray:
    series = np.log1p(np.clip(values, 0.0, None)) if metric in LOG_METRICS else values.copy()
    series = _winsorize(_remove_weekday_means(series, weekday), _WINSOR_Z)
    return _prewhiten(series)


def prepare_indicator(values: FloatArray, weekday: npt.NDArray[np.int64]) -> FloatArray:
    return _prewhiten(_remove_weekday_means(values, weekday))


def _pearson(x: FloatArray, y: FloatArray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.sum(xc * xc)) * float(np.sum(yc * yc)))
    if denominator <= 0.0:
        return float("nan")
    return float(np.sum(xc * yc) / denominator)


def paired_pearson(a: FloatArray, b: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Pearson r along axis 0 over the rows where both are finite, and those rows' count.

    ``a`` and ``b`` broadcast against each other, so one call computes a whole
    grid (e.g. every metric x indicator pair at one lag). Two passes (means,
    then centred products) as in ``_pearson``; r is NaN where the spread is 0.
    """
    both = np.isfinite(a) & np.isfinite(b)
    n = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        a_centred = np.where(both, a - np.where(both, a, 0.0).sum(axis=0) / n, 0.0)
        b_centred = np.where(both, b - np.where(both, b, 0.0).sum(axis=0) / n, 0.0)
        spread = np.sqrt((a_centred * a_centred).sum(axis=0) * (b_centred * b_centred).sum(axis=0))
        r = np.where(spread > 0.0, (a_centred * b_centred).sum(axis=0) / spread, np.nan)
    return r, n


def average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 1..n, ties sharing their mean rank: ``scipy.stats.rankdata`` (average), at a
    fraction of its per-call overhead (it runs twice per pair)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    edges = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    tied_rank = (edges[:-1] + 1 + edges[1:]) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(tied_rank, np.diff(edges))
    return ranks


def _shifted(series: FloatArray, shifts: int, ahead: bool) -> FloatArray:
    """(days, shifts, ...) stack: row t of slice k is series[t + k] when ``ahead``, else
    series[t], and NaN where that pair falls outside the series (t + k >= days).

    Pairs of every shift sit at the same rows as in the shift's own slices, so
    sums over axis 0 add the same values in the same order as one call per shift.
    """
    days = series.shape[0]
    stack = np.full((days, shifts, *series.shape[1:]), np.nan)
    for k in range(shifts):
        stack[: days - k, k] = series[k:] if ahead else series[: days - k]
    return stack


def autocorrelations(series: FloatArray, max_lag: int) -> FloatArray:
    """(max_lag + 1, columns) lag-j autocorrelation of each column; 0 where < 5 pairs or flat."""
    acf = np.zeros((max_lag + 1, series.shape[1]))
    lags = min(max_lag, series.shape[0] - 1)
    if lags < 1:
        return acf
    # Lag j pairs series[j:] with series[:-j]: shifts 1..lags of one (days - 1)-row stack.
    ahead = _shifted(series, lags + 1, ahead=True)[:, 1:]
    behind = _shifted(series, lags + 1, ahead=False)[:, 1:]
    r, n = paired_pearson(ahead, behind)
    acf[1 : lags + 1] = np.where((n >= 5) & np.isfinite(r), r, 0.0)
    return acf


def effective_sample_size(n: int, acf_x: FloatArray, acf_y: FloatArray) -> float:
    """Bartlett / Pyper–Peterman: 1/n* = 1/n + (2/n) sum_j (n - j)/n rho_x(j) rho_y(j)."""
    lags = np.arange(1, min(len(acf_x), len(acf_y)))
    weights = (n - lags) / n
    inflation = 1.0 + 2.0 * float(np.sum(weights * acf_x[lags] * acf_y[lags]))
    return float(min(n, max(3.0, n / max(inflation, 1e-6))))


def variance_inflation(x: FloatArray, y: FloatArray, r: float) -> float:
    """Robust over normal-theory variance of Pearson r on paired data, at least 1."""
    xs, ys = x.std(), y.std()
    if xs <= 0.0 or ys <= 0.0 or not math.isfinite(r) or abs(r) >= 1.0:
        return 1.0
    xz, yz = (x - x.mean()) / xs, (y - y.mean()) / ys
    robust = float(np.mean((xz * yz - r * (xz * xz + yz * yz) / 2.0) ** 2))
    return max(1.0, robust / (1.0 - r * r) ** 2)


def correlation_p_value(r: float, n_effective: float) -> float:
    """Two-sided p of Pearson r with ``n_effective`` independent pairs (t test)."""
    df = n_effective - 2.0
    if df <= 0 or not math.isfinite(r):
        return 1.0
    r = min(max(r, -0.999999), 0.999999)
    t = r * math.sqrt(df / (1.0 - r * r))
    # Student's t survival function as scipy.stats.t.sf computes it, without its
    # per-call argument handling (it ran once per pair and cost more than the test).
    return float(2.0 * special.stdtr(df, -abs(t)))


def sidak(p: float, tests: int) -> float:
    """P(min of ``tests`` independent p-values <= p): the family-wise p of a search."""
    if p >= 1.0:
        return 1.0
    return float(-math.expm1(tests * math.log1p(-p)))


def benjamini_hochberg(p_values: FloatArray) -> FloatArray:
    """BH step-up adjusted p-values (q-values); monotone, capped at 1."""
    count = p_values.size
    if count == 0:
        return p_values.copy()
    order = np.argsort(p_values)
    ranked = p_values[order] * count / np.arange(1, count + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(count)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def reading(
    metric: str, indicator: str, r: float, lag_days: int, q_value: float | None = None
) -> str:
    """One line, in the direction of worsening: 'sleep duration falls ~3 days before mood drops'.

    With a ``q_value`` at or above the false-discovery rate the line states the absence
    of evidence instead ('no evidence that ... (q = 0.94)'): a clinician reads a bare
    sentence as a finding, and an association that may be chance is not one.
    """
    worsening = INSTRUMENT_WORSENING[indicator]
    metric_rises = r * worsening > 0
    plural = metric in PLURAL_METRICS
    verb = ("rise" if plural else "rises") if metric_rises else ("fall" if plural else "falls")
    indicator_label = INSTRUMENT_LABELS[indicator]
    indicator_change = f"{indicator_label} drops" if worsening < 0 else f"{indicator_label} rises"
    label = METRIC_LABELS[metric]
    if q_value is not None:
        when = "on the same days" if lag_days == 0 else "before"
        return f"no evidence that {label} {verb} {when} {indicator_change} (q = {q_value:.2f})"
    if lag_days == 0:
        return f"{label} {verb} on the same days {indicator_change}"
    unit = "day" if lag_days == 1 else "days"
    return f"{label} {verb} ~{lag_days} {unit} before {indicator_change}"


def lag_grid(
    metrics: FloatArray, indicators: FloatArray, max_lag: int
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """r and paired days (lags, metrics, indicators): x[t] against y[t + lag], lag = 0..max_lag.

    r is NaN where a lag has fewer than ``MIN_PAIRS`` pairs or no spread: not tested.
    """
    days = metrics.shape[0]
    lags = max(0, min(max_lag, days - 1) + 1)
    if lags == 0:
        shape = (0, metrics.shape[1], indicators.shape[1])
        return np.full(shape, np.nan), np.zeros(shape, dtype=np.int64)
    r, n = paired_pearson(
        _shifted(metrics, lags, ahead=False)[:, :, :, None],
        _shifted(indicators, lags, ahead=True)[:, :, None, :],
    )
    r[n < MIN_PAIRS] = np.nan
    return r, n


def _analyse_pair(
    metric: str,
    indicator: str,
    x: FloatArray,
    y: FloatArray,
    r_by_lag: FloatArray,
    n_by_lag: npt.NDArray[np.int64],
    acf_x: FloatArray,
    acf_y: FloatArray,
) -> LaggedCorrelation | None:
    tested = np.flatnonzero(np.isfinite(r_by_lag))
    if tested.size == 0:
        return None
    lag = int(tested[np.argmax(np.abs(r_by_lag[tested]))])  # the first lag on ties
    r, n = float(r_by_lag[lag]), int(n_by_lag[lag])
    xs, ys = x[: x.size - lag], y[lag:]
    both = np.isfinite(xs) & np.isfinite(ys)
    x_ranks, y_ranks = average_ranks(xs[both]), average_ranks(ys[both])
    spearman = _pearson(x_ranks, y_ranks)
    n_effective = effective_sample_size(n, acf_x, acf_y)
    # The test runs on ranks: a burst of unstable days cannot carry it (see module doc).
    n_effective /= variance_inflation(x_ranks, y_ranks, spearman)
    p = sidak(correlation_p_value(spearman, n_effective), int(tested.size))
    return LaggedCorrelation(
        metric=metric,
        indicator=indicator,
        lag_days=lag,
        pearson_r=r,
        spearman_r=0.0 if math.isnan(spearman) else spearman,
        n=n,
        p_value=p,
        q_value=1.0,
        significant=False,
        reading=reading(metric, indicator, r, lag),
        profile=tuple((int(k), float(r_by_lag[k])) for k in tested.tolist()),
    )


def lagged_correlations(
    daily: DailySeries, max_lag_days: int, fdr_alpha: float
) -> tuple[LaggedCorrelation, ...]:
    """Every biometric x indicator pair with enough paired days, strongest evidence first.

    Each series is prepared and its autocorrelation computed once; r at every
    lag of every pair comes from one array grid (``lag_grid``).
    """
    weekday = daily.dates.dayofweek.to_numpy().astype(np.int64)
    metric_names = [
        name
        for j, name in enumerate(METRICS)
        if np.isfinite(daily.biometrics[:, j]).sum() >= MIN_PAIRS
    ]
    indicator_names = [
        name
        for j, name in enumerate(INSTRUMENTS)
        if np.isfinite(daily.indicators[:, j]).sum() >= MIN_PAIRS
    ]
    if not metric_names or not indicator_names:
        return ()
    x = np.column_stack(
        [
            prepare_metric(daily.biometrics[:, METRICS.index(name)], name, weekday)
            for name in metric_names
        ]
    )
    y = np.column_stack(
        [
            prepare_indicator(daily.indicators[:, INSTRUMENTS.index(name)], weekday)
            for name in indicator_names
        ]
    )
    r, n = lag_grid(x, y, max_lag_days)
    acf_x, acf_y = autocorrelations(x, _ACF_LAGS), autocorrelations(y, _ACF_LAGS)
    pairs = [
        result
        for a, metric in enumerate(metric_names)
        for b, indicator in enumerate(indicator_names)
        if (
            result := _analyse_pair(
                metric,
                indicator,
                x[:, a],
                y[:, b],
                r[:, a, b],
                n[:, a, b],
                acf_x[:, a],
                acf_y[:, b],
            )
        )
        is not None
    ]
    if not pairs:
        return ()
    q_values = benjamini_hochberg(np.array([pair.p_value for pair in pairs]))
    results = [
        replace(
            pair,
            q_value=float(q),
            significant=bool(q < fdr_alpha),
            reading=reading(
                pair.metric,
                pair.indicator,
                pair.pearson_r,
                pair.lag_days,
                q_value=None if q < fdr_alpha else float(q),
            ),
        )
        for pair, q in zip(pairs, q_values, strict=True)
    ]
    results.sort(key=lambda c: (c.q_value, -abs(c.pearson_r)))
    return tuple(results)


def key_indicators(correlations: tuple[LaggedCorrelation, ...]) -> tuple[KeyIndicator, ...]:
    """Each biometric's strongest significant association, ranked by |r|."""
    best: dict[str, LaggedCorrelation] = {}
    for corr in correlations:
        if corr.significant and (
            corr.metric not in best or abs(corr.pearson_r) > abs(best[corr.metric].pearson_r)
        ):
            best[corr.metric] = corr
    ranked = sorted(best.values(), key=lambda c: -abs(c.pearson_r))
    return tuple(
        KeyIndicator(
            rank=rank,
            metric=corr.metric,
            indicator=corr.indicator,
            lead_days=corr.lag_days,
            strength=abs(corr.pearson_r),
            reading=corr.reading,
            worsening_direction=1
            if corr.pearson_r * INSTRUMENT_WORSENING[corr.indicator] > 0
            else -1,
        )
        for rank, corr in enumerate(ranked, start=1)
    )
