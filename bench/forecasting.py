"""Forecasting benchmark: accuracy against baselines, calibration, and latency over gRPC.

`python -m bench forecasting` (part of `make bench`) or `python -m bench.forecasting`:

1. Generates the default training cohort (seed 0, 300 patients x 180 days),
   holds out 20 % of its patients, and trains the production pipeline
   (`forecasting_svc.fitting`, default settings) on the rest.
2. Scores transformer, XGBoost and ensemble against a weekly seasonal-naive
   forecast and statsforecast's AutoETS (season 7) on the held-out patients and
   on a cohort with another seed and shifted dynamics, at rolling origins
   (every 14 days from day 89, staggered per series), horizons 1..30:
   MAE, MASE (scale: in-sample weekly seasonal-naive MAE of the history),
   scaled pinball loss (10/50/90 %), coverage of the 80 % and 95 % intervals.
3. Starts `python -m forecasting_svc` as a real server (mTLS) on the trained
   models and measures ForecastSymptoms latency (180 days of history, 30-day
   horizon) with one caller and with 16 concurrent callers.
4. Writes docs/benchmarks/forecasting.md.

Nothing is tuned on the test cohorts: the models see neither, and every
setting is the pipeline's default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

import forecasting_svc  # noqa: F401  (sets OMP_WAIT_POLICY before torch/XGBoost load)
from bench.harness import TABLE_HEADER, LoadResult, machine_line, measure
from common.artifacts import ArtifactStore
from common.synthetic import Cohort, CohortConfig, generate_cohort

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BUCKETS = ((1, 7), (8, 14), (15, 30))
HORIZON = 30
FIRST_ORIGIN = 89
ORIGIN_STEP = 14
MODELS = ("transformer", "xgboost", "ensemble")
BASELINES = ("seasonal_naive", "auto_ets")
METHODS = (*MODELS, *BASELINES)
PINBALL_LEVELS = (0.1, 0.5, 0.9)
DEFAULT_OUT = Path("docs/benchmarks/forecasting.md")
COMMAND = "python -m bench forecasting   (or: make bench)"


@dataclass
class MethodForecast:
    """Forecasts of every evaluation unit (series x origin), horizons 1..30, score points."""

    median: FloatArray  # (U, H)
    quantiles: FloatArray | None = None  # (U, H, 3) at PINBALL_LEVELS
    interval80: FloatArray | None = None  # (U, H, 2)
    interval95: FloatArray | None = None  # (U, H, 2)


@dataclass
class Units:
    series: IntArray
    origins: IntArray
    instrument: IntArray
    patient: IntArray  # (U,) patient index, for the patient-level bootstrap
    target: FloatArray  # (U, H), NaN where not observed
    scale: FloatArray  # (U,) in-sample weekly seasonal-naive MAE
    history: list[FloatArray] = field(default_factory=list)  # score points, days 0..origin


@dataclass
class CohortResult:
    name: str
    units: int
    series: int
    metrics: dict[str, dict[str, float]]  # method -> metric name -> value


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.forecasting")
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--shifted-patients", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-calls", type=int, default=60)
    parser.add_argument("--load-calls", type=int, default=320)
    parser.add_argument(
        "--quick", action="store_true", help="tiny models and cohorts: a smoke run, not a result"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT}")
    return parser.parse_args(list(argv))


# --- training ---------------------------------------------------------------------------


def _split_test_patients(cohort: Cohort, fraction: float) -> tuple[list[str], list[str]]:
    patients = sorted(cohort.patients["patient_id"].astype(str))
    order = np.random.default_rng(20_261_128).permutation(len(patients))
    n_test = max(1, round(len(patients) * fraction))
    test = sorted(patients[i] for i in order[:n_test])
    train = sorted(patients[i] for i in order[n_test:])
    return train, test


def _subset(frame: pd.DataFrame, patients: Sequence[str]) -> pd.DataFrame:
    return frame[frame["patient_id"].isin(list(patients))].reset_index(drop=True)


def _train(
    cohort: Cohort, train_patients: Sequence[str], args: argparse.Namespace, store_dir: Path
):
    import torch

    from common.datasets import sha256_of_frames
    from forecasting_svc.fitting import FitConfig, SilentProgress, fit_models, write_artifacts
    from forecasting_svc.models.panel import panel_from_frames
    from forecasting_svc.models.transformer import TransformerConfig
    from forecasting_svc.models.xgboost_model import XGBoostConfig

    torch.set_num_threads(args.threads)
    frames = [
        _subset(cohort.symptoms, train_patients),
        _subset(cohort.biometrics, train_patients),
        _subset(cohort.medications, train_patients),
    ]
    panel, _ = panel_from_frames(*frames)
    if args.quick:
        config = FitConfig(
            transformer=TransformerConfig(
                window=28, d_model=16, n_heads=2, n_layers=1, steps_per_epoch=10, max_epochs=2
            ),
            xgboost=XGBoostConfig(trials=2, max_rounds=40, threads=args.threads),
        )
    else:
        config = FitConfig(xgboost=XGBoostConfig(threads=args.threads))
    started = time.perf_counter()
    trained = fit_models(panel, config, SilentProgress())
    seconds = time.perf_counter() - started
    key = secrets.token_bytes(32)
    store = ArtifactStore(store_dir, key)
    write_artifacts(store, trained, sha256_of_frames(*frames))
    return store, key, seconds, panel.n_series


# --- evaluation -------------------------------------------------------------------------


def _units(panel, features, rows: IntArray) -> Units:
    from forecasting_svc.models.panel import max_scores

    series: list[int] = []
    origins: list[int] = []
    for offset, row in enumerate(rows):
        for origin in range(FIRST_ORIGIN + offset % 7, panel.n_days - HORIZON, ORIGIN_STEP):
            if np.isfinite(features.anchor[row, origin]):
                series.append(int(row))
                origins.append(origin)
    s = np.asarray(series, dtype=np.int64)
    o = np.asarray(origins, dtype=np.int64)
    scale_points = max_scores(panel.instrument[s])
    days = o[:, None] + 1 + np.arange(HORIZON)[None, :]
    target = panel.values[s[:, None], days] * scale_points[:, None]
    histories = [
        panel.values[si, : oi + 1] * sc for si, oi, sc in zip(s, o, scale_points, strict=True)
    ]
    scale = np.array([_seasonal_naive_scale(h) for h in histories])
    keep = np.isfinite(scale) & (scale > 0)
    return Units(
        series=s[keep],
        origins=o[keep],
        instrument=panel.instrument[s[keep]],
        patient=panel.group[s[keep]],
        target=target[keep],
        scale=scale[keep],
        history=[h for h, k in zip(histories, keep, strict=True) if k],
    )


def _seasonal_naive_scale(history: FloatArray) -> float:
    diff = np.abs(history[7:] - history[:-7])
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if len(diff) else math.nan


def _seasonal_naive(units: Units) -> MethodForecast:
    """Last observed value on the target's weekday (falling back to the last observed value)."""
    median = np.zeros((len(units.series), HORIZON))
    for u, history in enumerate(units.history):
        origin = len(history) - 1
        observed = np.nonzero(np.isfinite(history))[0]
        last_value = history[observed[-1]]
        for h in range(1, HORIZON + 1):
            k = (7 - h % 7) % 7
            same = [d for d in range(origin - k, -1, -7) if np.isfinite(history[d])]
            median[u, h - 1] = history[same[0]] if same else last_value
    return MethodForecast(median=median)


