"""gRPC transport of the digital-twin orchestrator: protobuf in, protobuf out."""

from __future__ import annotations

import grpc

from common.request_context import current_request_id
from common.server import ServiceDefinition
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc
from twin_orchestrator.service import TwinService

SERVICE_NAME = twin_pb2.DESCRIPTOR.services_by_name["DigitalTwinService"].full_name


class DigitalTwinServicer(twin_pb2_grpc.DigitalTwinServiceServicer):
    def __init__(self, service: TwinService) -> None:
        self._service = service

    async def GenerateInsights(
        self, request: twin_pb2.GenerateInsightsRequest, context: grpc.aio.ServicerContext
    ) -> twin_pb2.GenerateInsightsResponse:
        return await self._service.generate_insights(
            request, time_remaining=context.time_remaining(), request_id=current_request_id()
        )

    async def GetPatientProgress(
        self, request: twin_pb2.GetPatientProgressRequest, context: grpc.aio.ServicerContext
    ) -> twin_pb2.GetPatientProgressResponse:
        return await self._service.patient_progress(request)


def service_definition(service: TwinService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        twin_pb2_grpc.add_DigitalTwinServiceServicer_to_server(DigitalTwinServicer(service), server)

    return ServiceDefinition(
        service_names=(SERVICE_NAME,), register=register, on_shutdown=service.close
    )
