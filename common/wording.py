"""Numbers, chances and dates as a clinician reads them, the same in every service.

A probability printed as "0%" reads as "impossible" and "100%" as "certain";
neither is what a calibrated model means, so the ends are spelled "under 1%"
and "over 99%". The indefinite article follows how the number is spoken
("an 8%", "an 11%", "an 80% chance", "a 100% ..."), not how it is written.
Dates are written "4 Dec 2026": unambiguous across locales, unlike 04/12/2026.
"""

from __future__ import annotations

import datetime as dt

#: Numbers whose spoken form starts with a vowel sound besides the 8s: eleven, eighteen.
_VOWEL_SOUND_NUMBERS = frozenset({8, 11, 18})


def percent(probability: float) -> str:
    """A probability in [0, 1] as a whole percentage, never "0%" or "100%"."""
    if probability < 0.005:
        return "under 1%"
    if probability >= 0.995:
        return "over 99%"
    return f"{probability:.0%}"


def article_for_number(number: int) -> str:
    """ "a" or "an" before ``number`` as it is spoken: an 8, an 11, an 18, an 80..89, an 800."""
    value = abs(number)
    # A leading group decides: 11 000 is "eleven thousand", 180 000 "a hundred and eighty ...".
    while value >= 1000:
        value //= 1000
    if value in _VOWEL_SOUND_NUMBERS or str(value).startswith("8"):
        return "an"
    return "a"


def with_article(phrase: str) -> str:
    """``phrase`` after its indefinite article, e.g. "an 80% chance", "an under-1% chance"."""
    head = phrase.lstrip()
    digits = ""
    for char in head:
        if not char.isdigit():
            break
        digits += char
    if digits:
        return f"{article_for_number(int(digits))} {phrase}"
    return f"{'an' if head[:1].lower() in 'aeiou' and head else 'a'} {phrase}"


def chance(probability: float) -> str:
    """ "an 80% chance", "a 61% chance", "a chance of under 1%"."""
    shown = percent(probability)
    if not shown[0].isdigit():
        return f"a chance of {shown}"
    return with_article(f"{shown} chance")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 day", "3 days"."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def day(value: dt.date | dt.datetime) -> str:
    """ "4 Dec 2026"."""
    return f"{value.day} {value:%b %Y}"
