"""gRPC transport of the biometric service: protobuf <-> domain, nothing else."""

from __future__ import annotations

import grpc

from biometric_svc.service import BiometricService
from common.proto_convert import model_info_from_manifest
from common.server import ServiceDefinition
from novamind.biometric.v1 import biometric_pb2, biometric_pb2_grpc

SERVICE_NAME = biometric_pb2.DESCRIPTOR.services_by_name["BiometricCorrelationService"].full_name


class BiometricCorrelationServicer(biometric_pb2_grpc.BiometricCorrelationServiceServicer):
    def __init__(self, service: BiometricService) -> None:
        self._service = service

    async def AnalyzeCorrelations(
        self, request: biometric_pb2.AnalyzeCorrelationsRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.AnalyzeCorrelationsResponse:
        self._service.require_model()
        return biometric_pb2.AnalyzeCorrelationsResponse()

    async def DetectAnomalies(
        self, request: biometric_pb2.DetectAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.DetectAnomaliesResponse:
        self._service.require_model()
        return biometric_pb2.DetectAnomaliesResponse()

    async def RecommendMonitoringPlan(
        self,
        request: biometric_pb2.RecommendMonitoringPlanRequest,
        context: grpc.aio.ServicerContext,
    ) -> biometric_pb2.RecommendMonitoringPlanResponse:
        self._service.require_model()
        return biometric_pb2.RecommendMonitoringPlanResponse()

    async def GetModelInfo(
        self, request: biometric_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> biometric_pb2.GetModelInfoResponse:
        response = biometric_pb2.GetModelInfoResponse()
        if self._service.artifact is not None:
            response.models.append(model_info_from_manifest(self._service.artifact.manifest))
        return response


def service_definition(service: BiometricService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        biometric_pb2_grpc.add_BiometricCorrelationServiceServicer_to_server(
            BiometricCorrelationServicer(service), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
