"""Per-patient statistical members, fitted on one series at request time.

The global models (transformer, XGBoost) learn what patients of the training
data do. A patient unlike them still has a history of their own, and simple
models fitted to that history alone are hard to beat (the M4/M5 lesson, and
the finding that started this module: AutoETS beat the global ensemble on
patients from another generator). Three members, all in 0..1 score units:

* ``ets``: statsforecast's ``AutoETS`` with additive error and no, linear or
  damped trend (chosen by AICc), fitted to the seasonally adjusted series.
  Daily series are adjusted by a weekly profile (the mean deviation of each
  weekday from the centred 7-day mean, shrunk by weeks / (weeks + 4) so a
  few weeks cannot invent a rhythm) and re-seasonalized after forecasting;
  gaps are interpolated linearly. Searching the seasonal ETS forms directly
  costs ~10x more per fit for what the profile captures. Sparse series
  (weekly or fortnightly visits) are fitted on the sequence of visits, with
  additive or multiplicative error (AICc again), and a forecast h days ahead
  is the one ``round(h / gap)`` visits ahead.
* ``seasonal_naive``: the last observed value on the target's weekday (daily
  series), or the last visit (sparse series).
* ``recent_mean``: the mean of the observed values of the last 7 days (daily),
  or of the last 3 visits (sparse): a level with its noise averaged out.

Backtests cost no refits: ETS keeps its state after every observation, so
the forecast from an earlier origin is the recursion run from that state
with the fitted parameters. Those parameters were estimated on the whole
history, which makes the ETS backtests a little optimistic; the weights that
use them are shrunk towards priors fitted on training worlds, and intervals
are calibrated on backtests computed the same way (docs/forecasting.md).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LOCAL_MEMBERS: Final = ("ets", "seasonal_naive", "recent_mean")
#: A series whose observed days are this far apart (median gap) is a visit series.
SPARSE_GAP_DAYS: Final = 4
#: Fewer observations than this: no ETS fit (its forecast is the recent mean's).
MIN_ETS_OBSERVATIONS: Final = 6
#: ETS is fitted on at most this many recent days (daily) or visits (sparse).
ETS_MAX_POINTS: Final = 120
_PROFILE_PRIOR_WEEKS: Final = 4.0
#: ETS forms searched (statsforecast's error/trend/season letters, Z = chosen by AICc).
#: Daily series are fitted seasonally adjusted, which can dip below zero, so only
#: additive errors; visit series also try multiplicative errors, whose errors grow
#: with the level: on the training worlds' weekly visits that lowered the member's
#: MASE at 1-7 days from 0.903 to 0.895 (docs/forecasting.md).
DAILY_ETS: Final = "AZN"
SPARSE_ETS: Final = "ZZN"
#: Daily series are backtested from these many days before the last day ...
BACKTEST_OFFSETS: Final = (7, 14, 21, 28, 35, 42, 56)
#: ... visit series from this many of their last visits.
SPARSE_BACKTEST_VISITS: Final = 6
_RECENT_DAYS: Final = 7
_RECENT_VISITS: Final = 3


@dataclass(frozen=True)
class LocalForecasts:
    """Member forecasts of one series at the final origin and at backtest origins.

    ``final``: (members, horizon) forecasts of the days after the last day.
    ``backtest``: (members, P) forecasts of P observed (origin, target) pairs;
    ``backtest_days``: (P,) target day minus origin day; ``backtest_target``: (P,).
    """

    final: FloatArray
    backtest: FloatArray
    backtest_days: IntArray
    backtest_target: FloatArray
    backtest_origin: IntArray
    sparse: bool


def is_sparse(values: FloatArray) -> bool:
    observed = np.flatnonzero(np.isfinite(values))
    if len(observed) < 2:
        return False
    return bool(np.median(np.diff(observed)) >= SPARSE_GAP_DAYS)


def _weekly_profile(filled: FloatArray, start_weekday: int) -> FloatArray:
    """Additive weekday effects (7,) of an interpolated daily series, indexed by weekday."""
    n = len(filled)
    if n < 21:
        return np.zeros(7)
    kernel = np.ones(7) / 7.0
    centred = np.convolve(filled, kernel, mode="same")
    deviation = (filled - centred)[3 : n - 3]
    weekday = (start_weekday + np.arange(3, n - 3)) % 7
    sums = np.bincount(weekday, weights=deviation, minlength=7)
    counts = np.bincount(weekday, minlength=7).astype(np.float64)
    profile = sums / np.maximum(counts, 1.0)
    profile -= profile.mean()
    weeks = counts.min()
    shrunk: FloatArray = profile * weeks / (weeks + _PROFILE_PRIOR_WEEKS)
    return shrunk


def _fit_ets(y: FloatArray, spec: str) -> dict[str, object] | None:
    """statsforecast AutoETS (non-seasonal, ``spec`` as statsforecast spells it) or None."""
    from statsforecast.models import AutoETS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoETS(season_length=1, model=spec).fit(y)
    except Exception as exc:  # a degenerate series must not fail the request
        _LOGGER.debug("ets fit failed: %s", type(exc).__name__)
        return None
    fitted: dict[str, object] = model.model_
    return fitted


def _ets_paths(fit: dict[str, object], state_rows: IntArray, steps: int) -> FloatArray:
    """(len(state_rows), steps) forecasts from the fitted states after the given observations."""
    from statsforecast.ets import etsforecast, switch

    components = str(fit["components"])
    states = np.asarray(fit["states"], dtype=np.float64)
    par = np.asarray(fit["par"], dtype=np.float64)
    phi = 1.0 if components[3] == "N" else float(par[3])
    trend, season = switch(components[1]), switch(components[2])
    out = np.empty((len(state_rows), steps))
    for k, row in enumerate(state_rows):
        f = np.full(steps, np.nan)
        etsforecast(x=states[int(row)], m=1, trend=trend, season=season, phi=phi, h=steps, f=f)
        out[k] = f
    return out


def choose_backtest_origins(values: FloatArray) -> IntArray:
    """Rolling origins of a series' backtests (sorted day indices, all observed).

    Daily series: the last observed day at or up to 3 days before each of
    BACKTEST_OFFSETS days before the last day. Visit series: the last
    SPARSE_BACKTEST_VISITS visits before the last one, each with two visits before it.
    """
    n = len(values)
    observed = np.flatnonzero(np.isfinite(values[: n - 1]))
    if len(observed) == 0:
        return np.zeros(0, dtype=np.int64)
    if is_sparse(values):
        chosen = observed[2:][-SPARSE_BACKTEST_VISITS:]
        return np.asarray(chosen, dtype=np.int64)
    picked: list[int] = []
    for offset in BACKTEST_OFFSETS:
        day = n - 1 - offset
        near = observed[(observed <= day) & (observed >= day - 3)]
        # An origin needs a week of history behind it.
        if len(near) and (near[-1] >= observed[0] + 7):
            picked.append(int(near[-1]))
    return np.unique(np.asarray(picked, dtype=np.int64))


def local_forecasts(
    values: FloatArray,
    start_weekday: int,
    horizon: int,
    backtest_origins: IntArray,
    max_backtest_days: int,
) -> LocalForecasts:
    """Member forecasts of ``values`` (0..1, NaN where unobserved, last entry = the origin).

    ``backtest_origins`` (see choose_backtest_origins) are observed days before the
    last; every observed target up to ``max_backtest_days`` after each, up to the
    last day, becomes a backtest pair.
    """
    # Days before the first observation are not history: a window padded with them
    # must not read as a long, flat series.
    first = int(np.flatnonzero(np.isfinite(values))[0])
    if first > 0:
        trimmed = local_forecasts(
            values[first:],
            (start_weekday + first) % 7,
            horizon,
            np.asarray(backtest_origins, dtype=np.int64) - first,
            max_backtest_days,
        )
        return LocalForecasts(
            final=trimmed.final,
            backtest=trimmed.backtest,
            backtest_days=trimmed.backtest_days,
            backtest_target=trimmed.backtest_target,
            backtest_origin=trimmed.backtest_origin + first,
            sparse=trimmed.sparse,
        )
    n = len(values)
    observed = np.flatnonzero(np.isfinite(values))
    sparse = is_sparse(values)
    origins = np.unique(
        np.asarray(
            [o for o in backtest_origins if 0 <= o < n - 1 and np.isfinite(values[o])], np.int64
        )
    )
    pairs_o: list[int] = []
    pairs_t: list[int] = []
    for o in origins:
        targets = observed[(observed > o) & (observed <= o + max_backtest_days)]
        pairs_o.extend([int(o)] * len(targets))
        pairs_t.extend(int(t) for t in targets)
    pair_origin = np.asarray(pairs_o, dtype=np.int64)
    pair_target = np.asarray(pairs_t, dtype=np.int64)
    days = pair_target - pair_origin
    # All origins: the final one (index n - 1) first, then each backtest origin.
    all_origins = np.concatenate([[n - 1], origins]).astype(np.int64)
    if sparse:
        member_paths = _sparse_members(values, observed, all_origins, horizon, max_backtest_days)
        final = np.stack([p[0, 1 : horizon + 1] for p in member_paths])
        backtest = (
            np.stack([p[1 + np.searchsorted(origins, pair_origin), days] for p in member_paths])
            if len(days)
            else np.zeros((len(LOCAL_MEMBERS), 0))
        )
    else:
        member_paths = _daily_members(
            values, observed, start_weekday, all_origins, max(horizon, max_backtest_days)
        )
        final = np.stack([p[0, 1 : horizon + 1] for p in member_paths])
        backtest = (
            np.stack([p[1 + np.searchsorted(origins, pair_origin), days] for p in member_paths])
            if len(days)
            else np.zeros((len(LOCAL_MEMBERS), 0))
        )
    return LocalForecasts(
        final=np.clip(final, 0.0, 1.0),
        backtest=np.clip(backtest, 0.0, 1.0),
        backtest_days=days,
        backtest_target=values[pair_target],
        backtest_origin=pair_origin,
        sparse=sparse,
    )


def _daily_members(
    values: FloatArray, observed: IntArray, start_weekday: int, origins: IntArray, steps: int
) -> list[FloatArray]:
    """Each member's (len(origins), steps + 1) paths; column h is h days after the origin."""
    n = len(values)
    filled = np.interp(np.arange(n), observed, values[observed])
    profile = _weekly_profile(filled, start_weekday)
    weekday = (start_weekday + np.arange(n + steps + 1)) % 7
    adjusted = filled - profile[weekday[:n]]
    ahead = np.arange(steps + 1)
    n_o = len(origins)
    ets = np.zeros((n_o, steps + 1))
    fit_from = max(0, n - ETS_MAX_POINTS)
    enough = len(observed) >= MIN_ETS_OBSERVATIONS
    fit = _fit_ets(adjusted[fit_from:], DAILY_ETS) if enough else None
    recent = np.zeros((n_o, steps + 1))
    for k, o in enumerate(origins):
        seen = observed[(observed <= o) & (observed > o - _RECENT_DAYS)]
        recent[k] = values[seen].mean() if len(seen) else filled[o]
    # Seasonal naive: the last observed day, up to the origin, on the target's weekday
    # (day index modulo 7), found for every (day, weekday) at once.
    days = np.arange(n)
    is_observed = np.isfinite(values)
    last_on = np.stack(
        [
            np.maximum.accumulate(np.where(is_observed & (days % 7 == r), days, -1))
            for r in range(7)
        ],
        axis=1,
    )
    source = last_on[origins[:, None], (origins[:, None] + ahead[None, :]) % 7]
    naive = np.where(source >= 0, values[np.maximum(source, 0)], filled[origins][:, None]).astype(
        np.float64
    )
    usable = origins >= fit_from
    if fit is not None and usable.any():
        rows = origins[usable] - fit_from + 1  # states[i] = state after observation i - 1
        paths = _ets_paths(fit, rows, steps)
        season = profile[weekday[origins[usable][:, None] + ahead[None, 1:]]]
        ets[usable, 1:] = paths + season
    ets[~usable | (fit is None)] = recent[~usable | (fit is None)]
    return [ets, naive, recent]


