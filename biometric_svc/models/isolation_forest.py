"""Per-patient multivariate outlier scores from an isolation forest.

The forest is fitted on the patient's own days, each described by its
robust z-scores against the patient's baseline (so the units are comparable
across metrics and patients), and scores every day by how easily it is
isolated (Liu, Ting & Zhou, ICDM 2008). It catches days on which several
metrics are moderately off together, which no single z-score flags. It is
refitted for each request and needs no training data from anyone else.

The algorithm is Liu et al.'s, as scikit-learn implements it: each of
``N_TREES`` trees is grown on ``min(256, days)`` days drawn without
replacement, down to depth ceil(log2(sample size)); a node splits on a
feature drawn at random among those not constant in it, at a threshold drawn
uniformly between the node's minimum and maximum; a day's path length is the
depth of the leaf it reaches plus c(days the leaf holds), c(m) being the
average path length of an unsuccessful binary-search-tree lookup; the score is
2^(-mean path / c(sample size)). Here all trees grow together, one level at a
time, as array operations: scikit-learn builds them one by one and spent
~350 ms of Python overhead per request on 100 trees of a few hundred days.

Each level costs a few passes over the (tree, day) pairs still open, never a
sort: whether a node is a leaf comes from the ids of its distinct days, and
only the chosen feature's range is computed (see ``_chosen_features``). The
random stream and every comparison are those of the straightforward
per-feature version, so the scores are bitwise the same.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_TREES: Final = 100
MAX_SAMPLES: Final = 256
#: Fewest days a forest is fitted on; fewer give unstable path lengths.
MIN_DAYS: Final = 28
_Z_CLIP: Final = 10.0
_EULER_GAMMA: Final = 0.5772156649015329


def average_path_length(sizes: npt.ArrayLike) -> FloatArray:
    """c(m): mean path length of an unsuccessful search in a BST of m points (Liu et al. 2008)."""
    m = np.asarray(sizes, dtype=np.float64)
    harmonic = np.log(np.maximum(m - 1.0, 1.0)) + _EULER_GAMMA
    result: FloatArray = np.where(
        m > 2.0, 2.0 * harmonic - 2.0 * (m - 1.0) / np.maximum(m, 1.0), np.where(m == 2.0, 1.0, 0.0)
    )
    return result


def _row_ids(x: FloatArray) -> IntArray:
    """One id per distinct row of ``x``: two days with equal ids are equal on every feature."""
    # + 0.0 turns -0.0 into 0.0, so rows compare as floats do, not as bytes.
    _, ids = np.unique(x + 0.0, axis=0, return_inverse=True)
    return np.asarray(ids, dtype=np.int64).ravel()


class _Items:
    """(tree, day) pairs still open in their trees.

    ``key`` is the node an item is in, tree * 2**depth + node, so a split
    doubles it and adds the side (0 left, 1 right); ``day`` is the item's row
    of x and ``cell`` the offset of that row in x flattened.
    """

    def __init__(self, trees: IntArray, days: IntArray, n_features: int) -> None:
        self.key = trees.ravel().copy()
        self.day = days.ravel().copy()
        self.cell = self.day * n_features

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self.key, self.day, self.cell = self.key[mask], self.day[mask], self.cell[mask]


def _chosen_features(
    flat_x: FloatArray, grown: _Items, node_of_item: IntArray, draws: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Per open node: the feature with the highest draw among those that vary in the node,
    and that feature's minimum and maximum over the node's sampled days.

    Equal to the argmax of the draws over the varying features (Liu et al.'s
    random feature among non-constant ones), found without the range of every
    feature: the best-drawn feature is tried first, and only the nodes where
    it is constant try their next one. Every open node has a varying feature,
    so each round settles at least one feature per node still pending.
    """
    n_open = draws.shape[0]
    remaining = draws.copy()
    chosen = np.zeros(n_open, dtype=np.int64)
    low, high = np.empty(n_open), np.empty(n_open)
    pending = np.ones(n_open, dtype=np.bool_)
    items = np.arange(node_of_item.size)
    while items.size:
        candidate = np.argmax(remaining, axis=1)
        item_node = node_of_item[items]
        value = flat_x[grown.cell[items] + candidate[item_node]]
        node_low = np.full(n_open, np.inf)
        node_high = np.full(n_open, -np.inf)
        np.minimum.at(node_low, item_node, value)
        np.maximum.at(node_high, item_node, value)
        settled = pending & (node_high > node_low)
        chosen[settled] = candidate[settled]
        low[settled], high[settled] = node_low[settled], node_high[settled]
        pending &= ~settled
        tried = np.flatnonzero(pending)
        remaining[tried, candidate[tried]] = -1.0
        items = items[pending[item_node]]
    return chosen, low, high


