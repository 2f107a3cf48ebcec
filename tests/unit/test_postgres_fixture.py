"""The test PostgreSQL server does not outlive a test session that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.postgres_server import reap_orphans

REPO = Path(__file__).resolve().parents[2]
_START = (
    "from tests.postgres_server import start_postgres; import sys, time;"
    "server = start_postgres(); print(server.base, flush=True); time.sleep(600)"
)


def _postmaster_pid(base: Path) -> int:
    return int((base / "data" / "postmaster.pid").read_text().splitlines()[0])


def test_server_of_a_killed_session_is_reaped():
    session = subprocess.Popen(
        [sys.executable, "-c", _START], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        base = Path(session.stdout.readline().strip())
        postmaster = _postmaster_pid(base)
        os.kill(postmaster, 0)  # running
    finally:
        session.send_signal(signal.SIGKILL)  # no teardown runs
        session.wait(timeout=10)
    assert base.exists()
    reap_orphans()
    assert not base.exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(postmaster, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the orphaned server is still running")
