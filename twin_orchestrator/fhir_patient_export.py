"""PatientData -> a FHIR R4 Bundle that ``fhir_import`` reads back to the same PatientData.

Used to write the demo patient's records as a clinic would send them, and by
the round-trip tests. Every field the import maps is written with the code and
unit docs/data-formats.md lists for it; the bundle is validated with
``fhir.resources`` before it is returned.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from common.proto_convert import from_timestamp
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator import fhir_codes as codes
from twin_orchestrator.fhir_units import mesh_unit

_GENDER = {
    common_pb2.SEX_FEMALE: "female",
    common_pb2.SEX_MALE: "male",
    common_pb2.SEX_OTHER: "other",
}
_UNIT_KIND = {
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: "heart_rate",
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: "hrv",
    common_pb2.BIOMETRIC_METRIC_STEPS: "steps",
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: "sleep_duration",
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: "fraction",
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: "active_minutes",
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "heart_rate",
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: "hrv",
}
_SPAN = {
    common_pb2.SAMPLE_GRANULARITY_MINUTE: timedelta(minutes=1),
    common_pb2.SAMPLE_GRANULARITY_HOUR: timedelta(hours=1),
}


def fhir_time(moment: datetime) -> str:
    """A FHIR dateTime in UTC with seconds, e.g. 2026-03-01T20:00:00Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond:06d}Z" if moment.microsecond else "Z"
    )


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": code}]}]


def _coding(system: str, code: str, display: str = "") -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _quantity(value: float, kind: str) -> dict[str, Any]:
    unit = mesh_unit(kind)
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


class _BundleWriter:
    def __init__(self, patient_id: str) -> None:
        self.entries: list[dict[str, Any]] = []
        self.patient_url = f"urn:uuid:{uuid.uuid4()}"
        patient: dict[str, Any] = {"resourceType": "Patient"}
        patient["identifier"] = [{"system": codes.PATIENT_ID_SYSTEM, "value": patient_id}]
        self.entries.append({"fullUrl": self.patient_url, "resource": patient})
        self.patient = patient

    def add(self, resource: dict[str, Any]) -> None:
        resource.setdefault("subject", {"reference": self.patient_url})
        self.entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource})

    def observation(self, category: str, code: dict[str, Any], **fields: Any) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": _category(category),
                "code": {"coding": [code]},
                **fields,
            }
        )


def bundle_from_patient_data(patient_id: str, data: twin_pb2.PatientData) -> dict[str, Any]:
    """The patient's data as a validated FHIR R4 collection Bundle (a JSON-ready dict)."""
    writer = _BundleWriter(patient_id)
    if data.clinical.sex in _GENDER:
        writer.patient["gender"] = _GENDER[data.clinical.sex]
    _clinical(writer, data)
    for observation in data.symptoms:
        system, code = next(
            k for k, v in codes.INSTRUMENT_CODES.items() if v == observation.instrument
        )
        writer.observation(
            "survey",
            _coding(system, code, codes.INSTRUMENT_DISPLAY[observation.instrument]),
            effectiveDateTime=fhir_time(from_timestamp(observation.observed_at)),
            valueQuantity=_quantity(observation.score, "score"),
        )
    for sample in data.biometrics:
        system, code, display = codes.BIOMETRIC_EXPORT_CODES[sample.metric]
        start = from_timestamp(sample.measured_at)
        span = _SPAN.get(sample.granularity)
        when: dict[str, Any] = (
            {"effectiveDateTime": fhir_time(start)}
            if span is None
            else {"effectivePeriod": {"start": fhir_time(start), "end": fhir_time(start + span)}}
        )
        writer.observation(
            codes.BIOMETRIC_EXPORT_CATEGORY.get(sample.metric, "activity"),
            _coding(system, code, display),
            **when,
            valueQuantity=_quantity(sample.value, _UNIT_KIND[sample.metric]),
        )
    _genotype(writer, data.genotype)
    _medications(writer, data)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": writer.entries}
    get_fhir_model_class("Bundle").model_validate(bundle)
    return bundle


