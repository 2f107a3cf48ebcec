"""Forecast drivers in a clinician's words: "recent variability", not "rolling_std_28".

The one place that names the models' inputs for people. The raw name stays in
``FeatureImportance.feature`` (for engineers and for comparing model versions);
``FeatureImportance.label`` carries the words from here. A name this table does
not know (a new model input) gets a generic label built from the raw name, so a
new feature never breaks a response; add it here to give it proper words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

_EXACT: Final[dict[str, str]] = {
    # Which scale and when.
    "instrument": "which scale is forecast",
    "horizon": "days ahead",
    "target_weekday": "weekday rhythm",
    "origin_weekday": "weekday of the latest score",
    "weekday_effect": "usual weekday effect on scores",
    "same_weekday_last": "score on the same weekday last week",
    # The score's recent course.
    "level_7d": "average score of the last 7 days",
    "last_value": "latest score",
    "days_since_observation": "days since the latest score",
    "observed_fraction_28d": "how regularly scores were recorded (last 28 days)",
    # Wearables.
    "sleep_hours_7d": "sleep over the last 7 days",
    "sleep_7d_vs_28d": "change in sleep (last week against the last 4 weeks)",
    "steps_7d_vs_28d": "change in activity (last week against the last 4 weeks)",
    # Medication.
    "meds_active": "medication being taken",
    "days_since_med_change": "days since the last medication change",
    "days_since_med_start": "days since a medication was started",
    # Remainders of the importance lists.
    "other features": "all other inputs",
    "earlier days": "earlier scores",
}


def _days(count: str) -> str:
    return "1 day" if int(count) == 1 else f"{int(count)} days"


def _lag(match: re.Match[str]) -> str:
    days = int(match.group(1))
    return "latest score" if days == 0 else f"score {_days(match.group(1))} before the latest"


def _patch(match: re.Match[str]) -> str:
    oldest, newest = sorted((-int(match.group(1)), -int(match.group(2))), reverse=True)
    if newest == 0:
        return f"scores of the last {_days(str(oldest + 1))}"
    return f"scores {newest}–{oldest} days ago"


_PATTERNS: Final[tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...]] = (
    (re.compile(r"lag_(\d+)"), _lag),
    (re.compile(r"rolling_mean_(\d+)"), lambda m: f"average score over {_days(m.group(1))}"),
    (re.compile(r"rolling_std_(\d+)"), lambda m: f"recent variability ({_days(m.group(1))})"),
    (re.compile(r"slope_(\d+)"), lambda m: f"recent direction of change ({_days(m.group(1))})"),
    # Transformer attention over weekly patches: "days -13..-7".
    (re.compile(r"days (-?\d+)\.\.(-?\d+)"), _patch),
)


def clinical_label(feature: str) -> str:
    """Words for a model input; a generic label for a name not listed here."""
    if feature in _EXACT:
        return _EXACT[feature]
    for pattern, words in _PATTERNS:
        match = pattern.fullmatch(feature)
        if match:
            return words(match)
    readable = " ".join(feature.replace("_", " ").split())
    return f"other model input ({readable})" if readable else "other model input"
