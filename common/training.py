"""Command-line plumbing shared by every ``python -m <svc>.train`` (no ML here).

Each service's train module adds its own options; these are the common ones:
where the data comes from (the synthetic cohort by default, a directory of the
documented CSVs otherwise), where signed artifacts go, and the seed.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import ArtifactError, ArtifactStore
from common.settings import Settings


@dataclass(frozen=True)
class TrainingSource:
    """Where training data comes from."""

    data_dir: Path | None
    patients: int
    days: int
    seed: int

    @property
    def synthetic(self) -> bool:
        return self.data_dir is None


def add_training_arguments(
    parser: argparse.ArgumentParser, *, patients: int = 300, days: int = 180
) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with the CSV files of docs/data-formats.md (default: synthetic cohort)",
    )
    parser.add_argument(
        "--patients", type=int, default=patients, help="synthetic cohort size (default %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=days, help="synthetic days per patient (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="artifact store root (default: NOVAMIND_MODEL_DIR or var/models)",
    )
    parser.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when a model of this service already exists",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def training_source(args: argparse.Namespace) -> TrainingSource:
    if args.patients < 4:
        raise SystemExit("--patients: must be at least 4")
    if args.days < 60:
        raise SystemExit("--days: must be at least 60")
    return TrainingSource(
        data_dir=args.data_dir, patients=args.patients, days=args.days, seed=args.seed
    )


def artifact_store(args: argparse.Namespace, service: str) -> ArtifactStore:
    """The signed artifact store the service will later load from."""
    settings = Settings.from_env(service)
    root = args.model_dir if args.model_dir is not None else settings.model_dir
    return ArtifactStore(Path(root), settings.secret("artifact"))


def usable_model_exists(
    store: ArtifactStore, name: str, load: Callable[[ArtifactStore], object]
) -> bool:
    """True when ``name`` exists and this code can load it, for ``--if-missing``.

    An artifact written by an older version whose format this code no longer
    reads (or whose signature fails) counts as missing, so ``make demo`` retrains
    instead of starting a service that cannot load its model.
    """
    if not store.exists(name):
        return False
    try:
        load(store)
    except (ArtifactError, ValueError, KeyError, TypeError) as exc:
        print(f"{name} under {store.root} cannot be loaded ({exc}); training a new version")
        return False
    return True


def progress_disabled(args: argparse.Namespace) -> bool:
    return bool(args.quiet) or os.environ.get("CI") == "true"
