"""Reads the `novamind insights` patient file (a GenerateInsightsRequest in protobuf JSON).

A mistake in the file is reported with where it is (line, and the field path such as
``data.symptoms[3].instrument``) and what the field expects (its type, or the accepted enum
values), never with the file's content: the file holds patient data, and what was typed in
a wrong field may be a name or a date.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from novamind.twin.v1 import twin_pb2

_ROOT = twin_pb2.GenerateInsightsRequest.DESCRIPTOR
_AT_PATH = re.compile(r' at "?' + _ROOT.name + r'((?:\.\w+|\[\d+\])*)"?')
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field")
_UNKNOWN_FIELD = re.compile(r'has no field named "(\w+)"')
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|NaN|-?Infinity")


class PatientFileError(ValueError):
    """The patient file cannot be read; the message says where and what, not the content."""


@dataclass(frozen=True)
class _Field:
    descriptor: FieldDescriptor | None
    parent: Descriptor


def read_patient_file(path: Path) -> twin_pb2.GenerateInsightsRequest:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatientFileError(
            f"--patient-file: cannot read the file ({type(exc).__name__})"
        ) from None
    return parse_patient_json(text)


def parse_patient_json(text: str) -> twin_pb2.GenerateInsightsRequest:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg names the syntax rule only (e.g. "Expecting ',' delimiter"), never content.
        raise PatientFileError(
            f"--patient-file line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise PatientFileError(
            "--patient-file line 1: the top level must be a JSON object "
            f"(a {_ROOT.full_name} in protobuf JSON)"
        )
    try:
        return json_format.ParseDict(document, twin_pb2.GenerateInsightsRequest())
    except json_format.ParseError as exc:
        raise PatientFileError(_explain(str(exc), text)) from None


def _explain(error: str, text: str) -> str:
    """Field path, line and expectation of a protobuf JSON parse error, without values."""
    at_path = _AT_PATH.search(error)
    unknown = _UNKNOWN_FIELD.search(error)
    if at_path is not None:
        path = at_path.group(1).lstrip(".")
    else:
        path = ".".join(_FAILED_FIELD.findall(error))
    if unknown is not None:
        path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
    field = _resolve(path)
    line = json_lines(text).get(path)
    where = f"--patient-file line {line}" if line else "--patient-file"
    if unknown is not None or field.descriptor is None:
        known = ", ".join(f.json_name for f in field.parent.fields)
        rule = f"no such field in {field.parent.name} (fields: {known})"
    else:
        rule = f"expected {_expectation(field.descriptor, indexed=path.endswith(']'))}"
    return f"{where}: {path or '(top level)'}: {rule}"


def _resolve(path: str) -> _Field:
    """The field a JSON path (proto or JSON names, with [i] indices) points at."""
    message: Any = _ROOT
    field: FieldDescriptor | None = None
    for name in re.findall(r"\w+", re.sub(r"\[\d+\]", "", path)):
        if field is not None:
            if field.message_type is None:
                return _Field(None, message)
            message = field.message_type
        field = message.fields_by_name.get(name) or next(
            (f for f in message.fields if f.json_name == name), None
        )
        if field is None:
            return _Field(None, message)
    return _Field(field, message)


def _expectation(field: FieldDescriptor, *, indexed: bool) -> str:
    if field.is_repeated and not indexed:
        return f"a JSON list of {_expectation(field, indexed=True)}s"
    if field.enum_type is not None:
        names = [v.name for v in field.enum_type.values if v.number != 0]
        return f"one of {', '.join(names)} ({field.enum_type.name})"
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return "an RFC 3339 time in UTC, e.g. 2026-03-01T08:00:00Z"
        return f"a JSON object ({field.message_type.name})"
    if field.type == FieldDescriptor.TYPE_STRING:
        return "a JSON string"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true or false"
    return "a number"


def json_lines(text: str) -> dict[str, int]:
    """Line (1-based) where each value of a valid JSON document starts, by path.

    Paths read like protobuf's: ``data.symptoms[3].instrument``; the root is ``""``.
    """
    lines: dict[str, int] = {}

    def line_at(index: int) -> int:
        return text.count("\n", 0, index) + 1

    def skip(index: int) -> int:
        match = _WHITESPACE.match(text, index)
        return match.end() if match else index

    def value(index: int, path: str) -> int:
        index = skip(index)
        lines[path] = line_at(index)
        char = text[index]
        if char == "{":
            index = skip(index + 1)
            if text[index] == "}":
                return index + 1
            while True:
                key, index = scanstring(text, skip(index) + 1)
                index = skip(skip(index) + 1)  # past ':'
                index = skip(value(index, f"{path}.{key}" if path else key))
                if text[index] == "}":
                    return index + 1
                index += 1  # past ','
        if char == "[":
            index = skip(index + 1)
            if text[index] == "]":
                return index + 1
            position = 0
            while True:
                index = skip(value(index, f"{path}[{position}]"))
                position += 1
                if text[index] == "]":
                    return index + 1
                index += 1
        if char == '"':
            return scanstring(text, index + 1)[1]
        match = _SCALAR.match(text, index)
        return match.end() if match else index + 1

    value(0, "")
    return lines
