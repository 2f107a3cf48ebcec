"""`python -m pharmacogenomics_svc.train`: fit the response and side-effect models.

Data: the synthetic cohort by default (its response and side-effect labels
follow the odds ratios documented in ``common/synthetic.py``), or
``--data-dir`` with ``genotypes.csv`` and ``outcomes.csv`` (and
``medications.csv`` if present) in the formats of docs/data-formats.md.
Writes one signed artifact, ``pharmacogenomics.response_model``, and prints
the held-out metrics next to the base-rate and genotype-rule baselines.
``--if-missing`` does nothing when that artifact already exists.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Final

from tqdm import tqdm

from common.artifacts import ArtifactManifest, ArtifactStore
from common.datasets import DatasetError, load_genotypes, load_medications, load_outcomes
from common.synthetic import CohortConfig, generate_cohort
from common.training import (
    TrainingSource,
    add_training_arguments,
    artifact_store,
    progress_disabled,
    training_source,
    usable_model_exists,
)
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.models.pipeline import FittedModels, fit_and_evaluate
from pharmacogenomics_svc.models.response_model import (
    MAX_ROUNDS,
    MODEL_NAME,
    QUICK_ROUNDS,
    ResponseModels,
)
from pharmacogenomics_svc.models.training_data import TrainingSet, from_cohort, from_frames

_LOGGER = logging.getLogger(__name__)

SERVICE: Final = "pharmacogenomics"
# Genotype effects are carried by a few percent of patients (CYP2C19 poor metabolizers are ~2 %
# in the cohort), so the default cohort is large; 60 days hold most patients' first two trials.
DEFAULT_PATIENTS: Final = 40_000
DEFAULT_DAYS: Final = 60
_STEPS: Final = ("data", "features", "fit response", "fit side_effect", "save")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pharmacogenomics_svc.train",
        description="Fit the calibrated response and side-effect models (XGBoost + Platt).",
    )
    add_training_arguments(parser, patients=DEFAULT_PATIENTS, days=DEFAULT_DAYS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"at most {QUICK_ROUNDS} boosting rounds per model (tests and smoke runs)",
    )
    return parser


def load_training_set(source: TrainingSource, kb: KnowledgeBase) -> TrainingSet:
    """Trials from ``--data-dir`` or from a seeded synthetic cohort."""
    if source.data_dir is None:
        cohort = generate_cohort(
            CohortConfig(n_patients=source.patients, n_days=source.days, seed=source.seed)
        )
        return from_cohort(cohort, kb)
    directory = source.data_dir
    medications_path = directory / "medications.csv"
    return from_frames(
        load_genotypes(directory / "genotypes.csv"),
        load_outcomes(directory / "outcomes.csv"),
        load_medications(medications_path) if medications_path.is_file() else None,
        kb,
    )


def save_models(
    store: ArtifactStore, fitted: FittedModels, training: TrainingSet
) -> ArtifactManifest:
    """Write the fitted models as one signed artifact and make it LATEST."""
    with store.writer(MODEL_NAME) as writer:
        fitted.models.save(writer)
        return writer.commit(
            metrics=fitted.metrics,
            training_data_sha256=training.data_sha256,
            params=fitted.models.params,
        )


def _report(manifest: ArtifactManifest, seconds: float) -> str:
    m = manifest.metrics
    lines = [
        f"{MODEL_NAME} {manifest.version} ({seconds:.1f} s)",
        f"held-out trials: {m.get('n_test_trials', 0):.0f} (by patient)",
        "target        model Brier  ECE     AUROC | base-rate Brier | rule-only Brier  AUROC",
    ]
    for target in ("response", "side_effect"):
        lines.append(
            f"{target:<13} {m.get(f'{target}_brier', float('nan')):.4f}      "
            f"{m.get(f'{target}_ece', float('nan')):.4f}  "
            f"{m.get(f'{target}_auroc', float('nan')):.3f} | "
            f"{m.get(f'{target}_base_rate_brier', float('nan')):.4f}          | "
            f"{m.get(f'{target}_rule_baseline_brier', float('nan')):.4f}           "
            f"{m.get(f'{target}_rule_baseline_auroc', float('nan')):.3f}"
        )
        if f"{target}_truth_brier" in m:
            lines.append(
                f"{'':<13} generator's true probabilities: Brier "
                f"{m[f'{target}_truth_brier']:.4f}, AUROC {m.get(f'{target}_truth_auroc', 0):.3f}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    source = training_source(args)
    store = artifact_store(args, SERVICE)
    if args.if_missing and usable_model_exists(
        store, MODEL_NAME, lambda s: ResponseModels.load(s.load(MODEL_NAME))
    ):
        print(f"{MODEL_NAME} already exists under {store.root}; nothing to do (--if-missing)")
        return 0
    started = time.perf_counter()
    kb = default_knowledge_base()
    with tqdm(total=len(_STEPS), desc="pharmacogenomics", disable=progress_disabled(args)) as bar:

        def finished(stage: str) -> None:
            bar.update(1)
            following = _STEPS.index(stage) + 1
            bar.set_postfix_str(_STEPS[following] if following < len(_STEPS) else "")

        bar.set_postfix_str(_STEPS[0])
        try:
            training = load_training_set(source, kb)
        except (DatasetError, ValueError) as exc:
            print(f"training data rejected: {exc}", file=sys.stderr)
            return 2
        finished("data")
        fitted = fit_and_evaluate(
            training,
            kb,
            seed=source.seed,
            progress=finished,
            max_rounds=QUICK_ROUNDS if args.quick else MAX_ROUNDS,
        )
        manifest = save_models(store, fitted, training)
        finished("save")
    print(_report(manifest, time.perf_counter() - started))
    print(f"training data: {training.source}, {len(training)} trials")
    print(f"artifact: {store.root / MODEL_NAME / manifest.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
