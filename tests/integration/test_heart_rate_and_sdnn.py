"""Heart rate (any time of day) and HRV as SDNN through the biometric service.

Real loopback server with mTLS and the tiny trained early-warning model. The
patients are synthetic ones whose leading metric is resting heart rate or
RMSSD, re-expressed as the metrics a clinic's records carry (LOINC 8867-4
and 80404-7): the worlds generate neither, so the statistics must find the
lead in them, and the model, trained without them, must say it did not use them.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from biometric_svc.bootstrap import build
from common.synthetic import CohortConfig, generate_cohort
from novamind.biometric.v1 import biometric_pb2, biometric_pb2_grpc
from novamind.common.v1 import common_pb2
from tests.conftest import channel_to, running
from tests.integration.test_biometric_server import _bad_request_fields
from tests.unit.biometric.patients import PSEUDONYM, proto_request_data
from tests.unit.biometric.tiny_model import ARTIFACT_KEY_HEX, tiny_model_dir

HR = common_pb2.BIOMETRIC_METRIC_HEART_RATE
SDNN = common_pb2.BIOMETRIC_METRIC_HRV_SDNN
RESTING = common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE
RMSSD = common_pb2.BIOMETRIC_METRIC_HRV_RMSSD


@pytest.fixture
def settings(make_settings, tmp_path):
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    (key_dir / "artifact.key").write_text(ARTIFACT_KEY_HEX)
    return make_settings("biometric", model_dir=tiny_model_dir(), key_dir=key_dir)


def _patient(seed: int, lead: str):
    """The first coupled patient of a small cohort whose leading metric is ``lead``."""
    cohort = generate_cohort(CohortConfig(n_patients=8, n_days=150, seed=seed))
    truth = cohort.truth.couplings
    row = truth[truth.lead_metric == lead].iloc[0]
    samples, observations = proto_request_data(cohort, row.patient_id)
    return row, samples, observations


def _as_clinic_metrics(
    samples: list[common_pb2.BiometricSample], keep_model_metrics: bool
) -> list[common_pb2.BiometricSample]:
    """Resting HR -> daytime heart rate (+14 bpm), RMSSD -> SDNN (x1.3, with noise)."""
    rng = np.random.default_rng(5)
    out = []
    for sample in samples:
        if sample.metric in (RESTING, RMSSD):
            derived = common_pb2.BiometricSample()
            derived.CopyFrom(sample)
            if sample.metric == RESTING:
                derived.metric, derived.value = HR, sample.value + 14.0
            else:
                derived.metric = SDNN
                derived.value = sample.value * 1.3 * float(np.exp(rng.normal(0, 0.02)))
            out.append(derived)
        if keep_model_metrics:
            out.append(sample)
    return out


async def _analyze(settings, pki_dir, samples, observations):
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            return await stub.AnalyzePatient(
                biometric_pb2.AnalyzePatientRequest(
                    patient_pseudonym=PSEUDONYM,
                    biometrics=samples,
                    indicators=observations,
                    lookback_days=150,
                ),
                timeout=60,
            )


@pytest.mark.parametrize(
    ("seed", "lead", "expected"),
    [(22, "resting_heart_rate", HR), (23, "hrv_rmssd", SDNN)],
)
async def test_a_patient_with_only_heart_rate_and_sdnn_gets_an_analysis(
    settings, pki_dir, seed, lead, expected
):
    row, samples, observations = _patient(seed, lead)
    only_new = _as_clinic_metrics(samples, keep_model_metrics=False)
    assert {s.metric for s in only_new} == {HR, SDNN}
    response = await _analyze(settings, pki_dir, only_new, observations)

    correlations = response.correlations
    assert correlations.correlations
    assert {c.metric for c in correlations.correlations} <= {HR, SDNN}
    key = correlations.key_indicators[0]
    assert key.metric == expected and abs(key.lead_days - int(row.lag_days)) <= 1
    label = "heart rate" if expected == HR else "HRV (SDNN)"
    assert key.reading.startswith(label)

    warning = correlations.early_warning
    assert warning.insufficient_data and warning.level == common_pb2.RISK_LEVEL_UNSPECIFIED
    assert list(warning.unused_metrics) == [HR, SDNN]
    assert "heart rate and HRV (SDNN) are not among the model's inputs" in warning.detail
    assert not warning.drivers

    anomalies = response.anomalies
    assert not anomalies.insufficient_data
    assert {b.metric for b in anomalies.baselines} == {HR, SDNN}
    # Metrics the patient never supplied are absent, not one long gap.
    assert {span.metric for span in anomalies.missing} <= {HR, SDNN}

    plan = response.monitoring_plan
    assert plan.metrics[0].metric == expected
    assert {m.metric for m in plan.metrics} == {HR, SDNN}
    unit = " bpm" if expected == HR else " ms"
    assert unit in plan.metrics[0].reason or unit in plan.metrics[1].reason


async def test_with_the_model_metrics_too_the_warning_is_scored_and_names_what_it_left_out(
    settings, pki_dir
):
    _, samples, observations = _patient(22, "resting_heart_rate")
    response = await _analyze(
        settings, pki_dir, _as_clinic_metrics(samples, keep_model_metrics=True), observations
    )
    warning = response.correlations.early_warning
    assert not warning.insufficient_data
    assert warning.level != common_pb2.RISK_LEVEL_UNSPECIFIED and 0 < warning.probability < 1
    assert list(warning.unused_metrics) == [HR, SDNN]
    assert "not among the model's inputs (resting heart rate, HRV (RMSSD)," in warning.detail
    assert warning.drivers and not {d.metric for d in warning.drivers} & {HR, SDNN}
    assert {b.metric for b in response.anomalies.baselines} == set(range(1, 9))


async def test_out_of_range_heart_rate_and_sdnn_are_invalid_argument_naming_the_field(
    settings, pki_dir
):
    rows = [(HR, 61.0), (HR, 300.0), (SDNN, 48.0), (SDNN, 0.05), (HR, 24.0), (SDNN, 650.0)]
    samples = []
    for day, (metric, value) in enumerate(rows):
        sample = common_pb2.BiometricSample(metric=metric, value=value)
        sample.measured_at.FromSeconds(1_775_000_000 + 86_400 * day)
        samples.append(sample)
    async with running(settings, build(settings)) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            stub = biometric_pb2_grpc.BiometricCorrelationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.AnalyzePatient(
                    biometric_pb2.AnalyzePatientRequest(
                        patient_pseudonym=PSEUDONYM, biometrics=samples
                    ),
                    timeout=10,
                )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request_fields(error) == {
        "biometrics[1].value": "heart rate must be within 25..250",
        "biometrics[3].value": "HRV (SDNN) must be within 1..500",
        "biometrics[4].value": "heart rate must be within 25..250",
        "biometrics[5].value": "HRV (SDNN) must be within 1..500",
    }
    for value in ("300", "0.05", "650"):
        assert value not in (error.details() or "")
