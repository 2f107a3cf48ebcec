"""The biometric service on a real loopback server with mTLS and a tiny trained model."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from biometric_svc.bootstrap import build
from biometric_svc.early_warning import ARTIFACT_NAME
from common.synthetic import CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2, biometric_pb2_grpc
from novamind.common.v1 import common_pb2
from tests.conftest import channel_to, running
from tests.unit.biometric.patients import PSEUDONYM, proto_request_data
from tests.unit.biometric.tiny_model import ARTIFACT_KEY_HEX, tiny_model_dir, tiny_store


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(CohortConfig(n_patients=8, n_days=150, seed=22))


@pytest.fixture
def settings(make_settings, tmp_path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    (key_dir / "artifact.key").write_text(ARTIFACT_KEY_HEX)
    return make_settings("biometric", model_dir=tiny_model_dir(), key_dir=key_dir)


def _bad_request_fields(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    fields: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.update({v.field: v.description for v in bad.field_violations})
    return fields


async def test_all_rpcs_on_a_coupled_patient(settings, pki_dir, cohort):
    truth = cohort.truth.couplings
    row = truth[truth.coupled].iloc[0]
    samples, observations = proto_request_data(cohort, row.patient_id)
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            analysis = await stub.AnalyzeCorrelations(
                biometric_pb2.AnalyzeCorrelationsRequest(
                    patient_pseudonym=PSEUDONYM,
                    biometrics=samples,
                    indicators=observations,
                    lookback_days=150,
                ),
                timeout=30,
            )
            anomalies = await stub.DetectAnomalies(
                biometric_pb2.DetectAnomaliesRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples
                ),
                timeout=30,
            )
            plan = await stub.RecommendMonitoringPlan(
                biometric_pb2.RecommendMonitoringPlanRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples, indicators=observations
                ),
                timeout=30,
            )
            info = await stub.GetModelInfo(biometric_pb2.GetModelInfoRequest(), timeout=10)

    lead_metric = common_pb2.BiometricMetric.Value(f"BIOMETRIC_METRIC_{row.lead_metric.upper()}")
    key = analysis.key_indicators[0]
    assert key.metric == lead_metric and abs(key.lead_days - int(row.lag_days)) <= 1
    assert len(analysis.correlations) == 24
    assert analysis.reliability == biometric_pb2.RELIABILITY_GRADE_HIGH
    assert analysis.coverage.window_days == 150 and len(analysis.coverage.metrics) == 8
    # The synthetic patient has no heart rate or SDNN: listed with no days, not left out.
    unsupplied = {m.metric: m.days_with_data for m in analysis.coverage.metrics[6:]}
    assert unsupplied == {
        common_pb2.BIOMETRIC_METRIC_HEART_RATE: 0,
        common_pb2.BIOMETRIC_METRIC_HRV_SDNN: 0,
    }
    best = analysis.correlations[0]
    assert best.significant and best.q_value < 0.05 and len(best.profile) == 15
    warning = analysis.early_warning
    assert not warning.insufficient_data
    assert warning.level != common_pb2.RISK_LEVEL_UNSPECIFIED and 0 < warning.probability < 1
    assert warning.drivers and warning.drivers[0].date.seconds % 86_400 == 0
    assert analysis.models[0].name == ARTIFACT_NAME and analysis.models[0].signature_verified

    assert not anomalies.insufficient_data
    assert {b.metric for b in anomalies.baselines} == set(range(1, 7))
    assert all(a.deviations and 0 < a.score <= 1 for a in anomalies.anomalies)
    assert all(span.days >= 1 for span in anomalies.missing)

    assert plan.metrics[0].metric == lead_metric and plan.summary
    assert plan.metrics[0].HasField("alert_below") != plan.metrics[0].HasField("alert_above")

    expected = tiny_store().load(ARTIFACT_NAME).manifest
    (model,) = info.models
    assert model.version == expected.version
    assert model.metrics["val_auroc"] == pytest.approx(expected.metrics["val_auroc"])


async def test_bad_input_is_invalid_argument_naming_the_field(settings, pki_dir):
    good = common_pb2.BiometricSample(
        metric=common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, value=61
    )
    good.measured_at.FromSeconds(1_775_000_000)
    bad_rate = common_pb2.BiometricSample(
        metric=common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, value=400
    )
    bad_rate.measured_at.FromSeconds(1_775_086_400)
    unknown = common_pb2.BiometricSample(metric=99, value=1.0)  # an enum number from the future
    unknown.measured_at.FromSeconds(1_775_086_400)
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.AnalyzeCorrelations(
                    biometric_pb2.AnalyzeCorrelationsRequest(
                        patient_pseudonym=PSEUDONYM,
                        biometrics=[good, bad_rate, unknown],
                        max_lag_days=40,
                    ),
                    timeout=10,
                )
            single = await stub.DetectAnomalies(
                biometric_pb2.DetectAnomaliesRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=[good]
                ),
                timeout=10,
            )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = _bad_request_fields(error)
    assert set(fields) == {"biometrics[1].value", "biometrics[2].metric", "max_lag_days"}
    assert "400" not in (error.details() or "")
    assert single.insufficient_data and not single.anomalies


async def test_without_a_trained_model_only_the_warning_is_unavailable(
    make_settings, pki_dir, cohort
):
    settings = make_settings("biometric")  # an empty model directory
    samples, observations = proto_request_data(cohort, cohort.patients.patient_id.iloc[0])
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            analysis = await stub.AnalyzeCorrelations(
                biometric_pb2.AnalyzeCorrelationsRequest(
                    patient_pseudonym=PSEUDONYM, biometrics=samples, indicators=observations
                ),
                timeout=30,
            )
            info = await stub.GetModelInfo(biometric_pb2.GetModelInfoRequest(), timeout=10)
    assert analysis.correlations and not info.models
    warning = analysis.early_warning
    assert warning.level == common_pb2.RISK_LEVEL_UNSPECIFIED and not warning.insufficient_data
    assert "python -m biometric_svc.train" in warning.detail
