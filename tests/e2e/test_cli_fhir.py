"""`novamind insights --fhir ... --fhir-out ...` against a real orchestrator process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class

from common.launcher import wait_healthy
from tests.conftest import free_port
from tests.integration.process_helpers import REPO_ROOT, service_env, start_process

TINY = REPO_ROOT / "tests" / "data" / "fhir" / "tiny_bundle.json"


def _novamind(pki_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_orchestrator.cli", "--tls-dir", str(pki_dir), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_insights_from_a_fhir_bundle_and_back_to_fhir(tmp_path, pki_dir):
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
    out = tmp_path / "out" / "insights.fhir.json"
    try:
        wait_healthy(port + 1000)
        target = f"localhost:{port}"
        run = _novamind(
            pki_dir, "insights", "--fhir", str(TINY), "--fhir-out", str(out), "--target", target
        )
        assert run.returncode == 0, run.stderr
        # The import report: what was mapped, the unknown code listed, what was left out.
        assert "FHIR bundle: 22 entries" in run.stderr
        assert "unknown codes: 1" in run.stderr
        assert "http://loinc.org|2339-0 ×1" in run.stderr
        assert "Condition resources are not read ×1" in run.stderr
        # The report names codes and counts, never the patient or a value.
        assert "MRN-7734021" not in run.stderr and "1990-06-15" not in run.stderr
        assert "MRN-7734021" not in (tmp_path / "orchestrator.log").read_text()
        # With the services down, the PHQ-9 from the bundle alone sets the risk: LOW, not
        # "not assessed", so the orchestrator received the imported scores.
        assert "OVERALL RISK: LOW" in run.stdout

        bundle = get_fhir_model_class("Bundle").model_validate_json(out.read_text())
        kinds = [e.resource.__resource_type__ for e in bundle.entry]
        assert kinds[:2] == ["Patient", "RiskAssessment"]
        assert bundle.entry[0].resource.identifier[0].value == "MRN-7734021"
        risk = bundle.entry[1].resource.prediction[0].qualitativeRisk
        assert (risk.coding[0].code, risk.text) == ("low", "Low")
        assert json.loads(out.read_text())["type"] == "collection"

        broken = json.loads(TINY.read_text())
        broken["entry"][2]["resource"]["valueQuantity"]["code"] = "furlong"
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken))
        refused = _novamind(pki_dir, "insights", "--fhir", str(bad), "--target", target)
        assert refused.returncode != 0
        assert (
            "--fhir: Bundle.entry[2] (urn:uuid:00000000-0000-4000-8000-000000000003) "
            "Observation.valueQuantity.code: unit 'furlong' is not accepted"
        ) in refused.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
