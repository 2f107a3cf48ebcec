"""The training pipeline: split patients, fit both models, learn the ensemble, calibrate, score.

Patients (never single days) are split three ways:

* training: the transformer's gradient steps and XGBoost's rows (its Optuna
  cross-validation folds are rolling origins *within* these patients);
* validation: the transformer's early stopping and the ensemble weights;
* calibration: the split-conformal residuals, and every reported metric.
  Metrics are cross-fitted: the calibration patients are halved, each half is
  scored with conformal tables fitted on the other half, so no reported
  figure was computed on data that also calibrated it.

Evaluation origins are every ``evaluation_origin_step`` days (staggered per
series so that all weekdays occur), with every horizon 1..90 whose target was
observed.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from common.artifacts import ArtifactManifest, ArtifactStore
from forecasting_svc.instruments import INSTRUMENT_ORDER
from forecasting_svc.models.bundle import (
    ENSEMBLE,
    ENSEMBLE_ARTIFACT,
    MODEL_KINDS,
    TRANSFORMER,
    TRANSFORMER_ARTIFACT,
    XGBOOST,
    XGBOOST_ARTIFACT,
    ForecastModels,
)
from forecasting_svc.models.combination import (
    CalibrationUnit,
    CombinationPrior,
    fit_prior,
)
from forecasting_svc.models.conformal import (
    BACKTEST_MAX_HORIZON,
    COVERAGE_LEVELS,
    ConformalCalibrator,
    backtest_mask,
    patient_scale,
    scaled_residuals,
    values_at,
)
from forecasting_svc.models.ensemble import EnsembleWeights
from forecasting_svc.models.features import FEATURE_NAMES, TabularFeatures
from forecasting_svc.models.panel import Panel, max_scores
from forecasting_svc.models.quantile_loss import BASE_LEVELS, pinball_loss
from forecasting_svc.models.transformer import (
    INPUT_FEATURES,
    TransformerConfig,
    fit_transformer,
    future_targets,
    predict_transformer,
)
from forecasting_svc.models.xgboost_model import (
    XGBoostConfig,
    XGBoostForecaster,
    config_to_json,
    fit_xgboost,
)

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Horizon buckets of the reported metrics (inclusive).
METRIC_BUCKETS: Final = ((1, 7), (8, 14), (15, 30), (31, 90))


class Progress(Protocol):
    """Where the pipeline reports its stages (a progress bar in the CLI, nothing in tests)."""

    def stage(self, name: str, total: int) -> Callable[[str], None]: ...


class SilentProgress:
    def stage(self, name: str, total: int) -> Callable[[str], None]:
        _LOGGER.debug("training stage", extra={"stage": name})
        return lambda _info: None


@dataclass(frozen=True)
class FitConfig:
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    xgboost: XGBoostConfig = field(default_factory=XGBoostConfig)
    validation_fraction: float = 0.15
    calibration_fraction: float = 0.15
    evaluation_origin_step: int = 7
    #: Origins of the per-patient ensemble's calibration units (days apart, per series).
    combination_origin_step: int = 14
    #: First origin of those units: the day with this much history behind it.
    combination_first_origin: int = 27
    seed: int = 0


@dataclass
class TrainedModels:
    models: ForecastModels
    metrics: dict[str, dict[str, float]]
    params: dict[str, dict[str, object]]
    report: str


@dataclass(frozen=True)
class Split:
    train: IntArray
    validation: IntArray
    calibration: IntArray


def split_patients(panel: Panel, config: FitConfig) -> Split:
    """Series indices of each part; all series of one patient land in the same part."""
    patients = np.unique(panel.group)
    order = np.random.default_rng(config.seed).permutation(patients)
    n = len(order)
    n_val = max(1, round(n * config.validation_fraction))
    n_cal = max(2, round(n * config.calibration_fraction))
    if n - n_val - n_cal < 1:
        raise ValueError("training data: needs at least 4 patients")
    val_patients, cal_patients = order[:n_val], order[n_val : n_val + n_cal]
    train_patients = order[n_val + n_cal :]

    def rows(members: IntArray) -> IntArray:
        return np.nonzero(np.isin(panel.group, members))[0].astype(np.int64)

    return Split(rows(train_patients), rows(val_patients), rows(cal_patients))


@dataclass(frozen=True)
class EvaluationRows:
    """Flattened (series, origin, horizon) rows with both models' base quantiles and targets."""

    series: IntArray
    origins: IntArray
    horizons: IntArray
    transformer: FloatArray  # (M, 3)
    xgboost: FloatArray  # (M, 3)
    target: FloatArray  # (M,)

    def take(self, mask: BoolArray) -> EvaluationRows:
        return EvaluationRows(
            self.series[mask],
            self.origins[mask],
            self.horizons[mask],
            self.transformer[mask],
            self.xgboost[mask],
            self.target[mask],
        )


