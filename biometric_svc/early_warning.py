"""The early warning: a trained LSTM's 7-day deterioration risk, its level and drivers.

The artifact ``biometric.early_warning_lstm`` holds the weights (``weights.pt``)
and ``config.json``: the architecture, the feature names it was trained on,
Platt calibration of its logits, the cohort base rate and the level thresholds.

Levels are multiples of the training cohort's base rate of an onset within 7
days (a relative risk, which stays meaningful when the model is retrained on a
cohort with a different relapse rate): ELEVATED from 2x, HIGH from 4x,
CRITICAL from 8x, each capped so that CRITICAL is reachable.

The model sees the metrics it was trained on, those the synthetic worlds
generate (``common.synthetic.METRICS``). Heart rate at any time of day and
HRV as SDNN are not among them: no world generates them, so a model given
them would meet inputs it never learnt. They are left out of its input, the
warning lists them in ``unused_metrics`` and says so in its detail, and the
analyses without a trained model (correlations, anomalies, the plan) use them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import torch

from biometric_svc.aggregation import DailySeries
from biometric_svc.distribution_shift import TrainingDistribution, window_summaries
from biometric_svc.domain import (
    METRIC_LABELS,
    EarlyWarning,
    KeyIndicator,
    RiskLevel,
    WarningDriver,
)
from biometric_svc.features import (
    BASELINE_DAYS,
    FEATURE_NAMES,
    HISTORY_DAYS,
    N_METRICS,
    RECENT_DAYS,
    patient_windows,
)
from biometric_svc.models.lstm_attention import AttentionLSTM, AttentionLSTMConfig
from common import wording
from common.artifacts import ArtifactError, ArtifactManifest, LoadedArtifact
from common.biometric_metrics import METRICS as ACCEPTED_METRICS
from common.synthetic import METRICS
from common.tracing import model_span

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

ARTIFACT_NAME: Final = "biometric.early_warning_lstm"
TRAIN_COMMAND: Final = "python -m biometric_svc.train"
WEIGHTS_FILE: Final = "weights.pt"
CONFIG_FILE: Final = "config.json"
HORIZON_DAYS: Final = 7
#: Days with any biometric the last HISTORY_DAYS need, and of those the last RECENT_DAYS.
MIN_HISTORY_DAYS_WITH_DATA: Final = 28
MIN_RECENT_DAYS_WITH_DATA: Final = 7
MAX_DRIVERS: Final = 5
#: Risk ratios (probability / base rate) where the levels start.
LEVEL_RATIOS: Final = (("elevated", 2.0), ("high", 4.0), ("critical", 8.0))
#: Columns of the model's metrics (METRICS) in the service's daily arrays (ACCEPTED_METRICS).
MODEL_COLUMNS: Final = np.array([ACCEPTED_METRICS.index(m) for m in METRICS], dtype=np.int64)
#: Accepted metrics the model takes no input from, by their daily-array column.
_NOT_MODELLED: Final = tuple(
    (j, name) for j, name in enumerate(ACCEPTED_METRICS) if name not in METRICS
)
_MODEL_INPUTS: Final = ", ".join(METRIC_LABELS[m] for m in METRICS)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the model's logits: p = sigmoid(slope * logit + intercept)."""

    slope: float
    intercept: float

    def probability(self, logits: FloatArray) -> FloatArray:
        result: FloatArray = 1.0 / (1.0 + np.exp(-(self.slope * logits + self.intercept)))
        return result


@dataclass(frozen=True)
class RiskThresholds:
    elevated: float
    high: float
    critical: float

    @classmethod
    def from_base_rate(cls, base_rate: float) -> RiskThresholds:
        ratios = dict(LEVEL_RATIOS)
        return cls(
            elevated=min(ratios["elevated"] * base_rate, 0.3),
            high=min(ratios["high"] * base_rate, 0.5),
            critical=min(ratios["critical"] * base_rate, 0.7),
        )

    def level(self, probability: float) -> RiskLevel:
        if probability >= self.critical:
            return RiskLevel.CRITICAL
        if probability >= self.high:
            return RiskLevel.HIGH
        if probability >= self.elevated:
            return RiskLevel.ELEVATED
        return RiskLevel.LOW


@dataclass(frozen=True)
class Scored:
    probability: FloatArray  # (batch,)
    temporal: FloatArray  # (batch, days)
    feature: FloatArray  # (batch, days, metrics)


def unavailable_warning(reason: str = "not trained") -> EarlyWarning:
    return EarlyWarning(
        level=None,
        probability=0.0,
        expected_lead_days=0,
        drivers=(),
        insufficient_data=False,
        detail=(
            f"early warning unavailable: model {ARTIFACT_NAME} is {reason}; "
            f"train it with `{TRAIN_COMMAND}`"
        ),
    )


