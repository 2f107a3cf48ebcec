from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.tracing import configure_tracing, get_tracer, model_span, shutdown_tracing


def test_exporter_strips_attributes_and_events_not_on_allow_list():
    exporter = InMemorySpanExporter()
    configure_tracing("forecasting", exporter, synchronous=True)
    try:
        with get_tracer().start_as_current_span("probe") as span:
            span.set_attribute("rpc.method", "ForecastSymptoms")
            span.set_attribute("patient.id", "MRN-123456")
            span.add_event("exception", {"exception.message": "Jane Doe"})
        with model_span("forecasting.xgboost", "v1", batch_size=4):
            pass
    finally:
        shutdown_tracing()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert dict(spans["probe"].attributes) == {"rpc.method": "ForecastSymptoms"}
    assert list(spans["probe"].events) == []
    assert dict(spans["model forecasting.xgboost"].attributes) == {
        "novamind.model": "forecasting.xgboost",
        "novamind.model_version": "v1",
        "novamind.batch_size": 4,
    }


def test_no_provider_means_no_op_spans():
    shutdown_tracing()
    with get_tracer().start_as_current_span("x") as span:
        assert not span.is_recording()
