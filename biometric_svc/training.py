"""Fitting the early-warning LSTM across a cohort, and writing its signed artifact.

Patients (not days) are split into training and validation sets, so the
validation metrics are for patients the model has never seen. Every day with
a full history is a window; windows are labelled 1 when a relapse onset
follows within 7 days. The loss up-weights the rare positive windows; the
epoch with the best validation AUROC is kept, and Platt scaling on the
validation windows turns its logits into probabilities.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from torch import nn

from biometric_svc.distribution_shift import (
    SUMMARY_NAMES,
    TrainingDistribution,
    window_summaries,
)
from biometric_svc.early_warning import (
    ARTIFACT_NAME,
    CONFIG_FILE,
    HORIZON_DAYS,
    WEIGHTS_FILE,
    Calibration,
    EarlyWarningModel,
    RiskThresholds,
)
from biometric_svc.features import (
    FEATURE_NAMES,
    HISTORY_DAYS,
    N_FEATURES,
    N_METRICS,
    WINDOW_DAYS,
    patient_windows,
    valid_ends,
)
from biometric_svc.labels import UNKNOWN_LABEL
from biometric_svc.models.lstm_attention import AttentionLSTM, AttentionLSTMConfig
from common.artifacts import ArtifactManifest, ArtifactStore

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Index of the symptom features in a window (see features.FEATURE_NAMES).
_SYMPTOM_Z: Final = 2 * N_METRICS
_SYMPTOM_MISSING: Final = 2 * N_METRICS + 1


@dataclass(frozen=True)
class PatientSeries:
    """One patient's daily arrays on a shared calendar."""

    biometrics: FloatArray  # (days, METRICS)
    indicators: FloatArray  # (days, INSTRUMENTS)
    labels: IntArray  # (days,) 1 / 0 / UNKNOWN_LABEL


@dataclass(frozen=True)
class TrainingOptions:
    epochs: int = 6
    hidden_size: int = 32
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.2
    #: Share of training windows whose symptom channel is hidden, so the model
    #: also works for callers that send no indicators.
    symptom_dropout: float = 0.25
    #: Weight of a positive window in the loss (positives are ~3-4 % of windows).
    positive_weight: float = 4.0
    #: Every n-th window of a patient is used; neighbouring windows overlap by 27 of 28 days.
    window_stride: int = 1
    seed: int = 0
    threads: int = 2


@dataclass
class TrainingResult:
    model: EarlyWarningModel
    metrics: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)


EpochCallback = Callable[[int, float, float], None]


@dataclass(frozen=True)
class WindowSet:
    windows: npt.NDArray[np.float32]  # (n, WINDOW_DAYS, N_FEATURES)
    labels: IntArray  # (n,)


def cohort_windows(patients: Sequence[PatientSeries], stride: int = 1) -> WindowSet:
    """Every labelled window of the given patients, and its label."""
    windows: list[npt.NDArray[np.float32]] = []
    labels: list[IntArray] = []
    for patient in patients:
        ends = valid_ends(patient.biometrics.shape[0])[::stride]
        ends = ends[patient.labels[ends] != UNKNOWN_LABEL]
        if ends.size == 0:
            continue
        windows.append(patient_windows(patient.biometrics, patient.indicators, ends))
        labels.append(patient.labels[ends])
    if not windows:
        return WindowSet(
            np.zeros((0, WINDOW_DAYS, N_FEATURES), dtype=np.float32), np.zeros(0, np.int64)
        )
    return WindowSet(np.concatenate(windows), np.concatenate(labels))


def cohort_summaries(patients: Sequence[PatientSeries], stride: int = 1) -> FloatArray:
    """Distribution summaries (distribution_shift.SUMMARY_NAMES) of every full window."""
    parts = []
    for patient in patients:
        ends = valid_ends(patient.biometrics.shape[0])[::stride]
        if ends.size:
            windows = patient_windows(patient.biometrics, patient.indicators, ends)
            parts.append(window_summaries(patient.biometrics, windows, ends))
    return np.concatenate(parts) if parts else np.zeros((0, len(SUMMARY_NAMES)))


def _split(count: int, fraction: float, seed: int) -> tuple[IntArray, IntArray]:
    order = np.random.default_rng(seed).permutation(count)
    n_validation = max(1, round(count * fraction))
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


def _auroc(labels: IntArray, scores: FloatArray) -> float:
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def _logits(network: AttentionLSTM, windows: npt.NDArray[np.float32]) -> FloatArray:
    network.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, windows.shape[0], 4096):
            batch = torch.from_numpy(windows[start : start + 4096])
            parts.append(network(batch).logits.double().numpy())
    return np.concatenate(parts) if parts else np.zeros(0)


def _platt(logits: FloatArray, labels: IntArray) -> Calibration:
    if labels.min() == labels.max():
        return Calibration(slope=1.0, intercept=0.0)
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logits[:, None], labels)
    return Calibration(slope=float(fit.coef_[0, 0]), intercept=float(fit.intercept_[0]))


