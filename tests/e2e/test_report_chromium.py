"""The insights report renders in a real headless Chromium, and the check that
says so fails on a blank page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.unit.twin import report_fixtures as fx
from twin_orchestrator import report_check
from twin_orchestrator.report import write_report

REPO_ROOT = Path(__file__).resolve().parents[2]


def _require_chromium() -> None:
    # Failing, not skipping: a skipped browser check would let a broken report ship.
    assert report_check.CHROMIUM.exists(), (
        f"{report_check.CHROMIUM} is missing; run `make report-deps` to install Debian's chromium"
    )


def test_rendered_report_is_not_blank(tmp_path: Path) -> None:
    _require_chromium()
    page = write_report(
        tmp_path, fx.insights_response(), fx.patient_data(), fx.progress(), patient_label="Test"
    )
    screenshot = tmp_path / "report.png"
    result = report_check.check_report(page, screenshot)
    assert result.passed, result.message
    with Image.open(screenshot) as image:
        assert image.size == report_check.WINDOW_SIZE
        pixels = np.asarray(image.convert("RGB"))
    # Measured here independently of the checker's own numbers.
    non_white = float(np.any(pixels < 245, axis=2).mean())
    assert non_white >= report_check.MIN_NON_WHITE_FRACTION
    assert non_white == result.non_white_fraction
    # The high-risk badge and the urgent priority badge are drawn in colour.
    saturated = (pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)) > 60
    assert saturated.sum() > 500


def test_blank_page_fails_the_check(tmp_path: Path) -> None:
    _require_chromium()
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>\n", encoding="utf-8")
    result = report_check.check_report(page, tmp_path / "blank.png")
    assert not result.passed
    assert "blank" in result.message
    assert result.non_white_fraction < report_check.MIN_NON_WHITE_FRACTION
    assert (tmp_path / "blank.png").is_file()  # Chromium did run; the page is what failed


def test_command_line_exit_status_follows_the_check(tmp_path: Path) -> None:
    _require_chromium()
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "twin_orchestrator.report_check", str(page)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 1, completed.stderr
    assert "report check FAILED" in completed.stderr
    assert (tmp_path / "blank.png").is_file()  # default screenshot sits next to the page
