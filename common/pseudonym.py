"""Keyed pseudonyms: the only patient identifier that leaves the orchestrator.

A pseudonym is ``"psn_" + hex(HMAC-SHA256(key, patient_id))[:32]`` — 128 bits,
plenty to keep distinct patients distinct. Without the key it cannot be
reversed or recomputed from a guessed id (a plain hash of an MRN could be
brute-forced in seconds; the key prevents that). The key comes from a secret
(see ``Settings.secret("pseudonym")``); rotating it changes every pseudonym,
which breaks the link to earlier downstream records — by design, and the
reason the key must be kept stable in a deployment.

Normalization is ``strip()`` only. Surrounding whitespace is never part of an
identifier (it comes from CSV cells and form fields), but case is kept: source
systems issue case-sensitive ids (base64-like or mixed-case tokens), and
folding case could map two different patients to one pseudonym and merge their
records — a far worse error than failing to match a mistyped id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

_LOGGER = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "psn_"
PSEUDONYM_HEX_CHARS = 32
MIN_KEY_BYTES = 32
#: What every pseudonym looks like; other modules use it to refuse raw ids.
PSEUDONYM_PATTERN = re.compile(rf"^{PSEUDONYM_PREFIX}[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$")


def is_pseudonym(value: str) -> bool:
    """True if ``value`` has the shape of a pseudonym (not whether any key made it)."""
    return PSEUDONYM_PATTERN.fullmatch(value) is not None


class Pseudonymizer:
    """Turns patient ids into stable keyed pseudonyms."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key: must be at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        # The key must never end up in a log line or a traceback.
        return "Pseudonymizer(key=<redacted>)"

    def pseudonymize(self, patient_id: str) -> str:
        """Return the pseudonym of ``patient_id``; the id itself is never echoed in errors."""
        normalized = patient_id.strip()
        if not normalized:
            raise ValueError("patient_id: must not be empty")
        digest = hmac.new(self._key, normalized.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_CHARS]