def _sparse_members(
    values: FloatArray, observed: IntArray, origins: IntArray, horizon: int, max_days: int
) -> list[FloatArray]:
    """Members of a visit series, as (len(origins), days + 1) paths indexed by days ahead."""
    visits = values[observed]
    gap = float(np.median(np.diff(observed))) if len(observed) > 1 else 7.0
    steps_days = max(horizon, max_days)
    ahead_visits = np.maximum(np.rint(np.arange(steps_days + 1) / gap), 1).astype(np.int64)
    max_visits = int(ahead_visits.max())
    fit_from = max(0, len(visits) - ETS_MAX_POINTS)
    fit = _fit_ets(visits[fit_from:], SPARSE_ETS) if len(visits) >= MIN_ETS_OBSERVATIONS else None
    n_o = len(origins)
    ets = np.zeros((n_o, steps_days + 1))
    naive = np.zeros((n_o, steps_days + 1))
    recent = np.zeros((n_o, steps_days + 1))
    position = np.searchsorted(observed, origins)  # index of each origin among the visits
    for k, j in enumerate(position):
        naive[k] = visits[j]
        recent[k] = visits[max(0, j - _RECENT_VISITS + 1) : j + 1].mean()
        if fit is not None and j >= fit_from:
            path = _ets_paths(fit, np.array([j - fit_from + 1]), max_visits)[0]
            ets[k] = path[ahead_visits - 1]
        else:
            ets[k] = recent[k]
    return [ets, naive, recent]


def warm_up() -> None:
    """Import statsforecast and run one fit, so the first request pays for neither."""
    rng = np.random.default_rng(0)
    series = 0.5 + np.cumsum(rng.normal(0.0, 0.01, 60))
    local_forecasts(series, 0, 14, choose_backtest_origins(series), 14)
    sparse = np.full(57, np.nan)
    sparse[::7] = series[:57:7]
    local_forecasts(sparse, 0, 14, choose_backtest_origins(sparse), 14)
