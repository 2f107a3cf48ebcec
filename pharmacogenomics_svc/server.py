"""gRPC transport of the pharmacogenomics service: protobuf <-> domain, nothing else."""

from __future__ import annotations

import grpc

from common.proto_convert import model_info_from_manifest
from common.server import ServiceDefinition
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc as pb_grpc
from pharmacogenomics_svc.service import PharmacogenomicsService

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PharmacogenomicsService"].full_name


class PharmacogenomicsServicer(pb_grpc.PharmacogenomicsServiceServicer):
    def __init__(self, service: PharmacogenomicsService) -> None:
        self._service = service

    async def PredictMedicationResponse(
        self, request: pb.PredictMedicationResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictMedicationResponseResponse:
        self._service.require_model()
        return pb.PredictMedicationResponseResponse()

    async def AnalyzeGeneMedicationInteractions(
        self,
        request: pb.AnalyzeGeneMedicationInteractionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.AnalyzeGeneMedicationInteractionsResponse:
        self._service.require_model()
        return pb.AnalyzeGeneMedicationInteractionsResponse()

    async def PredictSideEffects(
        self, request: pb.PredictSideEffectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictSideEffectsResponse:
        self._service.require_model()
        return pb.PredictSideEffectsResponse()

    async def ListSupportedMedications(
        self, request: pb.ListSupportedMedicationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSupportedMedicationsResponse:
        self._service.require_model()
        return pb.ListSupportedMedicationsResponse()

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        response = pb.GetModelInfoResponse()
        if self._service.artifact is not None:
            response.models.append(model_info_from_manifest(self._service.artifact.manifest))
        return response


def service_definition(service: PharmacogenomicsService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_PharmacogenomicsServiceServicer_to_server(
            PharmacogenomicsServicer(service), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
