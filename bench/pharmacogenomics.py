"""Pharmacogenomics benchmark: model quality on held-out synthetic patients, and serving speed.

`python -m bench pharmacogenomics` (part of `make bench`):
  1. trains the response and side-effect models exactly as
     `python -m pharmacogenomics_svc.train` does (default cohort), into a
     temporary signed store;
  2. scores them on a separately generated cohort (another seed: no patient
     seen in training), next to the base-rate predictor, the genotype-rule-only
     baseline (outcome rate per CPIC action) and the generator's own true
     probabilities (the best any model could do), overall and for the trials
     whose drug meets a non-normal metabolizer gene; also on the "shifted"
     cohort (lower base response, other dynamics) to show calibration under shift;
  3. compares the genotype effects the model learned with the generator's;
  4. starts `python -m pharmacogenomics_svc` with that model over mTLS on
     loopback and measures latency and throughput with a real gRPC client.
Writes docs/benchmarks/pharmacogenomics.md.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.harness import TABLE_HEADER, LoadResult, machine_line, measure
from common.artifacts import ArtifactStore
from common.channels import mesh_channel
from common.launcher import ServiceProcess, clean_env, start_service, wait_healthy
from common.settings import Settings
from common.synthetic import Cohort, CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc as pb_grpc
from pharmacogenomics_svc.knowledge_base import KnowledgeBase, default_knowledge_base
from pharmacogenomics_svc.models.features import (
    RESPONSE,
    SIDE_EFFECT,
    ClinicalFeatures,
    feature_matrix,
    feature_row,
)
from pharmacogenomics_svc.models.metrics import auroc, brier_score, expected_calibration_error
from pharmacogenomics_svc.models.pipeline import FittedModels, fit_and_evaluate
from pharmacogenomics_svc.models.rule_baseline import GuidanceTiers, fit_rule_baseline
from pharmacogenomics_svc.models.training_data import TrainingSet, from_cohort
from pharmacogenomics_svc.phenotype import phenotype_for
from pharmacogenomics_svc.train import DEFAULT_DAYS, DEFAULT_PATIENTS, save_models

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
TLS_DIR: Final = REPO_ROOT / "var" / "certs"
DOC: Final = REPO_ROOT / "docs" / "benchmarks" / "pharmacogenomics.md"
SERVICE: Final = "novamind.pharmacogenomics.v1.PharmacogenomicsService"
TRAINING: Final = CohortConfig(n_patients=DEFAULT_PATIENTS, n_days=DEFAULT_DAYS, seed=0)
HELD_OUT: Final = CohortConfig(n_patients=20_000, n_days=DEFAULT_DAYS, seed=101)
SHIFTED: Final = CohortConfig(n_patients=20_000, n_days=DEFAULT_DAYS, seed=202, dynamics="shifted")
CALLS: Final = {1: 200, 16: 800}
#: (drug, gene, carrier diplotype, generator's carrier diplotypes, target)
EFFECTS: Final = (
    ("citalopram", "CYP2C19", "*2/*2", ("*2/*2", "*2/*3", "*3/*3"), RESPONSE),
    ("citalopram", "CYP2C19", "*17/*17", ("*17/*17",), RESPONSE),
    ("escitalopram", "CYP2C19", "*2/*2", ("*2/*2", "*2/*3", "*3/*3"), SIDE_EFFECT),
    ("paroxetine", "CYP2D6", "*4/*4", ("*4/*4", "*4/*5", "*5/*5"), SIDE_EFFECT),
    ("paroxetine", "CYP2D6", "*1x2/*1", ("*1/*1x2", "*1x2/*2", "*1/*2x2", "*2/*2x2"), RESPONSE),
    ("amitriptyline", "CYP2D6", "*4/*4", ("*4/*4", "*4/*5", "*5/*5"), SIDE_EFFECT),
    ("sertraline", "CYP2B6", "*6/*6", ("*6/*6", "*6/*18", "*18/*18"), SIDE_EFFECT),
)


@dataclass(frozen=True)
class Scores:
    brier: float
    ece: float
    auroc: float

    def cells(self) -> str:
        return f"{self.brier:.4f} | {self.ece:.4f} | {self.auroc:.3f}"


def _scores(probability: npt.NDArray[np.float64], outcome: npt.NDArray[np.bool_]) -> Scores:
    return Scores(
        brier_score(probability, outcome),
        expected_calibration_error(probability, outcome),
        auroc(probability, outcome),
    )


def _actionable(
    held_out: TrainingSet, pathway: dict[str, tuple[str, ...]]
) -> npt.NDArray[np.bool_]:
    """Trials whose drug meets a determinate, non-Normal metabolizer gene of its pathway."""
    flags = []
    for trial in held_out.trials:
        phenotypes = [trial.phenotypes.get(g) for g in pathway.get(trial.medication, ())]
        flags.append(
            any(
                p is not None and p.phenotype not in ("Normal Metabolizer", "Indeterminate")
                for p in phenotypes
            )
        )
    return np.array(flags, dtype=np.bool_)


MODEL: Final = "calibrated XGBoost (this service)"
RULE: Final = "genotype-rule-only baseline"
BASE: Final = "base rate"
TRUTH: Final = "generator's true probabilities (ceiling)"
#: (target, subset, predictor) -> (trials, scores)
Table = dict[tuple[str, str, str], tuple[int, Scores]]


def _accuracy(
    fitted: FittedModels, training: TrainingSet, held_out: TrainingSet, kb: KnowledgeBase
) -> Table:
    models = fitted.models
    matrix = held_out.matrix(models.spec)
    tiers = GuidanceTiers(kb)
    train_tiers, test_tiers = tiers.tiers(training.trials), tiers.tiers(held_out.trials)
    actionable = _actionable(held_out, dict(models.spec.pathway_genes))
    table: Table = {}
    for target in (RESPONSE, SIDE_EFFECT):
        train_y = training.responded if target == RESPONSE else training.side_effect
        test_y = held_out.responded if target == RESPONSE else held_out.side_effect
        truth = held_out.true_response if target == RESPONSE else held_out.true_side_effect
        predictions = {
            MODEL: models.predict(target, matrix),
            RULE: fit_rule_baseline(train_tiers, train_y).predict(test_tiers),
            BASE: np.full(len(test_y), float(train_y.mean())),
        }
        if truth is not None:
            predictions[TRUTH] = truth
        for subset, mask in (("all", np.ones(len(test_y), bool)), ("actionable", actionable)):
            for name, values in predictions.items():
                table[(target, subset, name)] = (
                    int(mask.sum()),
                    _scores(values[mask], test_y[mask]),
                )
    return table


def _table_rows(table: Table) -> list[str]:
    return [
        f"| {target} | {subset} ({n}) | {name} | {scores.cells()} |"
        for (target, subset, name), (n, scores) in table.items()
    ]


def _summary(held_out: Table, shifted: Table, effects: list[tuple[str, float, float]]) -> list[str]:
    lines = []
    for target in (RESPONSE, SIDE_EFFECT):
        model, rule, base, truth = (
            held_out[(target, "all", name)][1] for name in (MODEL, RULE, BASE, TRUTH)
        )
        lines.append(
            f"- {target}: held-out Brier {model.brier:.4f} against {base.brier:.4f} for the base "
            f"rate and {rule.brier:.4f} for the genotype-rule-only baseline; the generator's own "
            f"probabilities score {truth.brier:.4f}. AUROC {model.auroc:.3f} (rule-only "
            f"{rule.auroc:.3f}, ceiling {truth.auroc:.3f}); ECE {model.ece:.4f}."
        )
    model, truth = (shifted[(RESPONSE, "all", name)][1] for name in (MODEL, TRUTH))
    lines.append(
        f"- Under shift (response): ECE {model.ece:.3f} against {truth.ece:.3f} for the true "
        f"probabilities, AUROC {model.auroc:.3f} against {truth.auroc:.3f}: the ranking "
        "transfers, the calibration does not."
    )
    agree = [e for e in effects if np.sign(e[1]) == np.sign(e[2]) and abs(e[2]) >= 0.01]
    missed = [e[0].replace(" | ", ", ") for e in effects if e not in agree]
    lines.append(
        f"- Genotype effects: {len(agree)} of {len(effects)} learned in the generator's "
        "direction (at least 1 percentage point), mostly smaller than the truth (boosting with "
        "early stopping shrinks effects carried by a few percent of patients)"
        + (f"; not learned: {'; '.join(missed)}." if missed else ".")
    )
    return lines


def _true_effect(
    cohort: Cohort, drug: str, gene: str, carriers: Sequence[str], column: str
) -> float:
    """The generator's true difference, carriers minus *1/*1, at equal failed trials."""
    outcomes = cohort.outcomes.reset_index(drop=True)
    trials = outcomes.assign(earlier=outcomes.groupby("patient_id").cumcount()).merge(
        cohort.patients[["patient_id", gene.lower(), "prior_treatment_failures"]], on="patient_id"
    )
    trials = trials[trials.medication == drug]
    failures = trials.prior_treatment_failures + trials.earlier
    carrier = trials[trials[gene.lower()].isin(list(carriers))].groupby(failures)[column].mean()
    normal = trials[trials[gene.lower()] == "*1/*1"].groupby(failures)[column].mean()
    common = carrier.index.intersection(normal.index)
    return float((carrier[common] - normal[common]).mean()) if len(common) else float("nan")


