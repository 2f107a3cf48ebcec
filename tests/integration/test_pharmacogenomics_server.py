"""The pharmacogenomics service on a real server: loopback, mTLS, the mesh interceptor.

Guidance expectations are the CPIC/FDA-label facts themselves (HLA-B*15:02 and
aromatic anticonvulsants, CYP2C19 and citalopram, aripiprazole's label); the
model's directions are checked against the synthetic generator's own true
probabilities, computed here from the cohort.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.settings import Settings
from common.synthetic import MEDICATIONS, Cohort
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc as pb_grpc
from pharmacogenomics_svc.bootstrap import build
from pharmacogenomics_svc.knowledge_base import DEFAULT_DATA_DIR, default_knowledge_base
from pharmacogenomics_svc.models.response_model import MODEL_NAME
from tests.conftest import channel_to, running
from tests.unit.pharmacogenomics.trained_model import held_out_cohort, write_model

PSEUDONYM = "psn_" + "5" * 32
TIMEOUT = 30
SEX = {"female": common_pb2.SEX_FEMALE, "male": common_pb2.SEX_MALE, "other": common_pb2.SEX_OTHER}
AROMATIC_ANTICONVULSANTS = ("carbamazepine", "oxcarbazepine", "phenytoin")


def _settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings("pharmacogenomics")


@pytest.fixture
async def stub(
    make_settings: Callable[..., Settings], pki_dir: Path
) -> AsyncIterator[pb_grpc.PharmacogenomicsServiceStub]:
    """A client of a server that has the session's trained model."""
    settings = _settings(make_settings)
    write_model(settings.model_dir, settings.secret("artifact"))
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            yield pb_grpc.PharmacogenomicsServiceStub(channel)


@pytest.fixture
async def untrained_stub(
    make_settings: Callable[..., Settings], pki_dir: Path
) -> AsyncIterator[pb_grpc.PharmacogenomicsServiceStub]:
    settings = _settings(make_settings)
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            yield pb_grpc.PharmacogenomicsServiceStub(channel)


def _genotype(
    diplotypes: dict[str, str] | None = None,
    hla: dict[str, bool] | None = None,
    calls: dict[str, str] | None = None,
) -> common_pb2.Genotype:
    genotype = common_pb2.Genotype()
    for gene, text in (diplotypes or {}).items():
        genotype.diplotypes.add(gene=gene, diplotype=text)
    for allele, positive in (hla or {}).items():
        status = common_pb2.HLA_STATUS_POSITIVE if positive else common_pb2.HLA_STATUS_NEGATIVE
        genotype.hla_results.add(allele=allele, status=status)
    for rsid, call in (calls or {}).items():
        genotype.variant_calls.add(rsid=rsid, genotype=call)
    return genotype


def _analyze(
    genotype: common_pb2.Genotype, candidates: tuple[str, ...], current: tuple[str, ...] = ()
) -> pb.AnalyzeGeneMedicationInteractionsRequest:
    return pb.AnalyzeGeneMedicationInteractionsRequest(
        patient_pseudonym=PSEUDONYM,
        genotype=genotype,
        current_medications=[common_pb2.Medication(name=n) for n in current],
        candidate_medications=list(candidates),
    )


def _interactions(
    response: pb.AnalyzeGeneMedicationInteractionsResponse, drug: str
) -> list[pb.GeneDrugInteraction]:
    return [i for i in response.interactions if i.medication == drug]


# ----------------------------------------------------------------------------- guidance


async def test_hla_b_15_02_carrier_must_avoid_aromatic_anticonvulsants(stub) -> None:
    genotype = _genotype({"CYP2C9": "*1/*1"}, {"HLA-B*15:02": True, "HLA-A*31:01": False})
    reply = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(genotype, AROMATIC_ANTICONVULSANTS), timeout=TIMEOUT
    )
    hla = next(p for p in reply.phenotypes if p.gene == "HLA-B*15:02")
    assert hla.genotype_phenotype == pb.PHENOTYPE_POSITIVE
    for drug in AROMATIC_ANTICONVULSANTS:
        from_hla_b = [i for i in _interactions(reply, drug) if "HLA-B*15:02" in i.gene]
        assert from_hla_b, drug
        for interaction in from_hla_b:
            assert interaction.action == pb.GUIDANCE_ACTION_AVOID, drug
            assert interaction.strength == pb.CLASSIFICATION_STRENGTH_STRONG, drug
            assert interaction.evidence.pmid in {"29392710", "32779747"}  # CPIC HLA guidelines
            assert interaction.rationale and interaction.what_would_change
    assert not reply.unsupported_medications


