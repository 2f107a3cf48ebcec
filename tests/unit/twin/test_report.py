"""The clinician insights report: embedded figures with alt text, escaped
service text, the guidance override flag, degraded sections and no patient id."""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import numpy as np
import pytest
from PIL import Image

from novamind.common.v1 import common_pb2
from novamind.twin.v1 import twin_pb2
from tests.unit.twin import report_fixtures as fx
from twin_orchestrator import report_check
from twin_orchestrator.report import render_report, write_report

PATIENT_LABEL = "Ward 4 <bed 2> & annex"


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.cells)


class ReportParser(HTMLParser):
    """Collects images (with their figure's data-plot), tables by id, notices,
    sections' text and every tag name seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[Row]] = {}
        self.section_text: dict[str, list[str]] = {}
        self.section_images: dict[str, list[str]] = {}
        self.text: list[str] = []
        self.recs: dict[str, list[str]] = {}
        self._plot = ""
        self._section = ""
        self._table = ""
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._rec = ""
        self._rec_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "section":
            self._section = values.get("id", "")
        elif tag == "figure":
            self._plot = values.get("data-plot", "")
        elif tag == "img":
            self.images.append({**values, "plot": self._plot})
            self.section_images.setdefault(self._section, []).append(self._plot)
        elif tag == "table":
            self._table = values.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = Row(values)
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "li" and "data-rule" in values:
            self._rec = values["data-rule"]
            self._rec_depth = 1
            self.recs[self._rec] = []
        elif tag == "li" and self._rec:
            self._rec_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = ""
        elif tag == "section":
            self._section = ""
        elif tag == "figure":
            self._plot = ""
        elif tag == "li" and self._rec:
            self._rec_depth -= 1
            if self._rec_depth == 0:
                self._rec = ""

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._section:
            self.section_text.setdefault(self._section, []).append(data)
        if self._rec:
            self.recs[self._rec].append(data)

    def section(self, ident: str) -> str:
        return " ".join("".join(self.section_text.get(ident, [])).split())

    def rec(self, rule: str) -> str:
        return " ".join("".join(self.recs[rule]).split())

    def all_text(self) -> str:
        return " ".join("".join(self.text).split())


def parse(document: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(document)
    parser.close()
    return parser


def day(moment: object) -> str:
    from datetime import datetime

    assert isinstance(moment, datetime)
    return f"{moment.day} {moment:%b %Y}"


@pytest.fixture(scope="module")
def document() -> str:
    request = fx.insights_request()
    return render_report(fx.insights_response(), request.data, patient_label=PATIENT_LABEL)


@pytest.fixture(scope="module")
def parsed(document: str) -> ReportParser:
    return parse(document)


def _png(image: dict[str, str]) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix)
    raw = base64.b64decode(image["src"][len(prefix) :], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(raw))


def _colour_count(pixels: np.ndarray) -> int:
    packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    return len(set(packed.ravel().tolist()))


def test_every_plot_is_an_embedded_png_with_alt_text(parsed: ReportParser) -> None:
    response = fx.insights_response()
    expected = {f"forecast-{name}" for name in ("phq-9", "mood")} | {"correlations", "anomalies"}
    assert len(response.forecast.forecast.forecasts) == 2
    assert {image["plot"] for image in parsed.images} == expected
    assert len(parsed.images) == len(expected)
    for image in parsed.images:
        assert len(image.get("alt", "")) > 40, image["plot"]
        with _png(image) as picture:
            assert picture.size == (int(image["width"]), int(image["height"]))
            pixels = np.asarray(picture.convert("RGB"))
        # A drawn chart has many colours and a fair share of non-white ink.
        assert _colour_count(pixels) > 50, image["plot"]
        assert np.any(pixels < 235, axis=2).mean() > 0.03, image["plot"]


def test_alt_texts_describe_the_data(parsed: ReportParser) -> None:
    alts = {image["plot"]: html.unescape(image["alt"]) for image in parsed.images}
    history = fx.phq9_history()
    phq9 = alts["forecast-phq-9"]
    assert f"{len(history)} observed scores" in phq9
    assert f"last {history[-1][1]:g}" in phq9
    first_risk_day = fx.LAST_OBSERVED_DAY + fx.timedelta(days=fx.risk_days()[0])
    last_risk_day = fx.LAST_OBSERVED_DAY + fx.timedelta(days=fx.risk_days()[-1])
    assert f"from {day(first_risk_day)} to {day(last_risk_day)}" in phq9
    assert "15 moderately severe" in phq9
    assert "Threshold" not in alts["forecast-mood"]  # mood has no validated cut-points

    significant = sum(1 for row in fx.CORRELATIONS if row[5])
    assert f"{len(fx.CORRELATIONS)} biometric" in alts["correlations"]
    assert f"{significant} significant" in alts["correlations"]
    assert f"{len(fx.ANOMALIES)} anomalous days" in alts["anomalies"]
    assert f"{fx.HRV_MISSING_DAYS} days from {day(fx.HRV_MISSING_START)}" in alts["anomalies"]


def test_every_recommendation_is_present_and_escaped(document: str, parsed: ReportParser) -> None:
    text = parsed.all_text()
    for rec in fx.recommendations():
        assert rec.text in text
        assert str(markupsafe.escape(rec.text)) in document
        assert rec.rationale in text
        shown = parsed.rec(rec.rule_id)
        assert f"Confidence {round(rec.confidence * 100)}%" in shown
        for evidence in rec.evidence:
            assert evidence.source in shown
            if evidence.pmid:
                assert f"PMID {evidence.pmid}" in shown
    assert fx.SCRIPT_TEXT in text  # shown to the reader as text ...
    assert "<script" not in document.lower()  # ... never as markup
    assert "&lt;script&gt;" in document
    assert "sleep &amp; HRV" in document


def test_recommendations_keep_their_order_and_priority(parsed: ReportParser) -> None:
    labels = {
        common_pb2.PRIORITY_URGENT: "Urgent",
        common_pb2.PRIORITY_HIGH: "High",
        common_pb2.PRIORITY_MEDIUM: "Medium",
        common_pb2.PRIORITY_LOW: "Low",
    }
    recs = fx.recommendations()
    assert list(parsed.recs) == [rec.rule_id for rec in recs]
    for rec in recs:
        assert parsed.rec(rec.rule_id).startswith(f"{labels[rec.priority]} priority")


def _guidance_rows(parsed: ReportParser) -> dict[str, Row]:
    rows = parsed.tables["medication-guidance"]
    return {
        row.attrs["data-medication"]: row
        for row in rows
        if "guidance" in row.attrs.get("class", "").split()
    }


def test_guidance_table_flags_the_override_on_the_right_row(parsed: ReportParser) -> None:
    section = fx.pharmacogenomics_section()
    overridden = {
        p.medication for p in section.responses.predictions if p.guidance_overrides_prediction
    } | {p.medication for p in section.side_effects.predictions if p.guidance_overrides_prediction}
    assert overridden == {"carbamazepine"}
    rows = _guidance_rows(parsed)
    assert set(rows) == {i.medication for i in section.interactions.interactions}
    for medication, row in rows.items():
        flagged = "Guidance overrides prediction" in row.text
        assert flagged == (medication in overridden), medication
        assert ("override" in row.attrs["class"].split()) == (medication in overridden)
    # The most restrictive guidance leads the table.
    assert next(iter(rows)) == "carbamazepine"


def test_guidance_row_contents(parsed: ReportParser) -> None:
    rows = _guidance_rows(parsed)
    carbamazepine = rows["carbamazepine"].cells
    assert carbamazepine[1] == "HLA-B*15:02"
    assert carbamazepine[3] == "Avoid"
    assert carbamazepine[4] == "Strong"
    assert "PMID 29392710" in carbamazepine[7]
    probabilities = {p.medication: p for p in fx.pharmacogenomics_section().responses.predictions}
    side_effects = {p.medication: p for p in fx.pharmacogenomics_section().side_effects.predictions}
    for medication, row in rows.items():
        if medication in probabilities:
            expected = f"{round(probabilities[medication].response_probability * 100)}%"
            assert row.cells[8].startswith(expected), medication
        if medication in side_effects:
            expected = f"{round(side_effects[medication].side_effect_probability * 100)}%"
            assert row.cells[9].startswith(expected), medication

    aripiprazole = rows["aripiprazole"].cells
    assert aripiprazole[2].startswith("Normal metabolizer (genotype) → Poor metabolizer")
    assert "phenoconverted by paroxetine" in aripiprazole[2]
    assert aripiprazole[4] == "FDA label"
    assert "50% of the usual dose" in aripiprazole[5]
    assert "phenoconverted" not in rows["sertraline"].cells[2]
    assert rows["paroxetine"].cells[0].endswith("current")


@pytest.mark.parametrize(
    ("status", "sentence"),
    [
        (common_pb2.SECTION_STATUS_UNAVAILABLE, "could not be reached or failed"),
        (common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED, "did not answer in time"),
        (common_pb2.SECTION_STATUS_SKIPPED, "was not run"),
    ],
)
def test_failed_section_shows_its_sentence_and_no_plot(
    status: common_pb2.SectionStatus, sentence: str
) -> None:
    response = fx.insights_response()
    # The data stays in the message on purpose: the status alone must hide it.
    response.biometric.result.status = status
    response.biometric.result.detail = "biometric service: connection refused"
    parsed = parse(render_report(response, fx.patient_data()))

    biometric = parsed.section("biometric")
    assert f"The biometric analysis {sentence}" in biometric or sentence in biometric
    assert "connection refused" in biometric
    assert "biometric" not in parsed.section_images
    assert {image["plot"] for image in parsed.images} == {"forecast-phq-9", "forecast-mood"}
    assert "Monitoring plan" not in biometric
    status_rows = {row.cells[0]: row.cells for row in parsed.tables["section-status"]}
    expected_label = {
        common_pb2.SECTION_STATUS_UNAVAILABLE: "Unavailable",
        common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED: "Deadline exceeded",
        common_pb2.SECTION_STATUS_SKIPPED: "Skipped",
    }[status]
    assert status_rows["Biometric analysis"][1] == expected_label
    assert status_rows["Biometric analysis"][2] == "biometric service: connection refused"
    assert status_rows["Symptom forecast"][1] == "OK"


def test_unavailable_forecast_and_pharmacogenomics_leave_the_rest() -> None:
    response = fx.insights_response()
    response.forecast.result.status = common_pb2.SECTION_STATUS_UNAVAILABLE
    response.pharmacogenomics.result.status = common_pb2.SECTION_STATUS_DEADLINE_EXCEEDED
    parsed = parse(render_report(response, fx.patient_data()))
    assert "The symptom forecast is unavailable" in parsed.section("forecast")
    assert "forecast" not in parsed.section_images
    assert "medication-guidance" not in parsed.tables
    assert "pharmacogenomic analysis is missing" in parsed.section("pharmacogenomics")
    assert {image["plot"] for image in parsed.images} == {"correlations", "anomalies"}


def test_degraded_section_is_marked_partial_and_shows_what_it_has() -> None:
    response = fx.insights_response()
    response.biometric.result.status = common_pb2.SECTION_STATUS_DEGRADED
    response.biometric.result.detail = "anomaly detection timed out"
    response.biometric.ClearField("anomalies")
    parsed = parse(render_report(response, fx.patient_data()))
    biometric = parsed.section("biometric")
    assert "The biometric analysis is incomplete" in biometric
    assert "anomaly detection timed out" in biometric
    assert "No anomalies were returned for this run." in biometric
    assert parsed.section_images["biometric"] == ["correlations"]


def test_ok_forecast_without_forecasts_says_so() -> None:
    response = fx.insights_response()
    response.forecast.forecast.ClearField("forecasts")
    parsed = parse(render_report(response, fx.patient_data()))
    assert "No forecast was produced" in parsed.section("forecast")
    assert "forecast" not in parsed.section_images


def test_report_never_shows_the_patient_identifier(document: str, parsed: ReportParser) -> None:
    request = fx.insights_request()
    assert request.patient_id == fx.REAL_PATIENT_ID
    # Base64 image payloads are letters and digits at random; look everywhere else.
    readable = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", document)
    assert fx.REAL_PATIENT_ID not in readable
    for fragment in fx.REAL_PATIENT_ID.split("-"):
        assert fragment not in readable
    # The caller's display label is shown, escaped, in the header.
    assert PATIENT_LABEL in parsed.all_text()
    assert html.escape(PATIENT_LABEL) in document
    assert fx.REQUEST_ID in parsed.all_text()


def test_report_is_self_contained(document: str, parsed: ReportParser) -> None:
    lowered = document.lower()
    for forbidden in ("http://", "https://", "<script", "<link", "url(", "@import", "<iframe"):
        assert forbidden not in lowered, forbidden
    assert "script" not in parsed.tags
    assert all(image["src"].startswith("data:image/png;base64,") for image in parsed.images)
    for table in parsed.tables.values():
        assert table, "every table has rows"


def test_section_status_table_reports_each_section(parsed: ReportParser) -> None:
    rows = {row.cells[0]: row.cells for row in parsed.tables["section-status"][1:]}
    response = fx.insights_response()
    latencies = {
        "Symptom forecast": response.forecast.result.latency.ToMilliseconds(),
        "Biometric analysis": response.biometric.result.latency.ToMilliseconds(),
        "Pharmacogenomic analysis": response.pharmacogenomics.result.latency.ToMilliseconds(),
    }
    assert set(rows) == set(latencies)
    for name, millis in latencies.items():
        assert rows[name][1] == "OK"
        shown = f"{millis} ms" if millis < 1000 else f"{millis / 1000:.1f} s"
        assert rows[name][3] == shown


def test_progress_section_shows_risk_over_time_and_forecast_accuracy() -> None:
    parsed = parse(render_report(fx.insights_response(), fx.patient_data(), progress=fx.progress()))
    assert parsed.section_images["progress"] == ["progress-risk"]
    alt = next(i["alt"] for i in parsed.images if i["plot"] == "progress-risk")
    assert f"over {len(fx.PROGRESS_POINTS)} snapshots" in alt
    assert alt.count("high") == sum(
        1 for _, risk, _ in fx.PROGRESS_POINTS if risk == common_pb2.RISK_LEVEL_HIGH
    )
    rows = parsed.tables["forecast-accuracy"][1:]
    assert len(rows) == len(fx.FORECAST_ACCURACY)
    for row, (_, _, days, mae, coverage) in zip(rows, fx.FORECAST_ACCURACY, strict=True):
        assert row.cells[3] == str(days)
        assert row.cells[4] == f"{mae:.2f}"
        assert row.cells[5] == f"{round(coverage * 100)}%"
    assert "mirtazapine stopped" in parsed.section("progress")


def test_without_progress_there_is_no_progress_section(parsed: ReportParser) -> None:
    assert "progress" not in parsed.section_text


def test_write_report_names_the_file_after_the_request_id(tmp_path: Path) -> None:
    response = twin_pb2.GenerateInsightsResponse(request_id=fx.REQUEST_ID)
    path = write_report(tmp_path / "reports", response, twin_pb2.PatientData())
    assert path == tmp_path / "reports" / f"{fx.REQUEST_ID}.html"
    written = path.read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>")
    assert fx.REQUEST_ID in written


@pytest.mark.parametrize(
    "request_id",
    ["../../etc/passwd", fx.REQUEST_ID.upper(), fx.REQUEST_ID[:-1], "", fx.REQUEST_ID + "/x"],
)
def test_write_report_refuses_other_request_ids(tmp_path: Path, request_id: str) -> None:
    response = twin_pb2.GenerateInsightsResponse(request_id=request_id)
    with pytest.raises(ValueError, match="request_id") as raised:
        write_report(tmp_path, response, twin_pb2.PatientData())
    assert request_id not in str(raised.value) or not request_id
    assert list(tmp_path.rglob("*")) == []


def test_check_without_chromium_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><p>x</p>", encoding="utf-8")
    monkeypatch.setattr(report_check, "CHROMIUM", tmp_path / "no-chromium")
    result = report_check.check_report(page, tmp_path / "shot.png")
    assert not result.passed
    assert "make report-deps" in result.message


def test_screenshot_measure_tells_blank_from_drawn(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 100), "white").save(blank)
    assert report_check.measure_screenshot(blank) == (0.0, 1)
    drawn = tmp_path / "drawn.png"
    rng = np.random.default_rng(3)
    pixels = np.full((100, 200, 3), 255, dtype=np.uint8)
    pixels[:50, :40] = rng.integers(0, 200, size=(50, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(drawn)
    fraction, colours = report_check.measure_screenshot(drawn)
    assert fraction == pytest.approx(50 * 40 / (100 * 200))
    assert colours == _colour_count(pixels)


def test_early_warning_on_unfamiliar_data_carries_a_caution_with_the_reason() -> None:
    response = fx.insights_response()
    plain = render_report(response, fx.patient_data())
    assert "Read with caution" not in plain
    warning = response.biometric.correlations.early_warning
    warning.out_of_distribution = True
    warning.out_of_distribution_reason = "step count usual level is <above> the range"
    document = render_report(response, fx.patient_data())
    assert "Read with caution" in document
    assert "step count usual level is &lt;above&gt; the range" in document