def _effects(
    fitted: FittedModels, cohort: Cohort, kb: KnowledgeBase
) -> list[tuple[str, float, float]]:
    """(label, truth, learned) effect of one genotype on one drug, over held-out patients."""
    models, spec = fitted.models, fitted.models.spec
    patients = cohort.patients.iloc[:2_000]
    rows = []
    for drug, gene, diplotype, carriers, target in EFFECTS:
        column = (
            "true_response_probability" if target == RESPONSE else "true_side_effect_probability"
        )
        feature_rows: dict[str, list[list[float]]] = {diplotype: [], "*1/*1": []}
        for record in patients.to_dict("records"):
            clinical = ClinicalFeatures(
                float(record["age"]),
                str(record["sex"]),
                float(record["prior_treatment_failures"]),
                float(record["baseline_phq9"]),
            )
            for text, bucket in feature_rows.items():
                phenotypes = {
                    g: phenotype_for(g, str(record[g.lower()]), kb)
                    for g in ("CYP2D6", "CYP2C19", "CYP2C9", "CYP2B6")
                }
                phenotypes[gene] = phenotype_for(gene, text, kb)
                bucket.append(feature_row(spec, drug, phenotypes, clinical))
        carrier = models.predict(target, feature_matrix(feature_rows[diplotype], spec))
        normal = models.predict(target, feature_matrix(feature_rows["*1/*1"], spec))
        learned = float(np.mean(carrier - normal))
        truth = _true_effect(cohort, drug, gene, carriers, column)
        rows.append((f"{drug} | {gene} {diplotype} vs *1/*1 | {target}", truth, learned))
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Caller = Callable[[pb_grpc.PharmacogenomicsServiceStub], Awaitable[object]]