def evaluation_origins(
    panel: Panel, anchor: FloatArray, rows: IntArray, step: int
) -> tuple[IntArray, IntArray]:
    series: list[IntArray] = []
    origins: list[IntArray] = []
    for offset, row in enumerate(rows):
        days = np.arange(7 + offset % step, panel.n_days - 1, step)
        days = days[np.isfinite(anchor[row, days])]
        series.append(np.full(len(days), row, dtype=np.int64))
        origins.append(days.astype(np.int64))
    return np.concatenate(series), np.concatenate(origins)


def evaluation_rows(
    models: ForecastModels,
    panel: Panel,
    features: TabularFeatures,
    rows: IntArray,
    step: int,
) -> EvaluationRows:
    horizon = models.max_horizon
    series, origins = evaluation_origins(panel, features.anchor, rows, step)
    target, observed = future_targets(panel, features.anchor, series, origins, horizon)
    t_all, _ = predict_transformer(models.transformer, panel, features.anchor, series, origins)
    index, step_index = np.nonzero(observed)
    horizons = (step_index + 1).astype(np.int64)
    x_rows = models.xgboost.predict(features, series[index], origins[index], horizons)
    absolute = target[index, step_index] + features.anchor[series[index], origins[index]]
    return EvaluationRows(
        series=series[index],
        origins=origins[index],
        horizons=horizons,
        transformer=t_all[index, step_index],
        xgboost=x_rows,
        target=absolute,
    )


def _base_for(kind: str, rows: EvaluationRows, weights: EnsembleWeights) -> FloatArray:
    if kind == TRANSFORMER:
        return rows.transformer
    if kind == XGBOOST:
        return rows.xgboost
    w = weights.transformer[rows.horizons - 1][:, None]
    result: FloatArray = w * rows.transformer + (1.0 - w) * rows.xgboost
    return result


def backtest_scales(rows: EvaluationRows, z: FloatArray, reference: float) -> FloatArray:
    """Each row's patient scale, from its series' residuals at earlier origins.

    Evaluation origins of a series are 7 days apart, so the earlier rows of a
    series are exactly the backtests the service runs at serving time.
    """
    scales = np.ones(len(z))
    abs_z = np.abs(z)
    order = np.argsort(rows.series, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(rows.series[order]) != 0, True])
    for start, end in itertools.pairwise(bounds.tolist()):
        members = order[start:end]
        origins, horizons = rows.origins[members], rows.horizons[members]
        for origin in np.unique(origins):
            offsets = origin - origins
            known = backtest_mask(offsets, horizons, offsets > 0)
            scales[members[origins == origin]] = patient_scale(abs_z[members[known]], reference)
    return scales


def _fit_calibrator(panel: Panel, rows: EvaluationRows, base: FloatArray) -> ConformalCalibrator:
    z = scaled_residuals(base, rows.target)
    short = rows.horizons <= BACKTEST_MAX_HORIZON
    reference = float(np.median(np.abs(z[short]))) if short.any() else 1.0
    return ConformalCalibrator.fit(
        panel.instrument[rows.series],
        panel.history_days(rows.series, rows.origins),
        rows.horizons,
        base,
        rows.target,
        len(INSTRUMENT_ORDER),
        scale=backtest_scales(rows, z, reference),
        reference_abs_z=reference,
    )


def _calibrated_rows(
    calibrator: ConformalCalibrator, panel: Panel, rows: EvaluationRows, base: FloatArray
) -> FloatArray:
    """(M, len(TAU_GRID)) calibrated quantile function of each row, clipped to 0..1."""
    code = panel.instrument[rows.series]
    history = panel.history_days(rows.series, rows.origins)
    z = scaled_residuals(base, rows.target)
    scale = backtest_scales(rows, z, calibrator.reference_abs_z)
    values = calibrator.quantile_function(
        code, history, rows.horizons[:, None], base[:, None, :], scale
    )[:, 0]
    result: FloatArray = np.clip(values, 0.0, 1.0)
    return result


