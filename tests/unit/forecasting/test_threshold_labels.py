"""Risk-period labels are read by clinicians (report, recommendations, FHIR text)."""

from __future__ import annotations

from forecasting_svc.instruments import SPECS


def test_threshold_labels_use_the_clinical_sign_and_name_the_band() -> None:
    labels = [t.label for spec in SPECS.values() for t in spec.thresholds]
    assert labels == [
        "PHQ-9 ≥ 15 (moderately severe)",
        "PHQ-9 ≥ 20 (severe)",
        "GAD-7 ≥ 15 (severe)",
    ]
    assert not any(">=" in label for label in labels)