def _clinical(writer: _BundleWriter, data: twin_pb2.PatientData) -> None:
    if data.clinical.age_years:
        writer.observation(
            "social-history",
            _coding(*codes.AGE, "Age"),
            valueQuantity=_quantity(float(data.clinical.age_years), "age"),
        )
    writer.observation(
        "survey",
        _coding(*codes.PRIOR_TREATMENT_FAILURES, "Adequate antidepressant trials that failed"),
        valueInteger=data.clinical.prior_treatment_failures,
    )


def _gene_component(gene: str) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": gene}
    if gene in codes.HGNC_IDS:
        concept["coding"] = [_coding(codes.HGNC, codes.HGNC_IDS[gene], gene)]
    return {
        "code": {"coding": [_coding(*codes.GENE_STUDIED, "Gene studied [ID]")]},
        "valueCodeableConcept": concept,
    }


def _genotype(writer: _BundleWriter, genotype: common_pb2.Genotype) -> None:
    code = _coding(*codes.GENOTYPE_DISPLAY, "Genotype display name")
    for item in genotype.diplotypes:
        writer.observation(
            "laboratory",
            code,
            valueCodeableConcept={
                "coding": [
                    _coding(
                        codes.PHARMVAR,
                        f"{item.gene}_{item.diplotype}",
                        f"{item.gene} {item.diplotype}",
                    )
                ],
                "text": f"{item.gene} {item.diplotype}",
            },
            component=[_gene_component(item.gene)],
        )
    for result in genotype.hla_results:
        status = "positive" if result.status == common_pb2.HLA_STATUS_POSITIVE else "negative"
        writer.observation(
            "laboratory",
            code,
            valueCodeableConcept={"text": f"{result.allele} {status}"},
            component=[_gene_component(result.allele.split("*")[0])],
        )


def _medication_concept(name: str) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": name}
    if name in codes.RXNORM_BY_NAME:
        concept["coding"] = [_coding(codes.RXNORM, codes.RXNORM_BY_NAME[name], name)]
    return concept


def _dosage(daily_dose_mg: float) -> list[dict[str, Any]]:
    if daily_dose_mg <= 0:
        return []
    return [
        {
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": _quantity(daily_dose_mg, "dose")}],
        }
    ]


def _medications(writer: _BundleWriter, data: twin_pb2.PatientData) -> None:
    """Events -> one MedicationStatement per period at one dose; open periods are active."""
    open_courses: dict[str, tuple[datetime, float]] = {}
    closed: list[tuple[str, datetime, datetime, float]] = []
    for event in data.medication_events:
        moment = from_timestamp(event.occurred_at)
        name = event.medication
        if name in open_courses:
            start, dose = open_courses.pop(name)
            closed.append((name, start, moment, dose))
        if event.type != common_pb2.MEDICATION_EVENT_TYPE_STOP:
            open_courses[name] = (moment, event.daily_dose_mg)
    current = {m.name: m for m in data.current_medications}
    for name, start, end, dose in closed:
        _statement(writer, name, "completed", dose, start, end)
    for name, (start, dose) in open_courses.items():
        dose = current[name].daily_dose_mg if name in current else dose
        _statement(writer, name, "active", dose, start, None)
    for name, medication in current.items():
        if name not in open_courses:
            started = (
                from_timestamp(medication.started_at) if medication.HasField("started_at") else None
            )
            _statement(writer, name, "active", medication.daily_dose_mg, started, None)
    for name in data.candidate_medications:
        writer.add(
            {
                "resourceType": "MedicationRequest",
                "status": "draft",
                "intent": "proposal",
                "medicationCodeableConcept": _medication_concept(name),
            }
        )


def _statement(
    writer: _BundleWriter,
    name: str,
    status: str,
    dose: float,
    start: datetime | None,
    end: datetime | None,
) -> None:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": _medication_concept(name),
    }
    period = {}
    if start is not None:
        period["start"] = fhir_time(start)
    if end is not None:
        period["end"] = fhir_time(end)
    if period:
        resource["effectivePeriod"] = period
    dosage = _dosage(dose)
    if dosage:
        resource["dosage"] = dosage
    writer.add(resource)
