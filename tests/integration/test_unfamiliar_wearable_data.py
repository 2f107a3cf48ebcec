"""A patient whose wearable data are unlike the training data: flagged end to end."""

from __future__ import annotations

from common.synthetic import CohortConfig, generate_cohort
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from tests.conftest import channel_to
from tests.integration.mesh import running_mesh
from twin_orchestrator.patient_bundle import patient_data

PATIENT_ID = "MRN-0077311"


async def test_unfamiliar_wearable_data_reach_the_response_and_a_recommendation(
    tmp_path, pki_dir, trained_models
):
    cohort = generate_cohort(CohortConfig(n_patients=4, n_days=120, seed=61))
    familiar = patient_data(cohort, str(cohort.patients.patient_id.iloc[1]))
    unfamiliar = twin_pb2.PatientData()
    unfamiliar.CopyFrom(familiar)
    for sample in unfamiliar.biometrics:
        if sample.metric == common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE:
            sample.value += 60.0  # a device or a patient far outside every training patient
    model_dir, key_dir = trained_models
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        async with channel_to(mesh.orchestrator, pki_dir) as channel:
            stub = twin_pb2_grpc.DigitalTwinServiceStub(channel)
            replies = {}
            for name, data in (("familiar", familiar), ("unfamiliar", unfamiliar)):
                request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID, data=data)
                replies[name] = await stub.GenerateInsights(request, timeout=60)
    for name, reply in replies.items():
        assert reply.biometric.result.status == common_pb2.SECTION_STATUS_OK, name
    calm = replies["familiar"].biometric.correlations.early_warning
    assert not calm.out_of_distribution and not calm.out_of_distribution_reason
    warning = replies["unfamiliar"].biometric.correlations.early_warning
    assert warning.out_of_distribution and warning.training_distance > 0
    assert "resting heart rate" in warning.out_of_distribution_reason
    rules = {r.rule_id: r for r in replies["unfamiliar"].recommendations}
    assert "early-warning-unfamiliar-data" in rules
    assert rules["early-warning-unfamiliar-data"].rationale.startswith("Resting heart rate")
    assert "early-warning-unfamiliar-data" not in {
        r.rule_id for r in replies["familiar"].recommendations
    }
