"""gRPC transport of the digital-twin orchestrator: protobuf <-> domain, nothing else."""

from __future__ import annotations

import grpc

from common.server import ServiceDefinition
from novamind.twin.v1 import twin_pb2, twin_pb2_grpc

SERVICE_NAME = twin_pb2.DESCRIPTOR.services_by_name["DigitalTwinService"].full_name


def service_definition() -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        twin_pb2_grpc.add_DigitalTwinServiceServicer_to_server(
            twin_pb2_grpc.DigitalTwinServiceServicer(), server
        )

    return ServiceDefinition(service_names=(SERVICE_NAME,), register=register)
