"""Reading optuna-dashboard notes back, as the dashboard server reads them."""

from __future__ import annotations

from collections.abc import Callable
import random
from typing import Any

import optuna


def note_of(study: optuna.Study, trial: optuna.trial.FrozenTrial | None = None) -> str:
    """A note as the dashboard server reads it: from the study's system attributes (the study's
    note when ``trial`` is ``None``)."""
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = study._storage.get_study_system_attrs(study._study_id)
    trial_id = None if trial is None else trial._trial_id
    return get_note_from_system_attrs(attrs, trial_id)["body"]


# A sentence only the scripted answers contain: a note shows it in its reasoning.
REASONING = "The car must swing back first, so b grows while a stays near zero."


def quadratic(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1) ** 2) - (b - 5) ** 2


def answer_near_the_optimum(seed: int = 0) -> Callable[[Any, Any], str]:
    rng = random.Random(seed)

    def respond(messages: Any, schema: Any) -> str:
        return f"a: {rng.uniform(-0.5, 2):.4f}, b: {rng.uniform(3, 7):.4f}\n{REASONING}"

    return respond
