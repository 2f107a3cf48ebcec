"""The per-patient ensemble: member weights from the patient's own backtests, and its intervals.

Members (all forecasting the median, in 0..1 units): the global transformer
and XGBoost, and the local ETS, seasonal-naive and recent-mean members
(models/local.py). For each series, every member is backtested at rolling
origins in the series' own history (models/local.py chooses them); each
backtest pair is one observed target ``d`` days after an origin.

Weights, per horizon bucket (1-7, 8-14, 15+ days):

    rel_m   = MAE_m / mean over members of MAE        (this patient's backtests)
    rel_m'  = (n rel_m + k prior_m) / (n + k)          (shrunk towards the prior)
    w_m     = rel_m' ** -POWER, normalized

``n`` counts backtest pairs in the bucket divided by PAIRS_PER_EVIDENCE
(pairs of one origin are correlated); a bucket without pairs borrows the
shorter bucket's relative errors with half their weight, and a series
without backtests gets the prior's weights. ``prior_m`` is the member's
relative error pooled over the calibration series of the training worlds,
separately for daily and visit (sparse) series and by evidence bin (how many
backtest pairs the series has: a patient of four visits gets no ETS fit, one
of forty does). It is the fallback for a short history; with k = 1 a patient's
own backtests outweigh it after a handful of pairs, because which member did
best on the training worlds says little about a patient from another world.

Intervals: normalized split-conformal. A series' error scale is

    sigma(h) = s_b(h) * MAE_prior(instrument, cadence, horizon group of h)

where ``s`` is the mean over the patient's backtest pairs of |combined
residual| / MAE_prior at that pair's horizon, and ``s_b`` the same mean over
the pairs of h's weight bucket, shrunk towards ``s`` on the log scale with
BUCKET_SCALE_PRIOR_PAIRS pairs of weight; both are then shrunk towards 1 by
n / (n + SCALE_PRIOR_PAIRS). The per-bucket scale lets a patient's errors grow
with the horizon faster (a step change) or slower (heavy-tailed noise around a
stable level) than the training worlds' did. The calibration series of the
training data give normalized residuals z = (y - median) / sigma(h) at
every horizon; their split-conformal quantiles per (cadence, horizon group,
evidence bin = how many backtest pairs set ``s``) are the table. A forecast's
quantile at level tau is ``median + Q_z(tau) * sigma(h)``. A patient whose own
forecasts erred twice as much gets intervals about twice as wide, whichever
world they came from; that is what keeps coverage on held-out worlds, and
the evidence bins keep it for short histories, whose ``s`` is less certain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from forecasting_svc.models.conformal import (
    HORIZON_GROUPS,
    TAU_GRID,
    conformal_quantiles,
    horizon_group,
)

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MEMBERS: Final = ("transformer", "xgboost", "ets", "seasonal_naive", "recent_mean")
#: Upper day of each weighting bucket; beyond the last, the last bucket's weights hold.
WEIGHT_BUCKETS: Final = ((1, 7), (8, 14), (15, 90))
#: Longest backtest horizon (days): what the 15+ bucket's weights are learnt from.
MAX_BACKTEST_DAYS: Final = 30
#: Cadence classes.
DAILY: Final = 0
SPARSE: Final = 1
N_CLASSES: Final = 2
#: Evidence bins: lower edges of the number of backtest pairs behind a series' scale.
EVIDENCE_BINS: Final = (0, 10, 40)
#: Weighting constants, chosen on patients of the TRAINING worlds (seed 7, never a
#: held-out world: the four worlds at 180 days, pooled at 60 days, weekly and
#: fortnightly visits) from POWER 1/2/4/8/16 x PRIOR_EVIDENCE 1/4/16 x which members
#: take part, by the mean ratio of the ensemble's MASE to the best baseline's over
#: every (scenario, horizon bucket) cell (docs/forecasting.md, "How it was tuned").
POWER: Final = 4.0
PRIOR_EVIDENCE: Final = 1.0
PAIRS_PER_EVIDENCE: Final = 4.0
#: Members backtested and reported but given no weight in the median. The
#: transformer: without it the ensemble erred less in all nine (cadence x horizon
#: bucket) cells of the tuning patients; it still explains forecasts (attention
#: drivers). The seasonal naive: without it the ensemble beat both baselines in
#: every bucket on 5 of 7 tuning scenarios instead of 2; its weekday pattern is
#: already in the ETS member's weekly profile, and alone it only adds noise.
UNWEIGHTED_MEMBERS: Final = ("transformer", "seasonal_naive")
SCALE_PRIOR_PAIRS: Final = 8.0
#: Backtest pairs in a horizon bucket worth as much as the patient's overall scale.
BUCKET_SCALE_PRIOR_PAIRS: Final = 4.0
SCALE_RANGE: Final = (1 / 3, 3.0)
MIN_CELL: Final = 50
_MIN_MAE: Final = 1e-3
_UNWEIGHTED: Final = [MEMBERS.index(m) for m in UNWEIGHTED_MEMBERS]


def weight_bucket(days: npt.ArrayLike) -> IntArray:
    upper = np.array([high for _, high in WEIGHT_BUCKETS])
    result: IntArray = np.minimum(
        np.searchsorted(upper, np.asarray(days), side="left"), len(WEIGHT_BUCKETS) - 1
    ).astype(np.int64)
    return result


def evidence_bin(pairs: npt.ArrayLike) -> IntArray:
    result: IntArray = (
        np.searchsorted(np.asarray(EVIDENCE_BINS), np.asarray(pairs), side="right") - 1
    ).astype(np.int64)
    return result


@dataclass(frozen=True)
class SeriesBacktest:
    """One series' backtest pairs: member forecasts (M, P), targets and days ahead (P,)."""

    forecasts: FloatArray
    target: FloatArray
    days: IntArray


