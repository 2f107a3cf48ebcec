"""The health proto shipped for grpcurl (protos/third_party) is the schema the servers use."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_tools import protoc

THIRD_PARTY = Path(__file__).resolve().parents[2] / "protos" / "third_party"


def _schema(proto: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Only what goes on the wire: package, messages, enums, services."""
    kept = descriptor_pb2.FileDescriptorProto()
    kept.package = proto.package
    kept.message_type.extend(proto.message_type)
    kept.enum_type.extend(proto.enum_type)
    kept.service.extend(proto.service)
    for message in kept.message_type:  # protoc fills json_name; the compiled-in copy omits it
        for nested in (message, *message.nested_type):
            for field in nested.field:
                field.ClearField("json_name")
    return kept


def test_shipped_health_proto_matches_the_served_health_service(tmp_path):
    out = tmp_path / "health.binpb"
    code = protoc.main(
        [
            "protoc",
            f"-I{THIRD_PARTY}",
            f"--descriptor_set_out={out}",
            "grpc/health/v1/health.proto",
        ]
    )
    assert code == 0
    (shipped,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    served = descriptor_pb2.FileDescriptorProto()
    health_pb2.DESCRIPTOR.CopyToProto(served)
    assert _schema(shipped) == _schema(served)