async def test_cyp2c19_poor_metabolizer_on_citalopram(stub) -> None:
    reply = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(_genotype({"CYP2C19": "*2/*2"}), ("citalopram",)), timeout=TIMEOUT
    )
    [interaction] = _interactions(reply, "citalopram")
    assert interaction.gene == "CYP2C19"
    assert interaction.phenotype == pb.PHENOTYPE_POOR_METABOLIZER
    assert interaction.action == pb.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE
    assert interaction.strength == pb.CLASSIFICATION_STRENGTH_STRONG
    assert "50% reduction of the standard maintenance dose" in interaction.recommendation
    assert interaction.evidence.pmid == "37032427"  # CPIC SSRI/SNRI guideline 2023
    assert not interaction.is_current and not interaction.phenoconverted


async def test_paroxetine_makes_a_normal_cyp2d6_genotype_poor_for_aripiprazole(stub) -> None:
    reply = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(_genotype({"CYP2D6": "*1/*1"}), ("aripiprazole",), current=("paroxetine",)),
        timeout=TIMEOUT,
    )
    [cyp2d6] = [p for p in reply.phenotypes if p.gene == "CYP2D6"]
    assert cyp2d6.genotype_phenotype == pb.PHENOTYPE_NORMAL_METABOLIZER
    assert cyp2d6.effective_phenotype == pb.PHENOTYPE_POOR_METABOLIZER
    assert (cyp2d6.activity_score, cyp2d6.effective_activity_score) == (2.0, 0.0)
    [conversion] = reply.phenoconversions
    assert (conversion.gene, conversion.inhibitor) == ("CYP2D6", "paroxetine")
    assert conversion.strength == pb.INHIBITOR_STRENGTH_STRONG
    assert "paroxetine" in conversion.what_would_change
    assert "Normal Metabolizer" in conversion.what_would_change

    [aripiprazole] = _interactions(reply, "aripiprazole")
    assert aripiprazole.phenotype == pb.PHENOTYPE_POOR_METABOLIZER
    assert aripiprazole.phenoconverted
    assert aripiprazole.strength == pb.CLASSIFICATION_STRENGTH_FDA_LABEL
    assert aripiprazole.action == pb.GUIDANCE_ACTION_ADJUST_DOSE
    assert "half of the usual dose" in aripiprazole.recommendation
    assert "paroxetine" in aripiprazole.what_would_change
    # Paroxetine's own guidance uses the genotype: its autoinhibition is part of CPIC's advice.
    [paroxetine] = _interactions(reply, "paroxetine")
    assert paroxetine.is_current
    assert paroxetine.phenotype == pb.PHENOTYPE_NORMAL_METABOLIZER


async def test_unknown_allele_is_indeterminate_with_the_reason(stub) -> None:
    reply = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(_genotype({"CYP2D6": "*1/*999"}), ("paroxetine",)), timeout=TIMEOUT
    )
    [cyp2d6] = reply.phenotypes
    assert cyp2d6.genotype_phenotype == pb.PHENOTYPE_INDETERMINATE
    assert cyp2d6.effective_phenotype == pb.PHENOTYPE_INDETERMINATE
    assert "*999" in cyp2d6.explanation
    [paroxetine] = _interactions(reply, "paroxetine")
    assert paroxetine.phenotype == pb.PHENOTYPE_INDETERMINATE


async def test_bad_diplotype_syntax_is_invalid_argument_naming_gene_and_allele(stub) -> None:
    genotype = _genotype({"CYP2C19": "*1/*1", "CYP2D6": "*1//*4"})
    requests = {
        stub.AnalyzeGeneMedicationInteractions: _analyze(genotype, ("paroxetine",)),
        stub.PredictMedicationResponse: pb.PredictMedicationResponseRequest(
            patient_pseudonym=PSEUDONYM, genotype=genotype, candidate_medications=["paroxetine"]
        ),
        stub.PredictSideEffects: pb.PredictSideEffectsRequest(
            patient_pseudonym=PSEUDONYM, genotype=genotype
        ),
    }
    for call, request in requests.items():
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(request, timeout=TIMEOUT)
        error = failed.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = str(error.details())
        assert "CYP2D6" in details and "'//'" in details
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None
        bad_request = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad_request)
        [violation] = bad_request.field_violations
        assert violation.field == "genotype.diplotypes[1].diplotype"
        assert "CYP2D6" in violation.description and "'//'" in violation.description


