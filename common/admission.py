"""Admission control: how many calls each caller identity may have in flight.

Authorization comes first (a caller that may not call a service never takes a
slot), then admission, per caller identity, so no identity can use up
another's capacity. Two pools, counted separately:

* data RPCs (the service's own methods): ``per_caller`` in flight per identity;
* health checking and reflection on the mTLS port, which every mesh identity
  may use: ``STREAMS_PER_CALLER`` per identity and ``STREAMS_TOTAL`` overall,
  so long-lived ``Watch`` streams can never take the slots data calls need.

The plaintext health-only port has no identities; there ``Watch`` streams get
their own small pool and ``Check`` (what kubelet probes use) another one.

Counters live in the process's event loop (one thread), so plain integers
suffice; every process of a multi-process service counts its own calls.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

_LOGGER = logging.getLogger(__name__)

#: Health/reflection calls one identity may have open on the mTLS port.
STREAMS_PER_CALLER = 8
#: Health/reflection calls all identities together may have open on the mTLS port.
STREAMS_TOTAL = 64
#: Watch streams open on the plaintext health-only port (probes use Check, not Watch).
HEALTH_PORT_WATCH_STREAMS = 8
#: Check calls in flight on the plaintext health-only port.
HEALTH_PORT_CHECKS = 64

#: Key of calls without a verified identity (plaintext development mode, health port).
ANONYMOUS = "-"


class SlotPool:
    """Counts calls in flight per key, against a per-key and an overall limit."""

    def __init__(self, per_key: int, total: int | None = None) -> None:
        if per_key < 1:
            raise ValueError("per_key: must be at least 1")
        self._per_key = per_key
        self._total = total
        self._in_flight: Counter[str] = Counter()
        self._sum = 0

    def try_acquire(self, key: str) -> bool:
        if self._in_flight[key] >= self._per_key:
            return False
        if self._total is not None and self._sum >= self._total:
            return False
        self._in_flight[key] += 1
        self._sum += 1
        return True

    def release(self, key: str) -> None:
        self._in_flight[key] -= 1
        self._sum -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]

    def in_flight(self, key: str) -> int:
        return self._in_flight[key]


Handler = Any
Behavior = Callable[..., Any]


def _bounded(behavior: Behavior, pool: SlotPool, key_of: Callable[[Any], str]) -> Behavior:
    """Wrap a handler behavior (unary or streaming) so it runs only with a slot."""

    async def bounded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        key = key_of(context)
        if not pool.try_acquire(key):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many health or reflection calls open from this caller; close some and retry",
            )
        try:
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                # A streaming behavior written as an async generator: forward its messages.
                async for message in result:
                    await context.write(message)
                return None
            return await result
        finally:
            pool.release(key)

    return bounded


def bounded_handler(handler: Handler, pool: SlotPool, key_of: Callable[[Any], str]) -> Handler:
    """The same RPC method handler, admitted through ``pool``."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _bounded(handler.unary_unary, pool, key_of),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _bounded(handler.unary_stream, pool, key_of),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _bounded(handler.stream_unary, pool, key_of),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_stream_rpc_method_handler(
        _bounded(handler.stream_stream, pool, key_of),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class HealthPortInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Bounds the plaintext health-only port: Watch streams cannot starve Check."""

    def __init__(self) -> None:
        self._watch = SlotPool(HEALTH_PORT_WATCH_STREAMS)
        self._check = SlotPool(HEALTH_PORT_CHECKS)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        pool = self._watch if handler_call_details.method.endswith("/Watch") else self._check
        return bounded_handler(handler, pool, lambda _context: ANONYMOUS)
