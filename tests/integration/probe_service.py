"""A test-only service on the real bootstrap, to exercise the shared runtime.

Its RPCs fail in each way a real service can (domain validation error,
unexpected exception carrying patient data) or run slowly (for graceful
shutdown). ``python -m tests.integration.probe_service`` serves it like a real
service process, so SIGTERM can be tested end to end.
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc

from common.errors import InvalidArgumentError
from common.server import ServiceDefinition
from common.service_main import run_service
from common.settings import Settings
from novamind.twin.v1 import twin_pb2

PROBE_SERVICE = "novamind.test.v1.ProbeService"
SLOW_SECONDS = 1.5

Request = twin_pb2.GenerateInsightsRequest
Response = twin_pb2.GenerateInsightsResponse


async def _echo(request: Request, context: grpc.aio.ServicerContext) -> Response:
    return Response(snapshot_id="echo")


async def _whoami(request: Request, context: grpc.aio.ServicerContext) -> Response:
    # Which worker process served the call (NOVAMIND_WORKERS tests).
    return Response(snapshot_id=str(os.getpid()))


async def _fail(request: Request, context: grpc.aio.ServicerContext) -> Response:
    # An unexpected error whose text quotes patient data, as careless code might.
    raise RuntimeError(f"could not process {request.patient_id} born {request.data.symptoms}")


async def _invalid(request: Request, context: grpc.aio.ServicerContext) -> Response:
    raise InvalidArgumentError.single("options.forecast_horizon_days", "must be between 1 and 90")


async def _slow(request: Request, context: grpc.aio.ServicerContext) -> Response:
    await asyncio.sleep(SLOW_SECONDS)
    return Response(snapshot_id="slow-finished")


def _handler(behavior):  # type: ignore[no-untyped-def]
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=Request.FromString,
        response_serializer=Response.SerializeToString,
    )


def probe_definition() -> ServiceDefinition:
    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    PROBE_SERVICE,
                    {
                        "Echo": _handler(_echo),
                        "Fail": _handler(_fail),
                        "Invalid": _handler(_invalid),
                        "Slow": _handler(_slow),
                        "Whoami": _handler(_whoami),
                    },
                ),
            )
        )

    return ServiceDefinition(service_names=(PROBE_SERVICE,), register=register)


def probe_stub(channel: grpc.aio.Channel, rpc: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/{PROBE_SERVICE}/{rpc}",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )


def _build(settings: Settings) -> ServiceDefinition:
    return probe_definition()


if __name__ == "__main__":
    sys.exit(run_service("orchestrator", _build))
