"""Several connections to one peer behind one channel, calls handed out round robin.

A service with ``NOVAMIND_WORKERS`` processes shares its port with
``SO_REUSEPORT``, and the kernel spreads *connections*, not calls, over the
processes. One HTTP/2 channel carries all its calls on one connection, so a
client with one channel would keep one worker busy and the others idle. A
``ChannelPool`` holds ``size`` independent channels (each its own connection)
and gives each unary call to the next one; stubs built on it spread their
calls without knowing. Streaming calls (none in the mesh today) use the first
channel.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import grpc


class _RoundRobinUnaryUnary:
    def __init__(self, callables: Sequence[grpc.aio.UnaryUnaryMultiCallable[Any, Any]]) -> None:
        self._next = itertools.cycle(callables)

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        return next(self._next)(request, **kwargs)


class ChannelPool(grpc.aio.Channel):
    def __init__(self, channels: Sequence[grpc.aio.Channel]) -> None:
        if not channels:
            raise ValueError("channels: a pool needs at least one channel")
        self.channels = tuple(channels)

    @classmethod
    def open(cls, size: int, factory: Callable[[], grpc.aio.Channel]) -> ChannelPool:
        return cls([factory() for _ in range(max(1, size))])

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _RoundRobinUnaryUnary(
            [channel.unary_unary(method, *args, **kwargs) for channel in self.channels]
        )

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channels[0].unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channels[0].stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.channels[0].stream_stream(method, *args, **kwargs)

    async def close(self, grace: float | None = None) -> None:
        for channel in self.channels:
            await channel.close(grace)

    async def __aenter__(self) -> ChannelPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close(None)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """The best state among the connections (READY if any is)."""
        states = [channel.get_state(try_to_connect) for channel in self.channels]
        order = (
            grpc.ChannelConnectivity.READY,
            grpc.ChannelConnectivity.CONNECTING,
            grpc.ChannelConnectivity.IDLE,
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN,
        )
        return min(states, key=order.index)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.channels[0].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        for channel in self.channels:
            await channel.channel_ready()
