"""Pseudonyms: stable per key, different across keys, opaque, never carrying the id."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from common.pseudonym import Pseudonymizer, is_pseudonym

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _expected(key: bytes, patient_id: str) -> str:
    # The published construction, computed here from first principles.
    return "psn_" + hmac.new(key, patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def test_pseudonym_is_the_truncated_hmac_of_the_id() -> None:
    assert Pseudonymizer(KEY).pseudonymize("MRN-0042") == _expected(KEY, "MRN-0042")


def test_pseudonym_has_fixed_shape() -> None:
    p = Pseudonymizer(KEY)
    for patient_id in ("1", "patient-with-a-very-long-identifier" * 10, "Zoë-7"):
        pseudonym = p.pseudonymize(patient_id)
        assert re.fullmatch(r"psn_[0-9a-f]{32}", pseudonym)
        assert is_pseudonym(pseudonym)


def test_deterministic_for_the_same_key_even_across_instances() -> None:
    assert Pseudonymizer(KEY).pseudonymize("P-1") == Pseudonymizer(bytes(KEY)).pseudonymize("P-1")


def test_differs_across_keys() -> None:
    assert Pseudonymizer(KEY).pseudonymize("P-1") != Pseudonymizer(OTHER_KEY).pseudonymize("P-1")


def test_distinct_ids_get_distinct_pseudonyms() -> None:
    p = Pseudonymizer(KEY)
    ids = [f"P{n:06d}" for n in range(2000)]
    assert len({p.pseudonymize(i) for i in ids}) == len(ids)


def test_surrounding_whitespace_is_ignored_but_case_is_kept() -> None:
    p = Pseudonymizer(KEY)
    assert p.pseudonymize("  abC12\t\n") == p.pseudonymize("abC12") == _expected(KEY, "abC12")
    assert p.pseudonymize("abc12") != p.pseudonymize("ABC12")


def test_pseudonym_never_contains_the_id() -> None:
    p = Pseudonymizer(KEY)
    for patient_id in ("123456", "MRN-0042", "deadbeef", "John Smith"):
        pseudonym = p.pseudonymize(patient_id)
        assert patient_id not in pseudonym
        assert patient_id.lower() not in pseudonym


def test_not_recoverable_without_the_key() -> None:
    # An attacker who knows the id space (say, 6-digit MRNs) but not the key
    # cannot match pseudonyms with plain hashes or with a key of their own.
    p = Pseudonymizer(KEY)
    target = p.pseudonymize("004711")
    candidates = [f"{n:06d}" for n in range(10_000)]
    unkeyed = {"psn_" + hashlib.sha256(c.encode()).hexdigest()[:32] for c in candidates}
    guessed_key = {_expected(OTHER_KEY, c) for c in candidates}
    assert target not in unkeyed
    assert target not in guessed_key
    # With the key, the same search finds it: the key is what protects the id.
    assert target in {_expected(KEY, c) for c in candidates}


@pytest.mark.parametrize("length", [0, 16, 31])
def test_short_keys_are_rejected(length: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymizer(b"k" * length)


def test_a_32_byte_key_is_accepted() -> None:
    Pseudonymizer(b"k" * 32)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_empty_id_is_rejected_with_a_field_message(blank: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        Pseudonymizer(KEY).pseudonymize(blank)
    assert str(excinfo.value) == "patient_id: must not be empty"


def test_repr_hides_the_key() -> None:
    text = repr(Pseudonymizer(KEY))
    assert KEY.hex() not in text
    assert str(KEY) not in text


def test_is_pseudonym_rejects_raw_ids() -> None:
    assert not is_pseudonym("MRN-12345")
    assert not is_pseudonym("psn_" + "g" * 32)
    assert not is_pseudonym("psn_" + "a" * 31)
    assert not is_pseudonym("PSN_" + "a" * 32)