def _patient_requests(cohort: Cohort) -> dict[str, Caller]:
    patient = cohort.patients.iloc[0]
    genotype = common_pb2.Genotype()
    for gene in ("CYP2D6", "CYP2C19", "CYP2C9", "CYP2B6"):
        genotype.diplotypes.add(gene=gene, diplotype=str(patient[gene.lower()]))
    genotype.hla_results.add(allele="HLA-B*15:02", status=common_pb2.HLA_STATUS_NEGATIVE)
    genotype.hla_results.add(allele="HLA-A*31:01", status=common_pb2.HLA_STATUS_NEGATIVE)
    pseudonym = "psn_" + "0" * 32
    current = [common_pb2.Medication(name="paroxetine", daily_dose_mg=20)]
    candidates = ["sertraline", "escitalopram", "bupropion", "aripiprazole"]
    clinical = common_pb2.ClinicalProfile(
        age_years=int(patient["age"]), prior_treatment_failures=1, baseline_phq9=16.0
    )
    analyze = pb.AnalyzeGeneMedicationInteractionsRequest(
        patient_pseudonym=pseudonym,
        genotype=genotype,
        current_medications=current,
        candidate_medications=candidates,
    )
    respond = pb.PredictMedicationResponseRequest(
        patient_pseudonym=pseudonym,
        genotype=genotype,
        current_medications=current,
        candidate_medications=candidates,
        clinical=clinical,
    )
    side = pb.PredictSideEffectsRequest(
        patient_pseudonym=pseudonym,
        genotype=genotype,
        current_medications=current,
        candidate_medications=candidates,
        clinical=clinical,
    )
    everything = pb.PredictMedicationResponseRequest()
    everything.CopyFrom(respond)
    del everything.candidate_medications[:]
    return {
        "AnalyzeGeneMedicationInteractions (1 current + 4 candidates)": (
            lambda s: s.AnalyzeGeneMedicationInteractions(analyze, timeout=30)
        ),
        "PredictMedicationResponse (4 candidates)": (
            lambda s: s.PredictMedicationResponse(respond, timeout=30)
        ),
        "PredictSideEffects (4 candidates)": lambda s: s.PredictSideEffects(side, timeout=30),
        "PredictMedicationResponse (no candidates: every supported antidepressant)": (
            lambda s: s.PredictMedicationResponse(everything, timeout=30)
        ),
    }


