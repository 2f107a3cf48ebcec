"""LSTM with feature and temporal attention for the 7-day deterioration risk.

Two attentions make the output explainable as "which metric on which day":

* feature attention (after the input attention of DA-RNN; Qin et al., IJCAI
  2017): per day, a softmax over the metrics computed from that day's
  inputs re-weights the metric z-scores before they enter the LSTM;
* temporal attention (Bahdanau et al., ICLR 2015): a softmax over the days
  pools the LSTM outputs into one context vector.

The classifier reads the context and the last hidden state. The share of
attention on metric f on day t is ``temporal[t] * feature[t, f]``; these
shares sum to 1 over the window and are reported as the warning's drivers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AttentionLSTMConfig:
    n_metrics: int
    n_features: int
    hidden_size: int = 32
    dropout: float = 0.2

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> AttentionLSTMConfig:
        if not isinstance(raw, dict):
            raise ValueError("config: must be an object")
        return cls(
            n_metrics=int(raw["n_metrics"]),
            n_features=int(raw["n_features"]),
            hidden_size=int(raw["hidden_size"]),
            dropout=float(raw["dropout"]),
        )


@dataclass(frozen=True)
class AttentionOutput:
    logits: torch.Tensor  # (batch,)
    temporal: torch.Tensor  # (batch, days), sums to 1 over days
    feature: torch.Tensor  # (batch, days, n_metrics), sums to 1 over metrics


class AttentionLSTM(nn.Module):
    def __init__(self, config: AttentionLSTMConfig) -> None:
        super().__init__()
        if not 0 < config.n_metrics <= config.n_features:
            raise ValueError("n_metrics: must be within 1..n_features")
        self.config = config
        self.feature_scorer = nn.Linear(config.n_features, config.n_metrics)
        self.lstm = nn.LSTM(config.n_features, config.hidden_size, batch_first=True)
        self.temporal_scorer = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.Tanh(),
            nn.Linear(config.hidden_size, 1, bias=False),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * config.hidden_size, config.hidden_size),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_size, 1),
        )

    def forward(self, windows: torch.Tensor) -> AttentionOutput:
        """``windows``: (batch, days, n_features); the first n_metrics features are metrics."""
        n_metrics = self.config.n_metrics
        feature = torch.softmax(self.feature_scorer(windows), dim=-1)
        # Scaled by n_metrics so that uniform attention leaves the inputs unchanged.
        gated = windows[..., :n_metrics] * feature * n_metrics
        inputs = torch.cat([gated, windows[..., n_metrics:]], dim=-1)
        outputs, _ = self.lstm(inputs)
        temporal = torch.softmax(self.temporal_scorer(outputs).squeeze(-1), dim=1)
        context = torch.einsum("bd,bdh->bh", temporal, outputs)
        summary = torch.cat([context, outputs[:, -1]], dim=-1)
        return AttentionOutput(
            logits=self.head(summary).squeeze(-1),
            temporal=temporal,
            feature=feature,
        )
