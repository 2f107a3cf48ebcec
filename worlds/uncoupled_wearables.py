"""The reference world with wearables that do not follow symptoms.

``coupled_fraction=0``: no patient's biometrics track their symptom level, so
lagged correlations have nothing to find; what remains before an onset is the
prodrome's zero-mean biometric instability and the symptoms themselves. A
world for the early warning's reliance on coupling, and for the false
discoveries of the correlation analysis.
"""

from __future__ import annotations

from worlds.reference import ReferenceWorld

WORLD = ReferenceWorld(
    name="uncoupled_wearables",
    family="uncoupled_wearables",
    description="the reference cohort with biometrics that never track symptom levels",
    cohort_overrides=(("coupled_fraction", 0.0),),
)