def _auto_ets(units: Units, max_scores: FloatArray) -> MethodForecast:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    frames = []
    for u, history in enumerate(units.history):
        series = pd.Series(history).interpolate(limit_direction="both")
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": u,
                    "ds": pd.date_range("2026-01-01", periods=len(series), freq="D"),
                    "y": series.to_numpy(),
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    model = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=1)
    out = model.forecast(df=data, h=HORIZON, level=[80, 95])
    out = out.sort_values(["unique_id", "ds"])

    def grid(column: str) -> FloatArray:
        values = out[column].to_numpy(np.float64).reshape(len(units.series), HORIZON)
        clipped: FloatArray = np.clip(values, 0.0, max_scores[:, None])
        return clipped

    median = grid("AutoETS")
    lo80, hi80 = grid("AutoETS-lo-80"), grid("AutoETS-hi-80")
    lo95, hi95 = grid("AutoETS-lo-95"), grid("AutoETS-hi-95")
    return MethodForecast(
        median=median,
        quantiles=np.stack([lo80, median, hi80], axis=-1),
        interval80=np.stack([lo80, hi80], axis=-1),
        interval95=np.stack([lo95, hi95], axis=-1),
    )


def _our_models(models, panel, features, units: Units) -> dict[str, MethodForecast]:
    from forecasting_svc.models.conformal import values_at
    from forecasting_svc.models.panel import max_scores

    scale = max_scores(units.instrument)
    horizons = np.full(len(units.series), HORIZON, dtype=np.int64)
    result: dict[str, MethodForecast] = {}
    for kind in MODELS:
        predictions = models.predict(
            panel,
            units.series,
            units.origins,
            horizons,
            [kind] * len(units.series),
            features=features,
        )
        tau = np.stack([p.tau_values for p in predictions]) * scale[:, None, None]
        levels = [*PINBALL_LEVELS, 0.025, 0.975]
        read = values_at(tau, levels)
        result[kind] = MethodForecast(
            median=read[..., 1],
            quantiles=read[..., :3],
            interval80=read[..., [0, 2]],
            interval95=read[..., [3, 4]],
        )
    return result


