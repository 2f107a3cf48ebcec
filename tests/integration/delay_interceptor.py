"""Fault injection for tests: delay every data RPC of a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc


class DelayInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        if handler_call_details.method.startswith("/grpc."):
            return handler
        inner = handler.unary_unary
        delay = self.seconds

        async def delayed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await asyncio.sleep(delay)  # cancelled with the call when its deadline passes
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            delayed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
