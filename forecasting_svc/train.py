"""`python -m forecasting_svc.train`: fit the forecasting models and write signed artifacts.

Data: the synthetic cohort by default, or ``--data-dir`` with the files of
docs/data-formats.md (symptoms.csv required; biometrics.csv and
medications.csv used when present). Writes ``forecasting.transformer``,
``forecasting.xgboost`` and ``forecasting.ensemble`` to the artifact store
and prints the cross-fitted validation metrics (also stored, signed, as the
ensemble's report.txt).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from common.datasets import (
    DatasetError,
    biometrics_to_daily,
    load_biometrics,
    load_medications,
    load_symptoms,
    sha256_of_frames,
    symptoms_to_daily,
)
from common.synthetic import CohortConfig, generate_cohort
from common.training import (
    TrainingSource,
    add_training_arguments,
    artifact_store,
    progress_disabled,
    training_source,
    usable_model_exists,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_TRIALS = 6
DEFAULT_EPOCHS = 12


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m forecasting_svc.train",
        description="Train the symptom forecasting models (transformer, XGBoost, ensemble).",
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help="Optuna TPE trials for XGBoost (default %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help="most transformer epochs; early stopping may end sooner (default %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny models on at most 24 patients x 120 days, trained in seconds (smoke tests)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads for torch and XGBoost (default 2)"
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="also write the metrics report to this file"
    )
    return parser


def load_training_frames(
    source: TrainingSource,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Daily symptoms, daily biometrics and medication events (by local day)."""
    if source.data_dir is None:
        cohort = generate_cohort(
            CohortConfig(n_patients=source.patients, n_days=source.days, seed=source.seed)
        )
        return cohort.symptoms, cohort.biometrics, cohort.medications
    directory = source.data_dir
    symptoms = symptoms_to_daily(load_symptoms(directory / "symptoms.csv"))
    biometrics = None
    if (directory / "biometrics.csv").exists():
        biometrics = biometrics_to_daily(load_biometrics(directory / "biometrics.csv"))
    medications = None
    if (directory / "medications.csv").exists():
        raw = load_medications(directory / "medications.csv")
        instants = pd.to_datetime(raw["occurred_at"], utc=True).dt.tz_localize(None)
        local = instants + pd.to_timedelta(raw["utc_offset_minutes"], unit="m")
        medications = pd.DataFrame(
            {
                "patient_id": raw["patient_id"],
                "date": local.dt.floor("D"),
                "medication": raw["medication"],
                "event": raw["event"],
                "daily_dose_mg": raw["daily_dose_mg"],
            }
        )
    return symptoms, biometrics, medications


class BarProgress:
    """One tqdm bar per training stage."""

    def __init__(self, disabled: bool) -> None:
        self._disabled = disabled
        self._bar: object | None = None

    def stage(self, name: str, total: int) -> Callable[[str], None]:
        from tqdm import tqdm

        self.close()
        bar = tqdm(total=total, desc=name, disable=self._disabled, file=sys.stderr, leave=True)
        self._bar = bar

        def tick(info: str) -> None:
            bar.set_postfix_str(info)
            bar.update(1)

        return tick

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]
            self._bar = None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 0 or args.epochs < 1 or args.threads < 1:
        print("--trials must be >= 0, --epochs and --threads >= 1", file=sys.stderr)
        return 2
    if args.quick:
        args.patients = min(args.patients, 24)
        args.days = min(args.days, 120)
    source = training_source(args)
    store = artifact_store(args, "forecasting")

    # Imported here so `--help` and `--if-missing` stay fast.
    import torch

    from forecasting_svc.fitting import FitConfig, fit_models, write_artifacts
    from forecasting_svc.models.bundle import ENSEMBLE_ARTIFACT, ForecastModels
    from forecasting_svc.models.panel import panel_from_frames
    from forecasting_svc.models.transformer import TransformerConfig
    from forecasting_svc.models.xgboost_model import XGBoostConfig

    if args.if_missing and usable_model_exists(store, ENSEMBLE_ARTIFACT, ForecastModels.load):
        print(f"{ENSEMBLE_ARTIFACT} already exists under {store.root}; nothing to do")
        return 0
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        symptoms, biometrics, medications = load_training_frames(source)
        panel, _patients = panel_from_frames(symptoms, biometrics, medications)
    except (DatasetError, ValueError) as exc:
        print(f"training data rejected: {exc}", file=sys.stderr)
        return 2
    frames = [f for f in (symptoms, biometrics, medications) if f is not None]
    data_hash = sha256_of_frames(*frames)

    if args.quick:
        config = FitConfig(
            transformer=TransformerConfig(
                window=28,
                d_model=16,
                n_heads=2,
                n_layers=1,
                feedforward=32,
                batch_size=64,
                steps_per_epoch=8,
                max_epochs=min(args.epochs, 2),
                seed=args.seed,
            ),
            xgboost=XGBoostConfig(
                trials=min(args.trials, 2),
                max_rounds=40,
                tuning_row_limit=4_000,
                origin_fraction=0.3,
                threads=args.threads,
                seed=args.seed,
            ),
            seed=args.seed,
        )
    else:
        config = FitConfig(
            transformer=TransformerConfig(max_epochs=args.epochs, seed=args.seed),
            xgboost=XGBoostConfig(trials=args.trials, threads=args.threads, seed=args.seed),
            seed=args.seed,
        )
    progress = BarProgress(progress_disabled(args))
    try:
        trained = fit_models(panel, config, progress)
    finally:
        progress.close()
    manifests = write_artifacts(store, trained, data_hash)
    elapsed = time.perf_counter() - started
    print(trained.report)
    for name, manifest in manifests.items():
        print(f"{name} {manifest.version}")
    print(f"training data sha256 {data_hash}; {panel.n_series} series; {elapsed:.0f} s")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(trained.report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