@dataclass(frozen=True)
class CombinedForecast:
    median: FloatArray  # (H,)
    sigma: FloatArray  # (H,)
    weights: FloatArray  # (len(WEIGHT_BUCKETS), M)
    scale: float
    evidence: int  # backtest pairs
    backtest_residual: FloatArray  # (P,) combined forecast minus target on the backtests
    bucket_scale: FloatArray  # (len(WEIGHT_BUCKETS),) the scale of each weight bucket


@dataclass(frozen=True)
class OwnHistory:
    """How the combined forecast did on the series' own backtests (0..1 score units)."""

    pairs: int
    ensemble_mae: float
    seasonal_naive_mae: float
    interval_scale: float
    #: A scale (overall or of a bucket) at the SCALE_RANGE ceiling.
    unfamiliar: bool
    #: (member, weight) of the first weight bucket, largest first, zero weights left out.
    weights: tuple[tuple[str, float], ...]


def own_history(combined: CombinedForecast, backtest: SeriesBacktest) -> OwnHistory:
    """The patient-facing summary of ``combined``'s own-history backtest."""
    pairs = len(backtest.target)
    naive = MEMBERS.index("seasonal_naive")
    ceiling = SCALE_RANGE[1] * (1 - 1e-9)
    order = np.argsort(-combined.weights[0], kind="stable")
    return OwnHistory(
        pairs=pairs,
        ensemble_mae=float(np.abs(combined.backtest_residual).mean()) if pairs else 0.0,
        seasonal_naive_mae=(
            float(np.abs(backtest.forecasts[naive] - backtest.target).mean()) if pairs else 0.0
        ),
        interval_scale=combined.scale,
        unfamiliar=bool(
            combined.scale >= ceiling or (pairs > 0 and combined.bucket_scale.max() >= ceiling)
        ),
        weights=tuple(
            (MEMBERS[m], float(combined.weights[0, m])) for m in order if combined.weights[0, m] > 0
        ),
    )


