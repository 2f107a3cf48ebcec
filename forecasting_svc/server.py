"""gRPC transport of the forecasting service: protobuf <-> domain, nothing else."""

from __future__ import annotations

import grpc

from common.proto_convert import model_info_from_manifest
from common.server import ServiceDefinition
from forecasting_svc.service import ForecastingService
from novamind.forecasting.v1 import forecasting_pb2, forecasting_pb2_grpc

SERVICE_NAME = forecasting_pb2.DESCRIPTOR.services_by_name["SymptomForecastingService"].full_name


class SymptomForecastingServicer(forecasting_pb2_grpc.SymptomForecastingServiceServicer):
    def __init__(self, service: ForecastingService) -> None:
        self._service = service

    async def ForecastSymptoms(
        self,
        request: forecasting_pb2.ForecastSymptomsRequest,
        context: grpc.aio.ServicerContext,
    ) -> forecasting_pb2.ForecastSymptomsResponse:
        await self._service.forecast()
        return forecasting_pb2.ForecastSymptomsResponse()

    async def GetModelInfo(
        self,
        request: forecasting_pb2.GetModelInfoRequest,
        context: grpc.aio.ServicerContext,
    ) -> forecasting_pb2.GetModelInfoResponse:
        response = forecasting_pb2.GetModelInfoResponse()
        if self._service.artifact is not None:
            response.models.append(model_info_from_manifest(self._service.artifact.manifest))
        return response


def service_definition(service: ForecastingService) -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        forecasting_pb2_grpc.add_SymptomForecastingServiceServicer_to_server(
            SymptomForecastingServicer(service), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
