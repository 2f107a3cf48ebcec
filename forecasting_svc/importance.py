"""Top drivers of a forecast, from XGBoost SHAP values and transformer attention.

Importances of one source are normalised to sum to 1; the drivers below the
top few are reported together as one remainder entry, so the listed shares
still sum to 1 and are not inflated by leaving the rest out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from forecasting_svc.domain import FeatureImportance, ImportanceSource
from forecasting_svc.models.transformer import PATCH_DAYS

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

TOP_SHAP: Final = 6
TOP_ATTENTION: Final = 4
OTHER_FEATURES: Final = "other features"
EARLIER_DAYS: Final = "earlier days"


def _top(
    shares: FloatArray, names: Sequence[str], top: int, remainder: str, source: ImportanceSource
) -> list[FeatureImportance]:
    total = float(shares.sum())
    if total <= 0 or not np.isfinite(total):
        return []
    normalized = shares / total
    order = np.argsort(-normalized, kind="stable")
    chosen = order[:top]
    result = [
        FeatureImportance(feature=names[i], importance=float(normalized[i]), source=source)
        for i in chosen
    ]
    rest = float(normalized[order[top:]].sum())
    if rest > 0:
        result.append(FeatureImportance(feature=remainder, importance=rest, source=source))
    return result


def shap_importance(mean_abs_shap: FloatArray, names: Sequence[str]) -> list[FeatureImportance]:
    """Mean absolute SHAP contribution of each feature to the median forecast."""
    return _top(mean_abs_shap, names, TOP_SHAP, OTHER_FEATURES, ImportanceSource.SHAP)


def patch_name(index_from_end: int) -> str:
    """Name of the patch ``index_from_end`` weeks before the last one, e.g. "days -13..-7"."""
    newest = -index_from_end * PATCH_DAYS
    oldest = newest - PATCH_DAYS + 1
    return f"days {oldest}..{newest}"


def attention_importance(attention: FloatArray) -> list[FeatureImportance]:
    """Attention of the pooling layer over the weekly patches (last patch ends on day 0)."""
    count = len(attention)
    names = [patch_name(count - 1 - i) for i in range(count)]
    return _top(attention, names, TOP_ATTENTION, EARLIER_DAYS, ImportanceSource.ATTENTION)
