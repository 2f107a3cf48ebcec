"""The trained model set as the service uses it: load from the signed store, predict.

Three artifacts make one model set. ``forecasting.ensemble`` (weights,
conformal tables, report) names the exact versions of
``forecasting.transformer`` and ``forecasting.xgboost`` it was fitted
against, and those versions are what is loaded, so a newer transformer
trained later can never be paired with an ensemble calibrated on another.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from common.artifacts import ArtifactError, ArtifactManifest, ArtifactStore
from common.tracing import model_span
from forecasting_svc.models.combination import (
    DAILY,
    MAX_BACKTEST_DAYS,
    SPARSE,
    CombinationPrior,
    OwnHistory,
    SeriesBacktest,
    own_history,
)
from forecasting_svc.models.conformal import (
    BACKTEST_MAX_HORIZON,
    BACKTEST_ORIGINS,
    ConformalCalibrator,
    backtest_mask,
    patient_scale,
    scaled_residuals,
    values_at,
)
from forecasting_svc.models.ensemble import EnsembleWeights
from forecasting_svc.models.features import FEATURE_NAMES, TabularFeatures
from forecasting_svc.models.local import choose_backtest_origins, local_forecasts
from forecasting_svc.models.panel import Panel
from forecasting_svc.models.quantile_loss import BASE_LEVELS
from forecasting_svc.models.transformer import (
    INPUT_FEATURES,
    PATCH_DAYS,
    ForecastTransformer,
    TransformerConfig,
    load_transformer,
    predict_transformer,
)
from forecasting_svc.models.xgboost_model import XGBoostForecaster

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRAIN_COMMAND: Final = "python -m forecasting_svc.train"
TRANSFORMER_ARTIFACT: Final = "forecasting.transformer"
XGBOOST_ARTIFACT: Final = "forecasting.xgboost"
ENSEMBLE_ARTIFACT: Final = "forecasting.ensemble"
#: Model kinds, as used in artifact files and metrics.
TRANSFORMER: Final = "transformer"
XGBOOST: Final = "xgboost"
ENSEMBLE: Final = "ensemble"
MODEL_KINDS: Final = (TRANSFORMER, XGBOOST, ENSEMBLE)


@dataclass(frozen=True)
class SeriesPrediction:
    """One series' calibrated forecast in 0..1 units, with what drove it."""

    tau_values: FloatArray  # (horizon, len(TAU_GRID)), non-decreasing along the last axis
    base: FloatArray  # (horizon, 3) uncalibrated 10/50/90 % quantiles of the chosen model
    attention: FloatArray | None  # (window / 7,) transformer attention over weekly patches
    shap: FloatArray | None  # (len(FEATURE_NAMES),) mean |SHAP| of the median over the horizon
    #: The per-patient ensemble's own-history backtest (ENSEMBLE with its combination only).
    own_history: OwnHistory | None = None


