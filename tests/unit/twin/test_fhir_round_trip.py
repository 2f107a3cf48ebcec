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
