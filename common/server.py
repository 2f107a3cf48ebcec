"""Server bootstrap shared by the four services.

``create_server`` builds a grpc.aio server with health, reflection, the mesh
interceptor, keepalive and message limits, on an mTLS port (plaintext only with
NOVAMIND_INSECURE=1), plus a second plaintext server that serves only
grpc.health.v1 for Kubernetes' native gRPC probes. ``serve`` runs it until
SIGTERM/SIGINT and shuts down gracefully: health goes NOT_SERVING first, then
in-flight calls get the grace period to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE_NAME

from common.admission import HealthPortInterceptor
from common.audit import AuditLog
from common.interceptors import MeshServerInterceptor
from common.pseudonym import Pseudonymizer
from common.reflection import enable_documented_reflection
from common.settings import Settings
from common.tls import server_credentials

_LOGGER = logging.getLogger(__name__)

Registrar = Callable[[grpc.aio.Server], None]
ShutdownHook = Callable[[], Awaitable[None]]
StartHook = Callable[[], Awaitable[None]]


@dataclass
class ServiceDefinition:
    """What a service contributes to the bootstrap."""

    #: Fully qualified proto service names, for health and reflection.
    service_names: tuple[str, ...]
    #: Adds the servicer(s) to a server.
    register: Registrar
    #: Called once the server is serving (start background tasks).
    on_start: StartHook | None = None
    #: Called after the server stopped (stop background tasks, release models, close stores).
    on_shutdown: ShutdownHook | None = None
    #: Whether this service's RPCs touch patient data (audited).
    audited: bool = True
    #: Extra server interceptors, run after the mesh interceptor (e.g. fault injection in tests).
    interceptors: tuple[Any, ...] = ()


def server_options(settings: Settings, *, reuse_port: bool = False) -> list[tuple[str, int]]:
    """Channel arguments of both servers; ``reuse_port`` only under the worker supervisor."""
    keepalive_ms = settings.keepalive_seconds * 1000
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Off by default so a second server on a taken port fails loudly; on when
        # NOVAMIND_WORKERS processes share the port (common.workers).
        ("grpc.so_reuseport", int(reuse_port)),
        # Clients balance over the connections they hold; closing old ones (with a
        # GOAWAY, calls in flight get the grace) makes them re-resolve and find new replicas.
        ("grpc.max_connection_age_ms", settings.max_connection_age_seconds * 1000),
        ("grpc.max_connection_age_grace_ms", settings.max_connection_age_grace_seconds * 1000),
    ]


@dataclass
class MeshServer:
    """A running (or ready) service: its main server and its health-only server."""

    settings: Settings
    definition: ServiceDefinition
    server: grpc.aio.Server
    health_server: grpc.aio.Server | None
    health_servicer: HealthServicer
    port: int
    health_port: int
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        for name in ("", *self.definition.service_names):
            await self.health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.definition.on_start is not None:
            await self.definition.on_start()
        _LOGGER.info(
            "serving",
            extra={
                "service": self.settings.service,
                "port": self.port,
                "health_port": self.health_port,
            },
        )

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: NOT_SERVING first, then let in-flight calls finish."""
        if self._stopped.is_set():
            return
        grace = self.settings.grace_seconds if grace is None else grace
        await self.health_servicer.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        if self.definition.on_shutdown is not None:
            await self.definition.on_shutdown()
        self._stopped.set()
        _LOGGER.info("stopped", extra={"service": self.settings.service})

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


def _bind(server: grpc.aio.Server, address: str, creds: grpc.ServerCredentials | None) -> int:
    port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    return port


def create_server(
    settings: Settings,
    definition: ServiceDefinition,
    *,
    port: int | None = None,
    health_port: int | None = None,
    reuse_port: bool = False,
) -> MeshServer:
    """Build (not start) a service. Pass port=0 / health_port=0 to bind free ports.

    ``reuse_port`` lets several worker processes bind the same ports (SO_REUSEPORT).
    """
    audit_log: AuditLog | None = None
    pseudonymizer: Pseudonymizer | None = None
    if definition.audited:
        audit_log = AuditLog(settings.audit_log, settings.secret("audit"))
    if settings.service == "orchestrator":
        pseudonymizer = Pseudonymizer(settings.secret("pseudonym"))
    interceptor = MeshServerInterceptor(
        service_name=settings.service,
        allowed_callers=settings.allowed_callers,
        insecure=settings.insecure,
        audit_log=audit_log,
        pseudonymizer=pseudonymizer,
        max_calls_per_caller=settings.max_concurrent_rpcs,
    )
    options = server_options(settings, reuse_port=reuse_port)
    # No server-wide maximum_concurrent_rpcs: it would count every identity's calls
    # (and health Watch streams) together; the interceptor admits per identity instead.
    server = grpc.aio.server(
        interceptors=[interceptor, *definition.interceptors],
        options=options,
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    definition.register(server)
    enable_documented_reflection((*definition.service_names, HEALTH_SERVICE_NAME), server)
    if settings.insecure:
        _LOGGER.warning(
            "NOVAMIND_INSECURE=1: serving PLAINTEXT without client authentication; "
            "never use this outside development"
        )
        creds = None
    else:
        creds = server_credentials(settings)
    main_port = _bind(server, f"{settings.host}:{settings.port if port is None else port}", creds)

    chosen_health = settings.health_port if health_port is None else health_port
    health_server: grpc.aio.Server | None = None
    bound_health = 0
    if chosen_health >= 0:
        # Plaintext by design: kubelet's gRPC probe cannot present a client certificate.
        # This server has the health service and nothing else (no reflection, no data RPCs).
        health_server = grpc.aio.server(options=options, interceptors=[HealthPortInterceptor()])
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        bound_health = _bind(health_server, f"{settings.host}:{chosen_health}", None)
    return MeshServer(
        settings=settings,
        definition=definition,
        server=server,
        health_server=health_server,
        health_servicer=health_servicer,
        port=main_port,
        health_port=bound_health,
    )


async def serve(
    settings: Settings, definition: ServiceDefinition, *, reuse_port: bool = False
) -> None:
    """Start the service and block until SIGTERM/SIGINT, then stop gracefully."""
    mesh = create_server(settings, definition, reuse_port=reuse_port)
    await mesh.start()
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await stop_requested.wait()
    _LOGGER.info("shutdown requested", extra={"service": settings.service})
    await mesh.stop()
