"""Enum values in error messages, spelled the way a caller must type them.

protobuf's JSON mapping (grpcurl -d, the `novamind` patient file) accepts an enum
value by its full proto name, ``INSTRUMENT_PHQ9``, never by a short form such as
``PHQ9``; a message that says "must be PHQ9" sends the caller to a value that
is then rejected. Every rule that lists enum values builds the list here.
"""

from __future__ import annotations

from typing import Protocol


class _EnumType(Protocol):
    """A generated enum wrapper (e.g. ``common_pb2.Instrument``)."""

    def items(self) -> list[tuple[str, int]]: ...


def enum_choices(enum: _EnumType, *, unspecified: str = "") -> str:
    """``"A, B or C"``: the enum's value names except the zero value.

    ``unspecified`` describes what the zero value means when it is allowed; it is then
    named too: ``"A, B or X_UNSPECIFIED (treated as day)"``.
    """
    names = [name for name, number in enum.items() if number != 0]
    if unspecified:
        zero = next(name for name, number in enum.items() if number == 0)
        names.append(f"{zero} ({unspecified})")
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} or {names[-1]}"
