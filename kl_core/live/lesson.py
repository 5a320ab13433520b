"""The lesson's live steps: which steps of kl_core.lesson get the live widget, and each one's scenario and scene.

The covering, seeking and side-by-side steps train the two-bump teacher with the same settings as
their figures (``kl_core.lesson``'s preset, steps, learning rate, starts and seed); the widget lets a
learner drag that teacher and watch the same students re-fit. The scene speaks the lesson's
notation (p teacher, q student). The app's "Start here" page and the static site both use it.

Examples:
    >>> from kl_core.lesson import get_step
    >>> lesson_scenario(get_step(4)).objectives
    (('forward_kl', ()), ('reverse_kl', ()))
    >>> lesson_scenario(get_step(1)) is None
    True
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from kl_core.lesson import INITS, LR, NOTATION, SEED, STEPS_1D, TEACHER
from kl_core.scenario import Scenario

__all__ = ["LIVE_STEPS", "lesson_scenario", "lesson_scene"]

# step key -> (objectives, starts): what the step's figure trains (the reverse step follows one start)
LIVE_STEPS = MappingProxyType(
    {
        "forward": ((("forward_kl", ()),), INITS),
        "reverse": ((("reverse_kl", ()),), 1),
        "both": ((("forward_kl", ()), ("reverse_kl", ())), INITS),
    }
)


def lesson_scenario(step: Any) -> Scenario | None:
    """The 1-D scenario a lesson step trains (None for a step without a live widget)."""
    spec = LIVE_STEPS.get(getattr(step, "key", None))
    if spec is None:
        return None
    objectives, inits = spec
    return Scenario(
        space="1d", preset=TEACHER, objectives=objectives, lr=LR, steps=STEPS_1D, inits=inits, seed=SEED
    )


def lesson_scene(step: Any, *, autoplay: bool = True, global_keys: bool = False) -> dict | None:
    """The widget's scene for a lesson step, in the lesson's p/q notation (None without a live widget)."""
    from kl_core.live.export import scene_from_scenario

    scenario = lesson_scenario(step)
    if scenario is None:
        return None
    return scene_from_scenario(scenario, autoplay=autoplay, global_keys=global_keys, notation=NOTATION)
