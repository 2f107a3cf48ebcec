"""Per-RPC context carried in contextvars: the random request id and the RPC name.

The request id is random (uuid4) or, when a mesh peer forwards one, accepted
only if it has exactly the shape we generate, so it can never carry patient data.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_METADATA_KEY = "x-request-id"
_REQUEST_ID_SHAPE = re.compile(r"^[0-9a-f]{32}$")

request_id_var: ContextVar[str] = ContextVar("novamind_request_id", default="-")
rpc_var: ContextVar[str] = ContextVar("novamind_rpc", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | None) -> str:
    """Reuse a forwarded id only when it is one of ours; otherwise mint a new one."""
    if candidate and _REQUEST_ID_SHAPE.match(candidate):
        return candidate
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
