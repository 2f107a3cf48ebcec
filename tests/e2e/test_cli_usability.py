"""The `novamind` command used by hand: targets per service, dates, patient-file mistakes and
unknown patients give a clear message and an exit status, never a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.launcher import clean_env, wait_healthy
from tests.conftest import free_port
from tests.integration.process_helpers import REPO_ROOT, service_env, start_process


def _novamind(
    pki_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_orchestrator.cli", "--tls-dir", str(pki_dir), *args],
        cwd=REPO_ROOT,
        env=clean_env(PYTHONPATH=str(REPO_ROOT), **(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def orchestrator_port(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Iterator[int]:
    """A real orchestrator process; the ML services it would call are not running."""
    base = tmp_path_factory.mktemp("cli")
    port, dead = free_port(), free_port()
    env = service_env(
        base,
        pki_dir,
        port,
        NOVAMIND_FORECASTING_ADDR=f"localhost:{dead}",
        NOVAMIND_BIOMETRIC_ADDR=f"localhost:{dead}",
        NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{dead}",
    )
    proc = start_process("twin_orchestrator", env, base / "orchestrator.log")
    try:
        wait_healthy(port + 1000)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _health_lines(stdout: str) -> dict[str, tuple[str, str]]:
    rows = [line.split() for line in stdout.splitlines() if line.strip()]
    return {row[0]: (row[1], row[2]) for row in rows}


def test_health_takes_a_target_per_service(pki_dir, orchestrator_port):
    dead = free_port()
    targets = {
        "orchestrator": f"localhost:{orchestrator_port}",
        "forecasting": f"localhost:{dead}",
        "biometric": f"ipv4:127.0.0.1:{dead}",
        "pharmacogenomics": f"dns:///localhost:{dead}",
    }
    args = [f"--target={name}={target}" for name, target in targets.items()]
    result = _novamind(pki_dir, "health", *args)
    lines = _health_lines(result.stdout)
    assert lines["orchestrator"] == (targets["orchestrator"], "SERVING")
    for name in ("forecasting", "biometric", "pharmacogenomics"):
        assert lines[name] == (targets[name], "UNAVAILABLE")
    assert result.returncode == 1  # not every service is serving


def test_health_and_progress_read_the_address_variables(pki_dir, orchestrator_port):
    dead = free_port()
    env = {
        "NOVAMIND_ORCHESTRATOR_ADDR": f"localhost:{orchestrator_port}",
        "NOVAMIND_FORECASTING_ADDR": f"localhost:{dead}",
        "NOVAMIND_BIOMETRIC_ADDR": f"localhost:{dead}",
        "NOVAMIND_PHARMACOGENOMICS_ADDR": f"localhost:{dead}",
    }
    lines = _health_lines(_novamind(pki_dir, "health", env=env).stdout)
    assert lines["orchestrator"] == (f"localhost:{orchestrator_port}", "SERVING")
    assert lines["forecasting"] == (f"localhost:{dead}", "UNAVAILABLE")
    # progress reaches the orchestrator through NOVAMIND_ORCHESTRATOR_ADDR (no --target).
    progress = _novamind(pki_dir, "progress", "--patient-id", "MRN-0000001", env=env)
    assert "no insights stored" in progress.stderr


def test_health_rejects_an_unknown_service_name(pki_dir):
    result = _novamind(pki_dir, "health", "--target", "forecast=localhost:1")
    assert result.returncode == 2
    assert "SERVICE=TARGET" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "01/02/2026"])
def test_progress_since_not_a_date_is_a_clear_error(pki_dir, orchestrator_port, since):
    result = _novamind(
        pki_dir,
        "progress",
        "--patient-id",
        "MRN-0000001",
        "--since",
        since,
        "--target",
        f"localhost:{orchestrator_port}",
    )
    assert result.returncode == 2
    assert "--since" in result.stderr and "ISO 8601" in result.stderr
    assert "Traceback" not in result.stderr and since not in result.stderr


def test_unknown_patient_is_a_clear_message_and_a_failure(pki_dir, orchestrator_port):
    result = _novamind(
        pki_dir,
        "progress",
        "--patient-id",
        "MRN-9999999",
        "--since",
        "2026-01-01",
        "--target",
        f"localhost:{orchestrator_port}",
    )
    assert result.returncode == 1
    assert "no insights stored for this patient id since 2026-01-01" in result.stderr
    assert "Timeline" not in result.stdout and "MRN-9999999" not in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"patientId": "MRN-1",\n "data": {"symptoms": [\n'
            '  {"instrument": "INSTRUMENT_PHQ9", "score": 3},\n'
            '  {"instrument": "PHQ9", "score": 3}]}}',
            "line 4: data.symptoms[1].instrument: expected one of INSTRUMENT_PHQ9,",
        ),
        (
            '{"patientId": "MRN-1",\n"data": {"symptoms": [\n'
            '{"instrument": "INSTRUMENT_GAD7", "observedAt": "Jane Doe"}]}}',
            "line 3: data.symptoms[0].observedAt: expected an RFC 3339 time",
        ),
        (
            '{"patientId": "MRN-1",\n"data": {"symptomz": []}}',
            "line 2: data.symptomz: no such field in PatientData",
        ),
        ('{"patientId": "MRN-1",\n\n  "data": {,}}', "line 3, column 12: not valid JSON"),
    ],
)
def test_patient_file_mistakes_name_the_line_and_field(tmp_path, pki_dir, content, expected):
    patient_file = tmp_path / "patient.json"
    patient_file.write_text(content)
    result = _novamind(
        pki_dir, "insights", "--patient-file", str(patient_file), "--target", "localhost:1"
    )
    assert result.returncode == 2
    assert expected in result.stderr, result.stderr
    # The file's content is patient data: no value from it is echoed.
    for secret in ("MRN-1", "Jane Doe", 'PHQ9"'):
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr


def test_json_output_of_a_known_patient_still_works(pki_dir, orchestrator_port, tmp_path):
    request = {
        "patientId": "MRN-2718281",
        "data": {
            "symptoms": [
                {"instrument": "INSTRUMENT_PHQ9", "score": 14, "observedAt": "2026-03-01T08:00:00Z"}
            ]
        },
    }
    patient_file = tmp_path / "patient.json"
    patient_file.write_text(json.dumps(request))
    target = f"localhost:{orchestrator_port}"
    insights = _novamind(
        pki_dir, "insights", "--patient-file", str(patient_file), "--target", target
    )
    assert insights.returncode == 0, insights.stderr
    progress = _novamind(
        pki_dir, "--json", "progress", "--patient-id", "MRN-2718281", "--target", target
    )
    assert progress.returncode == 0, progress.stderr
    assert len(json.loads(progress.stdout)["timeline"]) == 1