async def _load(port: int, cohort: Cohort) -> dict[str, dict[int, LoadResult]]:
    results: dict[str, dict[int, LoadResult]] = {}
    address = f"localhost:{port}"
    async with mesh_channel(address, tls_dir=TLS_DIR, identity="orchestrator") as channel:
        stub = pb_grpc.PharmacogenomicsServiceStub(channel)
        for label, request in _patient_requests(cohort).items():

            async def call(request: Caller = request) -> None:
                await request(stub)

            results[label] = {n: await measure(call, concurrency=n, calls=CALLS[n]) for n in CALLS}
    return results


def _serve_and_measure(
    model_dir: Path, key_dir: Path, cohort: Cohort
) -> dict[str, dict[int, LoadResult]]:
    port, health = _free_port(), _free_port()
    env = clean_env(
        NOVAMIND_HOST="127.0.0.1",
        NOVAMIND_PORT=str(port),
        NOVAMIND_HEALTH_PORT=str(health),
        NOVAMIND_MODEL_DIR=str(model_dir),
        NOVAMIND_KEY_DIR=str(key_dir),
        NOVAMIND_TLS_DIR=str(TLS_DIR),
        NOVAMIND_AUDIT_LOG=str(model_dir.parent / "audit.jsonl"),
        NOVAMIND_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
    )
    log = REPO_ROOT / "var" / "logs" / "bench-pharmacogenomics.log"
    proc: ServiceProcess = start_service("pharmacogenomics_svc", env, log, cwd=REPO_ROOT)
    try:
        wait_healthy(proc.health_port, SERVICE, process=proc.process, timeout=120)
        return asyncio.run(_load(port, cohort))
    finally:
        proc.stop()


