"""Conversions between protobuf types and plain Python shared by the servers."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from common.artifacts import ArtifactManifest
from novamind.common.v1 import common_pb2


def to_timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """A timezone-aware (or UTC-naive) datetime as a Timestamp."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> datetime:
    """A Timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)


def model_info_from_manifest(
    manifest: ArtifactManifest, *, signature_verified: bool = True
) -> common_pb2.ModelInfo:
    """Describe a loaded artifact; only numeric metrics are reported."""
    info = common_pb2.ModelInfo(
        name=manifest.name,
        version=manifest.version,
        training_data_sha256=manifest.training_data_sha256,
        signature_verified=signature_verified,
    )
    info.trained_at.CopyFrom(to_timestamp(datetime.fromisoformat(manifest.created_at)))
    for key, value in manifest.metrics.items():
        info.metrics[key] = float(value)
    return info
