"""GenerateInsightsResponse -> a FHIR R4 Bundle a clinic's EHR can file.

- ``RiskAssessment`` for the overall risk (its drivers as the rationale and
  notes) and one per forecast risk period (probability = the period's peak
  daily probability, ``whenPeriod`` = the days of the run);
- ``DetectedIssue`` for each actionable drug-gene finding, severity from the
  guidance's classification strength, evidence with its PubMed id;
- a ``CarePlan`` whose activities point, in priority order, to one ``Task``
  per prioritized recommendation.

The bundle is validated with ``fhir.resources`` before it is returned.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from common.clinical_scales import INSTRUMENT_LABELS
from common.proto_convert import from_timestamp
from novamind.common.v1 import common_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx
from novamind.twin.v1 import twin_pb2
from twin_orchestrator import fhir_codes as codes
from twin_orchestrator.fhir_patient_export import fhir_time

RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
PUBMED = "https://pubmed.ncbi.nlm.nih.gov"
REQUEST_ID_SYSTEM = "https://fhir.novamind.example/NamingSystem/request-id"
RULE_ID_SYSTEM = "https://fhir.novamind.example/NamingSystem/recommendation-rule"
#: Overall risk level -> HL7 risk-probability code (CRITICAL is "high", with the word kept in text).
_RISK_CODE = {
    common_pb2.RISK_LEVEL_LOW: ("low", "Low"),
    common_pb2.RISK_LEVEL_ELEVATED: ("moderate", "Elevated"),
    common_pb2.RISK_LEVEL_HIGH: ("high", "High"),
    common_pb2.RISK_LEVEL_CRITICAL: ("high", "Critical"),
}
#: Guidance classification strength -> DetectedIssue.severity.
SEVERITY_BY_STRENGTH = {
    pgx.CLASSIFICATION_STRENGTH_STRONG: "high",
    pgx.CLASSIFICATION_STRENGTH_MODERATE: "moderate",
    pgx.CLASSIFICATION_STRENGTH_FDA_LABEL: "moderate",
    pgx.CLASSIFICATION_STRENGTH_OPTIONAL: "low",
}
#: Actions that make a drug-gene pair a finding; "use standard" and "no recommendation" are not.
ACTIONABLE = frozenset(
    {
        pgx.GUIDANCE_ACTION_ADJUST_DOSE,
        pgx.GUIDANCE_ACTION_CONSIDER_ALTERNATIVE,
        pgx.GUIDANCE_ACTION_AVOID,
        pgx.GUIDANCE_ACTION_USE_WITH_CAUTION,
    }
)
#: Recommendation priority -> FHIR request-priority (routine < urgent < asap < stat).
TASK_PRIORITY = {
    common_pb2.PRIORITY_URGENT: "asap",
    common_pb2.PRIORITY_HIGH: "urgent",
    common_pb2.PRIORITY_MEDIUM: "routine",
    common_pb2.PRIORITY_LOW: "routine",
}
_PRIORITY_LABEL = {
    common_pb2.PRIORITY_URGENT: "Urgent: act today",
    common_pb2.PRIORITY_HIGH: "High: act within days",
    common_pb2.PRIORITY_MEDIUM: "Medium: consider at the next review",
    common_pb2.PRIORITY_LOW: "Low: for information",
}
_CATEGORY_LABEL = {
    common_pb2.RECOMMENDATION_CATEGORY_CLINICAL_FOLLOW_UP: "Clinical follow-up",
    common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW: "Medication review",
    common_pb2.RECOMMENDATION_CATEGORY_MONITORING: "Monitoring",
    common_pb2.RECOMMENDATION_CATEGORY_DATA_QUALITY: "Data quality",
}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _evidence_text(evidence: common_pb2.Evidence) -> str:
    parts = [evidence.source]
    if evidence.strength:
        parts.append(f"strength {evidence.strength}")
    if evidence.pmid:
        parts.append(f"PMID {evidence.pmid}")
    if evidence.detail:
        parts.append(evidence.detail)
    return "; ".join(p for p in parts if p)


def _pmid_reference(pmid: str) -> dict[str, Any]:
    return {
        "identifier": {"system": PUBMED, "value": pmid},
        "display": f"PMID {pmid}",
    }


def bundle_from_insights(
    patient_id: str, response: twin_pb2.GenerateInsightsResponse
) -> dict[str, Any]:
    """The insights as a validated FHIR R4 collection Bundle (a JSON-ready dict)."""
    generated = fhir_time(from_timestamp(response.generated_at))
    patient_url = _urn()
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": codes.PATIENT_ID_SYSTEM, "value": patient_id}],
            },
        }
    ]
    subject = {"reference": patient_url}

    def add(resource: dict[str, Any], url: str | None = None) -> str:
        url = url or _urn()
        entries.append({"fullUrl": url, "resource": resource})
        return url

    add(_overall_risk(response, subject, generated))
    for resource in _risk_periods(response, subject, generated):
        add(resource)
    for resource in _detected_issues(response, subject, generated):
        add(resource)
    task_urls = []
    for rank, recommendation in enumerate(response.recommendations, start=1):
        task_urls.append(add(_task(recommendation, rank, subject, generated)))
    if task_urls:
        add(
            {
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "proposal",
                "title": "Digital twin recommendations, highest priority first",
                "subject": subject,
                "created": generated,
                "activity": [{"reference": {"reference": url}} for url in task_urls],
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": generated,
        "identifier": {"system": REQUEST_ID_SYSTEM, "value": response.request_id},
        "entry": entries,
    }
    get_fhir_model_class("Bundle").model_validate(bundle)
    return bundle


def write_insights_bundle(
    path: Path, patient_id: str, response: twin_pb2.GenerateInsightsResponse
) -> Path:
    """Validate and write the insights bundle as JSON; returns the path written."""
    bundle = bundle_from_insights(patient_id, response)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
    return path


def _overall_risk(
    response: twin_pb2.GenerateInsightsResponse, subject: dict[str, Any], generated: str
) -> dict[str, Any]:
    prediction: dict[str, Any] = {
        "outcome": {"text": "Deterioration of depressive or anxiety symptoms"},
    }
    if response.overall_risk in _RISK_CODE:
        code, label = _RISK_CODE[response.overall_risk]
        prediction["qualitativeRisk"] = {
            "coding": [{"system": RISK_PROBABILITY, "code": code}],
            "text": label,
        }
    if response.risk_drivers:
        prediction["rationale"] = "; ".join(response.risk_drivers)
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "code": {"text": "Digital twin overall risk"},
        "subject": subject,
        "occurrenceDateTime": generated,
        "prediction": [prediction],
    }
    if response.risk_drivers:
        resource["note"] = [{"text": driver} for driver in response.risk_drivers]
    return resource


def _risk_periods(
    response: twin_pb2.GenerateInsightsResponse, subject: dict[str, Any], generated: str
) -> list[dict[str, Any]]:
    out = []
    for forecast in response.forecast.forecast.forecasts:
        label = INSTRUMENT_LABELS.get(forecast.instrument, "symptom score")
        for period in forecast.risk_periods:
            start = from_timestamp(period.start_date)
            end = from_timestamp(period.end_date)
            peak = from_timestamp(period.peak_date)
            out.append(
                {
                    "resourceType": "RiskAssessment",
                    "status": "final",
                    "code": {"text": f"Forecast risk period ({label})"},
                    "subject": subject,
                    "occurrenceDateTime": generated,
                    "prediction": [
                        {
                            "outcome": {"text": period.threshold_label},
                            "probabilityDecimal": round(period.peak_probability, 4),
                            # The run's last day is inclusive, as Period.end is.
                            "whenPeriod": {
                                "start": f"{start:%Y-%m-%d}",
                                "end": f"{end:%Y-%m-%d}",
                            },
                            "rationale": (
                                f"Highest daily probability of {period.threshold_label} "
                                f"on {peak:%Y-%m-%d}"
                            ),
                        }
                    ],
                }
            )
    return out


def _detected_issues(
    response: twin_pb2.GenerateInsightsResponse, subject: dict[str, Any], generated: str
) -> list[dict[str, Any]]:
    out = []
    for finding in response.pharmacogenomics.interactions.interactions:
        if finding.action not in ACTIONABLE:
            continue
        action = pgx.GuidanceAction.Name(finding.action).removeprefix("GUIDANCE_ACTION_")
        phenotype = pgx.Phenotype.Name(finding.phenotype).removeprefix("PHENOTYPE_")
        resource: dict[str, Any] = {
            "resourceType": "DetectedIssue",
            "status": "final",
            "code": {"text": "Drug-gene interaction"},
            "patient": subject,
            "identifiedDateTime": generated,
            "implicated": [{"display": finding.medication}],
            "detail": (
                f"{finding.medication} with {finding.gene} "
                f"{phenotype.replace('_', ' ').lower()}: {action.replace('_', ' ').lower()}. "
                f"{finding.recommendation}"
            ).strip(),
        }
        severity = SEVERITY_BY_STRENGTH.get(finding.strength)
        if severity:
            resource["severity"] = severity
        evidence = finding.evidence
        if evidence.source or evidence.pmid:
            item: dict[str, Any] = {"code": [{"text": _evidence_text(evidence)}]}
            if evidence.pmid:
                item["detail"] = [_pmid_reference(evidence.pmid)]
            resource["evidence"] = [item]
        mitigation = finding.dose_adjustment or ", ".join(finding.alternatives)
        if mitigation:
            resource["mitigation"] = [{"action": {"text": mitigation}}]
        out.append(resource)
    return out


def _task(
    recommendation: common_pb2.Recommendation,
    rank: int,
    subject: dict[str, Any],
    generated: str,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [{"system": RULE_ID_SYSTEM, "value": recommendation.rule_id}],
        "status": "requested",
        "intent": "proposal",
        "priority": TASK_PRIORITY.get(recommendation.priority, "routine"),
        "code": {"text": _CATEGORY_LABEL.get(recommendation.category, "Recommendation")},
        "description": recommendation.text,
        "for": subject,
        "authoredOn": generated,
    }
    if recommendation.rationale:
        task["reasonCode"] = {"text": recommendation.rationale}
    priority = _PRIORITY_LABEL.get(recommendation.priority, "not prioritized")
    task["note"] = [{"text": f"Priority #{rank} ({priority})"}] + [
        {"text": f"Evidence: {_evidence_text(e)}"} for e in recommendation.evidence
    ]
    return task