@dataclass
class ForecastModels:
    transformer: ForecastTransformer
    xgboost: XGBoostForecaster
    weights: EnsembleWeights
    calibrators: dict[str, ConformalCalibrator]
    manifests: dict[str, ArtifactManifest]
    #: The per-patient ensemble's priors and interval table (models/combination.py).
    combination: CombinationPrior | None = None

    @property
    def max_horizon(self) -> int:
        return int(self.transformer.config.horizon)

    @property
    def window(self) -> int:
        return int(self.transformer.config.window)

    def versions(self) -> dict[str, str]:
        return {name: manifest.version for name, manifest in self.manifests.items()}

    @classmethod
    def load(cls, store: ArtifactStore) -> ForecastModels:
        """Verify and load the latest ensemble and the model versions it names."""
        ensemble = store.load(ENSEMBLE_ARTIFACT, train_hint=TRAIN_COMMAND)
        params = ensemble.manifest.params
        transformer_version = params.get("transformer_version")
        xgboost_version = params.get("xgboost_version")
        if not isinstance(transformer_version, str) or not isinstance(xgboost_version, str):
            raise ArtifactError(f"{ENSEMBLE_ARTIFACT}: manifest does not name its model versions")
        transformer_art = store.load(TRANSFORMER_ARTIFACT, transformer_version)
        xgboost_art = store.load(XGBOOST_ARTIFACT, xgboost_version)
        try:
            transformer_meta = transformer_art.load_json("config.json")
            if not isinstance(transformer_meta, dict):
                raise ValueError("config.json: must be an object")
            if list(transformer_meta.get("input_features", [])) != list(INPUT_FEATURES):
                raise ValueError("transformer input features differ from this code's")
            config = TransformerConfig.from_json(transformer_meta.get("config"))
            transformer = load_transformer(
                config, transformer_art.load_torch_state_dict("weights.pt")
            )
            xgboost_meta = xgboost_art.load_json("config.json")
            if not isinstance(xgboost_meta, dict):
                raise ValueError("config.json: must be an object")
            if list(xgboost_meta.get("feature_names", [])) != list(FEATURE_NAMES):
                raise ValueError("xgboost feature names differ from this code's")
            booster = xgboost_art.load_xgboost("model.ubj", xgb.Booster)
            ensemble_data = ensemble.load_json("ensemble.json")
            if not isinstance(ensemble_data, dict):
                raise ValueError("ensemble.json: must be an object")
            weights = EnsembleWeights.from_json(ensemble_data["weights"])
            raw_calibrators = ensemble_data["calibrators"]
            if not isinstance(raw_calibrators, dict):
                raise ValueError("ensemble.json: calibrators must be an object")
            calibrators = {
                kind: ConformalCalibrator.from_json(raw_calibrators[kind]) for kind in MODEL_KINDS
            }
            combination = CombinationPrior.from_json(ensemble_data["combination"])
        except (KeyError, TypeError, ValueError, RuntimeError, xgb.core.XGBoostError) as exc:
            raise ArtifactError(f"forecasting model set is unusable: {exc}") from exc
        if len(weights.transformer) < config.horizon:
            raise ArtifactError("forecasting model set is unusable: too few ensemble weights")
        return cls(
            transformer=transformer,
            xgboost=XGBoostForecaster(booster),
            weights=weights,
            calibrators=calibrators,
            combination=combination,
            manifests={
                TRANSFORMER_ARTIFACT: transformer_art.manifest,
                XGBOOST_ARTIFACT: xgboost_art.manifest,
                ENSEMBLE_ARTIFACT: ensemble.manifest,
            },
        )

    def coverage_for(self, choice: str, level: float) -> float:
        """Cross-fitted empirical coverage of ``choice``'s central interval at ``level``."""
        if choice == ENSEMBLE and self.combination is not None:
            return self.combination.coverage_for(level)
        return self.calibrators[choice].coverage_for(level)

    def member_forecasts(
        self,
        panel: Panel,
        features: TabularFeatures,
        series: IntArray,
        origins: IntArray,
        horizons: IntArray,
        t_final: FloatArray | None = None,
        x_final: FloatArray | None = None,
    ) -> list[tuple[FloatArray, SeriesBacktest, int]]:
        """Every member's median forecast (M, h) and rolling-origin backtests of each row.

        ``t_final``/``x_final`` (rows, max_horizon, 3) are the global models' forecasts at
        the origins when the caller has them already. Backtest pairs use only days up
        to each row's origin.
        """
        count = len(series)
        if t_final is None:
            t_final, _ = predict_transformer(
                self.transformer, panel, features.anchor, series, origins
            )
        if x_final is None:
            x_final = np.zeros((count, self.max_horizon, 3))
            rows = np.repeat(np.arange(count), horizons)
            steps = np.concatenate([np.arange(1, h + 1) for h in horizons]).astype(np.int64)
            if len(rows):
                x_final[rows, steps - 1] = self.xgboost.predict(
                    features, series[rows], origins[rows], steps
                )
        locals_ = []
        for i in range(count):
            s, o = int(series[i]), int(origins[i])
            values = panel.values[s, : o + 1]
            locals_.append(
                local_forecasts(
                    values,
                    int(panel.first_weekday[s]),
                    int(horizons[i]),
                    choose_backtest_origins(values),
                    MAX_BACKTEST_DAYS,
                )
            )
        owner = (
            np.concatenate(
                [np.full(len(lf.backtest_days), i, np.int64) for i, lf in enumerate(locals_)]
            )
            if count
            else np.zeros(0, np.int64)
        )
        bt_origin = np.concatenate([lf.backtest_origin for lf in locals_]) if count else owner
        bt_days = np.concatenate([lf.backtest_days for lf in locals_]) if count else owner
        t_bt = np.zeros(len(owner))
        x_bt = np.zeros(len(owner))
        if len(owner):
            keys = owner * (panel.n_days + 1) + bt_origin
            unique_keys, position = np.unique(keys, return_inverse=True)
            u_owner = unique_keys // (panel.n_days + 1)
            u_origin = unique_keys % (panel.n_days + 1)
            t_out, _ = predict_transformer(
                self.transformer, panel, features.anchor, series[u_owner], u_origin
            )
            t_bt = t_out[position, np.minimum(bt_days, self.max_horizon) - 1, 1]
            x_bt = self.xgboost.predict(features, series[owner], bt_origin, bt_days)[:, 1]
        result = []
        for i, lf in enumerate(locals_):
            h = int(horizons[i])
            mine = owner == i
            final = np.vstack([t_final[i, :h, 1], x_final[i, :h, 1], lf.final[:, :h]])
            backtest = SeriesBacktest(
                forecasts=np.vstack([t_bt[mine], x_bt[mine], lf.backtest]),
                target=lf.backtest_target,
                days=lf.backtest_days,
            )
            result.append((np.clip(final, 0.0, 1.0), backtest, SPARSE if lf.sparse else DAILY))
        return result

    def _version(self, artifact: str) -> str:
        manifest = self.manifests.get(artifact)
        return manifest.version if manifest is not None else ""

    def _explain(
        self,
        features: TabularFeatures,
        series: IntArray,
        origins: IntArray,
        horizons: IntArray,
        rows: IntArray,
    ) -> FloatArray:
        """Mean |SHAP| of the median on the first and the last forecast day of each series.

        TreeSHAP costs ~100x a prediction per row (it was two thirds of a request's
        compute with four rows per series), and the rows of one series differ only
        in their horizon features, so the two ends of the horizon stand in for all.
        """
        picked: list[tuple[int, int]] = []
        for i in rows:
            for step in sorted({1, int(horizons[i])}):
                picked.append((int(i), step))
        shap = np.zeros((len(series), len(FEATURE_NAMES)))
        if not picked:
            return shap
        owner = np.array([i for i, _ in picked], dtype=np.int64)
        steps = np.array([s for _, s in picked], dtype=np.int64)
        contributions = np.abs(
            self.xgboost.contributions(features, series[owner], origins[owner], steps)
        )
        np.add.at(shap, owner, contributions)
        counts = np.bincount(owner, minlength=len(series)).astype(np.float64)
        result: FloatArray = shap / np.maximum(counts, 1.0)[:, None]
        return result

    def _backtest_scales(
        self,
        panel: Panel,
        features: TabularFeatures,
        series: IntArray,
        origins: IntArray,
        choices: Sequence[str],
    ) -> FloatArray:
        """Each series' patient scale from its forecasts at BACKTEST_ORIGINS days earlier.

        The conformal tables were fitted on residuals divided by the same scale
        (see models/conformal.py), so this is what adapts the intervals to how
        well the models have done on this patient lately.
        """
        n_offsets = len(BACKTEST_ORIGINS)
        owner = np.repeat(np.arange(len(series)), n_offsets)
        offsets = np.tile(np.array(BACKTEST_ORIGINS, dtype=np.int64), len(series))
        bt_origins = origins[owner] - offsets
        valid = bt_origins >= 0
        valid[valid] = np.isfinite(features.anchor[series[owner[valid]], bt_origins[valid]])
        owner, offsets, bt_origins = owner[valid], offsets[valid], bt_origins[valid]
        bt_series = series[owner]
        steps = np.arange(1, BACKTEST_MAX_HORIZON + 1, dtype=np.int64)
        days = bt_origins[:, None] + steps[None, :]
        target = np.where(
            days < panel.n_days,
            panel.values[bt_series[:, None], np.minimum(days, panel.n_days - 1)],
            np.nan,
        )
        counted = backtest_mask(offsets[:, None], steps[None, :], np.isfinite(target))
        scales = np.ones(len(series))
        if not counted.any():
            return scales

        kinds = np.array([choices[i] for i in owner.tolist()], dtype=object)
        use_t = (kinds == TRANSFORMER) | (kinds == ENSEMBLE)
        use_x = (kinds == XGBOOST) | (kinds == ENSEMBLE)
        t_base = np.zeros((len(owner), BACKTEST_MAX_HORIZON, 3))
        if use_t.any():
            t_out, _ = predict_transformer(
                self.transformer, panel, features.anchor, bt_series[use_t], bt_origins[use_t]
            )
            t_base[use_t] = t_out[:, :BACKTEST_MAX_HORIZON]
        x_base = np.zeros((len(owner), BACKTEST_MAX_HORIZON, 3))
        rows, cols = np.nonzero(counted & use_x[:, None])
        if len(rows):
            x_base[rows, cols] = self.xgboost.predict(
                features, bt_series[rows], bt_origins[rows], steps[cols]
            )
        base = np.where(
            (kinds == TRANSFORMER)[:, None, None],
            t_base,
            np.where(
                (kinds == XGBOOST)[:, None, None],
                x_base,
                self.weights.combine(t_base, x_base, steps),
            ),
        )
        abs_z = np.abs(scaled_residuals(base, np.nan_to_num(target)))
        for i in range(len(series)):
            mine = owner == i
            reference = self.calibrators[choices[i]].reference_abs_z
            scales[i] = patient_scale(abs_z[mine][counted[mine]], reference)
        return scales

    def predict(
        self,
        panel: Panel,
        series: IntArray,
        origins: IntArray,
        horizons: IntArray,
        choices: Sequence[str],
        *,
        explain: bool = False,
        features: TabularFeatures | None = None,
        history_days: IntArray | None = None,
    ) -> list[SeriesPrediction]:
        """Forecast each (series, origin) ``horizons[i]`` days ahead with model ``choices[i]``.

        All series go through each model in one call (this is the batched model call).
        ``history_days`` (days of history at each origin, which picks the conformal
        table) defaults to what ``panel`` shows; a caller whose panel is a window cut
        from a longer history passes the true lengths.
        """
        features = features if features is not None else TabularFeatures.build(panel)
        count = len(series)
        use_t = np.array([c in (TRANSFORMER, ENSEMBLE) for c in choices], dtype=bool)
        use_x = np.array([c in (XGBOOST, ENSEMBLE) for c in choices], dtype=bool)

        t_base = np.zeros((count, self.max_horizon, 3))
        attention = np.zeros((count, self.window // PATCH_DAYS))
        if use_t.any():
            with model_span(
                TRANSFORMER_ARTIFACT,
                self._version(TRANSFORMER_ARTIFACT),
                batch_size=int(use_t.sum()),
            ):
                t_out, t_attention = predict_transformer(
                    self.transformer, panel, features.anchor, series[use_t], origins[use_t]
                )
            t_base[use_t], attention[use_t] = t_out, t_attention

        x_index = np.nonzero(use_x)[0]
        x_rows = np.repeat(x_index, horizons[x_index])
        x_horizons = (
            np.concatenate([np.arange(1, horizons[i] + 1) for i in x_index])
            if len(x_index)
            else np.zeros(0, dtype=np.int64)
        ).astype(np.int64)
        x_base = np.zeros((count, self.max_horizon, 3))
        shap = np.zeros((count, len(FEATURE_NAMES)))
        if len(x_rows):
            with model_span(
                XGBOOST_ARTIFACT, self._version(XGBOOST_ARTIFACT), batch_size=len(x_index)
            ):
                predicted = self.xgboost.predict(
                    features, series[x_rows], origins[x_rows], x_horizons
                )
                x_base[x_rows, x_horizons - 1] = predicted
                if explain:
                    shap = self._explain(features, series, origins, horizons, x_index)

        history = history_days if history_days is not None else panel.history_days(series, origins)
        combined_rows = np.array(
            [c == ENSEMBLE and self.combination is not None for c in choices], dtype=bool
        )
        global_rows = np.flatnonzero(~combined_rows)
        scales = np.ones(count)
        if len(global_rows):
            scales[global_rows] = self._backtest_scales(
                panel,
                features,
                series[global_rows],
                origins[global_rows],
                [choices[i] for i in global_rows.tolist()],
            )
        combined_tau: dict[int, FloatArray] = {}
        checks: dict[int, OwnHistory] = {}
        ensemble_rows = np.flatnonzero(combined_rows)
        if len(ensemble_rows) and self.combination is not None:
            with model_span(
                ENSEMBLE_ARTIFACT, self._version(ENSEMBLE_ARTIFACT), batch_size=len(ensemble_rows)
            ):
                members = self.member_forecasts(
                    panel,
                    features,
                    series[ensemble_rows],
                    origins[ensemble_rows],
                    horizons[ensemble_rows],
                    t_final=t_base[ensemble_rows],
                    x_final=x_base[ensemble_rows],
                )
                for row, (final, backtest, cadence) in zip(
                    ensemble_rows.tolist(), members, strict=True
                ):
                    combined = self.combination.combine(
                        final, backtest, int(panel.instrument[series[row]]), cadence
                    )
                    combined_tau[row] = self.combination.quantile_function(combined, cadence)
                    checks[row] = own_history(combined, backtest)
        results: list[SeriesPrediction] = []
        for i in range(count):
            h = int(horizons[i])
            steps = np.arange(1, h + 1)
            if i in combined_tau:
                tau_values = np.clip(combined_tau[i], 0.0, 1.0)
                results.append(
                    SeriesPrediction(
                        tau_values=tau_values,
                        base=values_at(tau_values, BASE_LEVELS),
                        attention=attention[i] if use_t[i] else None,
                        shap=shap[i] if (use_x[i] and explain) else None,
                        own_history=checks[i],
                    )
                )
                continue
            if choices[i] == TRANSFORMER:
                base = t_base[i, :h]
            elif choices[i] == XGBOOST:
                base = x_base[i, :h]
            else:
                base = self.weights.combine(t_base[i, :h], x_base[i, :h], steps)
            calibrator = self.calibrators[choices[i]]
            code = panel.instrument[series[i : i + 1]]
            tau_values = calibrator.quantile_function(
                code, history[i : i + 1], steps, base[None], scales[i : i + 1]
            )[0]
            results.append(
                SeriesPrediction(
                    tau_values=np.clip(tau_values, 0.0, 1.0),
                    base=base,
                    attention=attention[i] if use_t[i] else None,
                    shap=shap[i] if (use_x[i] and explain) else None,
                )
            )
        return results
