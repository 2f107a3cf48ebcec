"""One rule for zero across every RPC: a numeric option left at 0 means its documented default.

proto3 cannot tell an unset number from 0, so 0 is "unset" on every request option (never an
error on one RPC and a default on another), and each field's comment says what it means. The
comments are read from the descriptor set `make protos` builds with source info, the one
reflection serves.
"""

from __future__ import annotations

import re

from google.protobuf import descriptor_pb2

from common.reflection import load_documented_files

_NUMERIC = {
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
}
_MESSAGE_TYPE, _FIELD = 4, 2  # FileDescriptorProto.message_type, DescriptorProto.field


def _option_fields() -> list[tuple[str, str]]:
    """(Message.field, leading comment) of every numeric option of a request."""
    found = []
    for name, data in load_documented_files().items():
        if not name.startswith("novamind/"):
            continue
        file = descriptor_pb2.FileDescriptorProto.FromString(data)
        comments = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
        }
        for m, message in enumerate(file.message_type):
            if not re.search(r"(Request|Options)$", message.name):
                continue
            for f, field in enumerate(message.field):
                repeated = field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                if field.type in _NUMERIC and not repeated and not field.proto3_optional:
                    comment = comments.get((_MESSAGE_TYPE, m, _FIELD, f), "")
                    found.append((f"{message.name}.{field.name}", " ".join(comment.split())))
    return found


def test_every_numeric_request_option_documents_what_zero_means():
    fields = _option_fields()
    names = {name for name, _ in fields}
    assert {
        "ForecastSymptomsRequest.horizon_days",
        "InsightOptions.forecast_horizon_days",
        "AnalyzePatientRequest.lookback_days",
    } <= names
    undocumented = [name for name, comment in fields if not re.search(r"0 means \S", comment)]
    assert not undocumented


def test_both_horizons_give_zero_the_same_meaning():
    comments = dict(_option_fields())
    assert "0 means 30" in comments["ForecastSymptomsRequest.horizon_days"]
    assert "0 means 30" in comments["InsightOptions.forecast_horizon_days"]