async def test_rsid_calls_are_translated_to_a_diplotype(stub) -> None:
    calls = {"rs4244285": "A/A", "rs4986893": "G/G", "rs12248560": "C/C"}  # CYP2C19 *2/*2
    reply = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(_genotype(calls=calls), ("citalopram",)), timeout=TIMEOUT
    )
    [cyp2c19] = reply.phenotypes
    assert (cyp2c19.gene, cyp2c19.diplotype) == ("CYP2C19", "*2/*2")
    assert cyp2c19.genotype_phenotype == pb.PHENOTYPE_POOR_METABOLIZER
    assert "rs4244285" in cyp2c19.explanation
    [citalopram] = _interactions(reply, "citalopram")
    assert citalopram.action == pb.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE


async def test_list_supported_medications_filters_by_gene(stub) -> None:
    everything = await stub.ListSupportedMedications(
        pb.ListSupportedMedicationsRequest(), timeout=TIMEOUT
    )
    with (DEFAULT_DATA_DIR / "medications.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [m.name for m in everything.medications] == sorted(r["name"] for r in rows)
    cyp2c19 = await stub.ListSupportedMedications(
        pb.ListSupportedMedicationsRequest(gene="CYP2C19")
    )
    expected = sorted(r["name"] for r in rows if "CYP2C19" in r["genes"].split(";"))
    assert [m.name for m in cyp2c19.medications] == expected
    citalopram = next(m for m in cyp2c19.medications if m.name == "citalopram")
    assert citalopram.drug_class.startswith("SSRI")
    assert any(e.pmid == "37032427" and e.strength == "Strong" for e in citalopram.evidence)
    assert cyp2c19.knowledge_base_version == default_knowledge_base().data_version.label


# ----------------------------------------------------------------------------- predictions


def _predict(
    genotype: common_pb2.Genotype,
    candidates: tuple[str, ...],
    clinical: common_pb2.ClinicalProfile | None = None,
    current: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "patient_pseudonym": PSEUDONYM,
        "genotype": genotype,
        "candidate_medications": list(candidates),
        "current_medications": [common_pb2.Medication(name=n) for n in current],
        "clinical": clinical or common_pb2.ClinicalProfile(),
    }


async def test_strong_avoid_overrides_the_prediction_and_ranks_last(stub) -> None:
    genotype = _genotype({"CYP2C19": "*1/*1"}, {"HLA-B*15:02": True})
    kwargs = _predict(genotype, ("carbamazepine", "sertraline", "escitalopram", "bupropion"))
    reply = await stub.PredictMedicationResponse(
        pb.PredictMedicationResponseRequest(**kwargs), timeout=TIMEOUT
    )
    assert [p.rank for p in reply.predictions] == [1, 2, 3, 4]
    last = reply.predictions[-1]
    assert last.medication == "carbamazepine"
    assert last.guidance_overrides_prediction
    assert last.guidance_action == pb.GUIDANCE_ACTION_AVOID
    assert last.guidance_strength == pb.CLASSIFICATION_STRENGTH_STRONG
    assert "overrides the prediction" in last.rationale
    assert not any(p.guidance_overrides_prediction for p in reply.predictions[:-1])
    others = [p.response_probability for p in reply.predictions[:-1]]
    assert others == sorted(others, reverse=True)
    assert reply.model.name == MODEL_NAME

    side_effects = await stub.PredictSideEffects(
        pb.PredictSideEffectsRequest(**kwargs), timeout=TIMEOUT
    )
    worst = side_effects.predictions[-1]
    assert worst.medication == "carbamazepine" and worst.guidance_overrides_prediction
    assert worst.risk_level == common_pb2.RISK_LEVEL_CRITICAL
    assert "SJS/TEN" in worst.rationale


async def test_analysis_and_predictions_use_the_same_effective_phenotypes(stub) -> None:
    genotype = _genotype({"CYP2D6": "*1/*1", "CYP2C19": "*1/*1"})
    candidates = ("aripiprazole", "citalopram")
    clinical = common_pb2.ClinicalProfile(age_years=50, sex=common_pb2.SEX_MALE)
    kwargs = _predict(genotype, candidates, clinical, current=("paroxetine",))
    analysis = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(genotype, candidates, current=("paroxetine",)), timeout=TIMEOUT
    )
    responses = await stub.PredictMedicationResponse(
        pb.PredictMedicationResponseRequest(**kwargs), timeout=TIMEOUT
    )
    side_effects = await stub.PredictSideEffects(
        pb.PredictSideEffectsRequest(**kwargs), timeout=TIMEOUT
    )
    for drug in candidates:
        [interaction] = _interactions(analysis, drug)
        response = next(p for p in responses.predictions if p.medication == drug)
        side_effect = next(p for p in side_effects.predictions if p.medication == drug)
        assert response.guidance_action == side_effect.guidance_action == interaction.action
        assert response.guidance_strength == interaction.strength
    aripiprazole = next(p for p in side_effects.predictions if p.medication == "aripiprazole")
    assert "Poor Metabolizer (effective, because of paroxetine)" in aripiprazole.rationale
    assert "If paroxetine is stopped" in aripiprazole.what_would_change
    assert {e.source.split(" ")[0] for e in aripiprazole.evidence} >= {"FDA", "Model"}


