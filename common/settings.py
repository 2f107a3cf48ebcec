"""One typed settings object, read from ``NOVAMIND_*`` environment variables.

Every variable is documented in the README's configuration table; the field
docstrings here are the source of that table.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.cpu_quota import default_workers

_LOGGER = logging.getLogger(__name__)

#: Default service ports. The health-only plaintext port is the service port + 1000.
DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 50050,
    "forecasting": 50051,
    "biometric": 50052,
    "pharmacogenomics": 50053,
}

#: Identities allowed to call each service unless NOVAMIND_ALLOWED_CALLERS says otherwise.
#: "*" admits any client certificate issued by the mesh CA.
DEFAULT_ALLOWED_CALLERS: dict[str, tuple[str, ...]] = {
    "orchestrator": ("*",),
    "forecasting": ("orchestrator", "operator"),
    "biometric": ("orchestrator", "operator"),
    "pharmacogenomics": ("orchestrator", "operator"),
}

HEALTH_PORT_OFFSET = 1000

#: gRPC name-resolver schemes a downstream address may use (besides plain host:port).
TARGET_SCHEMES = ("dns", "ipv4", "ipv6", "unix", "unix-abstract")


class SettingsError(ValueError):
    """A NOVAMIND_* variable is malformed; the message names the variable and the rule."""


def _get_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: must be an integer") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be between {low} and {high}")
    return value


def _get_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: must be a number") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be between {low} and {high}")
    return value


def _get_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}: must be one of 1/0/true/false/yes/no/on/off")


def _get_target(env: Mapping[str, str], name: str, default: str) -> str:
    """A gRPC target: ``host:port`` or a resolver URI (``dns:///name:port``, ``ipv4:a:p,b:p``)."""
    raw = env.get(name, "").strip() or default
    scheme, colon, rest = raw.partition(":")
    if colon and scheme in TARGET_SCHEMES:
        if not rest.strip("/"):
            raise SettingsError(f"{name}: {scheme}: target names no address")
        return raw
    host, colon, port = raw.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(
            f"{name}: must be host:port or a gRPC target URI "
            f"({', '.join(s + ':' for s in TARGET_SCHEMES)})"
        )
    return raw


def check_store_url(raw: str, name: str = "NOVAMIND_STORE_URL") -> str:
    """A PostgreSQL URL, or "" for SQLite; the error never echoes the URL (it may hold a secret)."""
    raw = raw.strip()
    if raw and not raw.startswith(("postgresql://", "postgres://")):
        raise SettingsError(f"{name}: must be a postgresql:// URL (or unset for SQLite)")
    return raw


def _get_store_url(env: Mapping[str, str]) -> str:
    return check_store_url(env.get("NOVAMIND_STORE_URL", ""))


#: Longest retention accepted (a hundred years): beyond it "keep forever" is what is meant.
MAX_RETENTION_DAYS = 36_500


def _get_retention_days(env: Mapping[str, str]) -> int:
    """Whole days of snapshots to keep; 0 (or unset) keeps them forever."""
    name = "NOVAMIND_SNAPSHOT_RETENTION_DAYS"
    raw = env.get(name, "").strip()
    if raw == "":
        return 0
    # Digits only: "30d", "1.5" or "-7" must fail, not be read as something else.
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) > MAX_RETENTION_DAYS:
        raise SettingsError(
            f"{name}: must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, "
            "or 0 (or unset) to keep snapshots forever"
        )
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of one service process."""

    service: str
    """Which service this process runs (orchestrator, forecasting, biometric, pharmacogenomics)."""
    host: str = "0.0.0.0"  # noqa: S104 - a server in a pod must listen on the pod address
    """NOVAMIND_HOST: address to bind."""
    port: int = 0
    """NOVAMIND_PORT: the mTLS service port (default per service: 50050..50053)."""
    health_port: int = 0
    """NOVAMIND_HEALTH_PORT: plaintext port serving only grpc.health.v1 (default port + 1000)."""
    insecure: bool = False
    """NOVAMIND_INSECURE: 1 serves and calls plaintext, no TLS (development only; warns)."""
    tls_dir: Path = Path("var/certs")
    """NOVAMIND_TLS_DIR: directory holding ca.pem and <identity>.pem / <identity>-key.pem."""
    identity: str = ""
    """NOVAMIND_IDENTITY: certificate identity this process presents (default: the service name)."""
    allowed_callers: tuple[str, ...] = ()
    """NOVAMIND_ALLOWED_CALLERS: comma-separated client certificate identities allowed to call."""
    grace_seconds: float = 10.0
    """NOVAMIND_GRACE_SECONDS: how long in-flight calls may run after SIGTERM."""
    max_message_bytes: int = 16 * 1024 * 1024
    """NOVAMIND_MAX_MESSAGE_BYTES: largest request or response message."""
    workers: int = 1
    """NOVAMIND_WORKERS: server processes sharing the port, 1..64 (default: the CPU quota)."""
    max_concurrent_rpcs: int = 64
    """NOVAMIND_MAX_CONCURRENT_RPCS: beyond this, calls get RESOURCE_EXHAUSTED."""
    keepalive_seconds: int = 30
    """NOVAMIND_KEEPALIVE_SECONDS: HTTP/2 keepalive ping interval."""
    log_level: str = "INFO"
    """NOVAMIND_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "json"
    """NOVAMIND_LOG_FORMAT: json (one object per line) or text."""
    model_dir: Path = Path("var/models")
    """NOVAMIND_MODEL_DIR: root of the signed model artifact store."""
    key_dir: Path = Path("var/keys")
    """NOVAMIND_KEY_DIR: where development keys are created when no key is configured."""
    require_secrets: bool = False
    """NOVAMIND_REQUIRE_SECRETS: 1 refuses to start without configured keys (set in production)."""
    audit_log: Path = Path("var/audit/service.jsonl")
    """NOVAMIND_AUDIT_LOG: append-only audit log (default var/audit/<service>.jsonl)."""
    forecasting_addr: str = "localhost:50051"
    """NOVAMIND_FORECASTING_ADDR: forecasting service address (orchestrator only)."""
    biometric_addr: str = "localhost:50052"
    """NOVAMIND_BIOMETRIC_ADDR: biometric service address (orchestrator only)."""
    pharmacogenomics_addr: str = "localhost:50053"
    """NOVAMIND_PHARMACOGENOMICS_ADDR: pharmacogenomics service address (orchestrator only)."""
    forecasting_server_name: str = "forecasting"
    """NOVAMIND_FORECASTING_SERVER_NAME: name the forecasting certificate must carry."""
    biometric_server_name: str = "biometric"
    """NOVAMIND_BIOMETRIC_SERVER_NAME: name the biometric certificate must carry."""
    pharmacogenomics_server_name: str = "pharmacogenomics"
    """NOVAMIND_PHARMACOGENOMICS_SERVER_NAME: name the pharmacogenomics certificate must carry."""
    max_connection_age_seconds: int = 300
    """NOVAMIND_MAX_CONNECTION_AGE_SECONDS: connections this old are closed (clients re-resolve)."""
    max_connection_age_grace_seconds: int = 30
    """NOVAMIND_MAX_CONNECTION_AGE_GRACE_SECONDS: time for calls on a closing connection."""
    downstream_connections: int = 4
    """NOVAMIND_DOWNSTREAM_CONNECTIONS: (orchestrator) connections to each ML service, 1..64."""
    default_deadline_seconds: float = 20.0
    """NOVAMIND_DEFAULT_DEADLINE_SECONDS: budget of a call that sets no deadline."""
    store_path: Path = Path("var/store/twin.sqlite")
    """NOVAMIND_STORE_PATH: SQLite file of the orchestrator's longitudinal store."""
    store_url: str = ""
    """NOVAMIND_STORE_URL: postgresql:// URL of a shared store; unset means SQLite."""
    store_url_file: Path | None = None
    """NOVAMIND_STORE_URL_FILE: file holding the postgresql:// URL (a mounted secret)."""
    store_password_file: Path | None = None
    """NOVAMIND_STORE_PASSWORD_FILE: file holding the PostgreSQL password (a mounted secret)."""
    store_pool_size: int = 10
    """NOVAMIND_STORE_POOL_SIZE: most PostgreSQL connections one orchestrator process opens."""
    snapshot_retention_days: int = 0
    """NOVAMIND_SNAPSHOT_RETENTION_DAYS: (orchestrator) delete snapshots older than this many
    days, except each patient's newest; 0 or unset keeps every snapshot forever."""
    snapshot_prune_interval_seconds: float = 3600.0
    """NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS: (orchestrator) time between retention runs."""
    max_history_points: int = 20_000
    """NOVAMIND_MAX_HISTORY_POINTS: largest number of observations accepted in one request."""
    extra: dict[str, str] = field(default_factory=dict)
    """Any other NOVAMIND_* variable, for service-specific options."""

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings for ``service``; raise SettingsError naming a malformed variable."""
        env = os.environ if env is None else env
        if service not in DEFAULT_PORTS:
            raise SettingsError(f"service: must be one of {sorted(DEFAULT_PORTS)}")
        port = _get_int(env, "NOVAMIND_PORT", DEFAULT_PORTS[service], 0, 65535)
        default_health = port + HEALTH_PORT_OFFSET if port else 0
        health_port = _get_int(env, "NOVAMIND_HEALTH_PORT", default_health, 0, 65535)
        callers_raw = env.get("NOVAMIND_ALLOWED_CALLERS", "")
        callers = tuple(c.strip() for c in callers_raw.split(",") if c.strip())
        log_level = env.get("NOVAMIND_LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError("NOVAMIND_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
        log_format = env.get("NOVAMIND_LOG_FORMAT", "json").lower()
        if log_format not in {"json", "text"}:
            raise SettingsError("NOVAMIND_LOG_FORMAT: must be json or text")
        known = {f"NOVAMIND_{name.upper()}" for name in cls.__dataclass_fields__}
        extra = {k: v for k, v in env.items() if k.startswith("NOVAMIND_") and k not in known}
        return cls(
            service=service,
            host=env.get("NOVAMIND_HOST", "0.0.0.0"),  # noqa: S104 - see field doc
            port=port,
            health_port=health_port,
            insecure=_get_bool(env, "NOVAMIND_INSECURE", False),
            tls_dir=Path(env.get("NOVAMIND_TLS_DIR", "var/certs")),
            identity=env.get("NOVAMIND_IDENTITY", service),
            allowed_callers=callers or DEFAULT_ALLOWED_CALLERS[service],
            grace_seconds=_get_float(env, "NOVAMIND_GRACE_SECONDS", 10.0, 0.0, 600.0),
            max_message_bytes=_get_int(
                env, "NOVAMIND_MAX_MESSAGE_BYTES", 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024
            ),
            workers=_get_int(env, "NOVAMIND_WORKERS", default_workers(), 1, 64),
            max_concurrent_rpcs=_get_int(env, "NOVAMIND_MAX_CONCURRENT_RPCS", 64, 1, 100_000),
            keepalive_seconds=_get_int(env, "NOVAMIND_KEEPALIVE_SECONDS", 30, 1, 3600),
            log_level=log_level,
            log_format=log_format,
            model_dir=Path(env.get("NOVAMIND_MODEL_DIR", "var/models")),
            key_dir=Path(env.get("NOVAMIND_KEY_DIR", "var/keys")),
            require_secrets=_get_bool(env, "NOVAMIND_REQUIRE_SECRETS", False),
            audit_log=Path(env.get("NOVAMIND_AUDIT_LOG", f"var/audit/{service}.jsonl")),
            forecasting_addr=_get_target(env, "NOVAMIND_FORECASTING_ADDR", "localhost:50051"),
            biometric_addr=_get_target(env, "NOVAMIND_BIOMETRIC_ADDR", "localhost:50052"),
            pharmacogenomics_addr=_get_target(
                env, "NOVAMIND_PHARMACOGENOMICS_ADDR", "localhost:50053"
            ),
            forecasting_server_name=env.get("NOVAMIND_FORECASTING_SERVER_NAME", "forecasting"),
            biometric_server_name=env.get("NOVAMIND_BIOMETRIC_SERVER_NAME", "biometric"),
            pharmacogenomics_server_name=env.get(
                "NOVAMIND_PHARMACOGENOMICS_SERVER_NAME", "pharmacogenomics"
            ),
            max_connection_age_seconds=_get_int(
                env, "NOVAMIND_MAX_CONNECTION_AGE_SECONDS", 300, 1, 86_400
            ),
            max_connection_age_grace_seconds=_get_int(
                env, "NOVAMIND_MAX_CONNECTION_AGE_GRACE_SECONDS", 30, 0, 3600
            ),
            downstream_connections=_get_int(env, "NOVAMIND_DOWNSTREAM_CONNECTIONS", 4, 1, 64),
            default_deadline_seconds=_get_float(
                env, "NOVAMIND_DEFAULT_DEADLINE_SECONDS", 20.0, 0.1, 600.0
            ),
            store_path=Path(env.get("NOVAMIND_STORE_PATH", "var/store/twin.sqlite")),
            store_url=_get_store_url(env),
            store_url_file=(
                Path(env["NOVAMIND_STORE_URL_FILE"]) if env.get("NOVAMIND_STORE_URL_FILE") else None
            ),
            store_password_file=(
                Path(env["NOVAMIND_STORE_PASSWORD_FILE"])
                if env.get("NOVAMIND_STORE_PASSWORD_FILE")
                else None
            ),
            store_pool_size=_get_int(env, "NOVAMIND_STORE_POOL_SIZE", 10, 1, 1000),
            snapshot_retention_days=_get_retention_days(env),
            snapshot_prune_interval_seconds=_get_float(
                env, "NOVAMIND_SNAPSHOT_PRUNE_INTERVAL_SECONDS", 3600.0, 0.1, 86_400.0
            ),
            max_history_points=_get_int(env, "NOVAMIND_MAX_HISTORY_POINTS", 20_000, 10, 10_000_000),
            extra=extra,
        )

    def secret(self, name: str, env: Mapping[str, str] | None = None) -> bytes:
        """Return the key ``name`` (pseudonym, audit, artifact, store).

        Read from NOVAMIND_<NAME>_KEY (hex) or the file NOVAMIND_<NAME>_KEY_FILE
        (a mounted Kubernetes Secret). Without either, a development key is
        created once under ``key_dir`` — unless NOVAMIND_REQUIRE_SECRETS=1.
        """
        env = os.environ if env is None else env
        var = f"NOVAMIND_{name.upper()}_KEY"
        if env.get(var):
            try:
                key = bytes.fromhex(env[var].strip())
            except ValueError as exc:
                raise SettingsError(f"{var}: must be hex-encoded") from exc
            if len(key) < 32:
                raise SettingsError(f"{var}: must be at least 32 bytes (64 hex characters)")
            return key
        file_var = f"{var}_FILE"
        if env.get(file_var):
            path = Path(env[file_var])
            try:
                key = bytes.fromhex(path.read_text().strip())
            except (OSError, ValueError) as exc:
                raise SettingsError(f"{file_var}: must name a readable file of hex") from exc
            if len(key) < 32:
                raise SettingsError(f"{file_var}: key must be at least 32 bytes")
            return key
        if self.require_secrets:
            raise SettingsError(f"{var}: required when NOVAMIND_REQUIRE_SECRETS=1")
        return _dev_key(self.key_dir / f"{name.lower()}.key", var)


def _dev_key(path: Path, var: str) -> bytes:
    """Create (once) or read a development key; never used when secrets are required."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a private temp file and link it into place: concurrent first
        # starts of several services then agree on one key and never read a partial file.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
            _LOGGER.warning("no %s configured: created a development key file", var)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