def insufficient_warning(detail: str, unused_metrics: tuple[str, ...] = ()) -> EarlyWarning:
    return EarlyWarning(
        level=None,
        probability=0.0,
        expected_lead_days=0,
        drivers=(),
        insufficient_data=True,
        detail=detail,
        unused_metrics=unused_metrics,
    )


def unused_metrics(biometrics: FloatArray) -> tuple[str, ...]:
    """The supplied metrics (any day with data) that the model takes no input from."""
    return tuple(name for j, name in _NOT_MODELLED if np.isfinite(biometrics[:, j]).any())


def _unused_note(unused: tuple[str, ...]) -> str:
    if not unused:
        return ""
    names = " and ".join(METRIC_LABELS[m] for m in unused)
    verb = "is" if len(unused) == 1 else "are"
    return (
        f"; {names} {verb} not among the model's inputs ({_MODEL_INPUTS}), as no training "
        "world has them, and count in correlations, anomalies and the plan only"
    )


def expected_lead_days(key_indicators: tuple[KeyIndicator, ...]) -> int:
    """Strength-weighted lead of the leading key indicators, within 1..HORIZON_DAYS; 0 if none."""
    leading = [k for k in key_indicators if k.lead_days >= 1]
    if not leading:
        return 0
    weights = np.array([k.strength for k in leading])
    leads = np.array([k.lead_days for k in leading], dtype=np.float64)
    mean = float(np.sum(weights * leads) / np.sum(weights))
    return int(min(max(round(mean), 1), HORIZON_DAYS))