def cross_fitted_metrics(
    panel: Panel, rows: EvaluationRows, base: FloatArray, seed: int
) -> tuple[dict[str, float], tuple[float, ...]]:
    """Metrics of calibrated forecasts, each half scored with tables fitted on the other."""
    patients = np.unique(panel.group[rows.series])
    half = np.random.default_rng(seed).permutation(patients)[: len(patients) // 2]
    in_a = np.isin(panel.group[rows.series], half)
    median = np.zeros(len(rows.target))
    quantiles = np.zeros((len(rows.target), len(BASE_LEVELS)))
    inside = {level: np.zeros(len(rows.target), dtype=bool) for level in COVERAGE_LEVELS}
    for fit_mask in (in_a, ~in_a):
        score_mask = ~fit_mask
        if not fit_mask.any() or not score_mask.any():
            continue
        calibrator = _fit_calibrator(panel, rows.take(fit_mask), base[fit_mask])
        scored = rows.take(score_mask)
        values = _calibrated_rows(calibrator, panel, scored, base[score_mask])
        quantiles[score_mask] = values_at(values, BASE_LEVELS)
        median[score_mask] = quantiles[score_mask, 1]
        for level in COVERAGE_LEVELS:
            bounds = values_at(values, [(1 - level) / 2, (1 + level) / 2])
            inside[level][score_mask] = (scored.target >= bounds[:, 0]) & (
                scored.target <= bounds[:, 1]
            )
    scale = max_scores(panel.instrument[rows.series])
    error = np.abs(median - rows.target) * scale
    pinball = pinball_loss(quantiles, rows.target, BASE_LEVELS).mean(axis=1) * scale
    metrics: dict[str, float] = {}
    for low, high in METRIC_BUCKETS:
        bucket = (rows.horizons >= low) & (rows.horizons <= high)
        for code, instrument in enumerate(INSTRUMENT_ORDER):
            cell = bucket & (panel.instrument[rows.series] == code)
            if cell.any():
                metrics[f"val_mae_{instrument.value}_h{low}_{high}"] = float(error[cell].mean())
        if bucket.any():
            metrics[f"val_pinball_h{low}_{high}"] = float(pinball[bucket].mean())
            metrics[f"val_coverage80_h{low}_{high}"] = float(inside[0.8][bucket].mean())
    coverage = tuple(float(inside[level].mean()) for level in COVERAGE_LEVELS)
    for level, value in zip(COVERAGE_LEVELS, coverage, strict=True):
        metrics[f"val_coverage_{round(level * 100)}"] = value
    metrics["val_rows"] = float(len(rows.target))
    return metrics, coverage


def fit_models(panel: Panel, config: FitConfig, progress: Progress | None = None) -> TrainedModels:
    """Fit transformer, XGBoost, ensemble weights and conformal calibrators on ``panel``."""
    progress = progress or SilentProgress()
    split = split_patients(panel, config)
    features = TabularFeatures.build(panel)
    horizon = config.transformer.horizon
    if config.xgboost.max_horizon != horizon:
        raise ValueError("xgboost max_horizon must equal the transformer horizon")

    tick = progress.stage("xgboost: Optuna TPE trials", max(config.xgboost.trials, 1))
    xgb_fit = fit_xgboost(
        features,
        panel.values,
        split.train,
        config.xgboost,
        lambda n, best: tick(f"best cv pinball {best:.4f}"),
    )
    tick = progress.stage("transformer: epochs", config.transformer.max_epochs)
    transformer_fit = fit_transformer(
        panel,
        split.train,
        split.validation,
        config.transformer,
        lambda epoch, train, val: tick(f"train {train:.4f} val {val:.4f}"),
    )
    one = np.ones(1, np.int64)
    placeholder = ConformalCalibrator.fit(one - 1, one, one, np.zeros((1, 3)), np.zeros(1), 1)
    models = ForecastModels(
        transformer=transformer_fit.model,
        xgboost=XGBoostForecaster(xgb_fit.booster),
        weights=EnsembleWeights(np.full(horizon, 0.5)),
        calibrators=dict.fromkeys(MODEL_KINDS, placeholder),
        manifests={},
    )
    tick = progress.stage("ensemble and conformal calibration", 3)
    step = config.evaluation_origin_step
    val_rows = evaluation_rows(models, panel, features, split.validation, step)
    tick("validation forecasts")
    models.weights = EnsembleWeights.fit(
        val_rows.horizons, val_rows.transformer, val_rows.xgboost, val_rows.target, horizon
    )
    cal_rows = evaluation_rows(models, panel, features, split.calibration, step)
    tick("calibration forecasts")
    metrics: dict[str, dict[str, float]] = {}
    calibrators: dict[str, ConformalCalibrator] = {}
    for kind in MODEL_KINDS:
        base = _base_for(kind, cal_rows, models.weights)
        kind_metrics, coverage = cross_fitted_metrics(panel, cal_rows, base, config.seed)
        calibrators[kind] = _fit_calibrator(panel, cal_rows, base).with_coverage(coverage)
        metrics[kind] = kind_metrics
    models.calibrators = calibrators
    tick("calibrated")
    models.combination = fit_combination(models, panel, features, split.calibration, config)
    for level, value in zip(
        models.combination.coverage_levels, models.combination.empirical_coverage, strict=True
    ):
        metrics[ENSEMBLE][f"combined_coverage_{round(level * 100)}"] = value

    metrics[TRANSFORMER]["best_epoch"] = float(transformer_fit.best_epoch)
    metrics[TRANSFORMER]["val_pinball_loss_0_1_units"] = float(transformer_fit.best_val_loss)
    metrics[XGBOOST]["boosting_rounds"] = float(xgb_fit.rounds)
    if math.isfinite(xgb_fit.cv_pinball):
        metrics[XGBOOST]["cv_pinball_loss_0_1_units"] = float(xgb_fit.cv_pinball)
    weights = models.weights.transformer
    metrics[ENSEMBLE]["transformer_weight_h1_7"] = float(weights[:7].mean())
    metrics[ENSEMBLE]["transformer_weight_h8_30"] = float(weights[7:30].mean())
    metrics[ENSEMBLE]["transformer_weight_h31_90"] = float(weights[30:].mean())
    counts = {
        "train_patients": float(len(np.unique(panel.group[split.train]))),
        "validation_patients": float(len(np.unique(panel.group[split.validation]))),
        "calibration_patients": float(len(np.unique(panel.group[split.calibration]))),
    }
    for kind in MODEL_KINDS:
        metrics[kind].update(counts)
    params: dict[str, dict[str, object]] = {
        TRANSFORMER: {
            "config": transformer_fit.model.config.to_json(),
            "epochs_run": transformer_fit.epochs_run,
        },
        XGBOOST: {
            "config": config_to_json(config.xgboost),
            "best_params": xgb_fit.params,
            "rounds": xgb_fit.rounds,
            "trials": xgb_fit.trials,
        },
        ENSEMBLE: {"evaluation_origin_step": step, "seed": config.seed},
    }
    report = metrics_report(metrics)
    return TrainedModels(models=models, metrics=metrics, params=params, report=report)


def combination_units(
    models: ForecastModels,
    panel: Panel,
    features: TabularFeatures,
    rows: IntArray,
    config: FitConfig,
) -> list[CalibrationUnit]:
    """Calibration units of the per-patient ensemble: every member's forecast at rolling
    origins of the calibration series, their own backtests, and the observed future."""
    horizon = models.max_horizon
    series: list[int] = []
    origins: list[int] = []
    step = config.combination_origin_step
    for offset, row in enumerate(rows.tolist()):
        observed = np.flatnonzero(np.isfinite(panel.values[row]))
        if len(observed) < 4:
            continue
        start = max(int(observed[0]) + config.combination_first_origin, int(observed[3]))
        for day in range(start + offset % step, panel.n_days - 1, step):
            # The origin is the last observed day up to ``day`` (a visit, for sparse series).
            last = observed[observed <= day]
            if len(last) and (not origins or series[-1] != row or origins[-1] != last[-1]):
                series.append(row)
                origins.append(int(last[-1]))
    s = np.asarray(series, dtype=np.int64)
    o = np.asarray(origins, dtype=np.int64)
    h = np.full(len(s), horizon, dtype=np.int64)
    members = models.member_forecasts(panel, features, s, o, h)
    units = []
    for i, (final, backtest, cadence) in enumerate(members):
        days = o[i] + 1 + np.arange(horizon)
        future = np.where(
            days < panel.n_days, panel.values[s[i], np.minimum(days, panel.n_days - 1)], np.nan
        )
        units.append(
            CalibrationUnit(
                instrument=int(panel.instrument[s[i]]),
                cadence=cadence,
                backtest=backtest,
                final=final,
                future=future,
            )
        )
    return units


def fit_combination(
    models: ForecastModels,
    panel: Panel,
    features: TabularFeatures,
    rows: IntArray,
    config: FitConfig,
) -> CombinationPrior:
    units = combination_units(models, panel, features, rows, config)
    if not units:
        raise ValueError("training data: no calibration series long enough for the ensemble")
    return fit_prior(units, len(INSTRUMENT_ORDER), COVERAGE_LEVELS, config.seed)


def metrics_report(metrics: dict[str, dict[str, float]]) -> str:
    """A plain-text table of the cross-fitted validation metrics."""
    lines = ["Cross-fitted metrics on calibration patients (scores in instrument points)", ""]
    header = f"{'metric':<32}" + "".join(f"{kind:>13}" for kind in MODEL_KINDS)
    lines.append(header)
    lines.append("-" * len(header))
    names = [
        *(f"val_mae_{i.value}_h{lo}_{hi}" for lo, hi in METRIC_BUCKETS for i in INSTRUMENT_ORDER),
        *(f"val_pinball_h{lo}_{hi}" for lo, hi in METRIC_BUCKETS),
        *(f"val_coverage_{round(level * 100)}" for level in COVERAGE_LEVELS),
        *(f"combined_coverage_{round(level * 100)}" for level in COVERAGE_LEVELS),
    ]
    for name in names:
        cells = [metrics[kind].get(name) for kind in MODEL_KINDS]
        if all(c is None for c in cells):
            continue
        lines.append(
            f"{name:<32}" + "".join(f"{c:>13.3f}" if c is not None else f"{'-':>13}" for c in cells)
        )
    return "\n".join(lines) + "\n"


def write_artifacts(
    store: ArtifactStore, trained: TrainedModels, training_data_sha256: str
) -> dict[str, ArtifactManifest]:
    """Write the three signed artifacts; the ensemble names the model versions it was fitted on."""
    models = trained.models
    with store.writer(TRANSFORMER_ARTIFACT) as writer:
        writer.save_torch_state_dict("weights.pt", models.transformer.state_dict())
        writer.save_json(
            "config.json",
            {
                "config": models.transformer.config.to_json(),
                "input_features": list(INPUT_FEATURES),
            },
        )
        transformer_manifest = writer.commit(
            metrics=trained.metrics[TRANSFORMER],
            training_data_sha256=training_data_sha256,
            params=trained.params[TRANSFORMER],
        )
    with store.writer(XGBOOST_ARTIFACT) as writer:
        writer.save_xgboost("model.ubj", models.xgboost.booster)
        writer.save_json("config.json", {"feature_names": list(FEATURE_NAMES)})
        xgboost_manifest = writer.commit(
            metrics=trained.metrics[XGBOOST],
            training_data_sha256=training_data_sha256,
            params=trained.params[XGBOOST],
        )
    with store.writer(ENSEMBLE_ARTIFACT) as writer:
        writer.save_json(
            "ensemble.json",
            {
                "weights": models.weights.to_json(),
                "calibrators": {k: c.to_json() for k, c in models.calibrators.items()},
                "combination": models.combination.to_json()
                if models.combination is not None
                else None,
                "base_levels": list(BASE_LEVELS),
            },
        )
        writer.save_bytes("report.txt", trained.report.encode("utf-8"))
        ensemble_manifest = writer.commit(
            metrics=trained.metrics[ENSEMBLE],
            training_data_sha256=training_data_sha256,
            params={
                **trained.params[ENSEMBLE],
                "transformer_version": transformer_manifest.version,
                "xgboost_version": xgboost_manifest.version,
            },
        )
    manifests = {
        TRANSFORMER_ARTIFACT: transformer_manifest,
        XGBOOST_ARTIFACT: xgboost_manifest,
        ENSEMBLE_ARTIFACT: ensemble_manifest,
    }
    models.manifests = manifests
    return manifests
