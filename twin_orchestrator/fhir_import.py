"""A FHIR R4 Bundle -> the orchestrator's PatientData, with a report of what was not used.

The bundle is parsed and validated with ``fhir.resources`` (its R4B models,
which read R4 content for every resource used here, see docs/data-formats.md),
then mapped:

- Patient: the patient id (identifier), sex, age (from birthDate when no age
  Observation is given);
- Observations: symptom scores, biometrics (with UCUM unit conversion),
  genotypes per the Genomics Reporting IG (gene from component 48018-6,
  diplotype from the 84413-4 value) and HLA results, age and prior failed
  antidepressant trials;
- MedicationStatement / MedicationRequest: current and past medications by
  RxNorm code or by name, their start/stop/dose-change events, and proposed
  medications as candidates.

Nothing is dropped silently: unknown codes, resource types the mesh does not
read and records deliberately left out are counted in the returned report. A
malformed resource raises ``FhirImportError`` naming the entry (its index, and
its fullUrl when that is a ``urn:uuid``) and the field; the message never holds
a clinical value.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from common import limits
from common.clinical_scales import INSTRUMENT_LABELS, INSTRUMENT_RANGES
from common.errors import FieldViolation, InvalidArgumentError
from common.proto_convert import to_timestamp
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from twin_orchestrator import fhir_codes as codes
from twin_orchestrator.fhir_units import UnitError, to_mesh_unit

#: A bundle may carry resources the mesh does not read besides the observations it
#: does (limits.DEFAULT_MAX_HISTORY_POINTS), so the entry cap is a few times that.
MAX_BUNDLE_ENTRIES = 5 * limits.DEFAULT_MAX_HISTORY_POINTS
MAX_BUNDLE_BYTES = 256 * 2**20
#: Resource types the import reads; any other is counted as not read.
READ_TYPES = frozenset(
    {"Patient", "Observation", "MedicationStatement", "MedicationRequest", "Medication"}
)
#: Required-binding vocabularies the models leave unchecked (FHIR R4 value sets).
_VOCABULARY = {
    ("Observation", "status"): frozenset(
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
    ("MedicationStatement", "status"): frozenset(
        {
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        }
    ),
    ("MedicationRequest", "status"): frozenset(
        {
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        }
    ),
    ("MedicationRequest", "intent"): frozenset(
        {
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        }
    ),
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
}
#: Observation statuses whose value is taken; others are counted as not used.
USABLE_OBSERVATION_STATUS = frozenset({"final", "amended", "corrected"})
_SEX = {
    "female": common_pb2.SEX_FEMALE,
    "male": common_pb2.SEX_MALE,
    "other": common_pb2.SEX_OTHER,
    "unknown": common_pb2.SEX_UNSPECIFIED,
}
_BIOMETRIC_UNIT_KIND: dict[int, str] = {
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "heart_rate",
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: "heart_rate",
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: "hrv",
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: "hrv",
    common_pb2.BIOMETRIC_METRIC_STEPS: "steps",
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: "sleep_duration",
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: "fraction",
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: "active_minutes",
}
_METRIC_LABELS: dict[int, str] = {
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "heart rate",
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: "resting heart rate",
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: "HRV (SDNN)",
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: "HRV (RMSSD)",
    common_pb2.BIOMETRIC_METRIC_STEPS: "steps",
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: "sleep duration",
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: "sleep efficiency",
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: "active minutes",
}
_GRANULARITY_BY_SPAN = {
    timedelta(minutes=1): common_pb2.SAMPLE_GRANULARITY_MINUTE,
    timedelta(hours=1): common_pb2.SAMPLE_GRANULARITY_HOUR,
    timedelta(days=1): common_pb2.SAMPLE_GRANULARITY_DAY,
}
_INTEGER_INSTRUMENTS = frozenset({common_pb2.INSTRUMENT_PHQ9, common_pb2.INSTRUMENT_GAD7})
_STAR_ALLELE = r"\*[0-9A-Za-z.]+(?:x(?:[0-9]+|N))?"
_DIPLOTYPE = re.compile(rf"^({_STAR_ALLELE})/({_STAR_ALLELE})$")
_HLA_ALLELE = re.compile(r"(?:HLA-)?([A-Z]+[0-9]?)\*([0-9]{2,3}:[0-9]{2,3})")
_HLA_CARRIER = re.compile(
    r"^(HLA-[A-Z]+[0-9]?\*[0-9]{2,3}:[0-9]{2,3})\s+(positive|negative|present|absent)$",
    re.IGNORECASE,
)
_MEDICATION_NAME = re.compile(r"^[a-z][a-z0-9 \-/]{0,63}$")
_ACTIVE_STATEMENT = frozenset({"active", "on-hold", "unknown", "completed", "stopped"})
_ACTIVE_REQUEST = frozenset({"active", "on-hold"})
_PROPOSAL_INTENTS = frozenset({"proposal", "plan"})
_PERIOD_DAYS = {"h": 1.0 / 24.0, "d": 1.0, "wk": 7.0}
# Same-instant events are ordered stop, start, dose change, as the synthetic worlds do:
# a switch stops one medication before it starts the next.
_EVENT_RANK: dict[int, int] = {
    common_pb2.MEDICATION_EVENT_TYPE_STOP: 0,
    common_pb2.MEDICATION_EVENT_TYPE_START: 1,
    common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE: 2,
}


class FhirImportError(InvalidArgumentError):
    """A bundle or one of its entries breaks a rule; names the entry and field, never a value."""

    def __init__(
        self,
        rule: str,
        *,
        entry: int | None = None,
        resource_type: str = "",
        path: str = "",
        full_url: str = "",
    ) -> None:
        where = "Bundle" if entry is None else f"Bundle.entry[{entry}]"
        # A urn:uuid names nothing about the patient; a server URL may hold an MRN.
        if full_url.startswith("urn:uuid:"):
            where += f" ({full_url})"
        if resource_type:
            where += f" {resource_type}"
        if path:
            where += f".{path}" if resource_type else f" {path}"
        super().__init__([FieldViolation(where, rule)])
        self.entry = entry
        self.resource_type = resource_type
        self.path = path
        self.full_url = full_url
        self.rule = rule


@dataclass
class FhirImportReport:
    """What the import did with each resource: mapped, unknown, or deliberately not used."""

    entries: int = 0
    mapped: Counter[str] = field(default_factory=Counter)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    not_used: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The report as short lines for a terminal (codes and counts, no clinical values)."""
        out = [f"FHIR bundle: {self.entries} entries"]
        if self.mapped:
            out.append(
                "  mapped: " + ", ".join(f"{name} {n}" for name, n in sorted(self.mapped.items()))
            )
        total = sum(self.unknown_codes.values())
        out.append(f"  unknown codes: {total}" + (" (not used)" if total else ""))
        out.extend(f"    {code} ×{n}" for code, n in sorted(self.unknown_codes.items()))
        out.append(f"  not used: {sum(self.not_used.values())}")
        out.extend(f"    {reason} ×{n}" for reason, n in sorted(self.not_used.items()))
        return out


