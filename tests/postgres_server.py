"""A real PostgreSQL server for tests: Debian's package, a temp dir, a free loopback port.

``initdb`` + ``pg_ctl`` from the installed server (``make postgres-deps``
installs Debian's ``postgresql`` when it is missing). PostgreSQL refuses to
run as root, so under root (CI) the server runs as the ``postgres`` user (or
``nobody``) via ``runuser``, in a temp dir that user owns. Password auth
(scram-sha-256) on TCP, so the store's password handling is exercised; TLS
with a certificate of the test PKI when asked.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ADMIN_USER = "novamind_admin"


def postgres_bin_dir() -> Path:
    """Directory of initdb/pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise RuntimeError("PostgreSQL server not installed: run `make postgres-deps`")
    return candidates[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> tuple[str, int, int] | None:
    """(name, uid, gid) to run the server as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return name, entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


@dataclass
class PostgresServer:
    base: Path
    port: int
    admin_password: str
    bin_dir: Path
    user: tuple[str, int, int] | None

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, dbname: str = "postgres", user: str = ADMIN_USER, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}" + (
            f"?{query}" if query else ""
        )

    def admin_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{ADMIN_USER}:{self.admin_password}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user[0], "--"] if self.user else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {result.stderr[-2000:]}\n{tail}")

    def _own(self, path: Path, mode: int) -> None:
        if self.user:
            os.chown(path, self.user[1], self.user[2])
        path.chmod(mode)

    def start(self, *, ssl_cert: Path | None = None, ssl_key: Path | None = None) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        self._own(pwfile, 0o600)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
            "--no-sync",
        )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.base}",
            "-c max_connections=60",
            # The tests kill orchestrators, never this server or the machine: skipping
            # fsync makes CREATE DATABASE per test cheap without weakening what they check.
            "-c fsync=off",
        ]
        if ssl_cert and ssl_key:
            for source, name in ((ssl_cert, "server.crt"), (ssl_key, "server.key")):
                target = self.data_dir / name
                shutil.copyfile(source, target)
                self._own(target, 0o600)
            options += ["-c ssl=on", "-c ssl_cert_file=server.crt", "-c ssl_key_file=server.key"]
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.base / "server.log"),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"
            )

    def create_database(self, owner_password: str) -> tuple[str, str]:
        """A fresh database and its owner role (LOGIN, password); returns (dbname, role)."""
        import psycopg

        name = f"novamind_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{owner_password}'".encode())
            conn.execute(f"CREATE DATABASE {name} OWNER {name}".encode())
        return name, name


_PREFIX = "novamind-pg-"
_OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> None:
    """Stop servers left by test sessions that were killed before their teardown."""
    for base in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((base / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        pid_file = base / "data" / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().splitlines()[0])
            # Only that server: a recycled pid must never hit someone else's process.
            cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
            if b"postgres" in cmdline and str(base).encode() in cmdline:
                os.kill(postmaster, 9)  # SIGKILL: nothing in it is worth a clean shutdown
        except (OSError, ValueError, IndexError):
            pass
        shutil.rmtree(base, ignore_errors=True)


def start_postgres(*, ssl_cert: Path | None = None, ssl_key: Path | None = None) -> PostgresServer:
    reap_orphans()
    user = _server_user()
    # Not pytest's tmp_path: under root it lies in a 0700 directory the server user cannot enter.
    base = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (base / _OWNER_FILE).write_text(str(os.getpid()))
    if user:
        os.chown(base, user[1], user[2])
    server = PostgresServer(
        base=base,
        port=_free_port(),
        admin_password=secrets.token_hex(16),
        bin_dir=postgres_bin_dir(),
        user=user,
    )
    try:
        server.start(ssl_cert=ssl_cert, ssl_key=ssl_key)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


def stop_postgres(server: PostgresServer) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.base, ignore_errors=True)
