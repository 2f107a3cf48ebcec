"""PHI redaction: each pattern goes, operational data stays, real loggers write no PHI."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from common.phi import SENSITIVE_KEYS, PhiRedactingFilter, install_phi_filter, redact

REQUEST_ID = "9f1c2b7a4d3e4f5a8b6c0d1e2f3a4b5c"
PSEUDONYM = "psn_0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "phi", "kind"),
    [
        ("contact jane.doe+x@example.org today", "jane.doe+x@example.org", "email"),
        ("call +44 20 7946 0958 now", "+44 20 7946 0958", "phone"),
        ("call +1-555-123-4567 now", "+1-555-123-4567", "phone"),
        ("call +49 (0)30 1234567 now", "+49 (0)30 1234567", "phone"),
        ("call (555) 123-4567 now", "(555) 123-4567", "phone"),
        ("call 555-123-4567 now", "555-123-4567", "phone"),
        ("call 555.123.4567 now", "555.123.4567", "phone"),
        ("ssn 123-45-6789 on file", "123-45-6789", "ssn"),
        ("record MRN-12345 opened", "MRN-12345", "mrn"),
        ("record MRN12345 opened", "MRN12345", "mrn"),
        ("record mrn: 4711 opened", "4711", "mrn"),
        ("record 00123456 opened", "00123456", "mrn"),
        ("phone 5551234567 on file", "5551234567", "mrn"),
        ("born 1980-01-31 here", "1980-01-31", "date"),
        ("seen 2026-01-31T09:30:00Z", "2026-01-31", "date"),
        ("born 31/01/1980 here", "31/01/1980", "date"),
        ("born 01-31-1980 here", "01-31-1980", "date"),
        ("born 31.01.1980 here", "31.01.1980", "date"),
        ("born Jan 31, 1980 here", "Jan 31, 1980", "date"),
        ("born January 31 1980 here", "January 31 1980", "date"),
        ("born 31 Jan 1980 here", "31 Jan 1980", "date"),
        ("patient John Smith was seen", "John Smith", "name"),
        ("Patient: Jane Doe was seen", "Jane Doe", "name"),
        ("Patient: JANE DOE was seen", "JANE DOE", "name"),
        ("name Mary-Ann O'Neil was seen", "Mary-Ann O'Neil", "name"),
        ("name=Ann Lee, ok", "Ann Lee", "name"),
        ("name=ann, ok", "ann", "name"),
        ("first_name=ann last", "ann", "name"),
        ("referred by Dr. Alan McDonald today", "Alan McDonald", "name"),
        ("Mr. Brown called", "Brown", "name"),
        ("Mrs. Brown called", "Brown", "name"),
        ("Ms. Brown called", "Brown", "name"),
        ("Mr Brown called", "Brown", "name"),
        ('{"patient_id": "P-000123"}', "P-000123", "patient_id"),
        ("lookup patient_id=abc-7 failed", "abc-7", "patient_id"),
        ("no data for patient P000123 yet", "P000123", "patient_id"),
        ("dob=1980-01-31", "1980-01-31", "date"),
        ("diplotype=*1/*4 genotype: rs4244285-AG", "*1/*4", "genotype"),
    ],
)
def test_phi_is_replaced_by_its_kind(text: str, phi: str, kind: str) -> None:
    result = redact(text)
    assert phi not in result
    assert f"[REDACTED:{kind}]" in result


def test_text_around_the_phi_is_kept() -> None:
    assert redact("patient John Smith was seen at 10:00") == (
        "patient [REDACTED:name] was seen at 10:00"
    )
    assert redact("email a@b.io, phone 555-123-4567.") == (
        "email [REDACTED:email], phone [REDACTED:phone]."
    )


def test_every_value_of_a_mixed_line_goes() -> None:
    line = (
        "patient Jane Roe (MRN-998877, dob 03/04/1975, ssn 078-05-1120, "
        "jane.roe@mail.example, +1 (555) 010-9999) genotype=*2/*3"
    )
    result = redact(line)
    for phi in ("Jane", "Roe", "998877", "03/04/1975", "078-05-1120", "jane.roe", "010-9999"):
        assert phi not in result, phi
    assert "*2/*3" not in result


@pytest.mark.parametrize(
    "text",
    [
        f"request_id={REQUEST_ID} done",
        f"request {REQUEST_ID}",
        f"audit pseudonym={PSEUDONYM} outcome=OK",
        f"patient {PSEUDONYM} forecast ready",
        f"patient_id={PSEUDONYM}",
        "rpc=/novamind.forecasting.v1.ForecastingService/ForecastSymptoms",
        "GenerateInsights finished in 12.5 ms",
        "took 1234.567 ms (deadline 20.0 s)",
        "latency 123456.7 ms",
        "listening on [::]:50051, health on 0.0.0.0:51051",
        "novamind-forecasting.novamind.svc:50051 via 127.0.0.1",
        "status=OK code=14 StatusCode.DEADLINE_EXCEEDED grpc-status 4",
        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
        f"correlation {uuid.UUID(int=0x123E4567E89B12D3A456426614174000)}",
        "model forecasting.xgboost version 20260131T120000123456Z-a1b2c3",
        "sha256 0b9c2625dc21ef05f6ad4ddf47c5f203837aa32c0f9f2b2e0cce1e3a2c1b9c1d",
        "RPC failed: patient not found",
        "horizon 90 days, 3 quantiles, 1.5 percent",
        "CYP2D6 poor metabolizer guidance (CPIC 2016)",
    ],
)
def test_operational_data_is_kept(text: str) -> None:
    assert redact(text) == text


def test_hex_ids_that_start_or_end_with_digit_runs_are_kept() -> None:
    for request_id in ("1234567890abcdef1234567890abcdef", "abcdef00000000000000000000123456"):
        assert redact(f"request_id={request_id}") == f"request_id={request_id}"


def test_redaction_is_idempotent() -> None:
    text = "patient John Smith dob=1980-01-31 MRN-1 tel 555-123-4567 mail x@y.org"
    once = redact(text)
    assert redact(once) == once


def test_sensitive_keys_are_the_documented_set() -> None:
    assert {
        "patient_id",
        "name",
        "first_name",
        "last_name",
        "dob",
        "date_of_birth",
        "email",
        "phone",
        "ssn",
        "mrn",
        "address",
        "score",
        "value",
        "diplotype",
        "genotype",
    } == SENSITIVE_KEYS


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"test_phi.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    install_phi_filter(logger)
    yield logger, stream
    logger.removeHandler(handler)


def test_logged_message_and_arguments_carry_no_phi(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning(
        "lookup failed for patient %s (dob %s, email %s) request_id=%s",
        "Jane Doe",
        "1980-01-31",
        "jane@example.org",
        REQUEST_ID,
    )
    output = stream.getvalue()
    for phi in ("Jane", "Doe", "1980-01-31", "jane@example.org"):
        assert phi not in output, phi
    assert REQUEST_ID in output
    assert output.startswith("WARNING ")


def test_extras_are_redacted_and_sensitive_keys_dropped() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s|%(patient_id)s|%(note)s|%(ctx)s"))
    logger = logging.getLogger(f"test_phi.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    install_phi_filter(logger)
    context = {"mrn": "4711", "score": 17, "rpc": "Forecast", "nested": ["call 555-123-4567"]}
    logger.warning(
        "forecast done",
        extra={"patient_id": "P-77", "note": "Mr. Brown 555-123-4567", "ctx": context},
    )
    output = stream.getvalue()
    for phi in ("P-77", "Brown", "555-123-4567", "4711", "17"):
        assert phi not in output, phi
    assert "[REDACTED:patient_id]" in output
    assert "Forecast" in output
    # The caller's own objects are left alone.
    assert context == {
        "mrn": "4711",
        "score": 17,
        "rpc": "Forecast",
        "nested": ["call 555-123-4567"],
    }


def test_exception_text_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise KeyError("no record for patient John Smith, MRN-123456")
    except KeyError:
        logger.exception("request_id=%s failed", REQUEST_ID)
    output = stream.getvalue()
    assert "Traceback" in output
    assert "KeyError" in output
    assert "John" not in output
    assert "123456" not in output
    assert REQUEST_ID in output


def test_broken_format_arguments_do_not_leak_or_crash(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("count %d", "Jane Doe 1980-01-31")
    output = stream.getvalue()
    assert "count %d" in output
    assert "Jane" not in output


def test_records_propagated_from_child_loggers_are_covered() -> None:
    stream = io.StringIO()
    parent = logging.getLogger(f"test_phi.{uuid.uuid4().hex}")
    parent.propagate = False
    parent.addHandler(logging.StreamHandler(stream))
    install_phi_filter(parent)
    parent.getChild("service").warning("email %s", "a.b@example.com")
    assert "a.b@example.com" not in stream.getvalue()
    assert "[REDACTED:email]" in stream.getvalue()


def test_filter_keeps_every_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "patient %s", ("Jane Doe",), None)
    assert PhiRedactingFilter().filter(record) is True
    assert record.getMessage() == "patient [REDACTED:name]"


def test_install_defaults_to_root_and_is_idempotent() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        install_phi_filter()
        install_phi_filter()
        assert sum(isinstance(f, PhiRedactingFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(handler)
