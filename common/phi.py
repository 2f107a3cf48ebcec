"""Second line of defence against PHI in logs.

The first line is not logging PHI at all: log request ids, pseudonyms, RPC
names, sizes, timings and status codes. This module catches what slips
through: :func:`redact` rewrites text that looks like an email, phone number,
SSN, MRN or other long number, a date, a name after a cue word ("patient",
"name", "Mr.", "Dr." ...) or the value of a ``key=value`` pair whose key is
sensitive, into ``[REDACTED:<kind>]``. :class:`PhiRedactingFilter` applies it
to every log record reaching a handler: the formatted message, string extras
(recursively through dicts and lists), exception text and stack info; extras
whose key is in :data:`SENSITIVE_KEYS` lose their value whatever it is.

Kept on purpose, because operations need them: pseudonyms (``psn_<hex>``),
hex request/trace ids and UUIDs, RPC names, durations ("12.5 ms"), ports
(":50051" — five digits, under the six-digit rule), status codes and decimal
numbers. The price of pattern matching is some over-redaction (a capitalized
word after "patient", any integer of six or more digits such as a byte count);
for a safety net that is the right way to err.

``install_phi_filter`` attaches the filter to the handlers that exist when it
is called, so the server bootstrap calls it right after configuring logging.
Handlers added later are not covered automatically.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)

#: Keys whose values are always dropped from structured log extras.
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
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
    }
)

# Keys redacted inside free text ("patient_id=...", '"dob": "..."'). "address",
# "score" and "value" are left out here: in message text they mostly mean
# listen addresses and config values, and dropping those would blind on-call.
_TEXT_KEY_KINDS: dict[str, str] = {
    "patient_id": "patient_id",
    "patient": "patient_id",
    "name": "name",
    "first_name": "name",
    "last_name": "name",
    "full_name": "name",
    "patient_name": "name",
    "dob": "date",
    "date_of_birth": "date",
    "birth_date": "date",
    "email": "email",
    "phone": "phone",
    "ssn": "ssn",
    "mrn": "mrn",
    "diplotype": "genotype",
    "genotype": "genotype",
}

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_HONORIFIC = r"(?:Mr|Mrs|Ms|Mx|Dr|Miss|Prof)\.?"
_NAME_WORD = (
    r"(?:(?:Mc|Mac)?[A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:[-'’][A-Z]?[a-z]+)*\b(?![-'’]\w)|[A-Z]\.)"
)
_NAMES = rf"(?:{_HONORIFIC}[ \t]+)?{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,3}}"
# After "name=" or "patient:" an all-caps run is a name too (EHR exports shout);
# elsewhere it is more likely an acronym, so this is used only after a key.
_UPPER_WORD = r"[A-Z](?:[A-Z]|['-][A-Z])+\b(?![-'’]\w)"
_UPPER_NAMES = rf"{_UPPER_WORD}(?:[ \t]+{_UPPER_WORD}){{0,3}}"
_PSEUDONYM = r"psn_[0-9a-f]{32}(?!\w)"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}[-/]\d{1,2}[-/]\d{1,2}(?![\d/-])"  # 2026-01-31, 2026-01-31T10:00Z
    r"|\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})(?![\w/-]|\.\d)"  # 31/01/1980, 01/31/80
    r"|\d{1,2}-\d{1,2}-\d{4}(?![\w/-]|\.\d)"  # 01-31-1980
    r"|\d{1,2}\.\d{1,2}\.\d{4}(?![\w/-]|\.\d)"  # 31.01.1980
    rf"|{_MONTH}\.?[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}}(?!\w)"  # Jan 31, 1980
    rf"|\d{{1,2}}(?:st|nd|rd|th)?[ \t]+{_MONTH}\.?,?[ \t]+\d{{4}}(?!\w)"  # 31 Jan 1980
    r")",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    r"(?<![\w:])(?P<quote>[\"']?)(?P<key>(?i:"
    + "|".join(sorted(_TEXT_KEY_KINDS, key=len, reverse=True))
    + r"))(?P=quote)[ \t]*[=:][ \t]*"
    rf"(?![\"']?\[REDACTED)(?![\"']?{_PSEUDONYM})"
    rf"(?P<value>\"[^\"]*\"|'[^']*'|(?P<names>{_NAMES}|{_UPPER_NAMES})|[^\s,;&)}}\]]+)"
)
_PATIENT_REF = re.compile(
    r"(?<![\w:])(?P<cue>(?i:patient(?:[ _-]?id)?)[ \t]*[#:=]?[ \t]*)"
    rf"(?!{_PSEUDONYM})(?=[\w-]*\d)[\w-]+"
)
_NAME_AFTER_CUE = re.compile(
    r"(?P<cue>(?<![\w:])(?i:patient|name[ds]?)(?!\w)[ \t]*[:=]?[ \t]*[\"']?"
    rf"|(?<!\w){_HONORIFIC}[ \t]+)"
    rf"{_NAMES}"
)

# Numeric rules can eat digits out of ids that are safe to log, so they run
# only between these tokens.
_SAFE_TOKEN = re.compile(
    r"(?<![\w-])(?:"
    r"psn_[0-9a-f]{32}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}"
    r")(?![\w-])"
)
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,6}"  # +44 20 7946 0958, +49 (0)30 123456
    r"|(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # (555) 123-4567
    r")(?![\w-]|\.\d)"
)
_MRN = re.compile(r"(?<![\w:])(?i:MRN)[ \t]*[:#=-]?[ \t]*[A-Za-z0-9-]*\d[A-Za-z0-9-]*")
_LONG_NUMBER = re.compile(r"(?<!\w)(?<!\d\.)\d{6,}(?!\w|\.\d)")


def _tag(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _redact_key_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[:1] in {'"', "'"} else ""
    kind = _TEXT_KEY_KINDS[match["key"].lower()]
    if kind == "patient_id" and match["names"]:
        kind = "name"  # "Patient: Jane Doe" is a name, not an id
    prefix = match.string[match.start() : match.start("value")]
    return f"{prefix}{quote}{_tag(kind)}{quote}"


def _redact_phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return _tag("phone") if 8 <= digits <= 15 else match.group(0)


def _redact_numbers(segment: str) -> str:
    segment = _SSN.sub(_tag("ssn"), segment)
    segment = _PHONE.sub(_redact_phone, segment)
    segment = _MRN.sub(_tag("mrn"), segment)
    return _LONG_NUMBER.sub(_tag("mrn"), segment)


def redact(text: str) -> str:
    """Replace PHI-looking spans of ``text`` with ``[REDACTED:<kind>]``; idempotent."""
    text = _EMAIL.sub(_tag("email"), text)
    text = _DATE.sub(_tag("date"), text)
    text = _KEY_VALUE.sub(_redact_key_value, text)
    text = _PATIENT_REF.sub(lambda m: m["cue"] + _tag("patient_id"), text)
    text = _NAME_AFTER_CUE.sub(lambda m: m["cue"] + _tag("name"), text)
    pieces: list[str] = []
    position = 0
    for safe in _SAFE_TOKEN.finditer(text):
        pieces.append(_redact_numbers(text[position : safe.start()]))
        pieces.append(safe.group(0))
        position = safe.end()
    pieces.append(_redact_numbers(text[position:]))
    return "".join(pieces)


def _sanitize(value: object) -> object:
    """A redacted copy of an extra's value; the caller's object is never mutated."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            key: _tag(str(key)) if str(key).lower() in SENSITIVE_KEYS else _sanitize(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_sanitize(item) for item in value]
    return redact(str(value))


# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES: frozenset[str] = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime", "taskName"}


class PhiRedactingFilter(logging.Filter):
    """Redacts PHI from records before any handler formats them; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Arguments that do not fit the format: keep the template, drop the arguments.
            message = str(record.msg)
        record.msg = redact(message)
        record.args = ()
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRIBUTES:
                continue
            if key.lower() in SENSITIVE_KEYS:
                setattr(record, key, _tag(key))
            else:
                setattr(record, key, _sanitize(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_phi_filter(logger: logging.Logger | None = None) -> None:
    """Attach a :class:`PhiRedactingFilter` to every handler of ``logger`` (default: root).

    Call after handlers are configured; calling again does not add a second filter.
    """
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, PhiRedactingFilter) for f in handler.filters):
            handler.addFilter(PhiRedactingFilter())
