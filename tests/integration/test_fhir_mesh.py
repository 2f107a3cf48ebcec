"""FHIR through the real mesh (tiny trained models, mTLS on loopback):

- the demo patient exported to FHIR and imported again gives the same
  PatientData and, through the four servers, the same insights;
- the insights exported as FHIR validate with fhir.resources and parse back
  with the risk, the drug-gene findings and the recommendations in them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class

from common.proto_convert import from_timestamp
from common.synthetic import CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to
from tests.integration.mesh import running_mesh
from tests.unit.twin.test_fhir_round_trip import with_clinic_metrics
from twin_orchestrator.demo import DEMO_PATIENT_ID, choose_patient, visit_days
from twin_orchestrator.fhir_import import insights_request_from_fhir
from twin_orchestrator.fhir_insights_export import bundle_from_insights, write_insights_bundle
from twin_orchestrator.fhir_patient_export import bundle_from_patient_data
from twin_orchestrator.patient_bundle import patient_data
from twin_orchestrator.report import render_report
from twin_orchestrator.summary import format_insights

OK = common_pb2.SECTION_STATUS_OK


@pytest.fixture(scope="module")
def demo_request() -> twin_pb2.GenerateInsightsRequest:
    cohort = generate_cohort(CohortConfig(n_patients=200, n_days=180, seed=7))
    chosen = choose_patient(cohort)
    start = datetime.combine(cohort.config.start_date, time(), tzinfo=UTC)
    data = patient_data(cohort, chosen, start + timedelta(days=visit_days(cohort, chosen)[-1]))
    request = twin_pb2.GenerateInsightsRequest(patient_id=DEMO_PATIENT_ID, data=data)
    request.options.forecast_horizon_days = 21
    return request


def _comparable(response: twin_pb2.GenerateInsightsResponse) -> twin_pb2.GenerateInsightsResponse:
    copy = twin_pb2.GenerateInsightsResponse()
    copy.CopyFrom(response)
    for name in ("request_id", "snapshot_id", "generated_at"):
        copy.ClearField(name)
    for section in (copy.forecast, copy.biometric, copy.pharmacogenomics):
        section.result.ClearField("latency")
    return copy


async def test_demo_patient_through_fhir_gives_the_same_insights(
    tmp_path, pki_dir, trained_models, demo_request
):
    bundle_path = tmp_path / "demo-patient.json"
    bundle_path.write_text(json.dumps(bundle_from_patient_data(DEMO_PATIENT_ID, demo_request.data)))
    from_fhir, report = insights_request_from_fhir(bundle_path)
    from_fhir.options.CopyFrom(demo_request.options)
    assert from_fhir.patient_id == DEMO_PATIENT_ID
    for field in demo_request.data.DESCRIPTOR.fields:
        name = field.name
        assert getattr(from_fhir.data, name) == getattr(demo_request.data, name), name
    assert not report.unknown_codes

    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            direct = await stub.GenerateInsights(demo_request, timeout=60)
            via_fhir = await stub.GenerateInsights(from_fhir, timeout=60)
    assert direct.forecast.result.status == OK
    assert direct.pharmacogenomics.result.status == OK
    assert direct.recommendations
    assert _comparable(via_fhir) == _comparable(direct)


async def test_insights_export_validates_and_parses_back(
    tmp_path, pki_dir, trained_models, demo_request
):
    request = twin_pb2.GenerateInsightsRequest()
    request.CopyFrom(demo_request)
    # A carbamazepine user who carries HLA-B*15:02: a strong "avoid" drug-gene finding.
    del request.data.genotype.hla_results[:]
    request.data.genotype.hla_results.add(
        allele="HLA-B*15:02", status=common_pb2.HLA_STATUS_POSITIVE
    )
    request.data.current_medications.add(name="carbamazepine", daily_dose_mg=400)
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            response = await stub.GenerateInsights(request, timeout=60)
    assert response.pharmacogenomics.result.status == OK

    path = write_insights_bundle(tmp_path / "insights.json", DEMO_PATIENT_ID, response)
    parsed = get_fhir_model_class("Bundle").model_validate_json(path.read_text())
    by_type: dict[str, list] = {}
    for entry in parsed.entry:
        by_type.setdefault(entry.resource.__resource_type__, []).append(entry.resource)

    (patient,) = by_type["Patient"]
    assert patient.identifier[0].value == DEMO_PATIENT_ID
    overall, *periods = by_type["RiskAssessment"]
    level = {
        common_pb2.RISK_LEVEL_LOW: "low",
        common_pb2.RISK_LEVEL_ELEVATED: "moderate",
        common_pb2.RISK_LEVEL_HIGH: "high",
        common_pb2.RISK_LEVEL_CRITICAL: "high",
    }[response.overall_risk]
    assert overall.prediction[0].qualitativeRisk.coding[0].code == level
    assert [n.text for n in overall.note or []] == list(response.risk_drivers)

    expected_periods = [p for f in response.forecast.forecast.forecasts for p in f.risk_periods]
    assert len(periods) == len(expected_periods)
    for resource, period in zip(periods, expected_periods, strict=True):
        prediction = resource.prediction[0]
        assert float(prediction.probabilityDecimal) == pytest.approx(
            period.peak_probability, abs=1e-4
        )
        assert (
            str(prediction.whenPeriod.start)[:10] == f"{from_timestamp(period.start_date):%Y-%m-%d}"
        )
        assert str(prediction.whenPeriod.end)[:10] == f"{from_timestamp(period.end_date):%Y-%m-%d}"
        assert prediction.outcome.text == period.threshold_label

    issues = {i.implicated[0].display: i for i in by_type["DetectedIssue"]}
    carbamazepine = next(
        f
        for f in response.pharmacogenomics.interactions.interactions
        if f.medication == "carbamazepine" and f.gene.startswith("HLA-B")
    )
    assert carbamazepine.action == pgx.GUIDANCE_ACTION_AVOID
    issue = issues["carbamazepine"]
    assert issue.severity == "high"  # CPIC strength "Strong"
    assert carbamazepine.strength == pgx.CLASSIFICATION_STRENGTH_STRONG
    assert issue.evidence[0].detail[0].identifier.value == carbamazepine.evidence.pmid
    assert issue.evidence[0].detail[0].identifier.value == "29392710"
    actionable = [
        f
        for f in response.pharmacogenomics.interactions.interactions
        if f.action not in (pgx.GUIDANCE_ACTION_USE_STANDARD, pgx.GUIDANCE_ACTION_NO_RECOMMENDATION)
    ]
    assert len(by_type["DetectedIssue"]) == len(actionable)

    tasks = by_type["Task"]
    assert [t.description for t in tasks] == [r.text for r in response.recommendations]
    (care_plan,) = by_type["CarePlan"]
    task_urls = [e.fullUrl for e in parsed.entry if e.resource.__resource_type__ == "Task"]
    assert [a.reference.reference for a in care_plan.activity] == task_urls
    first = response.recommendations[0]
    assert (
        tasks[0].priority
        == {
            common_pb2.PRIORITY_URGENT: "asap",
            common_pb2.PRIORITY_HIGH: "urgent",
            common_pb2.PRIORITY_MEDIUM: "routine",
            common_pb2.PRIORITY_LOW: "routine",
        }[first.priority]
    )
    # The same function returns the validated dict the file holds.
    assert json.loads(path.read_text())["entry"][1]["resource"]["resourceType"] == "RiskAssessment"
    assert bundle_from_insights(DEMO_PATIENT_ID, response)["type"] == "collection"


async def test_heart_rate_and_sdnn_through_fhir_and_the_mesh(
    tmp_path, pki_dir, trained_models, demo_request
):
    """With the new metrics added: same insights via FHIR. With only them: an analysis."""
    both = twin_pb2.GenerateInsightsRequest()
    both.CopyFrom(demo_request)
    both.data.CopyFrom(with_clinic_metrics(demo_request.data))
    only_new = twin_pb2.GenerateInsightsRequest()
    only_new.CopyFrom(demo_request)
    only_new.data.CopyFrom(with_clinic_metrics(demo_request.data, keep_model_metrics=False))
    imported = []
    for name, request in (("both", both), ("only-new", only_new)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(bundle_from_patient_data(DEMO_PATIENT_ID, request.data)))
        from_fhir, report = insights_request_from_fhir(path)
        from_fhir.options.CopyFrom(request.options)
        assert from_fhir.data == request.data
        assert not report.unknown_codes and not report.not_used
        imported.append(from_fhir)

    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            direct = await stub.GenerateInsights(both, timeout=60)
            via_fhir = await stub.GenerateInsights(imported[0], timeout=60)
            new_only = await stub.GenerateInsights(imported[1], timeout=60)
    assert direct.biometric.result.status == OK
    assert _comparable(via_fhir) == _comparable(direct)
    warning = direct.biometric.correlations.early_warning
    new_metrics = [common_pb2.BIOMETRIC_METRIC_HEART_RATE, common_pb2.BIOMETRIC_METRIC_HRV_SDNN]
    assert list(warning.unused_metrics) == new_metrics
    assert {c.metric for c in direct.biometric.correlations.correlations} >= set(new_metrics)

    section = new_only.biometric
    assert section.result.status == OK
    correlated = {c.metric for c in section.correlations.correlations}
    assert correlated and correlated <= set(new_metrics)
    assert {b.metric for b in section.anomalies.baselines} == set(new_metrics)
    assert {m.metric for m in section.monitoring_plan.metrics} == set(new_metrics)
    only_warning = section.correlations.early_warning
    assert only_warning.insufficient_data and list(only_warning.unused_metrics) == new_metrics
    assert "not among the model's inputs" in only_warning.detail
    summary = format_insights(new_only)
    assert "Early warning: not scored (needs biometrics on at least 28 of the last" in summary
    assert "not used by the early-warning model (trained without them): heart rate and " in summary
    html = render_report(new_only, only_new.data)
    assert (
        "Early warning: not scored — too little recent data of the metrics the model uses" in html
    )
    assert "heart rate and HRV (SDNN) are not among the model&#39;s inputs" in html
    assert "HRV (SDNN)" in html and "Heart rate" in html  # the plan and the charts name them
    for response, data in ((new_only, only_new.data), (direct, both.data)):
        assert "Unknown metric" not in render_report(response, data)
        assert "monitor ?" not in format_insights(response)
