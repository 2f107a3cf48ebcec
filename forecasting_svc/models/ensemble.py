"""Ensemble of the transformer and XGBoost with per-horizon weights learned on validation data.

For every horizon h the weight w(h) of the transformer (XGBoost gets 1 - w)
is the value on a 0..1 grid that minimises the mean pinball loss of the
weighted quantiles on validation patients, over the horizons near h (a
window that widens with h, because far horizons have fewer, noisier
validation targets). Quantiles are combined level by level (quantile
averaging), which keeps them ordered. Nothing here is a fixed constant: with
other data the weights come out different.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from forecasting_svc.models.quantile_loss import BASE_LEVELS, pinball_loss

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

WEIGHT_GRID: Final = np.linspace(0.0, 1.0, 21)


def smoothing_radius(horizon: int) -> int:
    return max(1, round(0.15 * horizon))


@dataclass(frozen=True)
class EnsembleWeights:
    """Transformer weight per horizon 1..len(transformer)."""

    transformer: FloatArray

    @classmethod
    def fit(
        cls,
        horizons: IntArray,
        transformer: FloatArray,
        xgboost: FloatArray,
        target: FloatArray,
        max_horizon: int,
    ) -> EnsembleWeights:
        """Learn w(h) from validation rows: horizon, both models' quantiles (M, 3), target."""
        # loss_sum[h, j]: summed pinball loss at horizon h with weight WEIGHT_GRID[j].
        loss_sum = np.zeros((max_horizon + 1, len(WEIGHT_GRID)))
        count = np.bincount(horizons, minlength=max_horizon + 1).astype(np.float64)
        for j, w in enumerate(WEIGHT_GRID):
            combined = w * transformer + (1.0 - w) * xgboost
            loss = pinball_loss(combined, target, BASE_LEVELS).mean(axis=1)
            loss_sum[:, j] = np.bincount(horizons, weights=loss, minlength=max_horizon + 1)
        weights = np.full(max_horizon, 0.5)
        for h in range(1, max_horizon + 1):
            r = smoothing_radius(h)
            window = slice(max(1, h - r), min(max_horizon, h + r) + 1)
            n = count[window].sum()
            if n > 0:
                weights[h - 1] = WEIGHT_GRID[int(np.argmin(loss_sum[window].sum(axis=0) / n))]
        return cls(transformer=weights)

    def combine(
        self, transformer: FloatArray, xgboost: FloatArray, horizons: IntArray
    ) -> FloatArray:
        """Weighted quantiles; the horizon axis is the second-to-last axis of both inputs."""
        w = self.transformer[np.asarray(horizons) - 1][:, None]
        result: FloatArray = w * transformer + (1.0 - w) * xgboost
        return result

    def to_json(self) -> dict[str, object]:
        return {"transformer_weight_by_horizon": [round(float(w), 4) for w in self.transformer]}

    @classmethod
    def from_json(cls, raw: object) -> EnsembleWeights:
        if not isinstance(raw, dict):
            raise ValueError("ensemble weights: must be an object")
        weights = np.asarray(raw["transformer_weight_by_horizon"], dtype=np.float64)
        if weights.ndim != 1 or not np.all((weights >= 0) & (weights <= 1)):
            raise ValueError("ensemble weights: must be a list of numbers in 0..1")
        return cls(transformer=weights)