def _patient_bootstrap(
    inside: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.bool_],
    patient: IntArray,
    resamples: int = 2000,
) -> tuple[float, float]:
    """95 % percentile interval of coverage when whole patients are resampled.

    A patient's days are strongly correlated, so patients, not days, are the
    independent units that set the uncertainty of a coverage estimate.
    """
    patients, codes = np.unique(patient, return_inverse=True)
    hits = np.bincount(codes, weights=(inside & mask).sum(axis=1), minlength=len(patients))
    totals = np.bincount(codes, weights=mask.sum(axis=1), minlength=len(patients))
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(patients), (resamples, len(patients)))
    estimates = hits[draws].sum(axis=1) / np.maximum(totals[draws].sum(axis=1), 1.0)
    return float(np.quantile(estimates, 0.025)), float(np.quantile(estimates, 0.975))


def _score(units: Units, forecasts: dict[str, MethodForecast]) -> dict[str, dict[str, float]]:
    from forecasting_svc.instruments import INSTRUMENT_ORDER
    from forecasting_svc.models.quantile_loss import pinball_loss

    observed = np.isfinite(units.target)
    target = np.nan_to_num(units.target)
    metrics: dict[str, dict[str, float]] = {}
    for method, forecast in forecasts.items():
        row: dict[str, float] = {}
        error = np.abs(forecast.median - target)
        for low, high in BUCKETS:
            cols = slice(low - 1, high)
            mask = observed[:, cols]
            count = mask.sum(axis=1)
            usable = count > 0
            unit_mae = (error[:, cols] * mask).sum(axis=1)[usable] / count[usable]
            row[f"mase_{low}_{high}"] = float((unit_mae / units.scale[usable]).mean())
            for code, instrument in enumerate(INSTRUMENT_ORDER):
                cell = mask & (units.instrument == code)[:, None]
                if cell.any():
                    row[f"mae_{instrument.value}_{low}_{high}"] = float(error[:, cols][cell].mean())
            if forecast.quantiles is not None:
                loss = pinball_loss(forecast.quantiles[:, cols], target[:, cols], PINBALL_LEVELS)
                unit_loss = (loss.mean(axis=-1) * mask).sum(axis=1)[usable] / count[usable]
                row[f"spl_{low}_{high}"] = float((unit_loss / units.scale[usable]).mean())
            for name, interval in (("80", forecast.interval80), ("95", forecast.interval95)):
                if interval is None:
                    continue
                inside = (target[:, cols] >= interval[:, cols, 0]) & (
                    target[:, cols] <= interval[:, cols, 1]
                )
                row[f"coverage{name}_{low}_{high}"] = float(inside[mask].mean())
                low_ci, high_ci = _patient_bootstrap(inside, mask, units.patient)
                row[f"coverage{name}_{low}_{high}_ci_low"] = low_ci
                row[f"coverage{name}_{low}_{high}_ci_high"] = high_ci
        metrics[method] = row
    return metrics


def _evaluate(models, name: str, symptoms, biometrics, medications) -> CohortResult:
    from forecasting_svc.models.features import TabularFeatures
    from forecasting_svc.models.panel import max_scores, panel_from_frames

    panel, _ = panel_from_frames(symptoms, biometrics, medications)
    features = TabularFeatures.build(panel)
    units = _units(panel, features, np.arange(panel.n_series, dtype=np.int64))
    forecasts = _our_models(models, panel, features, units)
    forecasts["seasonal_naive"] = _seasonal_naive(units)
    forecasts["auto_ets"] = _auto_ets(units, max_scores(units.instrument))
    return CohortResult(name, len(units.series), panel.n_series, _score(units, forecasts))


# --- latency ----------------------------------------------------------------------------


