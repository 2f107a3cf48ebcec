"""The reference world without prodromes: every relapse comes without warning.

Same patients, symptoms, couplings and onsets as the reference world
(``prodrome_fraction=0``; the prodrome has its own random stream, so nothing
else moves): no subsyndromal build-up and no biometric instability before an
onset. Only a coupled metric's lag still announces the rise, 1..10 days
ahead. An early warning that learned the prodrome has little left to see
here; the world measures how much of its skill was the prodrome.
"""

from __future__ import annotations

from worlds.reference import ReferenceWorld

WORLD = ReferenceWorld(
    name="no_prodrome",
    family="no_prodrome",
    description="the reference cohort with relapses that come without a prodrome",
    cohort_overrides=(("prodrome_fraction", 0.0),),
)
