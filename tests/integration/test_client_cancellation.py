"""A caller that gives up cancels the RPC it made, through the mesh channel's interceptors.

The orchestrator cancels its downstream calls when its own caller goes away
(deadline, disconnect). If the client interceptors held on to the call after
the caller's task was cancelled, the downstream server would keep computing
for nobody until the deadline ran out. The server here records whether its
handler saw the cancellation.
"""

from __future__ import annotations

import asyncio

import grpc

from common.server import ServiceDefinition
from novamind.twin.v1 import twin_pb2
from tests.conftest import channel_to, running

SERVICE = "novamind.test.v1.HangService"
Request = twin_pb2.GenerateInsightsRequest
Response = twin_pb2.GenerateInsightsResponse


class Hang:
    """A handler that waits until cancelled, recording what happened."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def hang(self, request: Request, context: grpc.aio.ServicerContext) -> Response:
        self.started.set()
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Response(snapshot_id="finished")

    def definition(self) -> ServiceDefinition:
        def register(server: grpc.aio.Server) -> None:
            handler = grpc.unary_unary_rpc_method_handler(
                self.hang,
                request_deserializer=Request.FromString,
                response_serializer=Response.SerializeToString,
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, {"Hang": handler}),)
            )

        return ServiceDefinition(service_names=(SERVICE,), register=register)


def _hang_method(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/{SERVICE}/Hang",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )


async def test_cancelled_caller_task_cancels_the_rpc_on_the_server(make_settings, pki_dir):
    hang = Hang()
    async with running(make_settings("forecasting"), hang.definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            method = _hang_method(channel)

            async def call() -> Response:
                return await method(Request(patient_id="P-1"), timeout=120)

            caller = asyncio.create_task(call())
            await asyncio.wait_for(hang.started.wait(), timeout=30)
            caller.cancel()
            # Far below the call's 120 s deadline: only a cancellation that reached
            # the server sets the event in this time.
            await asyncio.wait_for(hang.cancelled.wait(), timeout=30)
            await asyncio.gather(caller, return_exceptions=True)
            assert caller.cancelled()


async def test_cancelling_the_call_object_cancels_the_rpc_on_the_server(make_settings, pki_dir):
    hang = Hang()
    async with running(make_settings("forecasting"), hang.definition()) as mesh:
        async with channel_to(mesh, pki_dir) as channel:
            method = _hang_method(channel)
            call = method(Request(patient_id="P-1"), timeout=120)
            await asyncio.wait_for(hang.started.wait(), timeout=30)
            assert call.cancel()
            await asyncio.wait_for(hang.cancelled.wait(), timeout=30)
            assert await call.code() is grpc.StatusCode.CANCELLED