def _latency_request(cohort: Cohort):
    from novamind.common.v1 import common_pb2
    from novamind.forecasting.v1 import forecasting_pb2

    patient = str(cohort.patients["patient_id"].iloc[0])
    symptoms = cohort.symptoms[cohort.symptoms["patient_id"] == patient]
    bio = cohort.biometrics[cohort.biometrics["patient_id"] == patient]
    request = forecasting_pb2.ForecastSymptomsRequest(
        patient_pseudonym="psn_" + "b" * 32, horizon_days=HORIZON
    )
    codes = {
        "phq9": common_pb2.INSTRUMENT_PHQ9,
        "gad7": common_pb2.INSTRUMENT_GAD7,
        "mood": common_pb2.INSTRUMENT_MOOD,
    }
    for _, row in symptoms.tail(180).iterrows():
        moment = row["date"].to_pydatetime().replace(tzinfo=UTC) + timedelta(hours=20)
        for minutes, (column, code) in enumerate(codes.items()):
            if np.isfinite(row[column]):
                item = request.history.add(instrument=code, score=float(row[column]))
                item.observed_at.FromDatetime(moment + timedelta(minutes=minutes))
    kinds = {
        "sleep_duration": forecasting_pb2.COVARIATE_KIND_SLEEP_HOURS,
        "steps": forecasting_pb2.COVARIATE_KIND_STEPS,
    }
    for _, row in bio.tail(180).iterrows():
        moment = row["date"].to_pydatetime().replace(tzinfo=UTC) + timedelta(hours=8)
        for column, kind in kinds.items():
            if np.isfinite(row[column]):
                covariate = request.covariates.add(kind=kind, value=float(row[column]))
                covariate.observed_at.FromDatetime(moment)
    return request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(store_dir: Path, key: bytes, work: Path) -> Iterator[tuple[int, Path]]:
    from common.certs import generate_dev_pki
    from common.launcher import clean_env, start_service, wait_healthy

    pki = work / "pki"
    generate_dev_pki(pki)
    port, health = _free_port(), _free_port()
    env = clean_env(
        NOVAMIND_HOST="127.0.0.1",
        NOVAMIND_PORT=str(port),
        NOVAMIND_HEALTH_PORT=str(health),
        NOVAMIND_TLS_DIR=str(pki),
        NOVAMIND_MODEL_DIR=str(store_dir),
        NOVAMIND_ARTIFACT_KEY=key.hex(),
        NOVAMIND_KEY_DIR=str(work / "keys"),
        NOVAMIND_AUDIT_LOG=str(work / "audit.jsonl"),
        NOVAMIND_LOG_LEVEL="WARNING",
    )
    process = start_service("forecasting_svc", env, work / "server.log")
    try:
        wait_healthy(health, process=process.process, timeout=120)
        yield port, pki
    finally:
        process.stop()


async def _measure_latency(
    port: int, pki: Path, request: object, calls: int, load_calls: int
) -> tuple[LoadResult, LoadResult]:
    from common.channels import mesh_channel
    from novamind.forecasting.v1 import forecasting_pb2_grpc

    async with mesh_channel(f"localhost:{port}", tls_dir=pki, identity="operator") as channel:
        stub = forecasting_pb2_grpc.SymptomForecastingServiceStub(channel)

        async def call() -> object:
            return await stub.ForecastSymptoms(request, timeout=60)

        single = await measure(call, concurrency=1, calls=calls)
        loaded = await measure(call, concurrency=16, calls=load_calls)
    return single, loaded


