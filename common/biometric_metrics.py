"""The wearable metrics the mesh accepts, by the names the daily frames and CSV files use.

Their order is that of the ``BiometricMetric`` enum (common.proto), so a new
metric is appended, never inserted. The first six are those the synthetic
worlds generate (``common.synthetic.METRICS``) and the early-warning model was
trained on. Heart rate at any time of day (LOINC 8867-4) and HRV as SDNN
(LOINC 80404-7) come only from real devices and records: the statistics that
need no training (correlations, anomalies, the monitoring plan) use them; the
early-warning model does not (biometric_svc/features.py).
"""

from __future__ import annotations

from typing import Final

from common.synthetic import METRICS as GENERATED_METRICS

#: Every metric the mesh accepts; a metric's index is its column in daily arrays.
METRICS: Final = (*GENERATED_METRICS, "heart_rate", "hrv_sdnn")
#: Metrics no synthetic world generates: present only when a caller supplies them.
SUPPLIED_ONLY_METRICS: Final = tuple(m for m in METRICS if m not in GENERATED_METRICS)
