"""Calibrated gradient-boosted models of response and side-effect probability.

One XGBoost booster per target (``response``: >= 50 % fall of the depression
score; ``side_effect``: an adverse effect that led to a dose change or stop),
each followed by Platt scaling fitted on a calibration split the booster did
not see. Trees are shallow and carry monotone constraints from the CPIC
implications (see ``features.py``), so a few thousand trials suffice.

Saved as one signed artifact: ``response.json`` and ``side_effect.json``
(XGBoost's own JSON format), ``calibration.json`` (Platt parameters) and
``features.json`` (the feature spec). Nothing is pickled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import xgboost as xgb

from common.artifacts import ArtifactError, ArtifactWriter, LoadedArtifact
from pharmacogenomics_svc.models.calibration import PlattCalibrator, fit_platt
from pharmacogenomics_svc.models.features import TARGETS, FeatureSpec, FloatMatrix

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

MODEL_NAME: Final = "pharmacogenomics.response_model"
FEATURES_FILE: Final = "features.json"
CALIBRATION_FILE: Final = "calibration.json"
#: Booster settings: shallow trees, slow learning rate, early stopping on the calibration split.
BOOSTER_PARAMS: Final[Mapping[str, object]] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "max_depth": 3,
    "eta": 0.05,
    "min_child_weight": 20.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "lambda": 2.0,
    "tree_method": "hist",
    # One thread: on a few thousand rows two threads spend more time synchronizing than working.
    "nthread": 1,
}
MAX_ROUNDS: Final = 600
#: Round limit of ``--quick`` training (tests, smoke runs).
QUICK_ROUNDS: Final = 80
EARLY_STOPPING_ROUNDS: Final = 50


def booster_file(target: str) -> str:
    return f"{target}.json"


@dataclass(frozen=True)
class OutcomeModel:
    """A booster and its calibration for one target."""

    target: str
    booster: xgb.Booster
    calibrator: PlattCalibrator

    def raw(self, rows: FloatMatrix) -> FloatArray:
        # inplace_predict is thread-safe, so concurrent requests can share one booster.
        return np.asarray(self.booster.inplace_predict(rows), dtype=np.float64)

    def predict(self, rows: FloatMatrix) -> FloatArray:
        return self.calibrator.apply(self.raw(rows))


@dataclass(frozen=True)
class ResponseModels:
    """Both outcome models with the feature spec they were trained with."""

    spec: FeatureSpec
    outcomes: Mapping[str, OutcomeModel]
    params: Mapping[str, object] = field(default_factory=dict)

    def predict(self, target: str, rows: FloatMatrix) -> FloatArray:
        return self.outcomes[target].predict(rows)

    def save(self, writer: ArtifactWriter) -> None:
        writer.save_json(FEATURES_FILE, self.spec.to_json())
        writer.save_json(
            CALIBRATION_FILE,
            {target: model.calibrator.to_json() for target, model in self.outcomes.items()},
        )
        for target, model in self.outcomes.items():
            writer.save_xgboost(booster_file(target), model.booster)

    @classmethod
    def load(cls, artifact: LoadedArtifact) -> ResponseModels:
        """Rebuild from a verified artifact; ArtifactError if anything is malformed."""
        try:
            spec = FeatureSpec.from_json(artifact.load_json(FEATURES_FILE))
            calibration = artifact.load_json(CALIBRATION_FILE)
            if not isinstance(calibration, dict):
                raise ValueError("calibration.json: must be an object")
            outcomes = {}
            for target in TARGETS:
                booster = artifact.load_xgboost(booster_file(target), xgb.Booster)
                # A request scores a few dozen rows: one thread avoids OpenMP start-up and
                # contention between concurrent requests.
                booster.set_param({"nthread": 1})
                if booster.num_features() != len(spec.names):
                    raise ValueError(f"{booster_file(target)}: feature count does not match")
                outcomes[target] = OutcomeModel(
                    target, booster, PlattCalibrator.from_json(calibration.get(target))
                )
        except (ValueError, xgb.core.XGBoostError) as exc:
            raise ArtifactError(f"artifact {artifact.manifest.name}: {exc}") from exc
        return cls(spec=spec, outcomes=outcomes, params=dict(artifact.manifest.params))


def fit_outcome_model(
    target: str,
    spec: FeatureSpec,
    fit: tuple[FloatMatrix, npt.NDArray[np.bool_]],
    calibration: tuple[FloatMatrix, npt.NDArray[np.bool_]],
    seed: int,
    max_rounds: int = MAX_ROUNDS,
) -> OutcomeModel:
    """Fit the booster on ``fit`` (early stopping on ``calibration``), then Platt-scale it."""
    names = list(spec.names)
    train = xgb.DMatrix(fit[0], label=fit[1].astype(np.float32), feature_names=names)
    held = xgb.DMatrix(calibration[0], label=calibration[1].astype(np.float32), feature_names=names)
    params = {
        **BOOSTER_PARAMS,
        "seed": seed,
        "monotone_constraints": "(" + ",".join(map(str, spec.monotone_constraints(target))) + ")",
    }
    booster = xgb.train(
        params,
        train,
        num_boost_round=max_rounds,
        evals=[(held, "calibration")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    # Keep only the trees up to the best round, so the saved model is the one that was scored.
    booster = booster[: booster.best_iteration + 1]
    raw = np.asarray(booster.inplace_predict(calibration[0]), dtype=np.float64)
    calibrator = fit_platt(raw, calibration[1])
    _LOGGER.info(
        "fitted %s model: %d trees, calibration slope %.3f intercept %.3f",
        target,
        booster.num_boosted_rounds(),
        calibrator.slope,
        calibrator.intercept,
    )
    return OutcomeModel(target, booster, calibrator)
