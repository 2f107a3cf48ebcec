"""Every BiometricMetric the contract defines is known to every table that names metrics.

A metric added to common.proto and forgotten in one table would surface as an
"Unknown metric" in a report, a KeyError in an export or a silently dropped CSV
column; this test names the table instead.
"""

from __future__ import annotations

import pytest

from biometric_svc import baseline, correlation, monitoring_plan
from biometric_svc.domain import METRIC_LABELS
from common.biometric_metrics import METRICS, SUPPLIED_ONLY_METRICS
from common.datasets import ADDITIVE_METRICS, READING_RANGES
from common.synthetic import METRICS as GENERATED_METRICS
from novamind.common.v1 import common_pb2
from twin_orchestrator import fhir_codes, fhir_import, fhir_patient_export, report_plots, triggers
from twin_orchestrator.patient_bundle import METRIC_COLUMNS

ENUM = [v for v in common_pb2.BiometricMetric.values() if v != 0]


def test_metric_names_follow_the_enum_in_order():
    assert [common_pb2.BiometricMetric.Value(f"BIOMETRIC_METRIC_{m.upper()}") for m in METRICS] == (
        ENUM
    )
    assert METRICS[: len(GENERATED_METRICS)] == GENERATED_METRICS
    assert SUPPLIED_ONLY_METRICS == ("heart_rate", "hrv_sdnn")


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("biometric_svc.domain.METRIC_LABELS", set(METRIC_LABELS)),
        ("biometric_svc.baseline.MAD_FLOOR", set(baseline.MAD_FLOOR)),
        ("biometric_svc.baseline.NATURAL_MAD_FLOOR", set(baseline.NATURAL_MAD_FLOOR)),
        ("biometric_svc.monitoring_plan._PHYSICAL_RANGE", set(monitoring_plan._PHYSICAL_RANGE)),
        ("biometric_svc.monitoring_plan._DECIMALS", set(monitoring_plan._DECIMALS)),
        ("biometric_svc.monitoring_plan._UNITS", set(monitoring_plan._UNITS)),
        ("common.datasets ranges and daily limits", set(READING_RANGES) | set(ADDITIVE_METRICS)),
        ("twin_orchestrator.patient_bundle.METRIC_COLUMNS", set(METRIC_COLUMNS)),
    ],
)
def test_every_metric_name_table_is_complete(table, keys):
    assert keys == set(METRICS), table


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("report_plots.METRIC_LABELS", set(report_plots.METRIC_LABELS)),
        ("triggers.METRIC_NAMES", set(triggers.METRIC_NAMES)),
        ("fhir_codes.BIOMETRIC_EXPORT_CODES", set(fhir_codes.BIOMETRIC_EXPORT_CODES)),
        ("fhir_codes.BIOMETRIC_CODES values", set(fhir_codes.BIOMETRIC_CODES.values())),
        ("fhir_import._BIOMETRIC_UNIT_KIND", set(fhir_import._BIOMETRIC_UNIT_KIND)),
        ("fhir_import._METRIC_LABELS", set(fhir_import._METRIC_LABELS)),
        ("fhir_patient_export._UNIT_KIND", set(fhir_patient_export._UNIT_KIND)),
    ],
)
def test_every_enum_table_is_complete(table, keys):
    assert keys == set(ENUM), table


def test_log_scale_sets_agree_and_hold_both_hrv_statistics():
    assert correlation.LOG_METRICS == baseline.LOG_SCALE_METRICS
    assert {"hrv_rmssd", "hrv_sdnn"} <= baseline.LOG_SCALE_METRICS
    assert "heart_rate" not in baseline.LOG_SCALE_METRICS
