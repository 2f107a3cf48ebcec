"""The base quantile levels every model predicts, and the pinball loss they are scored by.

Models learn the 10/50/90 % quantiles only; the conformal layer turns those
into a calibrated quantile function from which any requested level is read.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

BASE_LEVELS: Final = (0.1, 0.5, 0.9)


def pinball_loss(
    quantiles: npt.ArrayLike, target: npt.ArrayLike, levels: npt.ArrayLike
) -> FloatArray:
    """Elementwise pinball loss; ``quantiles`` has the levels on its last axis."""
    q = np.asarray(quantiles, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)[..., None]
    tau = np.asarray(levels, dtype=np.float64)
    diff = y - q
    result: FloatArray = np.maximum(tau * diff, (tau - 1.0) * diff)
    return result
