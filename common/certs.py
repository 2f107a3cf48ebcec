"""Development PKI for the mesh: one CA and a certificate per identity.

``python -m common.certs --out var/certs [--force]`` writes

* ``ca.pem`` / ``ca-key.pem`` — a development CA (ECDSA P-256, valid one year);
* ``<id>.pem`` / ``<id>-key.pem`` for every id in :data:`IDENTITIES`.

The identity is the Subject CN (exactly the id) and a URI SAN
``spiffe://novamind.local/<id>``; servers authorize callers by it. The four
service identities get server+client certificates (they are servers, and the
orchestrator is also a client); ``operator`` gets a client-only certificate so
an on-call engineer can call a service with ``grpcurl``.

The command is idempotent: files that exist, parse, match their key, chain to
the CA on disk and are not about to expire are kept. A new CA forces new leaf
certificates, since the old ones would no longer chain. ``--force`` rewrites all.

These certificates are for development and tests only; production certificates
come from the cluster's issuer and are mounted in the same file layout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LOGGER = logging.getLogger(__name__)

IDENTITIES: tuple[str, ...] = (
    "orchestrator",
    "forecasting",
    "biometric",
    "pharmacogenomics",
    "operator",
)
#: Identities that also act as TLS servers (everything but the operator).
SERVER_IDENTITIES: frozenset[str] = frozenset(IDENTITIES) - {"operator"}

SPIFFE_TRUST_DOMAIN = "novamind.local"
CA_COMMON_NAME = "Novamind Dev CA"
VALIDITY = dt.timedelta(days=365)
#: Files closer than this to expiry are regenerated, so a long-running dev
#: environment never starts with a certificate that expires mid-session.
RENEW_BEFORE = dt.timedelta(days=7)
#: Backdating tolerates small clock skew between containers.
_BACKDATE = dt.timedelta(minutes=5)


def spiffe_id(identity: str) -> str:
    """The URI SAN that names ``identity`` in the mesh trust domain."""
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/{identity}"


def server_dns_names(identity: str) -> list[str]:
    """DNS names a service certificate is valid for: loopback, compose and Kubernetes."""
    return [
        "localhost",
        identity,
        f"novamind-{identity}",
        f"novamind-{identity}.novamind.svc",
        "*.novamind.svc.cluster.local",
    ]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file + rename so a crash never leaves half a PEM behind.

    The temp file is created with ``mode`` from the start (mkstemp uses 0600),
    so a private key is never readable by others, not even briefly.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _build_ca(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Novamind"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _build_leaf(
    identity: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.Certificate:
    is_server = identity in SERVER_IDENTITIES
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id(identity))]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if is_server:
        sans += [x509.DNSName(name) for name in server_dns_names(identity)]
        sans += [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    public_key = key.public_key()
    # A leaf never outlives its CA: verifiers reject such chains.
    not_after = min(now + VALIDITY, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Novamind"),
                    x509.NameAttribute(NameOID.COMMON_NAME, identity),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _load_pair(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Return the existing cert and key if both are usable, else None (regenerate)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - RENEW_BEFORE:
        return None
    if stat.S_IMODE(key_path.stat().st_mode) != 0o600:
        # Tighten rather than regenerate: the key itself is still good.
        _LOGGER.warning("tightening permissions of %s to 0600", key_path.name)
        os.chmod(key_path, 0o600)
    return cert, key


def _leaf_is_current(identity: str, cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True if ``cert`` was issued by ``ca_cert`` for ``identity`` with today's profile."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [attr.value for attr in common_names] != [identity]:
        return False
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    wants_server = identity in SERVER_IDENTITIES
    if (ExtendedKeyUsageOID.SERVER_AUTH in usages) != wants_server:
        return False
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    return uris == [spiffe_id(identity)]


def generate_dev_pki(out_dir: Path, force: bool = False) -> dict[str, Path]:
    """Create (or keep) the dev CA and one certificate per identity under ``out_dir``.

    Returns the written-or-kept files keyed by file stem: ``"ca"``, ``"ca-key"``,
    and ``"<id>"`` / ``"<id>-key"`` for every id in :data:`IDENTITIES`.
    Private keys are written with mode 0600.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    now = _now()
    paths: dict[str, Path] = {}

    ca_path, ca_key_path = out_dir / "ca.pem", out_dir / "ca-key.pem"
    existing_ca = None if force else _load_pair(ca_path, ca_key_path, now)
    ca_renewed = existing_ca is None
    if existing_ca is None:
        ca_key = _new_key()
        ca_cert = _build_ca(ca_key, now)
        _write_atomic(ca_key_path, _key_pem(ca_key), 0o600)
        _write_atomic(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _LOGGER.info("wrote development CA %s", ca_path)
    else:
        ca_cert, ca_key = existing_ca
    paths["ca"], paths["ca-key"] = ca_path, ca_key_path

    for identity in IDENTITIES:
        cert_path, key_path = out_dir / f"{identity}.pem", out_dir / f"{identity}-key.pem"
        existing = None if ca_renewed else _load_pair(cert_path, key_path, now)
        if existing is None or not _leaf_is_current(identity, existing[0], ca_cert):
            key = _new_key()
            cert = _build_leaf(identity, key, ca_cert, ca_key, now)
            _write_atomic(key_path, _key_pem(key), 0o600)
            _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            _LOGGER.info("wrote certificate for %s", identity)
        paths[identity], paths[f"{identity}-key"] = cert_path, key_path
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.certs",
        description="Generate the development CA and per-service mTLS certificates.",
    )
    parser.add_argument("--out", type=Path, default=Path("var/certs"), help="output directory")
    parser.add_argument(
        "--force", action="store_true", help="regenerate everything, even valid files"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = generate_dev_pki(args.out, force=args.force)
    print(f"dev PKI ready in {args.out} ({len(paths)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
