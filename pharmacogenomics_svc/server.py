"""gRPC transport of the pharmacogenomics service: protobuf <-> domain, nothing else.

Domain errors (InvalidArgumentError, ModelUnavailableError) are mapped to
status codes by the mesh interceptor, in one place.
"""

from __future__ import annotations

import logging

import grpc

from common.server import ServiceDefinition
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pb
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc as pb_grpc
from pharmacogenomics_svc import proto_mapping
from pharmacogenomics_svc.service import PharmacogenomicsService

_LOGGER = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PharmacogenomicsService"].full_name


class PharmacogenomicsServicer(pb_grpc.PharmacogenomicsServiceServicer):
    def __init__(self, service: PharmacogenomicsService) -> None:
        self._service = service

    async def PredictMedicationResponse(
        self, request: pb.PredictMedicationResponseRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictMedicationResponseResponse:
        result = await self._service.predict_response(proto_mapping.patient_request(request))
        return proto_mapping.response_predictions_to_proto(result)

    async def AnalyzeGeneMedicationInteractions(
        self,
        request: pb.AnalyzeGeneMedicationInteractionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> pb.AnalyzeGeneMedicationInteractionsResponse:
        result = await self._service.analyze_interactions(proto_mapping.patient_request(request))
        return proto_mapping.analysis_to_proto(result)

    async def PredictSideEffects(
        self, request: pb.PredictSideEffectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictSideEffectsResponse:
        result = await self._service.predict_side_effects(proto_mapping.patient_request(request))
        return proto_mapping.side_effect_predictions_to_proto(result)

    async def ListSupportedMedications(
        self, request: pb.ListSupportedMedicationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSupportedMedicationsResponse:
        result = await self._service.supported_medications(request.gene)
        return proto_mapping.supported_to_proto(result)

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelInfoResponse:
        info = await self._service.model_info()
        return proto_mapping.model_info_to_proto(info.models, info.knowledge_base_version)


def service_definition(service: PharmacogenomicsService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_PharmacogenomicsServiceServicer_to_server(
            PharmacogenomicsServicer(service), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
