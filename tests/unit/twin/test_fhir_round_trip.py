"""The demo patient -> FHIR R4 Bundle -> PatientData again, field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class

from common.synthetic import CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from twin_orchestrator.demo import FIRST_VISIT_DAY, choose_patient, visit_days
from twin_orchestrator.fhir_import import patient_from_fhir
from twin_orchestrator.fhir_patient_export import bundle_from_patient_data
from twin_orchestrator.patient_bundle import patient_data


@pytest.fixture(scope="module")
def demo_data():
    """The demo's patient (same cohort and choice as `make demo`) at its last visit."""
    cohort = generate_cohort(CohortConfig(n_patients=200, n_days=180, seed=7))
    chosen = choose_patient(cohort)
    start = datetime.combine(cohort.config.start_date, time(), tzinfo=UTC)
    day = visit_days(cohort, chosen)[-1]
    assert day > FIRST_VISIT_DAY
    return patient_data(cohort, chosen, start + timedelta(days=day))


def test_demo_patient_round_trips_field_by_field(demo_data):
    bundle = bundle_from_patient_data("DEMO-0001", demo_data)
    back = patient_from_fhir(json.dumps(bundle))
    assert back.patient_id == "DEMO-0001"
    # Each top-level field on its own, so a failure names the field.
    for field in demo_data.DESCRIPTOR.fields:
        assert getattr(back.data, field.name) == getattr(demo_data, field.name), field.name
    assert back.data == demo_data
    # The demo patient has data in every field the round trip covers, and every metric
    # the synthetic worlds generate (heart rate and SDNN: test_clinic_metrics_round_trip).
    assert demo_data.medication_events and demo_data.current_medications
    assert demo_data.genotype.diplotypes and demo_data.genotype.hla_results
    assert {b.metric for b in demo_data.biometrics} == set(common_pb2.BiometricMetric.values()) - {
        common_pb2.BIOMETRIC_METRIC_UNSPECIFIED,
        common_pb2.BIOMETRIC_METRIC_HEART_RATE,
        common_pb2.BIOMETRIC_METRIC_HRV_SDNN,
    }
    assert not back.report.unknown_codes and not back.report.not_used


def test_exported_patient_bundle_is_valid_fhir_and_uses_the_documented_codes(demo_data):
    bundle = bundle_from_patient_data("DEMO-0001", demo_data)
    parsed = get_fhir_model_class("Bundle").model_validate(bundle)
    codes = {
        (c.system, c.code)
        for e in parsed.entry
        if e.resource.__resource_type__ == "Observation"
        for c in e.resource.code.coding
    }
    assert {
        ("http://loinc.org", "44261-6"),
        ("http://loinc.org", "70274-6"),
        ("http://loinc.org", "40443-4"),
        ("http://loinc.org", "55423-8"),
        ("http://loinc.org", "93832-4"),
        ("http://loinc.org", "84413-4"),
        ("http://loinc.org", "30525-0"),
    } <= codes
    statements = [
        e.resource for e in parsed.entry if e.resource.__resource_type__ == "MedicationStatement"
    ]
    assert all(s.medicationCodeableConcept.coding[0].system.endswith("rxnorm") for s in statements)


def test_current_medication_without_events_and_dose_units_round_trip(demo_data):
    data = type(demo_data)()
    data.CopyFrom(demo_data)
    data.current_medications.add(name="carbamazepine", daily_dose_mg=400)
    back = patient_from_fhir(bundle_from_patient_data("P", data))
    current = {m.name: m for m in back.data.current_medications}
    assert current["carbamazepine"].daily_dose_mg == 400.0
    assert not current["carbamazepine"].HasField("started_at")
    assert len(back.data.medication_events) == len(demo_data.medication_events)


def with_clinic_metrics(data, keep_model_metrics: bool = True):
    """The patient with heart rate (resting + 14 bpm) and SDNN (RMSSD x 1.3) added.

    Without ``keep_model_metrics`` every other metric is dropped: the patient has only
    heart rate and SDNN, as a clinic's records often do (LOINC 8867-4 and 80404-7).
    """
    out = type(data)()
    out.CopyFrom(data)
    del out.biometrics[:]
    derived = {
        common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: (
            common_pb2.BIOMETRIC_METRIC_HEART_RATE,
            lambda v: round(v + 14.0, 1),
        ),
        common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: (
            common_pb2.BIOMETRIC_METRIC_HRV_SDNN,
            lambda v: round(v * 1.3, 2),
        ),
    }
    for sample in data.biometrics:
        if sample.metric in derived:
            metric, value = derived[sample.metric]
            added = out.biometrics.add()
            added.CopyFrom(sample)
            added.metric, added.value = metric, value(sample.value)
        if keep_model_metrics:
            out.biometrics.add().CopyFrom(sample)
    return out


def test_heart_rate_and_sdnn_round_trip_with_their_loinc_codes_and_units(demo_data):
    data = with_clinic_metrics(demo_data)
    bundle = bundle_from_patient_data("DEMO-0001", data)
    parsed = get_fhir_model_class("Bundle").model_validate(bundle)
    written = {}
    for entry in parsed.entry:
        resource = entry.resource
        if resource.__resource_type__ != "Observation":
            continue
        coding = resource.code.coding[0]
        if coding.code in ("8867-4", "80404-7"):
            quantity = resource.valueQuantity
            written.setdefault(coding.code, set()).add(
                (coding.system, quantity.system, quantity.code, resource.category[0].coding[0].code)
            )
    assert written == {
        # FHIR R4 Vital Signs profile: heart rate in /min, category vital-signs.
        "8867-4": {("http://loinc.org", "http://unitsofmeasure.org", "/min", "vital-signs")},
        "80404-7": {("http://loinc.org", "http://unitsofmeasure.org", "ms", "activity")},
    }
    back = patient_from_fhir(json.dumps(bundle))
    assert back.data == data
    assert not back.report.unknown_codes and not back.report.not_used
    heart_rate = sum(b.metric == common_pb2.BIOMETRIC_METRIC_HEART_RATE for b in data.biometrics)
    sdnn = sum(b.metric == common_pb2.BIOMETRIC_METRIC_HRV_SDNN for b in data.biometrics)
    assert heart_rate > 100 and sdnn > 100
    assert back.report.mapped["heart rate"] == heart_rate
    assert back.report.mapped["HRV (SDNN)"] == sdnn


def test_a_cohort_with_heart_rate_and_sdnn_columns_sends_them():
    """A cohort loaded from CSV files may carry the columns no synthetic world fills."""
    cohort = generate_cohort(CohortConfig(n_patients=2, n_days=40, seed=3))
    frame = cohort.biometrics
    frame["heart_rate"] = frame["resting_heart_rate"] + 12.0
    frame["hrv_sdnn"] = float("nan")
    patient = frame["patient_id"].iloc[0]
    data = patient_data(cohort, patient)
    by_metric = {
        m: [b.value for b in data.biometrics if b.metric == m]
        for m in (
            common_pb2.BIOMETRIC_METRIC_HEART_RATE,
            common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE,
            common_pb2.BIOMETRIC_METRIC_HRV_SDNN,
        )
    }
    resting = by_metric[common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE]
    assert resting and by_metric[common_pb2.BIOMETRIC_METRIC_HEART_RATE] == pytest.approx(
        [v + 12.0 for v in resting]
    )
    assert by_metric[common_pb2.BIOMETRIC_METRIC_HRV_SDNN] == []  # missing days are not sent
