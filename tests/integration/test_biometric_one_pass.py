"""One-pass analysis changes no answer: every biometric RPC equals the pre-vectorisation path.

The reference responses are built in the test from ``reference_v0`` (verbatim
copies of the code that served before: pandas daily aggregation, the per-lag
correlation loop with per-pair autocorrelations, np.nanmedian baselines) and
the same tiny trained early-warning model, then converted by the service's own
protobuf converters. They are compared field by field with what a real
server on loopback answers to AnalyzePatient and to the three single RPCs.

Tolerance: ints, enums, bools, strings (readings, reasons, descriptions) and
the lists' lengths and order must be identical. Doubles may differ by 1e-9
relative: the lag grid sums each pair's products over a masked array instead
of over the compressed pairs (another summation order), and pearson r, the
autocorrelations and the p/q values built from them move in the last bits;
for sub-daily samples, the daily sums run in sample order instead of pandas'
compensated summation.
"""

from __future__ import annotations

import datetime as dt
import math

import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from biometric_svc import server as transport
from biometric_svc.baseline import nan_median
from biometric_svc.bootstrap import build
from biometric_svc.correlation import key_indicators
from biometric_svc.coverage import data_coverage, reliability_grade
from biometric_svc.domain import CorrelationReport, Reliability
from biometric_svc.early_warning import ARTIFACT_NAME, EarlyWarningModel
from biometric_svc.monitoring_plan import monitoring_plan
from biometric_svc.validation import (
    DEFAULT_BASELINE_WINDOW_DAYS,
    DEFAULT_FDR_ALPHA,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_LAG_DAYS,
)
from common.proto_convert import to_timestamp
from common.synthetic import CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2, biometric_pb2_grpc
from novamind.common.v1 import common_pb2
from tests.conftest import channel_to, running
from tests.unit.biometric import reference_v0 as reference
from tests.unit.biometric.patients import PSEUDONYM, proto_request_data
from tests.unit.biometric.tiny_model import ARTIFACT_KEY_HEX, tiny_model_dir, tiny_store

REL_TOL = 1e-9
ABS_TOL = 1e-12


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(CohortConfig(n_patients=6, n_days=200, seed=31))


