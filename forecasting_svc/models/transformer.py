"""Global transformer forecaster with a multi-horizon quantile head.

Input: the ``window`` days up to the origin, cut into 7-day patches ending on
the origin day (as in PatchTST, Nie et al., ICLR 2023): each patch becomes one
token from its days' features (score minus the anchor and whether it was
observed, sleep and step deviations from the window's own mean, medication
state, day-of-week, the anchor level), plus a learned position embedding and
an instrument embedding. Week-long patches make attention ~50x cheaper than
one token per day, which is what lets the model train on two CPU cores. A
pre-norm encoder reads the tokens; an attention-pooling layer (one learned
query) summarises them, and its weights over the weeks are what the service
reports as the transformer's feature importance ("days -6..0" is the week
ending on the last observed day). The head maps the summary and the last
token to (horizon, 3) outputs: the median, and the distances down to the 10 %
and up to the 90 % quantile through softplus, so quantiles never cross.

One model is trained across the cohort and all instruments (pinball loss,
AdamW, early stopping on validation patients).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from forecasting_svc.models.features import anchor_levels
from forecasting_svc.models.panel import MAX_DAYS_SINCE, Panel
from forecasting_svc.models.quantile_loss import BASE_LEVELS

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

INPUT_FEATURES: Final = (
    "score",
    "score_observed",
    "sleep_deviation",
    "sleep_observed",
    "steps_deviation",
    "steps_observed",
    "meds_active",
    "days_since_med_change",
    "days_since_med_start",
    "weekday_sin",
    "weekday_cos",
    "anchor",
)
N_INSTRUMENTS: Final = 4
PATCH_DAYS: Final = 7


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture and training settings (saved next to the weights)."""

    window: int = 84  # days; a multiple of PATCH_DAYS
    horizon: int = 90
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2
    feedforward: int = 64
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    steps_per_epoch: int = 60
    max_epochs: int = 12
    patience: int = 3
    seed: int = 0

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> TransformerConfig:
        if not isinstance(raw, dict):
            raise ValueError("transformer config: must be an object")
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in raw.items() if k in fields})


class ForecastTransformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        if config.window % PATCH_DAYS:
            raise ValueError(f"window: must be a multiple of {PATCH_DAYS} days")
        self.n_patches = config.window // PATCH_DAYS
        self.input = nn.Linear(len(INPUT_FEATURES) * PATCH_DAYS, d)
        self.position = nn.Parameter(torch.randn(self.n_patches, d) * 0.02)
        self.instrument = nn.Embedding(N_INSTRUMENTS, d)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.feedforward, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.pool_key = nn.Linear(d, d)
        self.pool_query = nn.Parameter(torch.randn(d) * 0.02)
        self.head = nn.Sequential(
            nn.Linear(2 * d, 4 * d), nn.GELU(), nn.Linear(4 * d, config.horizon * 3)
        )

    def forward(
        self, tokens: torch.Tensor, instrument: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, F) daily features, (B,) -> quantile deltas (B, H, 3), attention (B, L / 7)."""
        patches = tokens.reshape(tokens.shape[0], self.n_patches, -1)
        hidden = self.input(patches) + self.position + self.instrument(instrument)[:, None, :]
        hidden = self.norm(self.encoder(hidden))
        scores = self.pool_key(hidden) @ self.pool_query / math.sqrt(self.config.d_model)
        attention = torch.softmax(scores, dim=1)
        pooled = (attention[..., None] * hidden).sum(dim=1)
        out = self.head(torch.cat([pooled, hidden[:, -1]], dim=-1))
        out = out.view(-1, self.config.horizon, 3)
        median = out[..., 1]
        lower = median - nn.functional.softplus(out[..., 0])
        upper = median + nn.functional.softplus(out[..., 2])
        return torch.stack([lower, median, upper], dim=-1), attention


def window_inputs(
    panel: Panel, anchor: FloatArray, series: IntArray, origins: IntArray, window: int
) -> Float32Array:
    """(M, window, len(INPUT_FEATURES)) tokens for the days up to each origin."""
    days = origins[:, None] - window + 1 + np.arange(window)[None, :]
    inside = days >= 0
    clipped = np.maximum(days, 0)
    rows = series[:, None]
    level = anchor[series, origins][:, None]

    def gather(array: FloatArray) -> FloatArray:
        return np.where(inside, array[rows, clipped], np.nan)

    values = gather(panel.values)
    sleep = gather(panel.sleep)
    log_steps = np.log1p(gather(panel.steps))
    with np.errstate(invalid="ignore"):
        sleep_dev = (sleep - _row_mean(sleep)) / 2.0
        steps_dev = log_steps - _row_mean(log_steps)
    meds = np.where(inside[..., None], panel.meds[rows, clipped], 0.0)
    weekday = (panel.first_weekday[series][:, None] + clipped) % 7
    angle = 2.0 * math.pi * weekday / 7.0
    tokens = np.stack(
        [
            np.nan_to_num(values - level),
            np.isfinite(values),
            np.nan_to_num(sleep_dev),
            np.isfinite(sleep),
            np.nan_to_num(steps_dev),
            np.isfinite(log_steps),
            meds[..., 0] / 2.0,
            meds[..., 1] / MAX_DAYS_SINCE,
            meds[..., 2] / MAX_DAYS_SINCE,
            np.sin(angle),
            np.cos(angle),
            np.broadcast_to(level, values.shape),
        ],
        axis=-1,
    )
    return tokens.astype(np.float32)


def _row_mean(values: FloatArray) -> FloatArray:
    observed = np.isfinite(values)
    count = observed.sum(axis=1, keepdims=True)
    total = np.where(observed, values, 0.0).sum(axis=1, keepdims=True)
    result: FloatArray = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return result


def future_targets(
    panel: Panel, anchor: FloatArray, series: IntArray, origins: IntArray, horizon: int
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Targets minus the anchor (M, horizon) and whether each was observed."""
    days = origins[:, None] + 1 + np.arange(horizon)[None, :]
    inside = days < panel.n_days
    values = np.where(
        inside, panel.values[series[:, None], np.minimum(days, panel.n_days - 1)], np.nan
    )
    delta = values - anchor[series, origins][:, None]
    observed = np.isfinite(delta)
    return np.nan_to_num(delta), observed


def training_origins(panel: Panel, anchor: FloatArray, horizon: int) -> tuple[IntArray, IntArray]:
    """Every (series, origin) with an anchor and at least one observed target ahead."""
    observed = np.isfinite(panel.values).astype(np.int64)
    # ahead[t] = observed days in (t, t + horizon]
    cumulative = np.concatenate([np.zeros((panel.n_series, 1), np.int64), observed.cumsum(1)], 1)
    t = np.arange(panel.n_days)
    high = np.minimum(t + horizon, panel.n_days - 1)
    ahead = cumulative[:, high + 1] - cumulative[:, t + 1]
    valid = np.isfinite(anchor) & (ahead > 0)
    series, origins = np.nonzero(valid)
    return series.astype(np.int64), origins.astype(np.int64)


