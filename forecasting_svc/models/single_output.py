"""One output of a multi-quantile XGBoost booster, as a booster of its own.

The forecaster's booster predicts three quantiles with one tree per quantile
and round (XGBoost's ``one_output_per_tree``): the trees of one output never
touch the others. TreeSHAP (``pred_contribs``) explains every output, but the
service reports the drivers of the median only, so two thirds of its cost was
thrown away. Keeping only the median's trees (same order, same base score)
gives a single-output booster whose contributions are bitwise those of the
median output of the full one, at a third of the cost.
"""

from __future__ import annotations

import json
import logging

import xgboost as xgb

_LOGGER = logging.getLogger(__name__)


def single_output_booster(booster: xgb.Booster, target: int) -> xgb.Booster | None:
    """The booster of output ``target`` alone, or None when the model is not one tree per output."""
    model = json.loads(booster.save_raw("json"))
    try:
        learner = model["learner"]
        params = learner["learner_model_param"]
        trees_model = learner["gradient_booster"]["model"]
        outputs = int(params["num_target"])
        if outputs == 1 or int(trees_model["gbtree_model_param"]["num_parallel_tree"]) != 1:
            return None
        kept = [
            tree
            for tree, group in zip(trees_model["trees"], trees_model["tree_info"], strict=True)
            if group == target
        ]
        for index, tree in enumerate(kept):
            tree["id"] = index
        trees_model["trees"] = kept
        trees_model["tree_info"] = [0] * len(kept)
        trees_model["iteration_indptr"] = list(range(len(kept) + 1))
        trees_model["gbtree_model_param"]["num_trees"] = str(len(kept))
        base_scores = params["base_score"].strip("[]").split(",")
        if len(base_scores) != outputs:
            return None
        params["base_score"] = f"[{base_scores[target]}]"
        params["num_target"] = "1"
        alphas = learner["objective"].get("quantile_loss_param", {}).get("quantile_alpha")
        if alphas is not None:
            chosen = alphas.strip("[]").split(",")[target]
            learner["objective"]["quantile_loss_param"]["quantile_alpha"] = f"[{chosen}]"
        single = xgb.Booster()
        single.load_model(bytearray(json.dumps(model).encode()))
    except (KeyError, ValueError, IndexError, xgb.core.XGBoostError) as exc:
        _LOGGER.warning("explaining every output: could not split the booster (%s)", type(exc))
        return None
    return single
