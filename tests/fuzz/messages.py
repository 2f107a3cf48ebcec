"""Hypothesis strategies for request bodies of any RPC, derived from its descriptor.

Three kinds of case, drawn per RPC:

* **random**: a message built field by field from the request descriptor —
  scalars at their extremes (NaN, ±inf, 2^63-1, negative counts), unknown enum
  numbers, out-of-range Timestamps (9999-12-31, 2^62, negative nanos), domain
  tokens that reach deep validation (gene symbols, diplotypes, rsIDs, drug
  names, pseudonyms) and arbitrary unicode;
* **merged**: a valid seed request with a random message merged into it
  (``MergeFrom``: scalars replaced, lists extended), so most of the request
  stays plausible and the random part reaches the domain code;
* **mutated**: the seed's bytes with byte-level mutations (flips, cuts,
  insertions, duplicated spans), which may or may not still parse.

Every case is the serialized body, sent as raw bytes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor as _descriptor
from google.protobuf import message_factory
from google.protobuf.message import Message
from hypothesis import strategies as st

FD = _descriptor.FieldDescriptor
MAX_REPEATED = 6
MAX_DEPTH = 4

#: Tokens that reach the services' deep validation rather than failing at the first regex.
DOMAIN_TOKENS = (
    "",
    " ",
    "CYP2D6",
    "CYP2C19",
    "CYP2C9",
    "SLCO1B1",
    "HLA-B",
    "*1/*1",
    "*1/*2",
    "*4/*4",
    "*1/*1xN",
    "*2x2/*4",
    "*1/*57",
    "*999/*1",
    "HLA-B*15:02",
    "HLA-A*31:01",
    "HLA-B*58:01:01",
    "rs4244285",
    "rs3892097",
    "rs1",
    "A/G",
    "G/G",
    "A/A/A",
    "sertraline",
    "citalopram",
    "carbamazepine",
    "Zoloft",
    "unknownium",
    "psn_" + "0" * 32,
    "psn_" + "f" * 31,
    "psn_" + "A" * 32,
    "MRN-0042917",
    "\x00",
    "\u202e",
    "%s%n",
    "a" * 65,
    "x" * 300,
)

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
_INT_EDGES = (0, 1, -1, 2, 7, 30, 90, 91, 256, 257, 1000, 1001, 20_000, 20_001)

#: Seconds worth trying in a Timestamp: plausible, the floors and ceilings, absurd.
_SECONDS_EDGES = (
    0,
    -1,
    946_684_799,
    946_684_800,
    1_700_000_000,
    253_402_300_799,
    253_402_300_800,
    2**62,
    -(2**62),
    2**63 - 1,
    -(2**63),
)


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in _INT_EDGES if low <= v <= high] + [low, high]
    return st.one_of(
        st.sampled_from(edges), st.integers(-100, 100_000).filter(lambda v: low <= v <= high)
    ) | st.integers(low, high)


def _floats(width: int) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 27.0, 27.5, 1e308, -1e308, 5e-324]),
        st.floats(-10.0, 100_000.0, width=width),
        st.floats(width=width, allow_nan=True, allow_infinity=True),
    )


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(DOMAIN_TOKENS),
        st.text(max_size=40),
        st.text(alphabet="ACGTN*/x:0123456789-HLABCYP ", max_size=24),
    )


def _timestamp(descriptor: _descriptor.Descriptor) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    seconds = st.one_of(
        st.integers(946_684_800, 1_800_000_000),
        st.sampled_from(_SECONDS_EDGES),
        st.integers(*_INT64),
    )
    nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(*_INT32))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _scalar(field: FD) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return _floats(64 if kind == FD.TYPE_DOUBLE else 32)
    if kind in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return _integers(*_INT32)
    if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return _integers(*_INT64)
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return _integers(*_UINT32)
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return _integers(*_UINT64)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_STRING:
        return _strings()
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=32)
    if kind == FD.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        # proto3 enums are open: unknown numbers arrive as they are.
        return st.one_of(st.sampled_from(known), st.integers(-3, 1000))
    raise TypeError(f"no strategy for field type {kind}")


def message_strategy(descriptor: _descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy:
    """Messages of ``descriptor`` with any subset of fields set to hostile values."""
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp(descriptor)
    if depth >= MAX_DEPTH:
        return st.just(cls())
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FD.TYPE_MESSAGE:
            element = st.deferred(
                lambda f=field: message_strategy(f.message_type, depth + 1)  # type: ignore[misc]
            )
        else:
            element = _scalar(field)
        is_repeated = getattr(field, "is_repeated", None)
        repeated = is_repeated if is_repeated is not None else field.label == FD.LABEL_REPEATED
        if (
            repeated
            and field.message_type is not None
            and field.message_type.GetOptions().map_entry
        ):
            continue  # no map fields in these contracts; skip rather than guess their shape
        optional[field.name] = st.lists(element, max_size=MAX_REPEATED) if repeated else element

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            target = getattr(message, name)
            if isinstance(value, list):
                target.extend(value)
            elif field.type == FD.TYPE_MESSAGE:
                target.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=optional).map(build)


def _mutate(data: bytes, operations: list[tuple[int, int, int, bytes]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, length, payload in operations:
        at = position % (len(buffer) + 1)
        if kind == 0 and buffer:  # flip one byte
            buffer[at % len(buffer)] ^= payload[0] if payload else 0xFF
        elif kind == 1:  # cut a span
            del buffer[at : at + length]
        elif kind == 2:  # insert bytes
            buffer[at:at] = payload
        elif kind == 3:  # duplicate a span (repeated fields, doubled lengths)
            buffer[at:at] = buffer[at : at + length]
        else:  # truncate
            del buffer[at:]
    return bytes(buffer)


def mutated_bytes(seed: bytes) -> st.SearchStrategy[bytes]:
    operation = st.tuples(
        st.integers(0, 4),
        st.integers(0, 1 << 20),
        st.integers(1, 64),
        st.binary(min_size=1, max_size=8),
    )
    return st.lists(operation, min_size=1, max_size=4).map(lambda ops: _mutate(seed, ops))


def request_cases(descriptor: _descriptor.Descriptor, seed: Message) -> st.SearchStrategy[bytes]:
    """Serialized request bodies for one RPC: random, merged into the seed, or mutated."""
    randoms = message_strategy(descriptor)
    seed_bytes = seed.SerializeToString()

    def merged(extra: Message) -> bytes:
        message = type(seed)()
        message.CopyFrom(seed)
        message.MergeFrom(extra)
        return message.SerializeToString()

    return st.one_of(
        randoms.map(lambda m: m.SerializeToString()),
        randoms.map(merged),
        mutated_bytes(seed_bytes),
    )