@dataclass(frozen=True)
class CombinationPrior:
    """What the training data teach the per-patient ensemble (stored in the ensemble artifact)."""

    rel_error: FloatArray  # (N_CLASSES, len(EVIDENCE_BINS), len(WEIGHT_BUCKETS), M)
    mae: FloatArray  # (n_instruments, N_CLASSES, len(HORIZON_GROUPS))
    z_table: FloatArray  # (N_CLASSES, len(HORIZON_GROUPS), len(EVIDENCE_BINS), len(TAU_GRID))
    coverage_levels: tuple[float, ...] = ()
    empirical_coverage: tuple[float, ...] = ()

    def weights(self, backtest: SeriesBacktest, cadence: int) -> FloatArray:
        """(len(WEIGHT_BUCKETS), M) member weights of one series."""
        abs_error = np.abs(backtest.forecasts - backtest.target[None, :])
        buckets = weight_bucket(backtest.days)
        e = int(evidence_bin(len(backtest.days)))
        result = np.zeros((len(WEIGHT_BUCKETS), len(MEMBERS)))
        carried: tuple[FloatArray, float] | None = None
        for b in range(len(WEIGHT_BUCKETS)):
            mask = buckets == b
            if mask.any():
                mae = np.maximum(abs_error[:, mask].mean(axis=1), _MIN_MAE)
                rel, n = mae / mae.mean(), mask.sum() / PAIRS_PER_EVIDENCE
                carried = (rel, n)
            elif carried is not None:
                rel, n = carried[0], carried[1] / 2.0
                carried = (rel, n)
            else:
                rel, n = np.ones(len(MEMBERS)), 0.0
            prior = self.rel_error[cadence, e, b]
            shrunk = (n * rel + PRIOR_EVIDENCE * prior) / (n + PRIOR_EVIDENCE)
            w = np.maximum(shrunk, _MIN_MAE) ** -POWER
            w[_UNWEIGHTED] = 0.0
            result[b] = w / w.sum()
        return result

    def combine(
        self,
        final: FloatArray,
        backtest: SeriesBacktest,
        instrument: int,
        cadence: int,
    ) -> CombinedForecast:
        """Weighted median (H,) of the members' final forecasts (M, H) and its error scale."""
        horizon = final.shape[1]
        weights = self.weights(backtest, cadence)
        days = np.arange(1, horizon + 1)
        median = (weights[weight_bucket(days)].T * final).sum(axis=0)
        bt_median = (weights[weight_bucket(backtest.days)].T * backtest.forecasts).sum(axis=0)
        residual = bt_median - backtest.target
        profile = np.maximum(self.mae[instrument, cadence], _MIN_MAE)
        n = len(residual)
        scale = 1.0
        bucket_scale = np.ones(len(WEIGHT_BUCKETS))
        if n:
            ratio = np.maximum(
                np.abs(residual) / profile[horizon_group(np.minimum(backtest.days, 90))], 1e-6
            )
            # The mean, not the median: a patient whose errors are mostly small but
            # now and then large (heavy tails, sudden steps) needs the wider interval.
            raw = np.log(float(np.mean(ratio)))
            trust = n / (n + SCALE_PRIOR_PAIRS)
            scale = float(np.clip(np.exp(raw * trust), *SCALE_RANGE))
            # How the patient's error grows with the horizon is their own too (a step
            # change makes far errors grow faster than the training worlds' did, heavy
            # tails slower): each bucket's scale leans on its own pairs, shrunk
            # towards the patient's overall scale.
            buckets = weight_bucket(backtest.days)
            for b in range(len(WEIGHT_BUCKETS)):
                in_b = buckets == b
                n_b = float(in_b.sum())
                if n_b:
                    own = np.log(float(np.mean(ratio[in_b])))
                    log_b = (n_b * own + BUCKET_SCALE_PRIOR_PAIRS * raw) / (
                        n_b + BUCKET_SCALE_PRIOR_PAIRS
                    )
                    bucket_scale[b] = np.exp(log_b * trust)
                else:
                    bucket_scale[b] = np.exp(raw * trust)
            bucket_scale = np.clip(bucket_scale, *SCALE_RANGE)
        sigma = bucket_scale[weight_bucket(days)] * profile[horizon_group(days)]
        return CombinedForecast(median, sigma, weights, scale, n, residual, bucket_scale)

    def quantile_function(self, combined: CombinedForecast, cadence: int) -> FloatArray:
        """(H, len(TAU_GRID)) calibrated values of one combined forecast (unclipped)."""
        horizon = len(combined.median)
        groups = horizon_group(np.arange(1, horizon + 1))
        e = int(evidence_bin(combined.evidence))
        z = self.z_table[cadence, groups, e]  # (H, K)
        result: FloatArray = combined.median[:, None] + z * combined.sigma[:, None]
        return result

    def coverage_for(self, level: float) -> float:
        if not self.empirical_coverage:
            return float("nan")
        nominal = np.array([0.0, *self.coverage_levels, 1.0])
        measured = np.array([0.0, *self.empirical_coverage, 1.0])
        return float(np.interp(level, nominal, measured))

    def to_json(self) -> dict[str, object]:
        return {
            "members": list(MEMBERS),
            "weight_buckets": [list(b) for b in WEIGHT_BUCKETS],
            "evidence_bins": list(EVIDENCE_BINS),
            "horizon_groups": [list(g) for g in HORIZON_GROUPS],
            "tau_grid": [float(t) for t in TAU_GRID],
            "rel_error": self.rel_error.round(6).tolist(),
            "mae": self.mae.round(6).tolist(),
            "z_table": self.z_table.round(6).tolist(),
            "coverage_levels": list(self.coverage_levels),
            "empirical_coverage": list(self.empirical_coverage),
        }

    @classmethod
    def from_json(cls, raw: object) -> CombinationPrior:
        if not isinstance(raw, dict):
            raise ValueError("combination: must be an object")
        if list(raw.get("members", [])) != list(MEMBERS):
            raise ValueError("combination: members differ from this code's (retrain the models)")
        if [tuple(b) for b in raw.get("weight_buckets", [])] != list(WEIGHT_BUCKETS):
            raise ValueError("combination: weight buckets differ from this code's")
        if tuple(raw.get("evidence_bins", ())) != EVIDENCE_BINS:
            raise ValueError("combination: evidence bins differ from this code's")
        if [tuple(g) for g in raw.get("horizon_groups", [])] != list(HORIZON_GROUPS):
            raise ValueError("combination: horizon groups differ from this code's")
        if not np.allclose(np.asarray(raw["tau_grid"], dtype=np.float64), TAU_GRID):
            raise ValueError("combination: tau grid differs from this code's")
        prior = cls(
            rel_error=np.asarray(raw["rel_error"], dtype=np.float64),
            mae=np.asarray(raw["mae"], dtype=np.float64),
            z_table=np.asarray(raw["z_table"], dtype=np.float64),
            coverage_levels=tuple(float(v) for v in raw["coverage_levels"]),
            empirical_coverage=tuple(float(v) for v in raw["empirical_coverage"]),
        )
        if prior.rel_error.shape != (
            N_CLASSES,
            len(EVIDENCE_BINS),
            len(WEIGHT_BUCKETS),
            len(MEMBERS),
        ):
            raise ValueError("combination: rel_error has the wrong shape")
        if prior.z_table.shape != (
            N_CLASSES,
            len(HORIZON_GROUPS),
            len(EVIDENCE_BINS),
            len(TAU_GRID),
        ):
            raise ValueError("combination: z_table has the wrong shape")
        if prior.mae.ndim != 3 or prior.mae.shape[1:] != (N_CLASSES, len(HORIZON_GROUPS)):
            raise ValueError("combination: mae has the wrong shape")
        return prior


