"""Client channels for mesh peers: mTLS, balancing, keepalive, retries, tracing, request ids.

A target is any gRPC target URI: ``dns:///name:port`` (every address the name
resolves to, e.g. a headless Kubernetes Service), ``ipv4:a:p1,b:p2`` (a fixed
list) or plain ``host:port``. Calls are spread over all resolved addresses
with ``round_robin``; with a health service name, each connection also watches
``grpc.health.v1`` on its server (client-side health checking), so a replica
that reports NOT_SERVING (draining after SIGTERM) gets no new calls and a
replica whose connection breaks (killed) drops out as soon as the break is
seen. Servers close connections after NOVAMIND_MAX_CONNECTION_AGE_SECONDS,
which makes the client re-resolve and pick up new replicas.

TLS checks the server certificate against ``expected_server_name`` (the
identity the caller expects, e.g. ``forecasting``), not against the target
string: a list of IPs has no host name to check, and a certificate of another
mesh service must not pass for this one.

Retries on UNAVAILABLE come from the gRPC service config (not hand-written
loops), so they respect the call's deadline and a retried call is picked onto
another replica. The client interceptor opens a CLIENT span, forwards the W3C
trace context and the current request id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from common.request_context import REQUEST_ID_METADATA_KEY, request_id_var
from common.tls import channel_credentials
from common.tracing import get_tracer, safe_attributes


def mesh_service_config(
    service_names: Sequence[str],
    *,
    health_service: str | None = None,
    max_attempts: int = 3,
) -> str:
    """Service config: round_robin, optional client-side health checking, retries."""
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if health_service is not None:
        config["healthCheckConfig"] = {"serviceName": health_service}
    if service_names:
        config["methodConfig"] = [
            {
                "name": [{"service": name} for name in service_names],
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


class TracingClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """CLIENT span per call; forwards trace context and the request id.

    The span ends in the call's done callback, not by awaiting the call here:
    an interceptor that awaits the outcome owns the call until it completes,
    and a caller's cancellation (its own deadline, its client gone) would then
    stop at the interceptor while the peer kept computing for nobody. Returned
    at once, the call is the caller's to cancel.
    """

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        method_str = method.decode() if isinstance(method, bytes) else str(method)
        service, _, rpc = method_str.lstrip("/").rpartition("/")
        span = get_tracer().start_span(
            f"{service}/{rpc}",
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes=safe_attributes(
                {
                    "rpc.system": "grpc",
                    "rpc.service": service,
                    "rpc.method": rpc,
                    "novamind.request_id": request_id_var.get(),
                }
            ),
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = list(client_call_details.metadata or ())
        metadata.extend(carrier.items())
        if request_id_var.get() != "-":
            metadata.append((REQUEST_ID_METADATA_KEY, request_id_var.get()))
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=client_call_details.timeout,
            metadata=grpc.aio.Metadata(*metadata),
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        try:
            call = await continuation(details, request)
        except BaseException:
            span.set_status(StatusCode.ERROR)
            span.end()
            raise
        call.add_done_callback(lambda done: _end_client_span(span, done))
        return call


#: Span-ending tasks in flight (the event loop holds tasks only weakly).
_SPAN_ENDINGS: set[asyncio.Task[None]] = set()


def _end_client_span(span: trace.Span, call: grpc.aio.Call) -> None:
    task = asyncio.get_running_loop().create_task(_record_outcome(span, call))
    _SPAN_ENDINGS.add(task)
    task.add_done_callback(_SPAN_ENDINGS.discard)


async def _record_outcome(span: trace.Span, call: grpc.aio.Call) -> None:
    try:
        code = await call.code()  # the call is done: no wait
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(StatusCode.ERROR)
    finally:
        span.end()


def channel_options(max_message_bytes: int = 16 * 1024 * 1024) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.enable_retries", 1),
        # Reconnect to a restarted peer within about a second (the default backoff
        # grows to minutes), so the orchestrator's circuit breaker can close quickly.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


def mesh_channel(
    target: str,
    *,
    tls_dir: Path,
    identity: str,
    insecure: bool = False,
    service_names: Sequence[str] = (),
    max_message_bytes: int = 16 * 1024 * 1024,
    expected_server_name: str | None = None,
    health_service: str | None = None,
) -> grpc.aio.Channel:
    """An aio channel to a mesh peer, presenting ``identity``'s certificate.

    ``expected_server_name``: the name the server's certificate must carry
    (default: the host of ``target``, which a list of addresses does not have).
    ``health_service``: the proto service whose health each connection watches.
    """
    options: list[tuple[str, Any]] = channel_options(max_message_bytes)
    options.append(
        (
            "grpc.service_config",
            mesh_service_config(service_names, health_service=health_service),
        )
    )
    if expected_server_name:
        options.append(("grpc.ssl_target_name_override", expected_server_name))
    interceptors: list[Any] = [TracingClientInterceptor()]
    if insecure:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    creds = channel_credentials(tls_dir, identity)
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
