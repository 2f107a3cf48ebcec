"""Split, fit, calibrate and score both outcome models on one training set."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pharmacogenomics_svc.knowledge_base import KnowledgeBase
from pharmacogenomics_svc.models.evaluation import Split, finite, held_out_metrics, split_by_patient
from pharmacogenomics_svc.models.features import MASK_RATE, RESPONSE, TARGETS, mask_at_random
from pharmacogenomics_svc.models.response_model import (
    BOOSTER_PARAMS,
    MAX_ROUNDS,
    ResponseModels,
    fit_outcome_model,
)
from pharmacogenomics_svc.models.rule_baseline import GuidanceTiers, fit_rule_baseline
from pharmacogenomics_svc.models.training_data import TrainingSet

_LOGGER = logging.getLogger(__name__)

#: Called with the name of each stage as it finishes ("features", "fit response", ...).
Progress = Callable[[str], None]


@dataclass(frozen=True)
class FittedModels:
    models: ResponseModels
    metrics: dict[str, float]
    split: Split


def _labels(training: TrainingSet, target: str) -> npt.NDArray[np.bool_]:
    return training.responded if target == RESPONSE else training.side_effect


def fit_and_evaluate(
    training: TrainingSet,
    kb: KnowledgeBase,
    seed: int = 0,
    progress: Progress | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> FittedModels:
    """Fit on the fit split, calibrate on the calibration split, score on the test split."""
    started = time.perf_counter()
    step = progress or (lambda _message: None)
    split = split_by_patient(training.patients, seed)
    spec = training.spec(kb)
    matrix = training.matrix(spec)
    # Fit and calibration see some missing genes and covariates, as requests do; the test split
    # is scored as it is.
    trained_on = mask_at_random(matrix, spec, np.random.default_rng(seed))
    tiers = GuidanceTiers(kb).tiers(training.trials)
    step("features")
    outcomes = {}
    metrics: dict[str, float] = {
        "n_fit_trials": float(split.fit.size),
        "n_calibration_trials": float(split.calibration.size),
        "n_test_trials": float(split.test.size),
    }
    for target in TARGETS:
        labels = _labels(training, target)
        model = fit_outcome_model(
            target,
            spec,
            (trained_on[split.fit], labels[split.fit]),
            (trained_on[split.calibration], labels[split.calibration]),
            seed,
            max_rounds,
        )
        outcomes[target] = model
        fit_labels = labels[split.fit]
        baseline = fit_rule_baseline([tiers[i] for i in split.fit.tolist()], fit_labels)
        truth_values = training.true_response if target == RESPONSE else training.true_side_effect
        metrics.update(
            held_out_metrics(
                target,
                labels[split.test],
                model.predict(matrix[split.test]),
                baseline.predict([tiers[i] for i in split.test.tolist()]),
                float(np.mean(fit_labels)),
                None if truth_values is None else truth_values[split.test],
            )
        )
        metrics[f"{target}_trees"] = float(model.booster.num_boosted_rounds())
        metrics[f"{target}_calibration_slope"] = model.calibrator.slope
        metrics[f"{target}_calibration_intercept"] = model.calibrator.intercept
        step(f"fit {target}")
    metrics["fit_seconds"] = time.perf_counter() - started
    params: dict[str, object] = {
        "booster": dict(BOOSTER_PARAMS),
        "targets": list(TARGETS),
        "split": "by patient: 70% fit, 15% calibration (early stopping + Platt), 15% test",
        "mask_rate": MASK_RATE,
        "source": training.source,
        "seed": seed,
        "max_rounds": max_rounds,
    }
    models = ResponseModels(spec=spec, outcomes=outcomes, params=params)
    return FittedModels(models=models, metrics=finite(metrics), split=split)
