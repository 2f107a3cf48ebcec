"""FHIR R4 Bundle -> PatientData: every mapped code, units, unknown codes, malformed entries,
medications by RxNorm and by text, genotypes and HLA results."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.proto_convert import from_timestamp
from novamind.common.v1 import common_pb2
from twin_orchestrator.fhir_import import (
    FhirImportError,
    insights_request_from_fhir,
    patient_from_fhir,
    read_fhir_bundle,
)

TINY = Path(__file__).resolve().parents[2] / "data" / "fhir" / "tiny_bundle.json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TWIN = "https://fhir.novamind.example/CodeSystem/twin"
PATIENT = {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "x1"}}


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [copy.deepcopy(PATIENT)]
    entries += [{"fullUrl": f"urn:uuid:e{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _observation(system: str, code: str, **fields: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": "2026-03-02T07:00:00Z",
    }
    resource.update(fields)
    return resource


def _quantity(value: float, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "system": UCUM, "code": code}}


@pytest.fixture(scope="module")
def tiny():
    return read_fhir_bundle(TINY)


def _at(stamp) -> datetime:
    return from_timestamp(stamp)


# --- the hand-written bundle: each mapped code ---------------------------------------


def test_patient_identity_sex_and_age_from_birth_date(tiny):
    assert tiny.patient_id == "MRN-7734021"
    assert tiny.data.clinical.sex == common_pb2.SEX_FEMALE
    # Born 1990-06-15; the latest record is in March 2026, before the birthday: 35.
    assert tiny.data.clinical.age_years == 35
    assert tiny.data.clinical.baseline_phq9 == 14


def test_symptom_codes_map_to_instruments_with_scores_and_times(tiny):
    got = [(s.instrument, s.score, _at(s.observed_at)) for s in tiny.data.symptoms]
    when = datetime(2026, 3, 1, 19, 30, tzinfo=UTC)  # 20:30+01:00
    assert got == [
        (common_pb2.INSTRUMENT_PHQ9, 14.0, when),  # LOINC 44261-6, valueInteger
        (common_pb2.INSTRUMENT_GAD7, 9.0, when),  # LOINC 70274-6, {score}
        (common_pb2.INSTRUMENT_MOOD, 4.5, when),  # project mood-rating, no unit
        (common_pb2.INSTRUMENT_ANXIETY, 6.0, when),  # project anxiety-rating, amended
    ]


def test_biometric_codes_units_and_granularity(tiny):
    got = [
        (b.metric, round(b.value, 6), _at(b.measured_at), b.granularity)
        for b in tiny.data.biometrics
    ]
    day = common_pb2.SAMPLE_GRANULARITY_DAY
    assert got == [
        # 8867-4 heart rate in /min, a spot reading at 09:14Z -> a sample of that day
        (
            common_pb2.BIOMETRIC_METRIC_HEART_RATE,
            88.0,
            datetime(2026, 3, 2, 9, 14, tzinfo=UTC),
            day,
        ),
        # 40443-4 in {beats}/min, date only -> that day
        (
            common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE,
            63.5,
            datetime(2026, 3, 2, tzinfo=UTC),
            day,
        ),
        # 80404-7 HRV SDNN given in seconds -> ms
        (common_pb2.BIOMETRIC_METRIC_HRV_SDNN, 52.0, datetime(2026, 3, 2, tzinfo=UTC), day),
        # project hrv-rmssd given in seconds -> ms
        (common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, 41.0, datetime(2026, 3, 2, tzinfo=UTC), day),
        # 41950-7 steps in 24 h
        (common_pb2.BIOMETRIC_METRIC_STEPS, 6120.0, datetime(2026, 3, 2, tzinfo=UTC), day),
        # 55423-8 over one hour -> hourly sample at the period start (09:00+01:00)
        (
            common_pb2.BIOMETRIC_METRIC_STEPS,
            1250.0,
            datetime(2026, 3, 3, 8, tzinfo=UTC),
            common_pb2.SAMPLE_GRANULARITY_HOUR,
        ),
        # 93832-4, 405 min over the night -> 6.75 h on the morning the patient woke up
        (
            common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
            6.75,
            datetime(2026, 3, 3, 5, 55, tzinfo=UTC),
            day,
        ),
    ]


def test_heart_rate_and_sdnn_are_mapped_not_reported_as_not_used(tiny):
    reasons = " | ".join(tiny.report.not_used)
    assert "8867-4" not in reasons and "80404-7" not in reasons
    assert "heart rate" not in reasons and "SDNN" not in reasons
    assert tiny.report.mapped["heart rate"] == 1 and tiny.report.mapped["HRV (SDNN)"] == 1
    assert tiny.report.mapped["resting heart rate"] == 1 and tiny.report.mapped["HRV (RMSSD)"] == 1
    lines = "\n".join(tiny.report.lines())
    assert ", heart rate 1," in lines and "HRV (SDNN) 1," in lines


def test_genotype_per_genomics_reporting_ig(tiny):
    diplotypes = [(d.gene, d.diplotype) for d in tiny.data.genotype.diplotypes]
    # CYP2C19 from the PharmVar-coded value and the HGNC gene component; CYP2D6 from a
    # 69548-6 observation with a 84413-4 component and the gene as text.
    assert diplotypes == [("CYP2C19", "*2/*17"), ("CYP2D6", "*1/*4")]


def test_hla_results_from_genotype_and_carrier_text(tiny):
    hla = [(h.allele, h.status) for h in tiny.data.genotype.hla_results]
    assert hla == [
        ("HLA-B*15:02", common_pb2.HLA_STATUS_POSITIVE),  # GL string HLA-B*15:02+HLA-B*07:02
        ("HLA-A*31:01", common_pb2.HLA_STATUS_NEGATIVE),  # "HLA-A*31:01 negative"
    ]


def test_medications_by_rxnorm_and_by_text_with_periods_and_doses(tiny):
    events = [
        (e.medication, e.type, e.daily_dose_mg, _at(e.occurred_at))
        for e in tiny.data.medication_events
    ]
    assert events == [
        # RxNorm 321988 -> escitalopram, 10 mg once a day, Jan 5 to Feb 20
        (
            "escitalopram",
            common_pb2.MEDICATION_EVENT_TYPE_START,
            10.0,
            datetime(2026, 1, 5, 8, tzinfo=UTC),
        ),
        (
            "escitalopram",
            common_pb2.MEDICATION_EVENT_TYPE_STOP,
            0.0,
            datetime(2026, 2, 20, 8, tzinfo=UTC),
        ),
        # text "Sertraline 50 MG Oral Tablet", 50 mg twice a day -> 100 mg/day
        (
            "sertraline",
            common_pb2.MEDICATION_EVENT_TYPE_START,
            100.0,
            datetime(2026, 2, 21, 8, tzinfo=UTC),
        ),
    ]
    current = [(m.name, m.daily_dose_mg) for m in tiny.data.current_medications]
    assert current == [("sertraline", 100.0)]
    assert _at(tiny.data.current_medications[0].started_at) == datetime(2026, 2, 21, 8, tzinfo=UTC)
    assert not tiny.data.current_medications[0].HasField("stopped_at")
    # MedicationRequest intent=proposal with RxNorm 42347 -> a candidate
    assert list(tiny.data.candidate_medications) == ["bupropion"]


def test_unknown_code_and_unread_resources_are_counted_and_listed(tiny):
    assert tiny.report.unknown_codes == {"Observation http://loinc.org|2339-0": 1}
    assert tiny.report.not_used["Condition resources are not read"] == 1
    assert tiny.report.not_used["Observation with status 'entered-in-error'"] == 1
    lines = "\n".join(tiny.report.lines())
    assert "unknown codes: 1" in lines and "http://loinc.org|2339-0 ×1" in lines
    # Every entry is accounted for: mapped, unknown or not used.
    total = (
        sum(tiny.report.mapped.values())
        + sum(tiny.report.unknown_codes.values())
        + sum(tiny.report.not_used.values())
    )
    assert total == tiny.report.entries == 22


def test_request_for_the_mesh_carries_the_patient_id():
    request, report = insights_request_from_fhir(TINY)
    assert request.patient_id == "MRN-7734021" and len(request.data.symptoms) == 4
    assert report.entries == 22


# --- units ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "metric", "expected"),
    [
        ("93832-4", 7.5, "h", common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, 7.5),
        ("93832-4", 450, "min", common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, 7.5),
        ("93832-4", 27000, "s", common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, 7.5),
        ("hrv-rmssd", 42, "ms", common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, 42.0),
        ("hrv-rmssd", 0.042, "s", common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, 42.0),
        ("40443-4", 58, "/min", common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, 58.0),
        ("8867-4", 72, "/min", common_pb2.BIOMETRIC_METRIC_HEART_RATE, 72.0),
        ("8867-4", 72, "{beats}/min", common_pb2.BIOMETRIC_METRIC_HEART_RATE, 72.0),
        ("80404-7", 48, "ms", common_pb2.BIOMETRIC_METRIC_HRV_SDNN, 48.0),
        ("80404-7", 0.048, "s", common_pb2.BIOMETRIC_METRIC_HRV_SDNN, 48.0),
        ("41950-7", 8000, "{steps}", common_pb2.BIOMETRIC_METRIC_STEPS, 8000.0),
        ("sleep-efficiency", 91, "%", common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY, 0.91),
        ("active-minutes", 0.5, "h", common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES, 30.0),
    ],
)
def test_ucum_units_are_converted_to_the_mesh_unit(code, value, unit, metric, expected):
    system = TWIN if "-" in code and not code[0].isdigit() else LOINC
    result = patient_from_fhir(_bundle(_observation(system, code, **_quantity(value, unit))))
    (sample,) = result.data.biometrics
    assert sample.metric == metric
    assert sample.value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("code", "unit"),
    [
        ("93832-4", "furlong"),
        ("40443-4", "beats/minute"),
        ("hrv-rmssd", "%"),
        ("44261-6", "kg"),
        ("8867-4", "Hz"),
        ("80404-7", "%"),
    ],
)
def test_unknown_unit_is_a_clear_error(code, unit):
    system = TWIN if code == "hrv-rmssd" else LOINC
    bundle = _bundle(_observation(system, code, **_quantity(1, unit)))
    with pytest.raises(FhirImportError) as caught:
        patient_from_fhir(bundle)
    message = str(caught.value)
    assert message.startswith("Bundle.entry[1] (urn:uuid:e0) Observation.valueQuantity.code:")
    assert f"unit {unit!r} is not accepted" in message and "accepted UCUM units" in message


def test_unit_is_required_for_a_physical_quantity():
    bundle = _bundle(_observation(LOINC, "93832-4", valueQuantity={"value": 7}))
    with pytest.raises(FhirImportError, match=r"valueQuantity.unit: a unit is required"):
        patient_from_fhir(bundle)


def test_sdnn_unit_is_checked_even_though_it_is_not_used():
    bundle = _bundle(_observation(LOINC, "80404-7", **_quantity(50, "mmHg")))
    with pytest.raises(FhirImportError, match="unit 'mmHg' is not accepted"):
        patient_from_fhir(bundle)


# --- unknown codes, malformed entries ------------------------------------------------


def test_unknown_codes_are_counted_per_code():
    bundle = _bundle(
        _observation(LOINC, "2339-0", **_quantity(95, "mg/dL")),
        _observation(LOINC, "2339-0", **_quantity(99, "mg/dL")),
        _observation("http://example.org/local", "MOOD-X", valueInteger=3),
    )
    result = patient_from_fhir(bundle)
    assert dict(result.report.unknown_codes) == {
        "Observation http://loinc.org|2339-0": 2,
        "Observation http://example.org/local|MOOD-X": 1,
    }
    assert len(result.data.symptoms) == 0


def test_malformed_value_names_entry_and_field_but_not_the_value():
    bundle = _bundle(
        _observation(LOINC, "44261-6", valueInteger=5),
        _observation(LOINC, "44261-6", valueQuantity={"value": "fourteen-ish"}),
    )
    with pytest.raises(FhirImportError) as caught:
        patient_from_fhir(bundle)
    error = caught.value
    assert error.entry == 2 and error.full_url == "urn:uuid:e1"
    assert error.path == "valueQuantity.value"
    assert str(error).startswith("Bundle.entry[2] (urn:uuid:e1) Observation.valueQuantity.value:")
    assert "fourteen" not in str(error)


def test_missing_required_element_names_it():
    resource = _observation(LOINC, "44261-6", valueInteger=5)
    del resource["status"]
    with pytest.raises(FhirImportError, match=r"entry\[1\] \(urn:uuid:e0\) Observation.status"):
        patient_from_fhir(_bundle(resource))


def test_server_full_url_is_not_echoed_it_may_hold_an_identifier():
    bundle = _bundle(_observation(LOINC, "44261-6", valueInteger=99))
    bundle["entry"][1]["fullUrl"] = "https://ehr.example/Observation/MRN-1234567-phq"
    with pytest.raises(FhirImportError) as caught:
        patient_from_fhir(bundle)
    assert "MRN-1234567" not in str(caught.value)
    assert "Bundle.entry[1] Observation.value[x]: PHQ-9 must be within 0..27" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"status": "done"}, "Observation.status: must be one of"),
        ({"effectiveDateTime": "2026-03-02T07:00:00"}, "Observation.effectiveDateTime"),
        ({"valueInteger": 12, "valueQuantity": {"value": 3}}, "Observation: "),
        ({"subject": {"reference": "Patient/someone-else"}}, "subject.reference: must refer"),
    ],
)
def test_malformed_observations(change, expected):
    resource = _observation(LOINC, "44261-6", valueInteger=5)
    resource.update(change)
    with pytest.raises(FhirImportError) as caught:
        patient_from_fhir(_bundle(resource))
    assert expected in str(caught.value)


def test_not_json_not_a_bundle_and_no_patient():
    with pytest.raises(FhirImportError, match="is not valid JSON"):
        patient_from_fhir("{nope")
    with pytest.raises(FhirImportError, match="resourceType 'Bundle'"):
        patient_from_fhir(json.dumps({"resourceType": "Patient"}))
    with pytest.raises(FhirImportError, match="exactly one Patient"):
        patient_from_fhir({"resourceType": "Bundle", "type": "collection", "entry": []})


def test_phq9_total_must_be_whole():
    bundle = _bundle(_observation(LOINC, "44261-6", **_quantity(12.5, "{score}")))
    with pytest.raises(FhirImportError, match="PHQ-9 total must be a whole number"):
        patient_from_fhir(bundle)


# --- medications -----------------------------------------------------------------------


def _statement(concept: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "subject": {"reference": "urn:uuid:p"},
        "medicationCodeableConcept": concept,
        "effectivePeriod": {"start": "2026-02-01T09:00:00Z"},
    }
    resource.update(fields)
    return resource


@pytest.mark.parametrize(
    ("rxcui", "name"),
    [("36437", "sertraline"), ("321988", "escitalopram"), ("2002", "carbamazepine")],
)
def test_medication_by_rxnorm(rxcui, name):
    concept = {"coding": [{"system": RXNORM, "code": rxcui}]}
    result = patient_from_fhir(_bundle(_statement(concept)))
    assert [m.name for m in result.data.current_medications] == [name]
    assert not result.report.unknown_codes


def test_medication_by_text_and_unknown_rxnorm_code_is_reported():
    concept = {"coding": [{"system": RXNORM, "code": "999999999"}], "text": "Fluoxetine 20 mg"}
    result = patient_from_fhir(_bundle(_statement(concept)))
    assert [m.name for m in result.data.current_medications] == ["fluoxetine"]
    assert result.report.unknown_codes == {
        f"MedicationStatement {RXNORM}|999999999": 1,
    }


def test_unrecognized_medication_name_is_passed_on_and_reported():
    result = patient_from_fhir(_bundle(_statement({"text": "Lithium carbonate"})))
    assert [m.name for m in result.data.current_medications] == ["lithium carbonate"]
    assert any("passed on as written" in reason for reason in result.report.not_used)


def test_medication_reference_and_dose_change_chain():
    medication = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {"coding": [{"system": RXNORM, "code": "39786"}]},
    }
    reference = {"medicationReference": {"reference": "Medication/m1"}}

    def course(start, end, mg, status):
        period = {"start": start} | ({"end": end} if end else {})
        dose = {"doseAndRate": [{"doseQuantity": {"value": mg, "system": UCUM, "code": "mg"}}]}
        resource = _statement({}, status=status, effectivePeriod=period, dosage=[dose])
        del resource["medicationCodeableConcept"]
        return resource | reference

    bundle = _bundle(
        medication,
        course("2026-01-01T09:00:00Z", "2026-01-15T09:00:00Z", 75, "completed"),
        course("2026-01-15T09:00:00Z", None, 150, "active"),
    )
    result = patient_from_fhir(bundle)
    kinds = [(e.type, e.daily_dose_mg) for e in result.data.medication_events]
    assert kinds == [
        (common_pb2.MEDICATION_EVENT_TYPE_START, 75.0),
        (common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE, 150.0),
    ]
    (current,) = result.data.current_medications
    assert (current.name, current.daily_dose_mg) == ("venlafaxine", 150.0)
    assert _at(current.started_at) == datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_dose_unit_is_checked():
    dose = {"doseAndRate": [{"doseQuantity": {"value": 5, "system": UCUM, "code": "mL"}}]}
    bundle = _bundle(_statement({"text": "sertraline"}, dosage=[dose]))
    with pytest.raises(FhirImportError, match="unit 'mL' is not accepted"):
        patient_from_fhir(bundle)


# --- genotype ---------------------------------------------------------------------------


def _genotype(gene_coding: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "84413-4"}]},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
                "valueCodeableConcept": {"coding": [gene_coding]},
            }
        ],
        **value,
    }


HGNC = "http://www.genenames.org/geneId"


def test_genotype_gene_from_hgnc_id_and_copy_number_diplotype():
    resource = _genotype(
        {"system": HGNC, "code": "HGNC:2625"}, {"valueCodeableConcept": {"text": "*1x2/*4"}}
    )
    result = patient_from_fhir(_bundle(resource))
    assert [(d.gene, d.diplotype) for d in result.data.genotype.diplotypes] == [
        ("CYP2D6", "*1x2/*4")
    ]


def test_genotype_without_gene_component_is_an_error():
    resource = _genotype({"system": HGNC, "code": "HGNC:2625"}, {"valueString": "*1/*4"})
    resource["component"] = []
    with pytest.raises(FhirImportError, match="gene studied component"):
        patient_from_fhir(_bundle(resource))


def test_genotype_that_is_not_a_diplotype_is_an_error():
    resource = _genotype({"system": HGNC, "code": "HGNC:2621"}, {"valueString": "poor metabolizer"})
    with pytest.raises(FhirImportError, match="star-allele diplotype"):
        patient_from_fhir(_bundle(resource))


def test_gene_the_mesh_does_not_use_is_reported():
    resource = _genotype(
        {"system": HGNC, "code": "HGNC:10959", "display": "SLCO1B1"}, {"valueString": "*1/*5"}
    )
    result = patient_from_fhir(_bundle(resource))
    assert not result.data.genotype.diplotypes
    assert result.report.not_used == {"genotype of SLCO1B1 (not used by the mesh)": 1}


def test_hla_genotype_without_the_allele_is_negative_and_ambiguous_is_reported():
    negative = _genotype(
        {"system": HGNC, "code": "HGNC:4932"},
        {"valueCodeableConcept": {"text": "HLA-B*07:02+HLA-B*44:03"}},
    )
    ambiguous = _genotype(
        {"system": HGNC, "code": "HGNC:4931"},
        {"valueCodeableConcept": {"text": "HLA-A*02:01+HLA-A*31:01|HLA-A*02:01+HLA-A*31:02"}},
    )
    result = patient_from_fhir(_bundle(negative, ambiguous))
    assert [(h.allele, h.status) for h in result.data.genotype.hla_results] == [
        ("HLA-B*15:02", common_pb2.HLA_STATUS_NEGATIVE)
    ]
    assert dict(result.report.not_used) == {"HLA-A genotype with ambiguities (GL string '|')": 1}


def test_same_score_twice_at_the_same_time_names_the_second_entry():
    bundle = _bundle(
        _observation(LOINC, "44261-6", valueInteger=5),
        _observation(LOINC, "44261-6", valueInteger=7),
    )
    with pytest.raises(FhirImportError) as caught:
        patient_from_fhir(bundle)
    assert caught.value.entry == 2
    assert "a second PHQ-9 observation at the same time" in str(caught.value)


def test_free_text_gene_is_not_repeated_back():
    resource = _genotype({"system": HGNC, "code": "x"}, {"valueString": "*1/*2"})
    resource["component"][0]["valueCodeableConcept"] = {"text": "John Smith's gene test 1970"}
    result = patient_from_fhir(_bundle(resource))
    assert dict(result.report.not_used) == {
        "genotype of an unrecognized gene (not used by the mesh)": 1
    }


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("2999-01-01T00:00:00Z", "effectiveDateTime: must not lie in the future"),
        ("2999-01-01", "effectiveDateTime: must not lie in the future"),
        ("1999-12-31T23:00:00Z", "effectiveDateTime: must not be before 2000-01-01"),
    ],
)
def test_observation_times_outside_the_mesh_limits_name_the_entry(when, rule):
    bundle = _bundle(_observation(LOINC, "44261-6", valueInteger=5, effectiveDateTime=when))
    with pytest.raises(FhirImportError, match=r"Bundle.entry\[1\] \(urn:uuid:e0\) Observation\."):
        patient_from_fhir(bundle)
    with pytest.raises(FhirImportError, match=rule):
        patient_from_fhir(bundle)


def test_daily_dose_above_the_mesh_limit_is_refused():
    dose = {"doseAndRate": [{"doseQuantity": {"value": 20, "system": UCUM, "code": "g"}}]}
    bundle = _bundle(_statement({"text": "sertraline"}, dosage=[dose]))
    with pytest.raises(FhirImportError, match="dosage: the daily dose must be at most 10,000 mg"):
        patient_from_fhir(bundle)


def test_patient_id_longer_than_the_limit_is_refused():
    bundle = _bundle()
    bundle["entry"][0]["resource"]["identifier"] = [{"value": "M" * 129}]
    with pytest.raises(FhirImportError, match=r"Patient.identifier: the patient id must be") as e:
        patient_from_fhir(bundle)
    assert "M" * 20 not in str(e.value)


def test_too_many_entries_is_refused_before_validation():
    from twin_orchestrator.fhir_import import MAX_BUNDLE_ENTRIES

    bundle = _bundle()
    bundle["entry"] = bundle["entry"] * (MAX_BUNDLE_ENTRIES + 1)
    with pytest.raises(FhirImportError, match="Bundle entry: must hold at most"):
        patient_from_fhir(bundle)
