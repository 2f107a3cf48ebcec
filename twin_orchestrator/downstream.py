"""Calls to the three ML services: deadlines, retries, circuit breakers, status mapping.

Retries on UNAVAILABLE are done by gRPC itself (the channel's service config,
common/channels.py), inside the deadline given here. A call the breaker
refuses fails at once as UNAVAILABLE.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from common.channel_pool import ChannelPool
from common.channels import mesh_channel
from common.settings import Settings
from novamind.biometric.v1 import biometric_pb2_grpc
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2_grpc
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2_grpc
from twin_orchestrator.circuit_breaker import CircuitBreaker

_LOGGER = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT")

#: Below this, a downstream call is not worth starting.
MIN_CALL_SECONDS = 0.005

_TRANSPORT_FAILURES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class SectionCallError(Exception):
    """A downstream call failed; ``status`` is the section status it implies."""

    def __init__(self, status: common_pb2.SectionStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _status_for(code: grpc.StatusCode) -> common_pb2.SectionStatus:
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return common_pb2.SECTION_STATUS_DEGRADED
    return common_pb2.SECTION_STATUS_UNAVAILABLE


def _reconnected(channel: grpc.aio.Channel) -> Callable[[], bool]:
    """Probe for the breaker: the channel is connected (again) to the service."""
    return lambda: channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY


@dataclass
class Downstream:
    name: str
    channel: grpc.aio.Channel
    breaker: CircuitBreaker

    async def call(
        self,
        method: Callable[..., Awaitable[ResponseT]],
        request: Any,
        deadline_seconds: float,
    ) -> ResponseT:
        if not self.breaker.allow():
            raise SectionCallError(
                common_pb2.SECTION_STATUS_UNAVAILABLE,
                f"{self.name} service recently unreachable (circuit open)",
            )
        if deadline_seconds < MIN_CALL_SECONDS:
            raise SectionCallError(
                common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED, "no time left in the deadline"
            )
        try:
            # gRPC enforces the deadline on both sides and cancels the server's work.
            response = await method(request, timeout=deadline_seconds)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in _TRANSPORT_FAILURES:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()  # it answered; the service itself is up
            # Downstream messages name fields and rules only (never values), so they can be shown.
            detail = f"{self.name}: {code.name}"
            if code not in _TRANSPORT_FAILURES and exc.details():
                detail += f": {exc.details()}"
            raise SectionCallError(_status_for(code), detail) from None
        self.breaker.record_success()
        return response


@dataclass
class MeshClients:
    forecasting: Downstream
    biometric: Downstream
    pharmacogenomics: Downstream
    forecasting_stub: forecasting_pb2_grpc.SymptomForecastingServiceStub
    biometric_stub: biometric_pb2_grpc.BiometricCorrelationServiceStub
    pharmacogenomics_stub: pharmacogenomics_pb2_grpc.PharmacogenomicsServiceStub

    @classmethod
    def connect(cls, settings: Settings) -> MeshClients:
        def downstream(name: str, target: str, server_name: str, service: str) -> Downstream:
            # The certificate must name this service: a reply from another mesh
            # service (a wrong address, a mixed-up DNS record) fails the handshake.
            # Several connections, so every worker process of the peer gets calls.
            channel = ChannelPool.open(
                settings.downstream_connections,
                lambda: mesh_channel(
                    target,
                    tls_dir=settings.tls_dir,
                    identity=settings.identity,
                    insecure=settings.insecure,
                    service_names=(service,),
                    max_message_bytes=settings.max_message_bytes,
                    expected_server_name=server_name,
                    health_service=service,
                ),
            )
            return Downstream(name, channel, CircuitBreaker(name, probe=_reconnected(channel)))

        forecasting = downstream(
            "forecasting",
            settings.forecasting_addr,
            settings.forecasting_server_name,
            "novamind.forecasting.v1.SymptomForecastingService",
        )
        biometric = downstream(
            "biometric",
            settings.biometric_addr,
            settings.biometric_server_name,
            "novamind.biometric.v1.BiometricCorrelationService",
        )
        pharmacogenomics = downstream(
            "pharmacogenomics",
            settings.pharmacogenomics_addr,
            settings.pharmacogenomics_server_name,
            "novamind.pharmacogenomics.v1.PharmacogenomicsService",
        )
        return cls(
            forecasting=forecasting,
            biometric=biometric,
            pharmacogenomics=pharmacogenomics,
            forecasting_stub=forecasting_pb2_grpc.SymptomForecastingServiceStub(
                forecasting.channel
            ),
            biometric_stub=biometric_pb2_grpc.BiometricCorrelationServiceStub(biometric.channel),
            pharmacogenomics_stub=pharmacogenomics_pb2_grpc.PharmacogenomicsServiceStub(
                pharmacogenomics.channel
            ),
        )

    async def close(self) -> None:
        for downstream in (self.forecasting, self.biometric, self.pharmacogenomics):
            await downstream.channel.close(grace=None)
