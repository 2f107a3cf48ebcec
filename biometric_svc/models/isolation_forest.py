"""Per-patient multivariate outlier scores from an IsolationForest.

The forest is fitted on the patient's own days, each described by its
robust z-scores against the patient's baseline (so the units are comparable
across metrics and patients), and scores every day by how easily it is
isolated (Liu, Ting & Zhou, ICDM 2008). It catches days on which several
metrics are moderately off together, which no single z-score flags. It is
refitted for each request: a few hundred days fit in milliseconds, and a
per-patient forest needs no training data from anyone else.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest

FloatArray = npt.NDArray[np.float64]

N_TREES: Final = 100
MAX_SAMPLES: Final = 256
#: Fewest days a forest is fitted on; fewer give unstable path lengths.
MIN_DAYS: Final = 28
_Z_CLIP: Final = 10.0


def isolation_scores(robust_z: FloatArray, seed: int = 0) -> FloatArray:
    """Anomaly score s in (0, 1] per row (Liu et al.: s > 0.5 leans anomalous, ~0.5 normal).

    ``robust_z`` is (days, metrics) without NaN: the caller sets a metric that
    is missing on a day to 0 (its baseline), so missing data never looks anomalous.
    """
    if robust_z.shape[0] < MIN_DAYS:
        raise ValueError(f"robust_z: needs at least {MIN_DAYS} days")
    features = np.clip(robust_z, -_Z_CLIP, _Z_CLIP)
    forest = IsolationForest(
        n_estimators=N_TREES,
        max_samples=min(MAX_SAMPLES, features.shape[0]),
        random_state=seed,
    )
    forest.fit(features)
    # score_samples returns the negated score of the original paper.
    scores: FloatArray = -forest.score_samples(features)
    return scores
