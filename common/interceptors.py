"""The one server interceptor every service uses.

For each unary RPC it: assigns the random request id, opens an allow-listed
server span, authorizes the caller by certificate identity, then admits the
call against that identity's own concurrency limit (common/admission.py),
maps domain errors to status codes in one place (rich google.rpc.BadRequest
details for field violations, bounded in size by common/errors.py; a fixed
message plus the request id for anything unexpected, so exception text never
reaches the caller or a span), writes the audit record before the status
leaves — whatever the outcome: OK, an error, a body that is not the expected
protobuf, a cancelled or timed-out call — and logs one access line without
any patient data.

Health checking and reflection skip authorization (every mesh identity may
probe a service) but are admitted through their own per-identity pool, so
they never use the capacity of data RPCs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, StatusCode

from common.admission import (
    ANONYMOUS,
    STREAMS_PER_CALLER,
    STREAMS_TOTAL,
    SlotPool,
    bounded_handler,
)
from common.audit import AuditLog
from common.errors import (
    CallerNotAllowedError,
    InvalidArgumentError,
    OverloadedError,
    ServiceError,
)
from common.pseudonym import Pseudonymizer, is_pseudonym
from common.request_context import (
    REQUEST_ID_METADATA_KEY,
    accept_request_id,
    request_id_var,
    rpc_var,
)
from common.tls import caller_identity, is_allowed
from common.tracing import get_tracer, safe_attributes

_LOGGER = logging.getLogger(__name__)

_UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _split_method(method: str) -> tuple[str, str]:
    service, _, rpc = method.lstrip("/").rpartition("/")
    return service, rpc


def _status_for(error: ServiceError) -> status_pb2.Status:
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if isinstance(error, InvalidArgumentError):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.rule)
                for v in error.violations
            ]
        )
        if error.omitted:
            bad_request.field_violations.add(field="request", description=error.omitted_note)
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    return status


def _require_pseudonym(request: object) -> None:
    """Services behind the orchestrator accept pseudonyms only, never a patient id."""
    pseudonym = getattr(request, "patient_pseudonym", None)
    if pseudonym and not is_pseudonym(str(pseudonym)):
        raise InvalidArgumentError.single(
            "patient_pseudonym",
            "must be a keyed pseudonym ('psn_' and 32 hex digits), never a patient identifier",
        )


def _audit_subject(request: object, pseudonymizer: Pseudonymizer | None) -> str | None:
    """The pseudonym an RPC concerns, if it carries patient data at all."""
    pseudonym = getattr(request, "patient_pseudonym", None)
    if pseudonym:
        # A malformed "pseudonym" may be a raw id sent by mistake: audit the access, not it.
        return str(pseudonym) if is_pseudonym(str(pseudonym)) else ""
    patient_id = getattr(request, "patient_id", None)
    if patient_id and pseudonymizer is not None:
        try:
            return pseudonymizer.pseudonymize(str(patient_id))
        except ValueError:
            return None
    return None


class UndecodableRequest:
    """Stands in for a request body that did not parse as the RPC's message."""

    def __init__(self, size: int) -> None:
        self.size = size

    def ByteSize(self) -> int:
        return self.size


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that never raises: gRPC would answer UNKNOWN with no audit trail."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return UndecodableRequest(len(data))

    return deserialize


def _undecodable_error(request_type: str) -> InvalidArgumentError:
    return InvalidArgumentError.single(
        "request", f"the body is not a valid {request_type} protobuf message"
    )