async def test_an_unknown_medication_is_unsupported_everywhere_with_no_number(stub) -> None:
    """One rule for all three RPCs: a name neither the knowledge base nor the model knows
    is listed as unsupported and never gets a probability."""
    genotype = _genotype({"CYP2C19": "*1/*1", "CYP2D6": "*1/*1"})
    candidates = ("sertraline", "madeupazine", "bupropion")
    analysis = await stub.AnalyzeGeneMedicationInteractions(
        _analyze(genotype, candidates), timeout=TIMEOUT
    )
    response = await stub.PredictMedicationResponse(
        pb.PredictMedicationResponseRequest(**_predict(genotype, candidates)), timeout=TIMEOUT
    )
    side_effects = await stub.PredictSideEffects(
        pb.PredictSideEffectsRequest(**_predict(genotype, candidates)), timeout=TIMEOUT
    )
    assert "madeupazine" in analysis.unsupported_medications
    assert not _interactions(analysis, "madeupazine")
    for reply in (response, side_effects):
        assert list(reply.unsupported_medications) == ["madeupazine"]
        # Known drugs keep their numbers; bupropion has no CPIC guidance but the model knows it.
        assert {p.medication for p in reply.predictions} == {"sertraline", "bupropion"}
        assert all("madeupazine" not in p.rationale for p in reply.predictions)
    assert [p.rank for p in response.predictions] == [1, 2]


