"""Transport security: mutual TLS credentials and caller identity.

Every mesh certificate carries its identity in the subject CN (see
common/certs.py). Servers require a client certificate signed by the mesh CA;
authorization then compares the caller's CN with the service's allow-list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from common.settings import Settings, SettingsError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def for_identity(cls, tls_dir: Path, identity: str) -> TlsFiles:
        files = cls(
            ca=tls_dir / "ca.pem",
            cert=tls_dir / f"{identity}.pem",
            key=tls_dir / f"{identity}-key.pem",
        )
        for path in (files.ca, files.cert, files.key):
            if not path.is_file():
                raise SettingsError(
                    f"NOVAMIND_TLS_DIR: {path} is missing; run `make certs` or set "
                    "NOVAMIND_INSECURE=1 for plaintext development"
                )
        return files


def server_credentials(settings: Settings) -> grpc.ServerCredentials:
    """mTLS server credentials: a client certificate from the mesh CA is required."""
    files = TlsFiles.for_identity(settings.tls_dir, settings.identity)
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(tls_dir: Path, identity: str) -> grpc.ChannelCredentials:
    """Client credentials presenting ``identity``'s certificate to mesh servers."""
    files = TlsFiles.for_identity(tls_dir, identity)
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


def caller_identity(context: grpc.aio.ServicerContext[object, object]) -> str | None:
    """The verified subject CN of the caller's certificate, or None without TLS."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") if auth else None
    if not names:
        return None
    first = next(iter(names))
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)


def is_allowed(identity: str | None, allowed: tuple[str, ...], insecure: bool) -> bool:
    """Authorize a caller. In insecure mode there is no identity to check."""
    if insecure:
        return True
    if identity is None:
        return False
    return "*" in allowed or identity in allowed
