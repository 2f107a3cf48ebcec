"""Other coupling and noise: common/synthetic.py's ``"shifted"`` dynamics.

Coupled metrics lead symptoms by 2..14 days instead of 1..10; the wearables'
weekly rhythm is 1.8 times and their noise 1.25 times the reference's;
symptoms are more persistent (AR 0.90, innovation SD 1.0) with a larger
weekly rhythm and 1.3 times the rating noise; and treatment response is
lower (base 0.46). Relapses keep their prodromes.
"""

from __future__ import annotations

from worlds.reference import ReferenceWorld

WORLD = ReferenceWorld(
    name="shifted_wearables",
    family="shifted_wearables",
    description="longer biometric leads (2-14 days), stronger weekly rhythm, noisier sensors",
    dynamics="shifted",
)