async def test_no_candidates_means_every_supported_antidepressant(stub) -> None:
    reply = await stub.PredictMedicationResponse(
        pb.PredictMedicationResponseRequest(**_predict(_genotype({"CYP2D6": "*1/*1"}), ())),
        timeout=TIMEOUT,
    )
    with (DEFAULT_DATA_DIR / "medications.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    in_knowledge_base = {r["name"] for r in rows}
    antidepressants = {r["name"] for r in rows if "antidepressant" in r["drug_class"].lower()}
    trained_only = {m for m in MEDICATIONS if m not in in_knowledge_base}  # e.g. bupropion
    assert {p.medication for p in reply.predictions} == antidepressants | trained_only
    assert all(0.0 < p.response_probability < 1.0 for p in reply.predictions)


def _true_effect(cohort: Cohort, drug: str, column: str, variant: set[str], target: str) -> float:
    """The generator's true difference (variant minus *1/*1) in one drug's probability.

    True probabilities depend only on drug, genotype and failed trials so far, so
    comparing within equal numbers of failed trials isolates the genotype.
    """
    outcomes = cohort.outcomes.reset_index(drop=True)
    trials = outcomes.assign(earlier=outcomes.groupby("patient_id").cumcount()).merge(
        cohort.patients[["patient_id", column, "prior_treatment_failures"]], on="patient_id"
    )
    trials = trials[trials.medication == drug]
    failures = trials.prior_treatment_failures + trials.earlier
    carriers = trials[trials[column].isin(variant)].groupby(failures)[target].mean()
    reference = trials[trials[column] == "*1/*1"].groupby(failures)[target].mean()
    common = carriers.index.intersection(reference.index)
    assert len(common), f"no {drug} trials of both genotypes in the held-out cohort"
    return float((carriers[common] - reference[common]).mean())


async def _model_effect(
    call: Callable[..., object],
    request_type: type,
    field: str,
    patients: pd.DataFrame,
    drug: str,
    gene: str,
    diplotype: str,
) -> float:
    """Mean over ``patients`` of (probability with ``diplotype``) - (with *1/*1) on ``drug``."""
    differences = []
    for patient in patients.itertuples(index=False):
        clinical = common_pb2.ClinicalProfile(
            age_years=int(patient.age),
            sex=SEX[patient.sex],
            baseline_phq9=float(patient.baseline_phq9),
            prior_treatment_failures=int(patient.prior_treatment_failures),
        )
        values = []
        for text in (diplotype, "*1/*1"):
            diplotypes = {g.upper(): getattr(patient, g) for g in ("cyp2d6", "cyp2c19", "cyp2b6")}
            diplotypes[gene] = text
            request = request_type(**_predict(_genotype(diplotypes), (drug,), clinical))
            reply = await call(request, timeout=TIMEOUT)  # type: ignore[misc]
            values.append(getattr(reply.predictions[0], field))
        differences.append(values[0] - values[1])
    return float(np.mean(differences))


async def test_predictions_move_with_genotype_as_the_generator_says(stub) -> None:
    cohort = held_out_cohort()  # patients the model never saw
    patients = cohort.patients.iloc[:25]
    checks = (
        # drug, gene, the diplotypes the generator counts as carriers, true probability column
        ("citalopram", "CYP2C19", {"*2/*2", "*2/*3", "*3/*3"}, "true_response_probability"),
        ("citalopram", "CYP2C19", {"*17/*17"}, "true_response_probability"),
        ("paroxetine", "CYP2D6", {"*4/*4", "*4/*5", "*5/*5"}, "true_side_effect_probability"),
    )
    for drug, gene, variants, target in checks:
        truth = _true_effect(cohort, drug, gene.lower(), variants, target)
        call: Callable[..., Any]
        request_type: type[Any]
        if target == "true_response_probability":
            call, request_type, field = (
                stub.PredictMedicationResponse,
                pb.PredictMedicationResponseRequest,
                "response_probability",
            )
        else:
            call, request_type, field = (
                stub.PredictSideEffects,
                pb.PredictSideEffectsRequest,
                "side_effect_probability",
            )
        model = await _model_effect(
            call, request_type, field, patients, drug, gene, sorted(variants)[0]
        )
        assert abs(truth) > 0.02, (drug, gene, truth)  # the generator has an effect here
        assert np.sign(model) == np.sign(truth), (drug, gene, sorted(variants), model, truth)
        assert abs(model) > 0.005, (drug, gene, model)


# ----------------------------------------------------------------------------- without a model


async def test_without_a_model_only_predictions_fail_precondition(untrained_stub) -> None:
    genotype = _genotype({"CYP2C19": "*2/*2"})
    for call, request in (
        (
            untrained_stub.PredictMedicationResponse,
            pb.PredictMedicationResponseRequest(**_predict(genotype, ("citalopram",))),
        ),
        (
            untrained_stub.PredictSideEffects,
            pb.PredictSideEffectsRequest(**_predict(genotype, ("citalopram",))),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(request, timeout=TIMEOUT)
        assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = str(failed.value.details())
        assert MODEL_NAME in details
        assert "python -m pharmacogenomics_svc.train" in details
    analysis = await untrained_stub.AnalyzeGeneMedicationInteractions(
        _analyze(genotype, ("citalopram",)), timeout=TIMEOUT
    )
    assert analysis.interactions[0].action == pb.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE
    info = await untrained_stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT)
    assert list(info.models) == []
    assert info.knowledge_base_version == default_knowledge_base().data_version.label


async def test_model_info_over_the_wire(stub) -> None:
    info = await stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=TIMEOUT)
    [model] = info.models
    assert model.name == MODEL_NAME and model.signature_verified
    for metric in ("response_brier", "response_ece", "side_effect_brier", "side_effect_ece"):
        assert metric in model.metrics
    assert model.metrics["response_brier"] < model.metrics["response_base_rate_brier"]
