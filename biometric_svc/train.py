"""`python -m biometric_svc.train`: fit the early-warning LSTM and write its signed artifact.

Data: the synthetic cohort by default (labels: its true relapse onsets,
``common.synthetic.deterioration_labels``), or ``--data-dir`` with
biometrics.csv and symptoms.csv in the formats of docs/data-formats.md
(labels: the PHQ-9 onset rule of ``biometric_svc/labels.py``). Writes
``biometric.early_warning_lstm`` and prints the validation metrics on
held-out patients. Correlations, anomalies and monitoring plans need no
training. The defaults train in well under a minute on 2 idle CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Final

from tqdm import tqdm

from biometric_svc.early_warning import ARTIFACT_NAME, EarlyWarningModel
from biometric_svc.training import TrainingOptions, save_early_warning, train_early_warning
from biometric_svc.training_data import TrainingSet, csv_training_set, synthetic_training_set
from common.datasets import DatasetError
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

SERVICE: Final = "biometric"
DEFAULTS: Final = TrainingOptions(epochs=10, hidden_size=32, window_stride=2)
#: The synthetic training cohort; the signal is weak, so more patients help more than epochs.
DEFAULT_PATIENTS: Final = 600
DEFAULT_DAYS: Final = 180
#: ``--quick``: a tiny model in seconds (tests, smoke runs).
QUICK: Final = TrainingOptions(epochs=2, hidden_size=8, window_stride=3)
QUICK_MAX_PATIENTS: Final = 30
QUICK_MAX_DAYS: Final = 120


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m biometric_svc.train",
        description="Train the biometric early-warning model (LSTM with attention).",
    )
    add_training_arguments(parser, patients=DEFAULT_PATIENTS, days=DEFAULT_DAYS)
    parser.add_argument(
        "--epochs", type=int, default=None, help=f"training epochs (default {DEFAULTS.epochs})"
    )
    parser.add_argument(
        "--hidden-size",
        type=int,
        default=None,
        help=f"LSTM hidden units (default {DEFAULTS.hidden_size})",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads for torch (default %(default)s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"a tiny model on at most {QUICK_MAX_PATIENTS} patients x {QUICK_MAX_DAYS} days, "
            "trained in seconds (tests and smoke runs)"
        ),
    )
    return parser


def options_from_args(args: argparse.Namespace) -> TrainingOptions:
    base = QUICK if args.quick else DEFAULTS
    return TrainingOptions(
        epochs=args.epochs if args.epochs is not None else base.epochs,
        hidden_size=args.hidden_size if args.hidden_size is not None else base.hidden_size,
        window_stride=base.window_stride,
        seed=args.seed,
        threads=args.threads,
    )


def load_training_set(source: TrainingSource, quick: bool) -> TrainingSet:
    if source.data_dir is not None:
        return csv_training_set(source.data_dir)
    patients, days = source.patients, source.days
    if quick:
        patients, days = min(patients, QUICK_MAX_PATIENTS), min(days, QUICK_MAX_DAYS)
    return synthetic_training_set(
        generate_cohort(CohortConfig(n_patients=patients, n_days=days, seed=source.seed))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.epochs is not None and args.epochs < 1:
        raise SystemExit("--epochs: must be at least 1")
    if args.hidden_size is not None and not 2 <= args.hidden_size <= 512:
        raise SystemExit("--hidden-size: must be within 2..512")
    source = training_source(args)
    store = artifact_store(args, SERVICE)
    if args.if_missing and usable_model_exists(
        store, ARTIFACT_NAME, lambda s: EarlyWarningModel.from_artifact(s.load(ARTIFACT_NAME))
    ):
        print(f"{ARTIFACT_NAME} already exists under {store.root}; nothing to do (--if-missing)")
        return 0
    options = options_from_args(args)
    started = time.perf_counter()
    try:
        training = load_training_set(source, args.quick)
    except (DatasetError, ValueError) as exc:
        print(f"training data rejected: {exc}", file=sys.stderr)
        return 2
    with tqdm(
        total=options.epochs,
        desc="early-warning LSTM",
        unit="epoch",
        disable=progress_disabled(args),
    ) as bar:

        def on_epoch(epoch: int, loss: float, val_auroc: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", val_auroc=f"{val_auroc:.3f}")

        try:
            result = train_early_warning(training.patients, options, on_epoch)
        except ValueError as exc:
            print(f"cannot train: {exc}", file=sys.stderr)
            return 2
    manifest = save_early_warning(
        store, result, training.sha256, extra_params={"data": training.description}
    )
    metrics = manifest.metrics
    print(f"{ARTIFACT_NAME} {manifest.version} ({time.perf_counter() - started:.1f} s)")
    print(f"training data: {training.description}")
    print(
        "validation (held-out patients): "
        f"AUROC {metrics.get('val_auroc', float('nan')):.3f}, "
        f"AUPRC {metrics.get('val_auprc', float('nan')):.3f} "
        f"(prevalence {metrics.get('val_prevalence', float('nan')):.3f}), "
        f"Brier {metrics.get('val_brier', float('nan')):.4f}, "
        f"{metrics.get('val_windows', 0):.0f} windows"
    )
    print(f"artifact: {store.root / ARTIFACT_NAME / manifest.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
