"""Render an insights report in headless Chromium and check it is not blank.

    python -m twin_orchestrator.report_check FILE.html [--screenshot OUT.png]

Chromium (the Debian ``chromium`` package, ``make report-deps``) loads the file
with networking features off and a throw-away profile, and writes a
screenshot. The screenshot passes when enough of it is non-white and it has
more than a handful of distinct colours: a page that failed to render, or
rendered empty, is one flat colour. Exit status 0 on pass, 1 on fail.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

_LOGGER = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
WINDOW_SIZE = (1280, 2000)
MIN_NON_WHITE_FRACTION = 0.02
MIN_DISTINCT_COLOURS = 16
# A pixel counts as white when every channel is at least this bright; it absorbs
# anti-aliasing noise on an empty page.
_WHITE_LEVEL = 245
_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class ReportCheck:
    """Outcome of rendering one report."""

    passed: bool
    message: str
    screenshot: Path
    non_white_fraction: float = 0.0
    distinct_colours: int = 0


def chromium_command(page: Path, screenshot: Path, profile_dir: Path) -> list[str]:
    width, height = WINDOW_SIZE
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
        f"--window-size={width},{height}",
        f"--screenshot={screenshot}",
        page.resolve().as_uri(),
    ]


def measure_screenshot(screenshot: Path) -> tuple[float, int]:
    """(share of non-white pixels, number of distinct RGB colours)."""
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    non_white = np.any(pixels < _WHITE_LEVEL, axis=2)
    packed = (
        pixels[..., 0].astype(np.uint32) << 16
        | pixels[..., 1].astype(np.uint32) << 8
        | pixels[..., 2].astype(np.uint32)
    )
    return float(non_white.mean()), int(np.unique(packed).size)


def check_report(path: Path, screenshot: Path) -> ReportCheck:
    """Render ``path`` to ``screenshot`` in headless Chromium and judge the result."""
    if not path.is_file():
        return ReportCheck(False, f"report file not found: {path}", screenshot)
    if not CHROMIUM.exists():
        return ReportCheck(
            False,
            f"Chromium not found at {CHROMIUM}; run `make report-deps` to install it",
            screenshot,
        )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-check-") as profile:
        command = chromium_command(path, screenshot.resolve(), Path(profile))
        try:
            completed = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
                command, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            return ReportCheck(
                False, f"Chromium did not finish within {_TIMEOUT_SECONDS:.0f} s", screenshot
            )
    if completed.returncode != 0 or not screenshot.is_file():
        tail = completed.stderr.strip().splitlines()[-3:]
        return ReportCheck(
            False,
            f"Chromium exited with status {completed.returncode} without a screenshot: "
            + " | ".join(tail),
            screenshot,
        )
    fraction, colours = measure_screenshot(screenshot)
    problems = []
    if fraction < MIN_NON_WHITE_FRACTION:
        problems.append(
            f"only {fraction:.2%} of pixels are non-white (need {MIN_NON_WHITE_FRACTION:.0%})"
        )
    if colours <= MIN_DISTINCT_COLOURS:
        problems.append(f"only {colours} distinct colours (need more than {MIN_DISTINCT_COLOURS})")
    if problems:
        message = "report renders blank: " + "; ".join(problems)
        return ReportCheck(False, message, screenshot, fraction, colours)
    message = (
        f"report renders: {fraction:.1%} non-white pixels, {colours} distinct colours; "
        f"screenshot {screenshot}"
    )
    return ReportCheck(True, message, screenshot, fraction, colours)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twin_orchestrator.report_check",
        description="Render an insights report in headless Chromium and check it is not blank.",
    )
    parser.add_argument("report", type=Path, help="the report HTML file")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="where to write the PNG screenshot (default: next to the report, .png)",
    )
    args = parser.parse_args(argv)
    report: Path = args.report
    screenshot: Path = args.screenshot or report.with_suffix(".png")
    result = check_report(report, screenshot)
    if result.passed:
        print(f"report check passed: {result.message}")
        return 0
    print(f"report check FAILED for {report}: {result.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
