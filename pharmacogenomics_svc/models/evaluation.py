"""Patient-level splits and held-out scores of the outcome models and their yardsticks.

Splits are by patient, never by trial: a patient's trials share a genotype and
a clinical profile, so splitting trials would leak them into the test set.
Every model is scored next to
* the base-rate predictor (the training outcome rate for everyone),
* the genotype-rule-only baseline (``rule_baseline.py``),
* on synthetic data, the generator's true probabilities (the best any model can do).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pharmacogenomics_svc.models.metrics import auroc, brier_score, expected_calibration_error

_LOGGER = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Split:
    """Row indices of the fit, calibration and test parts."""

    fit: IntArray
    calibration: IntArray
    test: IntArray


def split_by_patient(
    patients: IntArray, seed: int, calibration: float = 0.15, test: float = 0.15
) -> Split:
    """Assign whole patients to fit / calibration / test at random (seeded)."""
    if not 0.0 < calibration < 1.0 or not 0.0 < test < 1.0 or calibration + test >= 1.0:
        raise ValueError("calibration and test shares must be in (0, 1) and sum below 1")
    unique = np.unique(patients)
    if unique.size < 3:
        raise ValueError("need trials of at least 3 patients to split fit/calibration/test")
    shuffled = np.random.default_rng(seed).permutation(unique)
    n_test = max(1, round(unique.size * test))
    n_calibration = max(1, round(unique.size * calibration))
    test_ids = shuffled[:n_test]
    calibration_ids = shuffled[n_test : n_test + n_calibration]
    part = np.where(
        np.isin(patients, test_ids), 2, np.where(np.isin(patients, calibration_ids), 1, 0)
    )
    return Split(
        fit=np.flatnonzero(part == 0).astype(np.int64),
        calibration=np.flatnonzero(part == 1).astype(np.int64),
        test=np.flatnonzero(part == 2).astype(np.int64),
    )


def scores(
    prefix: str, probability: FloatArray, outcome: npt.NDArray[np.bool_]
) -> dict[str, float]:
    """Brier score, ECE and AUROC under ``<prefix>_brier`` etc. (NaN AUROC is left out)."""
    result = {
        f"{prefix}_brier": brier_score(probability, outcome),
        f"{prefix}_ece": expected_calibration_error(probability, outcome),
    }
    area = auroc(probability, outcome)
    if np.isfinite(area):
        result[f"{prefix}_auroc"] = area
    return result


def held_out_metrics(
    target: str,
    outcome: npt.NDArray[np.bool_],
    model: FloatArray,
    rule_baseline: FloatArray,
    base_rate: float,
    truth: FloatArray | None = None,
) -> dict[str, float]:
    """Every held-out score of one target, named ``<target>_...`` for the manifest."""
    metrics: dict[str, float] = {}
    metrics.update(scores(target, model, outcome))
    metrics.update(scores(f"{target}_rule_baseline", rule_baseline, outcome))
    metrics[f"{target}_base_rate_brier"] = brier_score(np.full(outcome.size, base_rate), outcome)
    if truth is not None:
        metrics.update(scores(f"{target}_truth", truth, outcome))
    metrics[f"{target}_test_rate"] = float(np.mean(outcome)) if outcome.size else float("nan")
    return metrics


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """Drop NaN/inf values: manifests hold finite numbers only."""
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