def uniform_prior(n_instruments: int) -> CombinationPrior:
    """Equal relative errors, unit MAE profile, standard-normal z: a start before fitting."""
    from scipy.stats import norm

    z = norm.ppf(TAU_GRID)
    return CombinationPrior(
        rel_error=np.ones((N_CLASSES, len(EVIDENCE_BINS), len(WEIGHT_BUCKETS), len(MEMBERS))),
        mae=np.full((n_instruments, N_CLASSES, len(HORIZON_GROUPS)), 0.05),
        z_table=np.broadcast_to(
            z, (N_CLASSES, len(HORIZON_GROUPS), len(EVIDENCE_BINS), len(TAU_GRID))
        ).copy(),
    )


@dataclass(frozen=True)
class CalibrationUnit:
    """One calibration (series, origin): its backtests, member forecasts and what happened."""

    instrument: int
    cadence: int
    backtest: SeriesBacktest
    final: FloatArray  # (M, H) member forecasts
    future: FloatArray  # (H,) observed targets, NaN where not observed


def fit_rel_error(units: list[CalibrationUnit]) -> FloatArray:
    """Each member's pooled MAE on the units' futures relative to the members' mean, by
    cadence, evidence bin (how many backtest pairs the unit had) and weight bucket.

    The evidence bin matters: with a short history the local members fall back to
    simpler forms (no ETS fit below MIN_ETS_OBSERVATIONS), so which member leads
    differs between a patient of four visits and one of forty. A cell with fewer
    than MIN_CELL targets takes its cadence's pooled value.
    """
    shape = (N_CLASSES, len(EVIDENCE_BINS), len(WEIGHT_BUCKETS), len(MEMBERS))
    sums, counts = np.zeros(shape), np.zeros(shape[:3])
    for u in units:
        e = int(evidence_bin(len(u.backtest.days)))
        for b in range(len(WEIGHT_BUCKETS)):
            cols = _bucket_cols(b, u.final.shape[1])
            errors = np.abs(u.final[:, cols] - u.future[None, cols])
            errors = errors[:, np.all(np.isfinite(errors), axis=0)]
            sums[u.cadence, e, b] += errors.sum(axis=1)
            counts[u.cadence, e, b] += errors.shape[1]
    rel = np.ones(shape)
    for c in range(N_CLASSES):
        for b in range(len(WEIGHT_BUCKETS)):
            pooled_n = counts[c, :, b].sum()
            pooled = sums[c, :, b].sum(axis=0) / max(pooled_n, 1.0)
            for e in range(len(EVIDENCE_BINS)):
                if counts[c, e, b] >= MIN_CELL:
                    mae = sums[c, e, b] / counts[c, e, b]
                elif pooled_n:
                    mae = pooled
                else:
                    continue
                mae = np.maximum(mae, _MIN_MAE)
                rel[c, e, b] = mae / mae.mean()
    return rel