def isolation_scores(robust_z: FloatArray, seed: int = 0) -> FloatArray:
    """Anomaly score s in (0, 1] per row (Liu et al.: s > 0.5 leans anomalous, ~0.5 normal).

    ``robust_z`` is (days, metrics) without NaN: the caller sets a metric that
    is missing on a day to 0 (its baseline), so missing data never looks anomalous.
    """
    if robust_z.shape[0] < MIN_DAYS:
        raise ValueError(f"robust_z: needs at least {MIN_DAYS} days")
    x = np.clip(np.asarray(robust_z, dtype=np.float64), -_Z_CLIP, _Z_CLIP)
    n_days, n_features = x.shape
    sample_size = min(MAX_SAMPLES, n_days)
    max_depth = math.ceil(math.log2(sample_size))
    rng = np.random.default_rng(seed)
    row_id = _row_ids(x)
    flat_x = x.ravel()
    path_length = average_path_length(np.arange(sample_size + 1))  # c(m) by the m a leaf holds

    # Each tree's days in a random order: the first sample_size are its sample, which
    # grows the tree; the others (when there are more days) are only routed through it.
    # Items leave when their node is a leaf: a node's items finish together, so the
    # nodes left are whole.
    shuffled = np.argsort(rng.random((N_TREES, n_days)), axis=1)
    trees = np.repeat(np.arange(N_TREES), n_days).reshape(N_TREES, n_days)
    grown = _Items(trees[:, :sample_size], shuffled[:, :sample_size], n_features)
    routed = _Items(trees[:, sample_size:], shuffled[:, sample_size:], n_features)
    path = np.zeros(N_TREES * n_days)

    for depth in range(max_depth + 1):
        n_nodes = N_TREES * 2**depth
        size = np.bincount(grown.key, minlength=n_nodes)
        # A node is a leaf when it holds at most one day, when its days are all equal
        # (no feature varies) or at the depth limit; a node without sampled days too.
        rows = row_id[grown.day]
        first_row = np.full(n_nodes, n_days)
        last_row = np.full(n_nodes, -1)
        np.minimum.at(first_row, grown.key, rows)
        np.maximum.at(last_row, grown.key, rows)
        is_leaf = (size <= 1) | (first_row == last_row) | (depth == max_depth)
        for items in (grown, routed):
            finished = is_leaf[items.key]
            if finished.any():
                done = items.key[finished]
                flat = (done >> depth) * n_days + items.day[finished]
                path[flat] = depth + path_length[size[done]]
                items.keep(~finished)
        if grown.key.size == 0 and routed.key.size == 0:
            break

        # A random feature among those that vary in the node, a uniform threshold. The draws
        # cover every node, empty ones and leaves too, so the random stream does not depend
        # on occupancy; only the open nodes' draws are used.
        draws = rng.random((n_nodes, n_features))
        uniforms = rng.random(n_nodes)
        nodes = np.flatnonzero(~is_leaf)
        position = np.zeros(n_nodes, dtype=np.int64)
        position[nodes] = np.arange(nodes.size)
        feature, low, high = _chosen_features(flat_x, grown, position[grown.key], draws[nodes])
        threshold = low + uniforms[nodes] * (high - low)
        for items in (grown, routed):
            at = position[items.key]
            right = flat_x[items.cell + feature[at]] >= threshold[at]
            items.key = 2 * items.key + right

    scores: FloatArray = 2.0 ** (
        -path.reshape(N_TREES, n_days).mean(axis=0) / average_path_length(sample_size)
    )
    return scores
