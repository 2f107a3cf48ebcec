"""checkov's Kubernetes policies pass on every render; each skip is named and justified."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.chart import REPO, Manifests, deep_merge, load_values, render_templates
from tests.k8s.test_scaling_rules import POSTGRES

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
README = REPO / "k8s" / "README.md"
#: Skips that only apply while no image digest is configured.
DIGEST_SKIPS = {"CKV_K8S_15", "CKV_K8S_43"}
DIGEST = "sha256:" + "0" * 64


def _write_render(directory: Path, templates: dict[str, str]) -> None:
    directory.mkdir(parents=True)
    for path, text in templates.items():
        if path.endswith(".yaml") and text.strip():
            (directory / path.replace("/", "_")).write_text(text)


@pytest.fixture(scope="module")
def checkov_report(
    rendered: dict[str, Manifests], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing; `make checkov` installs it")
    root = tmp_path_factory.mktemp("rendered")
    for name, manifests in rendered.items():
        _write_render(root / name, manifests.templates)
    with_digest = {**load_values("default"), "image": {"digest": DIGEST}}
    _write_render(root / "digest", render_templates(with_digest))
    # The scaled-out orchestrator (PostgreSQL store, several replicas) passes too.
    _write_render(root / "postgres", render_templates(deep_merge(load_values("prod"), POSTGRES)))
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "kubernetes",
            "--skip-download",
            "-d",
            str(root),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
        check=False,
    )
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "expected a single kubernetes report"
    return report


def test_checkov_finds_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']})"
        for f in checkov_report["results"].get("failed_checks", [])
    ]
    assert failed == []
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0


def test_checkov_scanned_every_workload(
    checkov_report: dict[str, Any], rendered: dict[str, Manifests]
) -> None:
    passed = checkov_report["results"]["passed_checks"]
    workloads = sum(len(m.of_kind("Deployment")) + len(m.of_kind("Pod")) for m in rendered.values())
    workloads += 5  # the digest render: four Deployments and the test pod
    workloads += 5  # the PostgreSQL render, likewise
    # Core checks were evaluated (and passed) for every workload of every render.
    for check in ("CKV_K8S_22", "CKV_K8S_20", "CKV_K8S_37", "CKV_K8S_40", "CKV_K8S_38"):
        resources = {(p["file_path"], p["resource"]) for p in passed if p["check_id"] == check}
        assert len(resources) == workloads, check


def _skips(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report["results"].get("skipped_checks", []))


def test_image_skips_apply_only_without_a_digest(checkov_report: dict[str, Any]) -> None:
    skipped = _skips(checkov_report)
    in_digest_render = {s["check_id"] for s in skipped if s["file_path"].startswith("/digest/")}
    assert in_digest_render.isdisjoint(DIGEST_SKIPS)
    passed_with_digest = {
        p["check_id"]
        for p in checkov_report["results"]["passed_checks"]
        if p["file_path"].startswith("/digest/")
    }
    assert passed_with_digest >= DIGEST_SKIPS


def test_every_skip_is_justified_in_the_readme(checkov_report: dict[str, Any]) -> None:
    readme = README.read_text()
    skipped = _skips(checkov_report)
    assert skipped, "the renders carry skip annotations; checkov must report them"
    for skip in skipped:
        reason = skip["check_result"]["suppress_comment"]
        assert len(reason) > 20 and reason != "No comment provided", skip["check_id"]
    for check_id in {s["check_id"] for s in skipped}:
        rows = [line for line in readme.splitlines() if f"`{check_id}`" in line]
        assert rows, f"{check_id} is skipped but not listed in k8s/README.md"
        justification = re.sub(r"[`|]", " ", rows[0]).replace(check_id, "")
        assert len(justification.split()) >= 8, f"{check_id} lacks a justification"