class EarlyWarningModel:
    """A loaded, calibrated early-warning model."""

    def __init__(
        self,
        network: AttentionLSTM,
        calibration: Calibration,
        thresholds: RiskThresholds,
        base_rate: float,
        manifest: ArtifactManifest | None = None,
        distribution: TrainingDistribution | None = None,
    ) -> None:
        self.network = network.eval()
        self.calibration = calibration
        self.thresholds = thresholds
        self.base_rate = base_rate
        self.manifest = manifest
        #: None for artifacts trained before the check existed: then nothing is flagged.
        self.distribution = distribution

    @classmethod
    def from_artifact(cls, artifact: LoadedArtifact) -> EarlyWarningModel:
        raw = artifact.load_json(CONFIG_FILE)
        if not isinstance(raw, dict):
            raise ArtifactError(f"{ARTIFACT_NAME}: {CONFIG_FILE} is not an object")
        try:
            if tuple(raw["feature_names"]) != FEATURE_NAMES:
                raise ArtifactError(
                    f"{ARTIFACT_NAME}: trained on other input features; retrain with "
                    f"`{TRAIN_COMMAND}`"
                )
            config = AttentionLSTMConfig.from_json(raw["network"])
            calibration = Calibration(
                slope=float(raw["calibration"]["slope"]),
                intercept=float(raw["calibration"]["intercept"]),
            )
            thresholds = RiskThresholds(**{k: float(v) for k, v in raw["thresholds"].items()})
            base_rate = float(raw["base_rate"])
            distribution = (
                TrainingDistribution.from_json(raw["training_distribution"])
                if "training_distribution" in raw
                else None
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{ARTIFACT_NAME}: {CONFIG_FILE} is malformed") from exc
        network = AttentionLSTM(config)
        state = artifact.load_torch_state_dict(WEIGHTS_FILE)
        try:
            network.load_state_dict(state)  # type: ignore[arg-type]
        except RuntimeError as exc:
            raise ArtifactError(f"{ARTIFACT_NAME}: weights do not fit the architecture") from exc
        return cls(network, calibration, thresholds, base_rate, artifact.manifest, distribution)

    def score(self, windows: npt.NDArray[np.float32], batch_size: int = 2048) -> Scored:
        """Calibrated probabilities and attention for (batch, days, features) windows."""
        logits, temporal, feature = [], [], []
        with torch.inference_mode():
            for start in range(0, windows.shape[0], batch_size):
                out = self.network(torch.from_numpy(windows[start : start + batch_size]))
                logits.append(out.logits.double().numpy())
                temporal.append(out.temporal.double().numpy())
                feature.append(out.feature.double().numpy())
        if not logits:
            empty = np.zeros((0,))
            return Scored(empty, np.zeros((0, 0)), np.zeros((0, 0, N_METRICS)))
        return Scored(
            probability=self.calibration.probability(np.concatenate(logits)),
            temporal=np.concatenate(temporal),
            feature=np.concatenate(feature),
        )

    def warn(self, daily: DailySeries, key_indicators: tuple[KeyIndicator, ...]) -> EarlyWarning:
        recent = daily.tail(HISTORY_DAYS)
        unused = unused_metrics(recent.biometrics)
        note = _unused_note(unused)
        model_bio = recent.biometrics[:, MODEL_COLUMNS]
        has_data = np.asarray(np.isfinite(model_bio).any(axis=1), dtype=np.bool_)
        if (
            has_data.sum() < MIN_HISTORY_DAYS_WITH_DATA
            or has_data[-RECENT_DAYS:].sum() < MIN_RECENT_DAYS_WITH_DATA
        ):
            return insufficient_warning(
                f"needs biometrics on at least {MIN_HISTORY_DAYS_WITH_DATA} of the last "
                f"{HISTORY_DAYS} days, {MIN_RECENT_DAYS_WITH_DATA} of them in the last "
                f"{RECENT_DAYS}{note}",
                unused,
            )
        bio = _front_pad(model_bio, HISTORY_DAYS)
        ind = _front_pad(recent.indicators, HISTORY_DAYS)
        windows = patient_windows(bio, ind, np.array([HISTORY_DAYS - 1]))
        if windows[0, :, N_METRICS : 2 * N_METRICS].all():
            return insufficient_warning(
                f"no metric has the {BASELINE_DAYS}-day personal baseline the model compares "
                f"recent days against{note}",
                unused,
            )
        version = self.manifest.version if self.manifest else ""
        with model_span(ARTIFACT_NAME, version, batch_size=1):
            scored = self.score(windows)
        probability = float(scored.probability[0])
        level = self.thresholds.level(probability)
        lead = expected_lead_days(key_indicators)
        last = recent.dates[-1]
        drivers = self._drivers(bio, dt.date(last.year, last.month, last.day), windows[0], scored)
        ratio = probability / self.base_rate if self.base_rate > 0 else math.nan
        detail = (
            f"{wording.percent(probability)} probability of a relapse onset within "
            f"{HORIZON_DAYS} days, "
            f"{ratio:.1f}x the training cohort's base rate of {self.base_rate:.1%}"
        )
        if lead:
            detail += f"; the patient's leading biometrics point to ~{lead} days of warning"
        detail += note
        shift = None
        if self.distribution is not None:
            summary = window_summaries(bio, windows, np.array([HISTORY_DAYS - 1]))
            shift = self.distribution.check(summary[0])
        return EarlyWarning(
            level=level,
            probability=probability,
            expected_lead_days=lead,
            drivers=drivers,
            insufficient_data=False,
            detail=detail,
            out_of_distribution=shift is not None and shift.out_of_distribution,
            out_of_distribution_reason=shift.reason if shift is not None else "",
            training_distance=shift.distance if shift is not None else 0.0,
            unused_metrics=unused,
        )

    def _drivers(
        self,
        bio: FloatArray,
        last_day: dt.date,
        window: npt.NDArray[np.float32],
        scored: Scored,
    ) -> tuple[WarningDriver, ...]:
        weights = scored.temporal[0][:, None] * scored.feature[0]  # (days, metrics)
        weights = np.where(window[:, N_METRICS : 2 * N_METRICS] > 0.5, 0.0, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # metric without a baseline -> NaN
            baseline = np.nanmedian(bio[:BASELINE_DAYS], axis=0)
        window_values = bio[-window.shape[0] :]
        drivers: list[WarningDriver] = []
        for flat in np.argsort(weights, axis=None)[::-1][:MAX_DRIVERS].tolist():
            day, j = divmod(flat, N_METRICS)
            if weights[day, j] <= 0.0:
                break
            value, reference = window_values[day, j], baseline[j]
            date = last_day - dt.timedelta(days=window.shape[0] - 1 - day)
            drivers.append(
                WarningDriver(
                    metric=METRICS[j],
                    date=date,
                    weight=float(weights[day, j]),
                    description=_describe(METRICS[j], float(value), float(reference)),
                )
            )
        return tuple(drivers)


def _describe(metric: str, value: float, baseline: float) -> str:
    label = METRIC_LABELS[metric]
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline == 0.0:
        return f"{label} compared with the patient's baseline"
    change = (value - baseline) / abs(baseline) * 100.0
    if abs(change) < 0.5:
        return f"{label} at baseline"
    side = "above" if change > 0 else "below"
    return f"{label} {abs(change):.0f}% {side} baseline"


def _front_pad(values: FloatArray, days: int) -> FloatArray:
    missing = days - values.shape[0]
    if missing <= 0:
        return values
    return np.concatenate([np.full((missing, values.shape[1]), np.nan), values])
