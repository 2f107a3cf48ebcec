"""The `novamind` operator command against a real orchestrator process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf import json_format

from common.launcher import wait_healthy
from common.proto_convert import to_timestamp
from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from tests.conftest import free_port
from tests.integration.process_helpers import REPO_ROOT, service_env, start_process

PATIENT_ID = "MRN-3141592"


def _novamind(pki_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_orchestrator.cli", "--tls-dir", str(pki_dir), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_insights_and_progress_from_the_command_line(tmp_path, pki_dir):
    port = free_port()
    dead = free_port()
    env = service_env(
        tmp_path,
        pki_dir,
        port,
        NOVAMIND_FORECASTING_ADDR=f"localhost:{dead}",
        NOVAMIND_BIOMETRIC_ADDR=f"localhost:{dead}",
        NOVAMIND_PHARMACOGENOMICS_ADDR=f"localhost:{dead}",
    )
    proc = start_process("twin_orchestrator", env, tmp_path / "orchestrator.log")
    request = twin_pb2.GenerateInsightsRequest(patient_id=PATIENT_ID)
    for day, score in enumerate((12, 16, 21)):
        obs = request.data.symptoms.add(instrument=common_pb2.INSTRUMENT_PHQ9, score=score)
        obs.observed_at.CopyFrom(
            to_timestamp(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=day))
        )
    patient_file = tmp_path / "patient.json"
    patient_file.write_text(json_format.MessageToJson(request))
    try:
        wait_healthy(port + 1000)
        target = f"localhost:{port}"
        insights = _novamind(
            pki_dir,
            "insights",
            "--patient-file",
            str(patient_file),
            "--target",
            target,
            "--report-dir",
            str(tmp_path / "reports"),
        )
        assert insights.returncode == 0, insights.stderr
        assert "OVERALL RISK: HIGH" in insights.stdout  # latest PHQ-9 21 is severe
        assert "latest PHQ-9 21 (severe)" in insights.stdout
        reports = list((tmp_path / "reports").glob("*.html"))
        assert len(reports) == 1 and PATIENT_ID not in reports[0].read_text()

        progress = _novamind(
            pki_dir, "--json", "progress", "--patient-id", PATIENT_ID, "--target", target
        )
        assert progress.returncode == 0, progress.stderr
        timeline = json.loads(progress.stdout)["timeline"]
        assert len(timeline) == 1 and timeline[0]["overallRisk"] == "RISK_LEVEL_HIGH"

        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        refused = _novamind(pki_dir, "insights", "--patient-file", str(bad), "--target", target)
        assert refused.returncode != 0 and "--patient-file" in refused.stderr + refused.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