def train_early_warning(
    patients: Sequence[PatientSeries],
    options: TrainingOptions = TrainingOptions(),
    on_epoch: EpochCallback | None = None,
) -> TrainingResult:
    """Fit, select, calibrate; raise ValueError when the data cannot train a model."""
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    if len(patients) < 4:
        raise ValueError("patients: needs at least 4 patients (training and validation)")
    train_idx, val_idx = _split(len(patients), options.validation_fraction, options.seed)
    train_set = cohort_windows([patients[i] for i in train_idx], options.window_stride)
    val_set = cohort_windows([patients[i] for i in val_idx])
    train_x, train_y = train_set.windows, train_set.labels
    val_x, val_y = val_set.windows, val_set.labels
    if train_y.size == 0 or train_y.sum() == 0:
        raise ValueError(
            f"labels: no training window is followed by an onset; patients need more than "
            f"{HISTORY_DAYS + HORIZON_DAYS} days and at least one deterioration"
        )
    if val_y.size == 0:
        raise ValueError("validation: no validation patient has a full window; add patients")

    network = AttentionLSTM(
        AttentionLSTMConfig(
            n_metrics=N_METRICS, n_features=N_FEATURES, hidden_size=options.hidden_size
        )
    )
    optimizer = torch.optim.Adam(
        network.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay
    )
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(options.positive_weight))
    features = torch.from_numpy(train_x)
    targets = torch.from_numpy(train_y.astype(np.float32))
    best_auroc, best_epoch = -np.inf, 0
    best_state = copy.deepcopy(network.state_dict())
    for epoch in range(1, options.epochs + 1):
        network.train()
        order = torch.from_numpy(rng.permutation(len(targets)))
        total = 0.0
        for start in range(0, len(order), options.batch_size):
            index = order[start : start + options.batch_size]
            batch = features[index].clone()
            hide = torch.from_numpy(rng.random(len(index)) < options.symptom_dropout)
            batch[hide, :, _SYMPTOM_Z] = 0.0
            batch[hide, :, _SYMPTOM_MISSING] = 1.0
            optimizer.zero_grad()
            loss = loss_fn(network(batch).logits, targets[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        val_auroc = _auroc(val_y, _logits(network, val_x))
        if on_epoch is not None:
            on_epoch(epoch, total / len(targets), val_auroc)
        # Without validation positives there is nothing to select on: keep the last epoch.
        if np.isnan(val_auroc) or val_auroc > best_auroc:
            best_auroc, best_epoch = val_auroc, epoch
            best_state = copy.deepcopy(network.state_dict())
    network.load_state_dict(best_state)

    val_logits = _logits(network, val_x)
    calibration = _platt(val_logits, val_y)
    probabilities = calibration.probability(val_logits)
    base_rate = float(train_y.mean())
    thresholds = RiskThresholds.from_base_rate(base_rate)
    metrics = {
        "val_auroc": _auroc(val_y, probabilities),
        "val_auprc": float(average_precision_score(val_y, probabilities))
        if val_y.max() > 0
        else float("nan"),
        "val_brier": float(brier_score_loss(val_y, probabilities)),
        "val_prevalence": float(val_y.mean()),
        "val_windows": float(val_y.size),
        "train_windows": float(train_y.size),
        "train_prevalence": base_rate,
        "best_epoch": float(best_epoch),
        "train_seconds": time.perf_counter() - started,
    }
    metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
    params: dict[str, object] = {
        "epochs": options.epochs,
        "hidden_size": options.hidden_size,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "positive_weight": options.positive_weight,
        "symptom_dropout": options.symptom_dropout,
        "window_stride": options.window_stride,
        "window_days": WINDOW_DAYS,
        "history_days": HISTORY_DAYS,
        "horizon_days": HORIZON_DAYS,
        "seed": options.seed,
        "patients_train": len(train_idx),
        "patients_validation": len(val_idx),
    }
    # The range comes from the training patients; the flag threshold from the
    # validation patients, whose windows the range has not seen.
    distribution = TrainingDistribution.fit(
        cohort_summaries([patients[i] for i in train_idx], stride=max(options.window_stride, 3)),
        cohort_summaries([patients[i] for i in val_idx]),
    )
    metrics["distribution_threshold"] = distribution.threshold
    model = EarlyWarningModel(
        network, calibration, thresholds, base_rate, distribution=distribution
    )
    return TrainingResult(model=model, metrics=metrics, params=params)


def save_early_warning(
    store: ArtifactStore,
    result: TrainingResult,
    training_data_sha256: str,
    extra_params: dict[str, object] | None = None,
) -> ArtifactManifest:
    model = result.model
    config = {
        "network": model.network.config.to_json(),
        "feature_names": list(FEATURE_NAMES),
        "calibration": {
            "slope": model.calibration.slope,
            "intercept": model.calibration.intercept,
        },
        "thresholds": {
            "elevated": model.thresholds.elevated,
            "high": model.thresholds.high,
            "critical": model.thresholds.critical,
        },
        "base_rate": model.base_rate,
        "horizon_days": HORIZON_DAYS,
    }
    if model.distribution is not None:
        config["training_distribution"] = model.distribution.to_json()
    with store.writer(ARTIFACT_NAME) as writer:
        writer.save_torch_state_dict(WEIGHTS_FILE, model.network.state_dict())
        writer.save_json(CONFIG_FILE, config)
        return writer.commit(
            metrics=result.metrics,
            training_data_sha256=training_data_sha256,
            params={**result.params, **(extra_params or {})},
        )