def _write(
    accuracy: Table,
    shifted: Table,
    effects: list[tuple[str, float, float]],
    load: dict[str, dict[int, LoadResult]],
    training_seconds: float,
    sizes: tuple[int, int, int],
) -> None:
    lines = [
        "# Pharmacogenomics benchmark",
        "",
        "Command: `make bench` (or `.venv/bin/python -m bench pharmacogenomics`).",
        f"Machine: {machine_line()}.",
        "",
        "## Summary",
        "",
        *_summary(accuracy, shifted, effects),
        "",
        "## Response and side-effect models on held-out synthetic patients",
        "",
        "Training: the default `python -m pharmacogenomics_svc.train` cohort "
        f"({TRAINING.n_patients} patients, {TRAINING.n_days} days, seed {TRAINING.seed}; "
        f"{sizes[0]} trials), generated and fitted in "
        f"{training_seconds:.1f} s. Held out: a separately generated cohort ({HELD_OUT.n_patients} "
        f"patients, seed {HELD_OUT.seed}; {sizes[1]} trials): none of its patients was trained on. "
        "Labels are drawn from the generator's documented odds ratios (`common/synthetic.py`), so "
        "its true probabilities are the best any model could score.",
        "",
        "*actionable*: trials whose drug meets a non-Normal metabolizer gene of its pathway "
        "(the patients pharmacogenomics is for). ECE: 10 equal-width bins. Lower Brier/ECE is "
        "better; AUROC 0.5 is chance.",
        "",
        "| target | trials | predictor | Brier | ECE | AUROC |",
        "|---|---|---|---|---|---|",
        *_table_rows(accuracy),
        "",
        f'### Under shift: the "shifted" cohort ({SHIFTED.n_patients} patients, '
        f"seed {SHIFTED.seed}; {sizes[2]} trials; base response 0.46 instead of 0.58)",
        "",
        "| target | trials | predictor | Brier | ECE | AUROC |",
        "|---|---|---|---|---|---|",
        *_table_rows(shifted),
        "",
        "## Genotype effects: learned vs generator",
        "",
        "Mean change in probability when only the named gene changes from *1/*1, over 2,000 "
        "held-out patients' clinical profiles and other genes (model), and the generator's true "
        "difference at equal numbers of failed trials (truth).",
        "",
        "| drug | genotype | target | truth | model |",
        "|---|---|---|---|---|",
        *(f"| {label} | {truth:+.3f} | {learned:+.3f} |" for label, truth, learned in effects),
        "",
        "## Serving: latency and throughput against the real server",
        "",
        "`python -m pharmacogenomics_svc` with the model above, mTLS on loopback, the mesh "
        "interceptor (audit, tracing), a real grpc.aio client. One synthetic patient with a "
        "current strong CYP2D6 inhibitor (paroxetine). The server is one process on a "
        "2-core machine that also runs the client: at 16 concurrent callers the calls queue, so "
        "latency grows and throughput stays near the single-caller rate.",
        "",
    ]
    for label, by_concurrency in load.items():
        lines += [f"### {label}", "", TABLE_HEADER]
        lines += [r.row() for r in by_concurrency.values()]
        lines.append("")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    kb = default_knowledge_base()
    started = time.perf_counter()
    training = from_cohort(generate_cohort(TRAINING), kb)
    fitted = fit_and_evaluate(training, kb, seed=TRAINING.seed)
    training_seconds = time.perf_counter() - started
    held_out_cohort = generate_cohort(HELD_OUT)
    held_out = from_cohort(held_out_cohort, kb)
    shifted = from_cohort(generate_cohort(SHIFTED), kb)
    accuracy = _accuracy(fitted, training, held_out, kb)
    shifted_table = _accuracy(fitted, training, shifted, kb)
    effects = _effects(fitted, held_out_cohort, kb)
    with tempfile.TemporaryDirectory(prefix="bench-pgx-") as tmp:
        model_dir, key_dir = Path(tmp) / "models", Path(tmp) / "keys"
        settings = Settings.from_env("pharmacogenomics", env={"NOVAMIND_KEY_DIR": str(key_dir)})
        save_models(ArtifactStore(model_dir, settings.secret("artifact", env={})), fitted, training)
        load = _serve_and_measure(model_dir, key_dir, held_out_cohort)
    _write(
        accuracy,
        shifted_table,
        effects,
        load,
        training_seconds,
        (len(training), len(held_out), len(shifted)),
    )
    print(DOC.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
