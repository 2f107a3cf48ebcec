"""OpenTelemetry setup with an attribute allow-list.

Spans carry only what ALLOWED_SPAN_ATTRIBUTES names: RPC names, status codes,
sizes, timings, the random request id, model names and versions. Exceptions
are never recorded on spans (their text could hold patient data), and the
exporter wrapper strips anything not on the list as a second line of defence.
The exporter is chosen by the standard OTEL_* variables: OTEL_TRACES_EXPORTER
= none (default) | console | otlp; OTLP also when OTEL_EXPORTER_OTLP_ENDPOINT
is set and OTEL_TRACES_EXPORTER is not.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

_LOGGER = logging.getLogger(__name__)

ALLOWED_SPAN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "rpc.grpc.status_code",
        "novamind.request_id",
        "novamind.caller",
        "novamind.request_bytes",
        "novamind.response_bytes",
        "novamind.section",
        "novamind.section_status",
        "novamind.model",
        "novamind.model_version",
        "novamind.batch_size",
        "novamind.items",
        "novamind.deadline_ms",
        "service.name",
    }
)


def safe_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """Keep only allow-listed attributes."""
    return {k: v for k, v in attributes.items() if k in ALLOWED_SPAN_ATTRIBUTES}


class AllowListSpanExporter(SpanExporter):
    """Wraps an exporter; drops every attribute and event not on the allow-list."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        cleaned = [
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=safe_attributes(dict(span.attributes or {})),
                events=(),
                links=(),
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
            for span in spans
        ]
        return self._inner.export(cleaned)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


_provider: TracerProvider | None = None


def _exporter_from_env() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not choice and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        choice = "otlp"
    if choice in {"", "none"}:
        return None
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )

        return OTLPSpanExporter()
    _LOGGER.warning("OTEL_TRACES_EXPORTER: unsupported value; tracing export disabled")
    return None


def configure_tracing(
    service_name: str, exporter: SpanExporter | None = None, *, synchronous: bool = False
) -> TracerProvider:
    """Install the mesh's tracer provider; ``exporter`` overrides OTEL_* (tests pass one)."""
    global _provider
    resource = Resource.create({"service.name": f"novamind-{service_name}"})
    provider = TracerProvider(resource=resource)
    chosen = exporter if exporter is not None else _exporter_from_env()
    if chosen is not None:
        wrapped = AllowListSpanExporter(chosen)
        processor = SimpleSpanProcessor(wrapped) if synchronous else BatchSpanProcessor(wrapped)
        provider.add_span_processor(processor)
    if _provider is not None:
        _provider.shutdown()
    _provider = provider
    return provider


def get_tracer(name: str = "novamind") -> Tracer:
    if _provider is None:
        return trace.NoOpTracer()
    return _provider.get_tracer(name)


def shutdown_tracing() -> None:
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


@contextmanager
def model_span(model: str, version: str = "", **attributes: AttributeValue) -> Iterator[Span]:
    """A span around one model call; only allow-listed attributes survive."""
    attrs: dict[str, AttributeValue] = {"novamind.model": model}
    if version:
        attrs["novamind.model_version"] = version
    attrs.update({f"novamind.{k}": v for k, v in attributes.items()})
    with get_tracer().start_as_current_span(
        f"model {model}",
        kind=SpanKind.INTERNAL,
        attributes=safe_attributes(attrs),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span