@dataclass
class FhirPatient:
    """A bundle's patient: the id, the PatientData for the mesh, and the import report."""

    patient_id: str
    data: twin_pb2.PatientData
    report: FhirImportReport


@dataclass
class _Entry:
    index: int
    resource_type: str
    full_url: str
    resource: dict[str, Any]

    def error(self, path: str, rule: str) -> FhirImportError:
        return FhirImportError(
            rule,
            entry=self.index,
            resource_type=self.resource_type,
            path=path,
            full_url=self.full_url,
        )


@dataclass
class _Course:
    """One MedicationStatement/Request period of one medication at one daily dose."""

    name: str
    start: datetime | None
    end: datetime | None
    dose_mg: float
    current: bool


def read_fhir_bundle(path: Path) -> FhirPatient:
    """Read a FHIR R4 Bundle (JSON) from ``path`` and map it; see ``patient_from_fhir``."""
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise FhirImportError(f"must be at most {MAX_BUNDLE_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FhirImportError(f"cannot be read ({type(exc).__name__})") from None
    return patient_from_fhir(text)


def patient_from_fhir(bundle: str | bytes | Mapping[str, Any]) -> FhirPatient:
    """Validate a FHIR R4 Bundle (JSON text or parsed) and map it to PatientData."""
    raw = _load(bundle)
    entries = _validated_entries(raw)
    return _Mapper(entries).run()


def _load(bundle: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(bundle, Mapping):
        raw: Any = dict(bundle)
    else:
        try:
            raw = json.loads(bundle)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FhirImportError(f"is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("resourceType") != "Bundle":
        raise FhirImportError(
            "must be a JSON object with resourceType 'Bundle'", path="resourceType"
        )
    return raw


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """A pydantic error as (FHIR path, rule) without the offending value."""
    parts = [str(p) for p in error.get("loc", ()) if not str(p).startswith("function-")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    rule = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    # pydantic and fhir.resources messages name rules and field names, not the input.
    return path, rule[:300]


def _validated_entries(raw: dict[str, Any]) -> list[_Entry]:
    entries = raw.get("entry") or []
    if not isinstance(entries, list):
        raise FhirImportError("must be a list", path="entry")
    if len(entries) > MAX_BUNDLE_ENTRIES:
        raise FhirImportError(f"must hold at most {MAX_BUNDLE_ENTRIES:,} entries", path="entry")
    shell = {**raw, "entry": [_without_resource(e) for e in entries]}
    try:
        get_fhir_model_class("Bundle").model_validate(shell)
    except ValidationError as exc:
        path, rule = _describe(exc.errors()[0])
        raise FhirImportError(rule, path=path) from None
    out: list[_Entry] = []
    for index, item in enumerate(entries):
        full_url = str(item.get("fullUrl") or "")
        resource = item.get("resource")
        if not isinstance(resource, dict):
            raise FhirImportError("a resource object is required", entry=index, path="resource")
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not resource_type:
            raise FhirImportError(
                "resourceType is required", entry=index, path="resource.resourceType"
            )
        try:
            model = get_fhir_model_class(resource_type)
        except ValueError:
            raise FhirImportError(
                "is not a FHIR R4 resource type", entry=index, path="resource.resourceType"
            ) from None
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            path, rule = _describe(exc.errors()[0])
            raise FhirImportError(
                rule, entry=index, resource_type=resource_type, path=path, full_url=full_url
            ) from None
        entry = _Entry(index, resource_type, full_url, resource)
        for (vocabulary_type, key), allowed in _VOCABULARY.items():
            if (
                vocabulary_type == resource_type
                and key in resource
                and resource[key] not in allowed
            ):
                raise entry.error(key, f"must be one of {', '.join(sorted(allowed))}")
        out.append(entry)
    return out


def _without_resource(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k != "resource"}
    return item


# --- field readers ------------------------------------------------------------------


def _parse_time(entry: _Entry, path: str, value: Any) -> tuple[datetime, bool]:
    """A FHIR dateTime/instant as an aware UTC datetime, and whether it was a date only."""
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        if day > datetime.now(UTC) + limits.FUTURE_TOLERANCE:
            raise entry.error(path, "must not lie in the future")
        return day, True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T.+", text):
        raise entry.error(path, "must be a full date or a date-time with a UTC offset")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise entry.error(path, "is not a valid date-time") from None
    if moment.tzinfo is None:
        raise entry.error(path, "a date-time must carry a UTC offset")
    moment = moment.astimezone(UTC)
    if moment > datetime.now(UTC) + limits.FUTURE_TOLERANCE:
        raise entry.error(path, "must not lie in the future")
    return moment, False


def _codings(concept: Any) -> list[tuple[str, str, str]]:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system") or ""), str(c.get("code") or ""), str(c.get("display") or ""))
        for c in concept.get("coding") or []
    ]


def _code_label(system: str, code: str) -> str:
    return f"{system or '(no system)'}|{code or '(no code)'}"


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    texts = [concept.get("text") or ""] + [d for _, _, d in _codings(concept)]
    return next((t for t in texts if t), "")


def _quantity(entry: _Entry, path: str, holder: dict[str, Any], kind: str) -> float:
    """valueQuantity / valueInteger of ``holder`` in the mesh unit for ``kind``."""
    if "valueQuantity" in holder:
        quantity = holder["valueQuantity"]
        value = quantity.get("value")
        if value is None:
            raise entry.error(f"{path}valueQuantity.value", "a value is required")
        system = quantity.get("system")
        if system and system != codes.UCUM:
            raise entry.error(f"{path}valueQuantity.system", f"must be UCUM ({codes.UCUM})")
        unit = quantity.get("code") or quantity.get("unit")
        field_name = "code" if quantity.get("code") else "unit"
        try:
            converted = to_mesh_unit(float(value), unit, kind)
        except UnitError as exc:
            raise entry.error(f"{path}valueQuantity.{field_name}", str(exc)) from None
    elif "valueInteger" in holder:
        try:
            converted = to_mesh_unit(float(holder["valueInteger"]), None, kind)
        except UnitError as exc:
            raise entry.error(f"{path}valueInteger", str(exc)) from None
    else:
        raise entry.error(f"{path}value[x]", "a valueQuantity (or valueInteger) is required")
    if not math.isfinite(converted):
        raise entry.error(f"{path}value[x]", "must be a finite number")
    return converted


class _Mapper:
    """One pass over the validated entries; state is the PatientData being built."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.report = FhirImportReport(entries=len(entries))
        self.data = twin_pb2.PatientData()
        self.patient_id = ""
        self.patient_refs: set[str] = set()
        self.birth_date: date | None = None
        self.age_from_observation = False
        self.courses: list[_Course] = []
        self.genes_seen: set[str] = set()
        self.hla_seen: set[str] = set()
        self.latest: datetime | None = None
        self.seen_keys: set[tuple[str, int, datetime]] = set()
        self.medications: dict[str, dict[str, Any]] = {}

    def run(self) -> FhirPatient:
        patients = [e for e in self.entries if e.resource_type == "Patient"]
        if len(patients) != 1:
            raise FhirImportError(
                f"must hold exactly one Patient resource (found {len(patients)})", path="entry"
            )
        self._patient(patients[0])
        for entry in self.entries:
            if entry.resource_type == "Medication":
                self._index_medication(entry)
        for entry in self.entries:
            handler = {
                "Observation": self._observation,
                "MedicationStatement": self._medication_statement,
                "MedicationRequest": self._medication_request,
            }.get(entry.resource_type)
            if handler is not None:
                self._check_subject(entry)
                handler(entry)
            elif entry.resource_type not in READ_TYPES:
                self.report.not_used[f"{entry.resource_type} resources are not read"] += 1
        self._medication_timeline()
        self._clinical()
        return FhirPatient(self.patient_id, self.data, self.report)

    # --- Patient ----------------------------------------------------------------------

    def _patient(self, entry: _Entry) -> None:
        resource = entry.resource
        identifiers = [i for i in resource.get("identifier") or [] if i.get("value")]
        preferred = [i for i in identifiers if i.get("system") == codes.PATIENT_ID_SYSTEM]
        chosen = (preferred or identifiers or [{}])[0].get("value") or resource.get("id")
        if not chosen:
            raise entry.error("identifier", "an identifier with a value (or an id) is required")
        self.patient_id = str(chosen)
        if len(self.patient_id) > limits.MAX_PATIENT_ID_LENGTH or not self.patient_id.isprintable():
            raise entry.error(
                "identifier",
                f"the patient id must be printable and at most {limits.MAX_PATIENT_ID_LENGTH}"
                " characters",
            )
        if entry.full_url:
            self.patient_refs.add(entry.full_url)
        if resource.get("id"):
            self.patient_refs.add(f"Patient/{resource['id']}")
        gender = resource.get("gender")
        if gender is not None:
            self.data.clinical.sex = _SEX[gender]
        if resource.get("birthDate"):
            text = str(resource["birthDate"])
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise entry.error("birthDate", "must be a full date (YYYY-MM-DD)")
            self.birth_date = date.fromisoformat(text)
        self.report.mapped["Patient"] += 1

    def _check_subject(self, entry: _Entry) -> None:
        key = "subject" if "subject" in entry.resource else "patient"
        reference = (entry.resource.get(key) or {}).get("reference")
        if reference and self.patient_refs and reference not in self.patient_refs:
            raise entry.error(f"{key}.reference", "must refer to the bundle's Patient")

    # --- Observation ------------------------------------------------------------------

    def _observation(self, entry: _Entry) -> None:
        resource = entry.resource
        status = resource.get("status")
        if status not in USABLE_OBSERVATION_STATUS:
            self.report.not_used[f"Observation with status {status!r}"] += 1
            return
        codings = _codings(resource.get("code"))
        keys = [(system, code) for system, code, _ in codings]
        component_keys = {
            (system, code)
            for component in resource.get("component") or []
            for system, code, _ in _codings(component.get("code"))
        }
        if codes.GENOTYPE_DISPLAY in keys or codes.GENOTYPE_DISPLAY in component_keys:
            self._genotype(entry)
            return
        for key in keys:
            if key in codes.INSTRUMENT_CODES:
                self._symptom(entry, codes.INSTRUMENT_CODES[key])
                return
            if key in codes.BIOMETRIC_CODES:
                self._biometric(entry, codes.BIOMETRIC_CODES[key], key)
                return
            if key == codes.AGE:
                age = _quantity(entry, "", resource, "age")
                if not 0 <= age <= 130:
                    raise entry.error("valueQuantity.value", "age must be within 0..130 years")
                self.data.clinical.age_years = int(age)
                self.age_from_observation = True
                self.report.mapped["age"] += 1
                return
            if key == codes.PRIOR_TREATMENT_FAILURES:
                count = _quantity(entry, "", resource, "count")
                if count != int(count) or not 0 <= count <= 20:
                    raise entry.error("value[x]", "must be a whole number within 0..20")
                self.data.clinical.prior_treatment_failures = int(count)
                self.report.mapped["prior failed antidepressant trials"] += 1
                return
        for system, code, _ in codings or [("", "", "")]:
            self.report.unknown_codes[f"Observation {_code_label(system, code)}"] += 1

    def _effective(self, entry: _Entry) -> tuple[datetime, timedelta | None, bool]:
        """When the observation applies: (start, span of a period or None, date only)."""
        resource = entry.resource
        for key in ("effectiveDateTime", "effectiveInstant"):
            if key in resource:
                moment, date_only = _parse_time(entry, key, resource[key])
                self._not_too_early(entry, key, moment)
                return moment, None, date_only
        if "effectivePeriod" in resource:
            period = resource["effectivePeriod"]
            if "start" not in period or "end" not in period:
                raise entry.error("effectivePeriod", "needs both start and end")
            start, _ = _parse_time(entry, "effectivePeriod.start", period["start"])
            end, _ = _parse_time(entry, "effectivePeriod.end", period["end"])
            if end <= start:
                raise entry.error("effectivePeriod.end", "must be after start")
            self._not_too_early(entry, "effectivePeriod.start", start)
            return start, end - start, False
        raise entry.error("effective[x]", "an effectiveDateTime or effectivePeriod is required")

    def _not_too_early(self, entry: _Entry, path: str, moment: datetime) -> None:
        if moment < limits.EARLIEST_OBSERVATION:
            raise entry.error(
                path,
                f"must not be before {limits.EARLIEST_OBSERVATION:%Y-%m-%d} (the mesh's floor)",
            )

    def _once(self, entry: _Entry, key: tuple[str, int, datetime], path: str, label: str) -> None:
        """The mesh keys observations by (what, when): a second one at that time is an error."""
        if key in self.seen_keys:
            raise entry.error(path, f"a second {label} observation at the same time")
        self.seen_keys.add(key)

    def _note_time(self, moment: datetime) -> None:
        if self.latest is None or moment > self.latest:
            self.latest = moment

    def _symptom(self, entry: _Entry, instrument: int) -> None:
        score = _quantity(entry, "", entry.resource, "score")
        low, high = INSTRUMENT_RANGES[instrument]
        label = INSTRUMENT_LABELS[instrument]
        if not low <= score <= high:
            raise entry.error("value[x]", f"{label} must be within {low:g}..{high:g}")
        if instrument in _INTEGER_INSTRUMENTS and score != int(score):
            raise entry.error("value[x]", f"{label} total must be a whole number")
        moment, _, _ = self._effective(entry)
        self._once(entry, ("symptom", instrument, moment), "effective[x]", label)
        observation = self.data.symptoms.add(instrument=instrument, score=score)
        observation.observed_at.CopyFrom(to_timestamp(moment))
        self._note_time(moment)
        self.report.mapped[label] += 1

    def _biometric(self, entry: _Entry, metric: int, key: tuple[str, str]) -> None:
        value = _quantity(entry, "", entry.resource, _BIOMETRIC_UNIT_KIND[metric])
        start, span, _ = self._effective(entry)
        if key == codes.STEPS_24H and span not in (None, timedelta(days=1)):
            raise entry.error("effectivePeriod", "steps in 24 hours (41950-7) must cover one day")
        granularity = common_pb2.SAMPLE_GRANULARITY_DAY
        measured_at = start
        if span is not None:
            if span in _GRANULARITY_BY_SPAN:
                granularity = _GRANULARITY_BY_SPAN[span]
            elif metric == common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION and span <= timedelta(days=1):
                # A night's sleep counts for the day the patient woke up.
                measured_at = start + span
            else:
                raise entry.error(
                    "effectivePeriod",
                    "must span one minute, one hour or one day (or use effectiveDateTime)",
                )
        self._once(
            entry, ("biometric", metric, measured_at), "effective[x]", _METRIC_LABELS[metric]
        )
        sample = self.data.biometrics.add(metric=metric, value=value, granularity=granularity)
        sample.measured_at.CopyFrom(to_timestamp(measured_at))
        self._note_time(measured_at)
        self.report.mapped[_METRIC_LABELS[metric]] += 1

    # --- genotype ---------------------------------------------------------------------

    def _genotype(self, entry: _Entry) -> None:
        resource = entry.resource
        gene = ""
        value_holder: dict[str, Any] = resource
        for index, component in enumerate(resource.get("component") or []):
            keys = {(s, c) for s, c, _ in _codings(component.get("code"))}
            if codes.GENE_STUDIED in keys:
                gene = self._gene(entry, f"component[{index}]", component)
            if codes.GENOTYPE_DISPLAY in keys:
                value_holder = component
        if not gene:
            raise entry.error(
                "component", "a gene studied component (LOINC 48018-6) naming the gene is required"
            )
        text = self._genotype_text(entry, value_holder)
        if gene.startswith("HLA-"):
            self._hla(entry, gene, text)
            return
        if gene not in codes.HGNC_IDS:
            # Only a symbol-shaped name is repeated back; free text could hold anything.
            shown = gene if re.fullmatch(r"[A-Z][A-Z0-9-]{0,15}", gene) else "an unrecognized gene"
            self.report.not_used[f"genotype of {shown} (not used by the mesh)"] += 1
            return
        diplotype = text.removeprefix(gene).strip()
        match = _DIPLOTYPE.match(diplotype)
        if match is None:
            raise entry.error(
                "value[x]", f"the {gene} genotype must be a star-allele diplotype like *1/*4"
            )
        if gene in self.genes_seen:
            raise entry.error("value[x]", f"a second genotype for {gene}: one per gene")
        self.genes_seen.add(gene)
        self.data.genotype.diplotypes.add(gene=gene, diplotype=diplotype)
        self.report.mapped["genotype"] += 1

    def _gene(self, entry: _Entry, path: str, component: dict[str, Any]) -> str:
        concept = component.get("valueCodeableConcept") or {}
        for system, code, display in _codings(concept):
            if system == codes.HGNC and code in codes.GENE_BY_HGNC:
                return codes.GENE_BY_HGNC[code]
            if system == codes.HGNC and display:
                return display.strip().upper()
        text = (concept.get("text") or "").strip().upper()
        if not text:
            raise entry.error(f"{path}.valueCodeableConcept", "must name the gene (HGNC)")
        return text

    def _genotype_text(self, entry: _Entry, holder: dict[str, Any]) -> str:
        if "valueString" in holder:
            return str(holder["valueString"]).strip()
        concept = holder.get("valueCodeableConcept")
        if not isinstance(concept, dict):
            raise entry.error(
                "value[x]", "a genotype valueCodeableConcept or valueString is required"
            )
        for system, code, display in _codings(concept):
            if display:
                return display.strip()
            if system == codes.PHARMVAR and code:
                return code.replace("_", " ", 1).strip()
        text = str(concept.get("text") or "").strip()
        if not text:
            raise entry.error("valueCodeableConcept", "must carry the genotype as text or display")
        return text

    def _hla(self, entry: _Entry, gene: str, text: str) -> None:
        carrier = _HLA_CARRIER.match(text)
        results: dict[str, int] = {}
        if carrier is not None:
            allele = carrier.group(1).upper()
            positive = carrier.group(2).lower() in {"positive", "present"}
            results[allele] = (
                common_pb2.HLA_STATUS_POSITIVE if positive else common_pb2.HLA_STATUS_NEGATIVE
            )
        else:
            if "|" in text:
                self.report.not_used[f"{gene} genotype with ambiguities (GL string '|')"] += 1
                return
            alleles = {f"HLA-{locus}*{fields}" for locus, fields in _HLA_ALLELE.findall(text)}
            if not alleles or any(not a.startswith(f"{gene}*") for a in alleles):
                raise entry.error("value[x]", f"must list {gene} alleles, e.g. {gene}*15:02")
            # With both alleles typed, an allele of interest that is absent is known negative.
            full_genotype = len(re.split(r"[+/]", text)) == 2
            for allele in codes.HLA_ALLELES_OF_INTEREST.get(gene, ()):
                if allele in alleles:
                    results[allele] = common_pb2.HLA_STATUS_POSITIVE
                elif full_genotype:
                    results[allele] = common_pb2.HLA_STATUS_NEGATIVE
        if not results:
            self.report.not_used[f"{gene} result without an allele the mesh uses"] += 1
            return
        for allele, status in results.items():
            if allele in self.hla_seen:
                raise entry.error("value[x]", f"a second result for {allele}: one per allele")
            self.hla_seen.add(allele)
            self.data.genotype.hla_results.add(allele=allele, status=status)
            self.report.mapped["HLA result"] += 1

    # --- medications ------------------------------------------------------------------

    def _index_medication(self, entry: _Entry) -> None:
        if entry.full_url:
            self.medications[entry.full_url] = entry.resource
        if entry.resource.get("id"):
            self.medications[f"Medication/{entry.resource['id']}"] = entry.resource

    def _medication_name(self, entry: _Entry) -> str | None:
        resource = entry.resource
        concept = resource.get("medicationCodeableConcept")
        if concept is None and "medicationReference" in resource:
            reference = resource["medicationReference"].get("reference", "")
            medication = self.medications.get(reference)
            if medication is None and reference.startswith("#"):
                contained = [c for c in resource.get("contained") or [] if c.get("id")]
                medication = next((c for c in contained if f"#{c['id']}" == reference), None)
            if medication is None:
                raise entry.error(
                    "medicationReference.reference", "must refer to a Medication in the bundle"
                )
            concept = medication.get("code")
        if not isinstance(concept, dict):
            raise entry.error("medication[x]", "a medication code or text is required")
        for system, code, _ in _codings(concept):
            if system == codes.RXNORM and code in codes.RXNORM_INGREDIENTS:
                return codes.RXNORM_INGREDIENTS[code]
        for system, code, _ in _codings(concept):
            self.report.unknown_codes[f"{entry.resource_type} {_code_label(system, code)}"] += 1
        words = [
            " ".join(re.findall(r"[a-z0-9]+", t.lower()))
            for t in [concept.get("text") or ""] + [d for _, _, d in _codings(concept)]
            if t
        ]
        for text in words:
            found = [name for name in codes.KNOWN_GENERIC_NAMES if re.search(rf"\b{name}\b", text)]
            if len(found) == 1:
                return found[0]
        text = " ".join(str(_concept_text(concept)).lower().split())
        if text and _MEDICATION_NAME.match(text):
            self.report.not_used[
                f"{entry.resource_type} names a medication the mesh does not know"
                " (passed on as written)"
            ] += 1
            return text
        self.report.not_used[f"{entry.resource_type} without a usable medication name"] += 1
        return None

    def _daily_dose(self, entry: _Entry, key: str) -> float:
        total = 0.0
        for i, dosage in enumerate(entry.resource.get(key) or []):
            quantities = [
                (j, d["doseQuantity"])
                for j, d in enumerate(dosage.get("doseAndRate") or [])
                if "doseQuantity" in d
            ]
            if not quantities:
                continue
            j, quantity = quantities[0]
            path = f"{key}[{i}].doseAndRate[{j}].doseQuantity"
            dose = _quantity(entry, "", {"valueQuantity": quantity}, "dose")
            repeat = (dosage.get("timing") or {}).get("repeat") or {}
            frequency = float(repeat.get("frequency", 1))
            period = float(repeat.get("period", 1))
            unit = repeat.get("periodUnit", "d")
            if unit not in _PERIOD_DAYS or period <= 0:
                raise entry.error(
                    f"{key}[{i}].timing.repeat.periodUnit", "must be h, d or wk with a period > 0"
                )
            total += dose * frequency / (period * _PERIOD_DAYS[unit])
            if dose < 0:
                raise entry.error(f"{path}.value", "must not be negative")
        if total > limits.MAX_DOSE_MG:
            raise entry.error(key, f"the daily dose must be at most {limits.MAX_DOSE_MG:,.0f} mg")
        return total

    def _medication_statement(self, entry: _Entry) -> None:
        resource = entry.resource
        status = resource.get("status")
        if status in {"entered-in-error", "not-taken"}:
            self.report.not_used[f"MedicationStatement with status {status!r}"] += 1
            return
        name = self._medication_name(entry)
        if name is None:
            return
        if status == "intended":
            self._candidate(name)
            return
        start = end = None
        if "effectivePeriod" in resource:
            period = resource["effectivePeriod"]
            if period.get("start"):
                start, _ = _parse_time(entry, "effectivePeriod.start", period["start"])
            if period.get("end"):
                end, _ = _parse_time(entry, "effectivePeriod.end", period["end"])
            if start and end and end < start:
                raise entry.error("effectivePeriod.end", "must not be before start")
        elif "effectiveDateTime" in resource:
            start, _ = _parse_time(entry, "effectiveDateTime", resource["effectiveDateTime"])
        current = status in {"active", "on-hold", "unknown"} and end is None
        if status in _ACTIVE_STATEMENT and not current and end is None:
            self.report.not_used[f"MedicationStatement {status} without an end date"] += 1
            return
        dose = self._daily_dose(entry, "dosage")
        self.courses.append(_Course(name, start, end, dose, current))
        self.report.mapped["medication"] += 1

    def _medication_request(self, entry: _Entry) -> None:
        resource = entry.resource
        status, intent = resource.get("status"), resource.get("intent")
        if status in {"entered-in-error", "cancelled"}:
            self.report.not_used[f"MedicationRequest with status {status!r}"] += 1
            return
        if intent in _PROPOSAL_INTENTS or status == "draft":
            name = self._medication_name(entry)
            if name is not None:
                self._candidate(name)
            return
        if status not in _ACTIVE_REQUEST:
            self.report.not_used[f"MedicationRequest order with status {status!r}"] += 1
            return
        name = self._medication_name(entry)
        if name is None:
            return
        start = None
        if resource.get("authoredOn"):
            start, _ = _parse_time(entry, "authoredOn", resource["authoredOn"])
        dose = self._daily_dose(entry, "dosageInstruction")
        self.courses.append(_Course(name, start, None, dose, True))
        self.report.mapped["medication"] += 1

    def _candidate(self, name: str) -> None:
        if name not in self.data.candidate_medications:
            self.data.candidate_medications.append(name)
            self.report.mapped["candidate medication"] += 1

    def _medication_timeline(self) -> None:
        """Courses -> current medications and start / dose-change / stop events."""
        by_name: dict[str, list[_Course]] = defaultdict(list)
        for course in self.courses:
            by_name[course.name].append(course)
        events: list[tuple[datetime, int, str, float]] = []
        current: list[tuple[str, float, datetime | None]] = []
        for name, courses in by_name.items():
            dated = sorted((c for c in courses if c.start), key=lambda c: c.start or 0)
            undated = [c for c in courses if c.start is None]
            chain_start: datetime | None = None
            previous_end: datetime | None = None
            for course in dated:
                assert course.start is not None
                continuing = previous_end is not None and course.start == previous_end
                if continuing:
                    events.append(
                        (
                            course.start,
                            common_pb2.MEDICATION_EVENT_TYPE_DOSE_CHANGE,
                            name,
                            course.dose_mg,
                        )
                    )
                else:
                    chain_start = course.start
                    events.append(
                        (course.start, common_pb2.MEDICATION_EVENT_TYPE_START, name, course.dose_mg)
                    )
                previous_end = course.end
                if course.current:
                    current.append((name, course.dose_mg, chain_start))
            # A stop is an end not continued by the next course of the same medication.
            starts = {c.start for c in dated}
            for course in courses:
                if course.end is not None and course.end not in starts:
                    events.append((course.end, common_pb2.MEDICATION_EVENT_TYPE_STOP, name, 0.0))
            current.extend((name, c.dose_mg, None) for c in undated if c.current)
        for moment, kind, name, dose in sorted(
            events, key=lambda e: (e[0], _EVENT_RANK[e[1]], e[2])
        ):
            event = self.data.medication_events.add(medication=name, type=kind, daily_dose_mg=dose)
            event.occurred_at.CopyFrom(to_timestamp(moment))
            self._note_time(moment)
        seen: set[str] = set()
        for name, dose, started in sorted(current, key=lambda c: c[0]):
            if name in seen:
                continue
            seen.add(name)
            medication = self.data.current_medications.add(name=name, daily_dose_mg=dose)
            if started is not None:
                medication.started_at.CopyFrom(to_timestamp(started))
        kept = [c for c in self.data.candidate_medications if c not in seen]
        del self.data.candidate_medications[:]
        self.data.candidate_medications.extend(kept)

    # --- clinical profile -------------------------------------------------------------

    def _clinical(self) -> None:
        phq9 = [
            (o.observed_at.ToDatetime(), o.score)
            for o in self.data.symptoms
            if o.instrument == common_pb2.INSTRUMENT_PHQ9
        ]
        if phq9:
            self.data.clinical.baseline_phq9 = max(phq9, key=lambda p: p[0])[1]
        if self.birth_date is not None and not self.age_from_observation:
            as_of = (self.latest or datetime.now(UTC)).date()
            years = as_of.year - self.birth_date.year
            years -= (as_of.month, as_of.day) < (self.birth_date.month, self.birth_date.day)
            self.data.clinical.age_years = max(years, 0)


def insights_request_from_fhir(
    bundle: Path | str | bytes | Mapping[str, Any],
) -> tuple[twin_pb2.GenerateInsightsRequest, FhirImportReport]:
    """A GenerateInsightsRequest for the bundle's patient, and the import report."""
    patient = read_fhir_bundle(bundle) if isinstance(bundle, Path) else patient_from_fhir(bundle)
    request = twin_pb2.GenerateInsightsRequest(patient_id=patient.patient_id, data=patient.data)
    return request, patient.report
