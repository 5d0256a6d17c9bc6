"""Plain-language descriptions of the objectives, for ``LLMSampler(task_description=...)``.

ProPS+ tells the LLM what the parameters mean instead of "assume no prior knowledge". These are
facts of the environments (gymnasium's documentation), not hints about the answer.
"""

from __future__ import annotations


MOUNTAINCAR_TASK = (
    "f(a,b) is the mean episode reward of a linear controller on MountainCarContinuous: a car "
    "in a valley must reach the flag on top of the right hill. At every step the engine force "
    "is a*position + b*velocity (position between -1.2 and 0.6, starting near -0.5 at the "
    "bottom; velocity between -0.07 and 0.07). The engine is too weak to drive straight up, so "
    "the car must swing back and forth to build momentum. Reaching the flag gives +100 and "
    "every step costs 0.1*force^2, so a controller that never reaches the flag scores 0 or less."
)

TASK_DESCRIPTIONS = {"MountainCarContinuous-v0": MOUNTAINCAR_TASK}
