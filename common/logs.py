"""Structured, PHI-safe logging for every service process.

One JSON object per line with the request id and RPC from contextvars. The PHI
redacting filter is installed on every handler as a second line of defence:
the first is that code never logs patient data at all.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from common.phi import install_phi_filter
from common.request_context import request_id_var, rpc_var

#: Structured fields copied from a record's ``extra`` into the JSON line.
STRUCTURED_FIELDS = (
    "service",
    "rpc",
    "code",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "caller",
    "port",
    "health_port",
    "section",
    "status",
    "model",
    "version",
    "removed",
    "retention_days",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        if rpc_var.get() != "-":
            payload["rpc"] = rpc_var.get()
        for name in STRUCTURED_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                payload[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: its message may quote patient data.
            payload["exception"] = record.exc_info[0].__name__
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = request_id_var.get()
        saved = record.exc_info
        record.exc_info = None  # exception text may quote patient data
        try:
            return super().format(record)
        finally:
            record.exc_info = saved


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route all logging to stderr in the chosen format, with the PHI filter on."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    install_phi_filter(root)