@pytest.fixture
def settings(make_settings, tmp_path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    (key_dir / "artifact.key").write_text(ARTIFACT_KEY_HEX)
    return make_settings("biometric", model_dir=tiny_model_dir(), key_dir=key_dir)


def assert_same(actual: Message, expected: Message, path: str = "") -> None:
    """Field by field; only doubles may differ, by REL_TOL (see module doc)."""
    for field in expected.DESCRIPTOR.fields:
        name = f"{path}.{field.name}" if path else field.name
        want, got = getattr(expected, field.name), getattr(actual, field.name)
        if field.is_repeated and field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                assert dict(got) == dict(want), name
                continue
            assert len(got) == len(want), f"{name}: {len(got)} items, expected {len(want)}"
            for index, (g, w) in enumerate(zip(got, want, strict=True)):
                assert_same(g, w, f"{name}[{index}]")
        elif field.message_type is not None:
            assert actual.HasField(field.name) == expected.HasField(field.name), name
            assert_same(got, want, name)
        elif field.has_presence and actual.HasField(field.name) != expected.HasField(field.name):
            raise AssertionError(f"{name}: presence differs")
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            values = zip(got, want, strict=True) if field.is_repeated else [(got, want)]
            for g, w in values:
                same = g == w or (math.isnan(g) and math.isnan(w))
                assert same or math.isclose(g, w, rel_tol=REL_TOL, abs_tol=ABS_TOL), (
                    f"{name}: {g!r} != {w!r}"
                )
        else:
            assert got == want, f"{name}: {got!r} != {want!r}"


def _reference_responses(
    samples: list[common_pb2.BiometricSample],
    observations: list[common_pb2.SymptomObservation],
    model: EarlyWarningModel,
) -> tuple[
    biometric_pb2.AnalyzeCorrelationsResponse,
    biometric_pb2.DetectAnomaliesResponse,
    biometric_pb2.RecommendMonitoringPlanResponse,
]:
    """The three responses as the service computed them before one-pass analysis."""
    biometrics = transport.biometric_samples(samples)
    indicators = transport.indicator_observations(observations)
    series = reference.daily_series(biometrics, indicators)
    window = series.tail(DEFAULT_LOOKBACK_DAYS)
    coverage = data_coverage(window)
    grade = reliability_grade(coverage)
    correlations = (
        ()
        if grade is Reliability.INSUFFICIENT
        else reference.lagged_correlations(window, DEFAULT_MAX_LAG_DAYS, DEFAULT_FDR_ALPHA)
    )
    keys = key_indicators(correlations)
    report = CorrelationReport(
        correlations=correlations,
        key_indicators=keys,
        coverage=coverage,
        reliability=grade,
        early_warning=model.warn(series, keys),
        models=(model.manifest,) if model.manifest else (),
    )
    biometric_only = reference.daily_series(biometrics)
    anomalies = reference.detect_anomalies(
        biometric_only.biometrics, biometric_only.dates, DEFAULT_BASELINE_WINDOW_DAYS
    )
    plan = monitoring_plan(window.biometrics, correlations, keys, coverage, grade)
    return (
        transport.correlation_response(report),
        transport.anomaly_response(anomalies),
        transport.plan_response(plan),
    )


def _hourly(samples: list[common_pb2.BiometricSample]) -> list[common_pb2.BiometricSample]:
    """Heart rate as four hourly readings a day, steps in four chunks: sub-daily aggregation."""
    out = []
    for sample in samples:
        if sample.metric not in (
            common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE,
            common_pb2.BIOMETRIC_METRIC_STEPS,
        ):
            out.append(sample)
            continue
        additive = sample.metric == common_pb2.BIOMETRIC_METRIC_STEPS
        for hour, factor in ((2, 0.97), (8, 1.01), (14, 1.05), (20, 0.97)):
            part = common_pb2.BiometricSample(
                metric=sample.metric,
                value=sample.value * (0.25 if additive else factor) + (0.1 * hour),
                granularity=common_pb2.SAMPLE_GRANULARITY_HOUR,
            )
            part.measured_at.CopyFrom(
                to_timestamp(
                    dt.datetime.fromtimestamp(sample.measured_at.seconds, dt.UTC)
                    + dt.timedelta(hours=hour)
                )
            )
            out.append(part)
    return out


@pytest.mark.parametrize(
    ("patient", "granularity"),
    [("coupled", "day"), ("uncoupled", "day"), ("coupled", "hour")],
)
async def test_every_rpc_equals_the_pre_vectorisation_path(
    settings, pki_dir, cohort, patient, granularity
):
    truth = cohort.truth.couplings
    patient_id = truth[truth.coupled == (patient == "coupled")].iloc[0].patient_id
    samples, observations = proto_request_data(cohort, patient_id)
    if granularity == "hour":
        samples = _hourly(samples)
    model = EarlyWarningModel.from_artifact(tiny_store().load(ARTIFACT_NAME))
    want_corr, want_anomalies, want_plan = _reference_responses(samples, observations, model)
    # The comparison would be vacuous on an empty analysis.
    assert len(want_corr.correlations) == 24 and want_anomalies.baselines
    assert want_plan.metrics and not want_corr.early_warning.insufficient_data
    if patient == "coupled":
        assert want_corr.key_indicators and want_anomalies.anomalies

    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir, identity="orchestrator") as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            combined = await stub.AnalyzePatient(
                biometric_pb2.AnalyzePatientRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples, indicators=observations
                ),
                timeout=60,
            )
            correlations = await stub.AnalyzeCorrelations(
                biometric_pb2.AnalyzeCorrelationsRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples, indicators=observations
                ),
                timeout=60,
            )
            anomalies = await stub.DetectAnomalies(
                biometric_pb2.DetectAnomaliesRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples
                ),
                timeout=60,
            )
            plan = await stub.RecommendMonitoringPlan(
                biometric_pb2.RecommendMonitoringPlanRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples, indicators=observations
                ),
                timeout=60,
            )

    assert_same(combined.correlations, want_corr)
    assert_same(combined.anomalies, want_anomalies)
    assert_same(combined.monitoring_plan, want_plan)
    assert_same(correlations, want_corr)
    assert_same(anomalies, want_anomalies)
    assert_same(plan, want_plan)