def _ended_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """Why a call was cancelled under us: its deadline passed, or the caller went away."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


# grpc-stubs types aio interceptors loosely; the ignores below mark only those gaps.
class MeshServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(
        self,
        *,
        service_name: str,
        allowed_callers: tuple[str, ...],
        insecure: bool,
        audit_log: AuditLog | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        max_calls_per_caller: int = 64,
    ) -> None:
        self._service_name = service_name
        self._allowed = allowed_callers
        self._insecure = insecure
        self._audit = audit_log
        self._pseudonymizer = pseudonymizer
        self._calls = SlotPool(max_calls_per_caller)
        self._streams = SlotPool(STREAMS_PER_CALLER, STREAMS_TOTAL)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        if method.startswith(_UNTRACED_PREFIXES):
            return bounded_handler(handler, self._streams, _admission_key)
        if handler.unary_unary is None:
            return handler
        deserializer = handler.request_deserializer
        request_type = getattr(getattr(deserializer, "__self__", None), "__name__", "request")
        wrapped = self._wrap(method, handler.unary_unary, request_type)
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=_tolerant(deserializer),
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, inner: Behavior, request_type: str) -> Behavior:
        service, rpc = _split_method(method)

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            request_id = accept_request_id(metadata.get(REQUEST_ID_METADATA_KEY))
            rid_token = request_id_var.set(request_id)
            rpc_token = rpc_var.set(rpc)
            started = time.perf_counter()
            caller = caller_identity(context)
            code = grpc.StatusCode.OK
            failure: status_pb2.Status | None = None
            response: Any = None
            request_bytes = request.ByteSize() if hasattr(request, "ByteSize") else 0
            response_bytes = 0
            parent = propagate.extract(metadata)
            tracer = get_tracer()
            admitted_as: str | None = None
            try:
                with tracer.start_as_current_span(
                    f"{service}/{rpc}",
                    context=parent,
                    kind=SpanKind.SERVER,
                    record_exception=False,
                    set_status_on_exception=False,
                    attributes=safe_attributes(
                        {
                            "rpc.system": "grpc",
                            "rpc.service": service,
                            "rpc.method": rpc,
                            "novamind.request_id": request_id,
                            "novamind.caller": caller or "none",
                            "novamind.request_bytes": request_bytes,
                        }
                    ),
                ) as span:
                    await context.send_initial_metadata(((REQUEST_ID_METADATA_KEY, request_id),))
                    try:
                        if not is_allowed(caller, self._allowed, self._insecure):
                            raise CallerNotAllowedError(
                                f"caller identity is not allowed to call {service}"
                            )
                        key = caller or ANONYMOUS
                        if not self._calls.try_acquire(key):
                            raise OverloadedError(
                                f"this caller already has the most calls in flight {service} "
                                "allows one identity; retry with backoff"
                            )
                        admitted_as = key
                        if isinstance(request, UndecodableRequest):
                            raise _undecodable_error(request_type)
                        _require_pseudonym(request)
                        response = await inner(request, context)
                        if isinstance(response, Message):
                            response_bytes = response.ByteSize()
                    except ServiceError as error:
                        code = error.code
                        failure = _status_for(error)
                    except asyncio.CancelledError:
                        code = _ended_code(context)
                        # The caller is gone, but the access happened: record it first.
                        await asyncio.shield(
                            self._audit_quietly(request, caller, rpc, code, request_id)
                        )
                        raise
                    except grpc.aio.AbortError:
                        code = context.code() or grpc.StatusCode.UNKNOWN
                        await self._audit_quietly(request, caller, rpc, code, request_id)
                        raise
                    except Exception as exc:
                        code = grpc.StatusCode.INTERNAL
                        # Type and stack only: the message of an unexpected error may quote input.
                        _LOGGER.error(
                            "unhandled %s in %s\n%s",
                            type(exc).__name__,
                            rpc,
                            "".join(traceback.format_tb(exc.__traceback__)),
                        )
                        failure = status_pb2.Status(
                            code=code_pb2.INTERNAL,
                            message=f"internal error; quote request id {request_id}",
                        )
                    finally:
                        if admitted_as is not None:
                            self._calls.release(admitted_as)
                        span.set_attribute("rpc.grpc.status_code", code.value[0])
                        span.set_attribute("novamind.response_bytes", response_bytes)
                        if code is not grpc.StatusCode.OK:
                            span.set_status(StatusCode.ERROR)
                try:
                    await self._audit_access(request, caller, rpc, code, request_id)
                except Exception as exc:
                    # Fail closed: an access that cannot be audited is not answered.
                    _LOGGER.error("audit write failed: %s", type(exc).__name__)
                    code = grpc.StatusCode.UNAVAILABLE
                    failure = status_pb2.Status(
                        code=code_pb2.UNAVAILABLE,
                        message=f"audit log unavailable; quote request id {request_id}",
                    )
                if failure is not None:
                    await context.abort_with_status(  # type: ignore[attr-defined]
                        rpc_status.to_status(failure)
                    )
                return response
            finally:
                _LOGGER.info(
                    "rpc finished",
                    extra={
                        "service": self._service_name,
                        "rpc": rpc,
                        "code": code.name,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "request_bytes": request_bytes,
                        "response_bytes": response_bytes,
                        "caller": caller or "none",
                    },
                )
                request_id_var.reset(rid_token)
                rpc_var.reset(rpc_token)

        return behavior

    async def _audit_quietly(
        self,
        request: object,
        caller: str | None,
        rpc: str,
        code: grpc.StatusCode,
        request_id: str,
    ) -> None:
        """Audit a call whose status is already decided (no answer left to withhold)."""
        try:
            await self._audit_access(request, caller, rpc, code, request_id)
        except Exception as exc:
            _LOGGER.error("audit write failed: %s", type(exc).__name__)

    async def _audit_access(
        self,
        request: object,
        caller: str | None,
        rpc: str,
        code: grpc.StatusCode,
        request_id: str,
    ) -> None:
        if self._audit is None:
            return
        # Every call of an audited service is recorded; one that names no patient
        # (or whose body could not be read) carries an empty pseudonym.
        subject = _audit_subject(request, self._pseudonymizer) or ""
        await self._audit.append_async(
            caller=caller or "none",
            rpc=f"{self._service_name}.{rpc}",
            pseudonym=subject,
            outcome=code.name,
            request_id=request_id,
        )


def _admission_key(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    return caller_identity(context) or ANONYMOUS