def _bucket_cols(b: int, horizon: int) -> slice:
    low, high = WEIGHT_BUCKETS[b]
    return slice(low - 1, min(high, horizon))


def fit_prior(
    units: list[CalibrationUnit],
    n_instruments: int,
    coverage_levels: tuple[float, ...],
    seed: int = 0,
) -> CombinationPrior:
    """Relative errors, MAE profile and z table from calibration units (see module doc).

    The relative-error prior is learnt from the members' errors on the units'
    future targets; the MAE profile from the combined forecast's; the z table
    from the normalized residuals. Reported coverage is cross-fitted: the units
    are halved and each half scored with a z table fitted on the other.
    """
    start = uniform_prior(n_instruments)
    rel = fit_rel_error(units)
    stage = CombinationPrior(rel, start.mae, start.z_table)
    combined = [stage.combine(u.final, u.backtest, u.instrument, u.cadence) for u in units]
    mae = _fit_mae(units, combined, n_instruments)
    stage = CombinationPrior(rel, mae, start.z_table)
    combined = [stage.combine(u.final, u.backtest, u.instrument, u.cadence) for u in units]
    rows = _z_rows(units, combined)
    table = _fit_z_table(rows)
    half = np.random.default_rng(seed).random(len(units)) < 0.5
    owner = rows[4].astype(np.int64)
    inside: dict[float, list[BoolArray]] = {level: [] for level in coverage_levels}
    for fit_half in (True, False):
        fit_rows = tuple(r[half[owner] == fit_half] for r in rows)
        score = half[owner] != fit_half
        part = _fit_z_table(fit_rows)
        cadence, group, evidence, z = rows[0][score], rows[1][score], rows[2][score], rows[3][score]
        for level in coverage_levels:
            lo = np.array(
                [
                    np.interp((1 - level) / 2, TAU_GRID, part[c, g, e])
                    for c, g, e in zip(cadence, group, evidence, strict=True)
                ]
            )
            hi = np.array(
                [
                    np.interp((1 + level) / 2, TAU_GRID, part[c, g, e])
                    for c, g, e in zip(cadence, group, evidence, strict=True)
                ]
            )
            inside[level].append((z >= lo) & (z <= hi))
    coverage = tuple(float(np.concatenate(inside[level]).mean()) for level in coverage_levels)
    return CombinationPrior(rel, mae, table, tuple(coverage_levels), coverage)


