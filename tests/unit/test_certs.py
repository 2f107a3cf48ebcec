"""The dev PKI: chains verify, identities sit where servers look for them, keys stay private."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    DNSName,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from common.certs import IDENTITIES, generate_dev_pki, main

SERVICES = ("orchestrator", "forecasting", "biometric", "pharmacogenomics")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_dev_pki(tmp_path_factory.mktemp("pki"))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _snapshot(paths: dict[str, Path]) -> dict[str, tuple[bytes, int, int]]:
    return {
        stem: (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)
        for stem, path in paths.items()
    }


def test_identities_are_the_five_mesh_principals() -> None:
    assert set(IDENTITIES) == {*SERVICES, "operator"}


def test_returns_a_cert_and_key_for_the_ca_and_every_identity(pki: dict[str, Path]) -> None:
    expected = {"ca", "ca-key"} | set(IDENTITIES) | {f"{i}-key" for i in IDENTITIES}
    assert set(pki) == expected
    for stem, path in pki.items():
        assert path.name == f"{stem}.pem"
        assert path.is_file()


@pytest.mark.parametrize("identity", SERVICES)
def test_service_certificate_verifies_as_server_for_every_name(
    pki: dict[str, Path], identity: str
) -> None:
    store = Store([_cert(pki["ca"])])
    leaf = _cert(pki[identity])
    names: list[DNSName | IPAddress] = [
        DNSName("localhost"),
        DNSName(identity),
        DNSName(f"novamind-{identity}"),
        DNSName(f"novamind-{identity}.novamind.svc"),
        DNSName(f"novamind-{identity}.novamind.svc.cluster.local"),
        IPAddress(ipaddress.ip_address("127.0.0.1")),
        IPAddress(ipaddress.ip_address("::1")),
    ]
    for name in names:
        chain = PolicyBuilder().store(store).build_server_verifier(name).verify(leaf, [])
        assert chain[-1] == _cert(pki["ca"])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(DNSName("example.com")).verify(leaf, [])


@pytest.mark.parametrize("identity", IDENTITIES)
def test_every_certificate_verifies_as_client_with_its_spiffe_id(
    pki: dict[str, Path], identity: str
) -> None:
    store = Store([_cert(pki["ca"])])
    verified = PolicyBuilder().store(store).build_client_verifier().verify(_cert(pki[identity]), [])
    uris = [
        s.value for s in verified.subjects or [] if isinstance(s, x509.UniformResourceIdentifier)
    ]
    assert uris == [f"spiffe://novamind.local/{identity}"]


def test_operator_certificate_cannot_serve(pki: dict[str, Path]) -> None:
    store = Store([_cert(pki["ca"])])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(DNSName("localhost")).verify(
            _cert(pki["operator"]), []
        )


def test_certificate_from_another_ca_does_not_verify(pki: dict[str, Path], tmp_path: Path) -> None:
    other = generate_dev_pki(tmp_path / "other")
    store = Store([_cert(pki["ca"])])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_client_verifier().verify(
            _cert(other["orchestrator"]), []
        )


@pytest.mark.parametrize("identity", IDENTITIES)
def test_subject_san_and_eku_follow_the_profile(pki: dict[str, Path], identity: str) -> None:
    cert = _cert(pki[identity])
    ca = _cert(pki["ca"])
    cert.verify_directly_issued_by(ca)

    common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert common_names == [identity]

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://novamind.local/" + identity
    ]
    eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    if identity == "operator":
        assert eku == {ExtendedKeyUsageOID.CLIENT_AUTH}
        assert san.get_values_for_type(x509.DNSName) == []
        assert san.get_values_for_type(x509.IPAddress) == []
    else:
        assert eku == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
        assert set(san.get_values_for_type(x509.DNSName)) == {
            "localhost",
            identity,
            "novamind-" + identity,
            "novamind-" + identity + ".novamind.svc",
            "*.novamind.svc.cluster.local",
        }
        assert set(san.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address("127.0.0.1"),
            ipaddress.ip_address("::1"),
        }
    assert cert.not_valid_after_utc <= ca.not_valid_after_utc


def test_ca_is_a_p256_ca_valid_for_about_a_year(pki: dict[str, Path]) -> None:
    ca = _cert(pki["ca"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert 364 <= lifetime.days <= 366


def test_private_keys_are_0600_and_match_their_certificates(pki: dict[str, Path]) -> None:
    for stem in ("ca", *IDENTITIES):
        key_path = pki[f"{stem}-key"]
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, key_path.name
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert key.public_key() == _cert(pki[stem]).public_key()


def test_second_run_keeps_every_file(tmp_path: Path) -> None:
    first = generate_dev_pki(tmp_path)
    before = _snapshot(first)
    second = generate_dev_pki(tmp_path)
    assert second == first
    assert _snapshot(second) == before


def test_force_rewrites_every_file(tmp_path: Path) -> None:
    first = generate_dev_pki(tmp_path)
    before = {stem: path.read_bytes() for stem, path in first.items()}
    forced = generate_dev_pki(tmp_path, force=True)
    for stem, path in forced.items():
        assert path.read_bytes() != before[stem], stem
    store = Store([_cert(forced["ca"])])
    PolicyBuilder().store(store).build_client_verifier().verify(_cert(forced["biometric"]), [])


def test_only_a_broken_leaf_is_regenerated(tmp_path: Path) -> None:
    paths = generate_dev_pki(tmp_path)
    before = _snapshot(paths)
    paths["biometric-key"].unlink()
    generate_dev_pki(tmp_path)
    after = _snapshot(paths)
    changed = {stem for stem in before if before[stem][0] != after[stem][0]}
    assert changed == {"biometric", "biometric-key"}


def test_loose_key_permissions_are_tightened_without_regenerating(tmp_path: Path) -> None:
    paths = generate_dev_pki(tmp_path)
    pem = paths["forecasting-key"].read_bytes()
    paths["forecasting-key"].chmod(0o644)
    generate_dev_pki(tmp_path)
    assert stat.S_IMODE(paths["forecasting-key"].stat().st_mode) == 0o600
    assert paths["forecasting-key"].read_bytes() == pem


def test_a_new_ca_reissues_every_leaf(tmp_path: Path) -> None:
    paths = generate_dev_pki(tmp_path)
    before = _snapshot(paths)
    paths["ca-key"].unlink()
    generate_dev_pki(tmp_path)
    ca = _cert(paths["ca"])
    for identity in IDENTITIES:
        assert paths[identity].read_bytes() != before[identity][0]
        _cert(paths[identity]).verify_directly_issued_by(ca)


def test_cli_is_idempotent_and_force_rewrites(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert main(["--out", str(out)]) == 0
    ca_pem = (out / "ca.pem").read_bytes()
    assert main(["--out", str(out)]) == 0
    assert (out / "ca.pem").read_bytes() == ca_pem
    assert main(["--out", str(out), "--force"]) == 0
    assert (out / "ca.pem").read_bytes() != ca_pem


def test_module_runs_as_a_command(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = subprocess.run(
        [sys.executable, "-m", "common.certs", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}{suffix}.pem" for stem in ("ca", *IDENTITIES) for suffix in ("", "-key")
    )


def test_mutual_tls_handshake_succeeds_and_exposes_client_identity(pki: dict[str, Path]) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki["forecasting"], pki["forecasting-key"])
    server_ctx.load_verify_locations(pki["ca"])
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_cert_chain(pki["orchestrator"], pki["orchestrator-key"])
    client_ctx.load_verify_locations(pki["ca"])

    server_sock, client_sock = socket.socketpair()
    seen: dict[str, object] = {}

    def serve() -> None:
        with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(
            client_sock, server_hostname="novamind-forecasting.novamind.svc"
        ) as tls:
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(timeout=10)
    peer = seen["peer"]
    assert isinstance(peer, dict)
    assert ((("commonName", "orchestrator"),)) in peer["subject"]
    assert ("URI", "spiffe://novamind.local/orchestrator") in peer["subjectAltName"]