def test_the_comparison_catches_a_changed_answer():
    expected = biometric_pb2.AnalyzeCorrelationsResponse()
    expected.correlations.add(lag_days=3, pearson_r=0.41, reading="x")
    moved = biometric_pb2.AnalyzeCorrelationsResponse()
    moved.CopyFrom(expected)
    moved.correlations[0].lag_days = 4
    with pytest.raises(AssertionError, match="lag_days"):
        assert_same(moved, expected)
    moved.CopyFrom(expected)
    moved.correlations[0].pearson_r = 0.41 * (1 + 1e-6)
    with pytest.raises(AssertionError, match="pearson_r"):
        assert_same(moved, expected)
    moved.CopyFrom(expected)
    moved.correlations[0].pearson_r = 0.41 * (1 + 1e-13)
    assert_same(moved, expected)


def test_sort_based_median_is_bitwise_nanmedian():
    rng = np.random.default_rng(5)
    for width in (7, 28, 84, 700):
        values = rng.normal(60.0, 7.0, size=(300, width))
        values[rng.random(values.shape) < 0.3] = np.nan
        values[:5] = np.nan  # rows without any value
        values[5:9, 1:] = np.nan  # rows with a single value
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            expected = np.nanmedian(values, axis=1)
        np.testing.assert_array_equal(nan_median(values), expected)


async def test_analyze_patient_is_authorized_and_audited_like_the_others(settings, pki_dir, cohort):
    from common.audit import AuditLog

    samples, observations = proto_request_data(cohort, cohort.patients.patient_id.iloc[0])
    request = biometric_pb2.AnalyzePatientRequest(
        patient_pseudonym=PSEUDONYM, biometrics=samples[:200], indicators=observations[:100]
    )
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir, identity="forecasting") as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.AnalyzePatient(request, timeout=30)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        async with channel_to(mesh, pki_dir, identity="orchestrator") as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            await stub.AnalyzePatient(request, timeout=30)
            bad = biometric_pb2.AnalyzePatientRequest(
                patient_pseudonym=PSEUDONYM, baseline_window_days=3
            )
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await stub.AnalyzePatient(bad, timeout=30)
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "baseline_window_days" in (invalid.value.details() or "")

    audit = AuditLog(settings.audit_log, settings.secret("audit"))
    try:
        assert audit.verify() >= 3
        records = [r for r in audit.records() if r.rpc == "biometric.AnalyzePatient"]
    finally:
        audit.close()
    assert [(r.caller, r.pseudonym) for r in records] == [
        ("forecasting", PSEUDONYM),
        ("orchestrator", PSEUDONYM),
        ("orchestrator", PSEUDONYM),
    ]
    assert len({r.outcome for r in records}) == 3


def test_isolation_forest_scores_are_bitwise_the_previous_ones():
    from biometric_svc.models.isolation_forest import isolation_scores

    rng = np.random.default_rng(8)
    for days in (28, 90, 180, 400):
        z = rng.standard_t(3, size=(days, 6))
        z[rng.random(z.shape) < 0.2] = 0.0  # missing metrics sit at their baseline
        z[days // 2] = 8.0  # one gross outlier day
        np.testing.assert_array_equal(isolation_scores(z), reference.isolation_scores(z))