def _fit_mae(
    units: list[CalibrationUnit], combined: list[CombinedForecast], n_instruments: int
) -> FloatArray:
    n_groups = len(HORIZON_GROUPS)
    sums = np.zeros((n_instruments, N_CLASSES, n_groups))
    counts = np.zeros((n_instruments, N_CLASSES, n_groups))
    for u, forecast in zip(units, combined, strict=True):
        seen = np.isfinite(u.future)
        groups = horizon_group(np.arange(1, len(u.future) + 1))[seen]
        error = np.abs(forecast.median[seen] - u.future[seen])
        np.add.at(sums[u.instrument, u.cadence], groups, error)
        np.add.at(counts[u.instrument, u.cadence], groups, 1.0)
    pooled_class = sums.sum(axis=0) / np.maximum(counts.sum(axis=0), 1.0)
    pooled_all = sums.sum(axis=(0, 1)) / np.maximum(counts.sum(axis=(0, 1)), 1.0)
    mae = np.where(
        counts >= MIN_CELL,
        sums / np.maximum(counts, 1.0),
        np.where(counts.sum(axis=0) >= MIN_CELL, pooled_class[None], pooled_all[None, None]),
    )
    # A horizon group nobody reached (e.g. 61-90 days) keeps the last reached group's value.
    for i in range(n_instruments):
        for c in range(N_CLASSES):
            for g in range(1, n_groups):
                if mae[i, c, g] <= 0:
                    mae[i, c, g] = mae[i, c, g - 1]
    result: FloatArray = np.maximum(mae, _MIN_MAE)
    return result


def _z_rows(
    units: list[CalibrationUnit], combined: list[CombinedForecast]
) -> tuple[IntArray, IntArray, IntArray, FloatArray, IntArray]:
    cadence, group, evidence, z, owner = [], [], [], [], []
    for k, (u, c) in enumerate(zip(units, combined, strict=True)):
        seen = np.flatnonzero(np.isfinite(u.future))
        if not len(seen):
            continue
        z.append((u.future[seen] - c.median[seen]) / c.sigma[seen])
        group.append(horizon_group(seen + 1))
        cadence.append(np.full(len(seen), u.cadence))
        evidence.append(np.full(len(seen), int(evidence_bin(c.evidence))))
        owner.append(np.full(len(seen), k))
    return (
        np.concatenate(cadence).astype(np.int64),
        np.concatenate(group).astype(np.int64),
        np.concatenate(evidence).astype(np.int64),
        np.concatenate(z),
        np.concatenate(owner).astype(np.int64),
    )


def _fit_z_table(
    rows: tuple[IntArray, IntArray, IntArray, FloatArray, IntArray],
) -> FloatArray:
    cadence, group, evidence, z, _ = rows
    table = np.zeros((N_CLASSES, len(HORIZON_GROUPS), len(EVIDENCE_BINS), len(TAU_GRID)))
    pooled = conformal_quantiles(z)
    for g in range(len(HORIZON_GROUPS)):
        in_g = group == g
        by_g = conformal_quantiles(z[in_g]) if in_g.sum() >= MIN_CELL else pooled
        for c in range(N_CLASSES):
            in_c = in_g & (cadence == c)
            by_c = conformal_quantiles(z[in_c]) if in_c.sum() >= MIN_CELL else by_g
            for e in range(len(EVIDENCE_BINS)):
                cell = in_c & (evidence == e)
                table[c, g, e] = conformal_quantiles(z[cell]) if cell.sum() >= MIN_CELL else by_c
    # Horizon groups beyond the calibrated horizons keep the widest table seen so far.
    return table
