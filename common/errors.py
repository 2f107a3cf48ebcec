"""Domain errors every service raises, and their one mapping to gRPC status.

Services raise these from plain Python; the error-mapping interceptor turns
them into status codes. Messages name the field and the rule, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule on one request field, e.g. ("horizon_days", "must be 1..90")."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class ServiceError(Exception):
    """Base of errors whose message is safe to show the caller (no patient data)."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: Violations reported in one error; the rest are counted ("and K more").
MAX_REPORTED_VIOLATIONS = 20
#: Bytes the status message may take on the wire, and the same again for the
#: google.rpc.BadRequest details: together (details are base64 in a header)
#: they stay well under gRPC's 16 KiB metadata limit, so the error is delivered.
ERROR_TEXT_BUDGET = 3072
_MAX_FIELD_CHARS = 160
_MAX_RULE_CHARS = 480


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wire_length(text: str) -> int:
    """Length of ``text`` as a grpc-message header (percent-encoded outside printable ASCII)."""
    return sum(1 if " " <= ch <= "~" and ch != "%" else 3 * len(ch.encode()) for ch in text)


def _reported(violations: list[FieldViolation]) -> list[FieldViolation]:
    """The violations that fit the count and size budgets, each clipped to a sane length."""
    reported: list[FieldViolation] = []
    used = 0
    for violation in violations[:MAX_REPORTED_VIOLATIONS]:
        clipped = FieldViolation(
            _clip(violation.field, _MAX_FIELD_CHARS), _clip(violation.rule, _MAX_RULE_CHARS)
        )
        cost = wire_length(str(clipped)) + 2
        if reported and used + cost > ERROR_TEXT_BUDGET - 64:
            break
        reported.append(clipped)
        used += cost
    return reported


class InvalidArgumentError(ServiceError):
    """The caller sent something that breaks a documented rule.

    ``violations`` holds what is reported (at most MAX_REPORTED_VIOLATIONS and
    ERROR_TEXT_BUDGET bytes); ``omitted`` counts the rest, which the message
    and the details mention as "and K more".
    """

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgumentError needs at least one violation")
        self.violations = _reported(list(violations))
        self.omitted = len(violations) - len(self.violations)
        message = "; ".join(str(v) for v in self.violations)
        if self.omitted:
            message += f"; {self.omitted_note}"
        super().__init__(message)

    @property
    def omitted_note(self) -> str:
        noun = "violation" if self.omitted == 1 else "violations"
        return f"and {self.omitted} more {noun}"

    @classmethod
    def single(cls, field: str, rule: str) -> InvalidArgumentError:
        return cls([FieldViolation(field, rule)])


class ModelUnavailableError(ServiceError):
    """A model the RPC needs is not trained or not loaded."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, model: str, train_command: str, reason: str = "not trained") -> None:
        super().__init__(
            f"model {model} is unavailable ({reason}); train it with `{train_command}`"
        )
        self.model = model
        self.train_command = train_command


class OverloadedError(ServiceError):
    """The service is at capacity; the caller should back off and retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DependencyUnavailableError(ServiceError):
    """Something the service needs (a store, a peer) is down; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE


class NotFoundError(ServiceError):
    """A requested resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class CallerNotAllowedError(ServiceError):
    """The caller's certificate identity may not call this service."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ValidationCollector:
    """Collects every violation of a request before failing, so one round trip shows all."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, rule: str) -> None:
        self.violations.append(FieldViolation(field, rule))

    def check(self, ok: bool, field: str, rule: str) -> bool:
        if not ok:
            self.add(field, rule)
        return ok

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgumentError(self.violations)
