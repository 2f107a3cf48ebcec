"""Platt scaling of a classifier's probabilities, stored as two numbers (no pickle).

``p = sigmoid(a * logit(raw) + b)``, with ``a`` and ``b`` fitted by maximum
likelihood on a calibration split the booster never saw (Platt 1999). Two
parameters cannot overfit a few hundred calibration rows the way isotonic
regression's step function can, and they round-trip through JSON exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_EPSILON: Final = 1e-6
MAX_SLOPE: Final = 3.0


def _logit(p: npt.ArrayLike) -> FloatArray:
    clipped = np.clip(np.asarray(p, dtype=np.float64), _EPSILON, 1.0 - _EPSILON)
    result: FloatArray = np.log(clipped / (1.0 - clipped))
    return result


def _sigmoid(z: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-z))
    return result


@dataclass(frozen=True)
class PlattCalibrator:
    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, raw: npt.ArrayLike) -> FloatArray:
        return _sigmoid(self.slope * _logit(raw) + self.intercept)

    def to_json(self) -> dict[str, object]:
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_json(cls, raw: object) -> PlattCalibrator:
        if not isinstance(raw, dict) or raw.get("method") != "platt":
            raise ValueError("calibration: must be a Platt scaling object")
        slope, intercept = raw.get("slope"), raw.get("intercept")
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in (slope, intercept)
        ):
            raise ValueError("calibration: slope and intercept must be finite numbers")
        return cls(float(slope), float(intercept))  # type: ignore[arg-type]


def fit_platt(raw: npt.ArrayLike, outcome: npt.ArrayLike) -> PlattCalibrator:
    """Maximum-likelihood slope and intercept on the logit of ``raw``."""
    z = _logit(raw)
    y = np.asarray(outcome, dtype=np.float64)
    if z.size == 0 or y.min() == y.max():
        _LOGGER.warning("calibration split has one class only; calibration left as identity")
        return PlattCalibrator()

    def negative_log_likelihood(params: FloatArray) -> tuple[float, FloatArray]:
        a, b = float(params[0]), float(params[1])
        s = a * z + b
        # log(1 + exp(s)) - y s, computed stably; gradient (p - y) * [z, 1].
        loss = float(np.sum(np.logaddexp(0.0, s) - y * s))
        residual = _sigmoid(s) - y
        return loss, np.array([float(np.sum(residual * z)), float(np.sum(residual))])

    # A negative slope would turn the booster's ranking upside down; a very steep one would
    # stretch a near-constant booster into extreme probabilities. Neither is calibration.
    fitted = minimize(
        negative_log_likelihood,
        np.array([1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, MAX_SLOPE), (None, None)],
    )
    slope, intercept = (float(v) for v in fitted.x)
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        _LOGGER.warning("calibration did not converge; left as identity")
        return PlattCalibrator()
    return PlattCalibrator(slope, intercept)