def _pinball_torch(
    quantiles: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    levels = torch.tensor(BASE_LEVELS, dtype=quantiles.dtype)
    diff = target[..., None] - quantiles
    loss = torch.maximum(levels * diff, (levels - 1.0) * diff).mean(dim=-1)
    return (loss * mask).sum() / mask.sum().clamp(min=1.0)


@dataclass
class TransformerFit:
    model: ForecastTransformer
    best_epoch: int
    best_val_loss: float
    epochs_run: int


def fit_transformer(
    panel: Panel,
    train_rows: IntArray,
    val_rows: IntArray,
    config: TransformerConfig,
    progress: Callable[[int, float, float], None] | None = None,
    *,
    val_origin_step: int = 5,
) -> TransformerFit:
    """Train on the series in ``train_rows``; early-stop on the series in ``val_rows``."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    anchor = anchor_levels(panel.values)
    series, origins = training_origins(panel, anchor, config.horizon)
    train_mask = np.isin(series, train_rows)
    train_series, train_origins = series[train_mask], origins[train_mask]
    val_mask = np.isin(series, val_rows) & (origins % val_origin_step == 0)
    val_series, val_origins = series[val_mask], origins[val_mask]
    if len(train_series) == 0 or len(val_series) == 0:
        raise ValueError("transformer: no training or validation windows")

    val_x = torch.from_numpy(window_inputs(panel, anchor, val_series, val_origins, config.window))
    val_y, val_m = future_targets(panel, anchor, val_series, val_origins, config.horizon)
    val_target = torch.from_numpy(val_y.astype(np.float32))
    val_mask_t = torch.from_numpy(val_m.astype(np.float32))
    val_instrument = torch.from_numpy(panel.instrument[val_series])

    model = ForecastTransformer(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = config.max_epochs * config.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=total_steps, pct_start=0.15
    )
    best_state = copy.deepcopy(model.state_dict())
    best_loss, best_epoch, stale, epoch = math.inf, 0, 0, 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        train_loss = 0.0
        for _ in range(config.steps_per_epoch):
            pick = rng.integers(0, len(train_series), config.batch_size)
            s, o = train_series[pick], train_origins[pick]
            x = torch.from_numpy(window_inputs(panel, anchor, s, o, config.window))
            y, m = future_targets(panel, anchor, s, o, config.horizon)
            quantiles, _ = model(x, torch.from_numpy(panel.instrument[s]))
            loss = _pinball_torch(
                quantiles,
                torch.from_numpy(y.astype(np.float32)),
                torch.from_numpy(m.astype(np.float32)),
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            train_loss += float(loss.detach()) / config.steps_per_epoch
        val_loss = _evaluate(model, val_x, val_instrument, val_target, val_mask_t)
        if progress is not None:
            progress(epoch, train_loss, val_loss)
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return TransformerFit(model, best_epoch, best_loss, epoch)


def _evaluate(
    model: ForecastTransformer,
    x: torch.Tensor,
    instrument: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    batch: int = 1024,
) -> float:
    model.eval()
    total, weight = 0.0, 0.0
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            part = slice(start, start + batch)
            quantiles, _ = model(x[part], instrument[part])
            count = float(mask[part].sum())
            total += float(_pinball_torch(quantiles, target[part], mask[part])) * count
            weight += count
    return total / max(weight, 1.0)


def predict_transformer(
    model: ForecastTransformer,
    panel: Panel,
    anchor: FloatArray,
    series: IntArray,
    origins: IntArray,
    batch: int = 512,
) -> tuple[FloatArray, FloatArray]:
    """Absolute 0..1 quantiles (M, horizon, 3) and pooling attention over patches (M, P)."""
    config = model.config
    model.eval()
    outputs: list[FloatArray] = []
    attentions: list[FloatArray] = []
    with torch.inference_mode():
        for start in range(0, len(series), batch):
            s, o = series[start : start + batch], origins[start : start + batch]
            x = torch.from_numpy(window_inputs(panel, anchor, s, o, config.window))
            quantiles, attention = model(x, torch.from_numpy(panel.instrument[s]))
            level = anchor[s, o][:, None, None]
            outputs.append(quantiles.numpy().astype(np.float64) + level)
            attentions.append(attention.numpy().astype(np.float64))
    if not outputs:
        empty = np.zeros((0, config.horizon, 3)), np.zeros((0, config.window // PATCH_DAYS))
        return empty
    return np.concatenate(outputs), np.concatenate(attentions)


def load_transformer(config: TransformerConfig, state: dict[str, object]) -> ForecastTransformer:
    model = ForecastTransformer(config)
    model.load_state_dict({k: v for k, v in state.items() if isinstance(v, torch.Tensor)})
    model.eval()
    return model
