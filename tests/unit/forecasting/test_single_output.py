"""SHAP of the median alone equals the median's column of the full three-quantile SHAP."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from forecasting_svc.models.single_output import single_output_booster
from forecasting_svc.models.xgboost_model import XGBoostForecaster


def _three_quantile_booster() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 8))
    y = x[:, 0] - 0.5 * x[:, 3] + rng.normal(scale=0.5, size=600)
    params = {
        "objective": "reg:quantileerror",
        "quantile_alpha": np.array([0.1, 0.5, 0.9]),
        "max_depth": 4,
        "eta": 0.2,
        "tree_method": "hist",
        "nthread": 1,
    }
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=25)
    return booster, rng.normal(size=(50, 8))


def test_single_output_contributions_are_bitwise_the_full_ones():
    booster, rows = _three_quantile_booster()
    full = booster.predict(xgb.DMatrix(rows), pred_contribs=True)
    for target in range(3):
        single = single_output_booster(booster, target)
        assert single is not None
        alone = single.predict(xgb.DMatrix(rows), pred_contribs=True)
        assert alone.shape == (50, 9)
        np.testing.assert_array_equal(alone, full[:, target, :])
        np.testing.assert_array_equal(
            single.predict(xgb.DMatrix(rows)), booster.predict(xgb.DMatrix(rows))[:, target]
        )


def test_a_single_output_model_is_left_as_it_is():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3))
    booster = xgb.train(
        {"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, label=x[:, 0]), 5
    )
    assert single_output_booster(booster, 0) is None


class _FixedRows:
    """Stands in for TabularFeatures: the input rows are given directly."""

    def __init__(self, rows: np.ndarray) -> None:
        self._rows = rows.astype(np.float32)

    def rows(self, series: np.ndarray, origins: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        return self._rows[series]


def test_the_forecaster_explains_the_median_through_its_own_booster():
    booster, rows = _three_quantile_booster()
    forecaster = XGBoostForecaster(booster, feature_names=tuple(f"f{i}" for i in range(8)))
    picked = np.arange(len(rows))
    got = forecaster.contributions(
        _FixedRows(rows),  # type: ignore[arg-type]
        picked,
        np.zeros_like(picked),
        np.ones_like(picked),
    )
    full = booster.predict(xgb.DMatrix(rows.astype(np.float32)), pred_contribs=True)
    np.testing.assert_array_equal(got, full[:, 1, :-1].astype(np.float64))
    assert forecaster._median_booster is not None
    assert forecaster._median_booster is not forecaster.booster