# --- report -----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _table(result: CohortResult, prefix: str, digits: int = 3) -> list[str]:
    lines = ["| method | 1–7 d | 8–14 d | 15–30 d |", "|---|---|---|---|"]
    for method in METHODS:
        row = result.metrics[method]
        cells = [_fmt(row.get(f"{prefix}_{low}_{high}"), digits) for low, high in BUCKETS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _mae_table(result: CohortResult) -> list[str]:
    from forecasting_svc.instruments import INSTRUMENT_ORDER

    header = "| method | " + " | ".join(
        f"{i.value} {low}–{high}" for i in INSTRUMENT_ORDER for low, high in BUCKETS
    )
    lines = [header + " |", "|---|" + "---|" * (len(INSTRUMENT_ORDER) * len(BUCKETS))]
    for method in METHODS:
        row = result.metrics[method]
        cells = [
            _fmt(row.get(f"mae_{i.value}_{low}_{high}"), 2)
            for i in INSTRUMENT_ORDER
            for low, high in BUCKETS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _coverage_table(result: CohortResult) -> list[str]:
    lines = [
        "| method | 80 %: 1–7 | 8–14 | 15–30 | 95 %: 1–7 | 8–14 | 15–30 |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in (*MODELS, "auto_ets"):
        row = result.metrics[method]
        cells = [
            _fmt(row.get(f"coverage{level}_{low}_{high}"), 3)
            for level in ("80", "95")
            for low, high in BUCKETS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _verdicts(result: CohortResult) -> list[str]:
    lines = []
    ensemble = result.metrics["ensemble"]
    for low, high in BUCKETS:
        key = f"mase_{low}_{high}"
        baselines = {b: result.metrics[b][key] for b in BASELINES}
        ok = all(ensemble[key] < v for v in baselines.values())
        lines.append(
            f"- MASE {low}–{high} d: ensemble {ensemble[key]:.3f} vs seasonal naive "
            f"{baselines['seasonal_naive']:.3f}, AutoETS {baselines['auto_ets']:.3f} — "
            f"{'**met**' if ok else '**missed**'}"
        )
    for level, nominal in (("80", 0.80), ("95", 0.95)):
        keys = [f"coverage{level}_{low}_{high}" for low, high in BUCKETS]
        values = [ensemble[key] for key in keys]
        ok = all(abs(v - nominal) <= 0.03 for v in values)
        shown = ", ".join(
            f"{ensemble[k]:.3f} [{ensemble[k + '_ci_low']:.3f}–{ensemble[k + '_ci_high']:.3f}]"
            for k in keys
        )
        lines.append(
            f"- {level} % interval coverage (ensemble, by bucket): {shown} — "
            f"{'**within ±3 points**' if ok else '**outside ±3 points**'}"
        )
        for (low, high), key in zip(BUCKETS, keys, strict=True):
            value = ensemble[key]
            if abs(value - nominal) <= 0.03:
                continue
            inside = ensemble[key + "_ci_low"] <= nominal <= ensemble[key + "_ci_high"]
            side = "below" if value < nominal else "above"
            lines.append(
                f"  - {low}–{high} d is {abs(value - nominal) * 100:.1f} points {side} nominal; "
                + (
                    "the nominal level lies inside the patient-bootstrap interval, so this "
                    "miss is within the sampling uncertainty of this many test patients."
                    if inside
                    else "the nominal level lies outside the patient-bootstrap interval: "
                    "a real miss on this cohort."
                )
            )
    return lines


def _write_report(
    out: Path,
    results: list[CohortResult],
    training: dict[str, float],
    latency: tuple[LoadResult, LoadResult] | None,
    quick: bool,
) -> str:
    lines = [
        "# Symptom forecasting benchmark",
        "",
        f"Command: `{COMMAND}`  ",
        f"Machine: {machine_line()}  ",
        "Generated by bench/forecasting.py; every figure below is measured by that run.",
        "",
    ]
    if quick:
        lines += ["**Smoke run with tiny models (`--quick`): not a result.**", ""]
    lines += [
        "## Setup",
        "",
        f"- Training cohort: synthetic, seed 0, {int(training['patients'])} patients × "
        f"{int(training['days'])} days; {int(training['test_patients'])} patients held out "
        "for testing, the rest train the production pipeline with its default settings "
        f"({int(training['series'])} series; training took {training['seconds']:.0f} s).",
        '- Shifted cohort: `CohortConfig(seed=1, dynamics="shifted")`, '
        f"{int(training['shifted_patients'])} patients (stronger persistence and weekly rhythm, "
        "noisier readouts, other biometric lags). Neither test cohort was used for training, "
        "early stopping, ensemble weights, calibration or any setting.",
        f"- Rolling origins every {ORIGIN_STEP} days from day {FIRST_ORIGIN} (staggered per "
        f"series), each forecasting {HORIZON} days; one evaluation unit = one series × origin.",
        "- MASE: per unit, MAE over the bucket's observed days divided by the in-sample MAE of "
        "the weekly seasonal-naive forecast on that unit's history; averaged over units. "
        "SPL: the mean pinball loss at 10/50/90 % scaled the same way (AutoETS quantiles "
        "from its 80 % interval). MAE in instrument points.",
        "- Baselines: weekly seasonal naive (last observed value on the target's weekday); "
        "statsforecast AutoETS(season_length=7) fitted per unit on the history with gaps "
        "linearly interpolated.",
        "",
    ]
    for result in results:
        lines += [
            f"## {result.name} ({result.series} series, {result.units} units)",
            "",
            "MASE (lower is better):",
            "",
            *_table(result, "mase"),
            "",
            "Scaled pinball loss (10/50/90 %):",
            "",
            *_table(result, "spl"),
            "",
            "Empirical interval coverage (nominal 0.80 and 0.95; the targets below give "
            "95 % patient-bootstrap intervals):",
            "",
            *_coverage_table(result),
            "",
            "MAE by instrument (points):",
            "",
            *_mae_table(result),
            "",
            "Targets:",
            "",
            *_verdicts(result),
            "",
        ]
    lines += [
        "## Reading the coverage figures",
        "",
        "Split-conformal intervals are calibrated on residuals of calibration patients drawn "
        "from the training cohort; their coverage guarantee holds for new patients that are "
        "exchangeable with those. The held-out patients are; the shifted cohort by "
        "construction is not (noisier readouts, stronger persistence and weekly rhythm). "
        "Each forecast's residual scale is therefore also learnt from the patient's own "
        'recent backtest errors (docs/forecasting.md, "Per-patient scale"), which widens '
        "intervals where the models have lately done worse than in calibration. That step "
        "was added after an earlier run of this benchmark showed the shifted cohort's 80 % "
        "intervals 2-3 points narrow; its constants (7..49-day backtest origins, 14-day "
        "horizons, 42-day look-back, a prior worth 20 residuals) were set once and not tuned "
        "on these cohorts. Recalibrating on data from the population a deployment serves "
        "(`python -m forecasting_svc.train --data-dir ...`) remains the first remedy for a "
        "shift.",
        "",
        "## Latency and throughput",
        "",
    ]
    if latency is None:
        lines += ["Not measured in this run.", ""]
    else:
        single, loaded = latency
        lines += [
            "One `ForecastSymptoms` call with 180 days of daily PHQ-9, GAD-7 and mood history "
            "plus sleep and step covariates, 30-day horizon, ensemble model; real "
            "`python -m forecasting_svc` server process on loopback with mTLS, grpc.aio client "
            "(bench/harness.py `measure`). Concurrent calls are micro-batched by the server.",
            "",
            TABLE_HEADER,
            single.row(),
            loaded.row(),
            "",
        ]
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str]) -> int:
    args = _parse(argv)
    if args.quick:
        args.patients, args.days, args.shifted_patients = 30, 150, 12
        args.latency_calls, args.load_calls = 10, 32
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    work = Path(tempfile.mkdtemp(prefix="novamind-bench-forecasting-"))
    try:
        from forecasting_svc.models.bundle import ForecastModels

        cohort = generate_cohort(CohortConfig(n_patients=args.patients, n_days=args.days, seed=0))
        train_patients, test_patients = _split_test_patients(cohort, args.test_fraction)
        print(f"training on {len(train_patients)} patients ...", flush=True)
        store, key, seconds, n_series = _train(cohort, train_patients, args, work / "models")
        models = ForecastModels.load(store)
        print(f"trained in {seconds:.0f} s; evaluating ...", flush=True)
        results = [
            _evaluate(
                models,
                "Held-out patients of the training cohort",
                _subset(cohort.symptoms, test_patients),
                _subset(cohort.biometrics, test_patients),
                _subset(cohort.medications, test_patients),
            )
        ]
        shifted = generate_cohort(
            CohortConfig(
                n_patients=args.shifted_patients, n_days=args.days, seed=1, dynamics="shifted"
            )
        )
        results.append(
            _evaluate(
                models,
                'Shifted cohort (seed 1, dynamics="shifted")',
                shifted.symptoms,
                shifted.biometrics,
                shifted.medications,
            )
        )
        print("measuring latency over gRPC ...", flush=True)
        request = _latency_request(cohort)
        with _server(work / "models", key, work) as (port, pki):
            latency = asyncio.run(
                _measure_latency(port, pki, request, args.latency_calls, args.load_calls)
            )
        training = {
            "patients": float(args.patients),
            "days": float(args.days),
            "test_patients": float(len(test_patients)),
            "series": float(n_series),
            "seconds": seconds,
            "shifted_patients": float(args.shifted_patients),
        }
        target = out if out is not None else work / "forecasting.md"
        text = _write_report(target, results, training, latency, args.quick)
        print(text)
        if out is not None:
            print(f"written to {out}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
