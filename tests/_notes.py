"""Reading optuna-dashboard notes back, as the dashboard server reads them."""

from __future__ import annotations

import optuna


def note_of(study: optuna.Study, trial: optuna.trial.FrozenTrial | None = None) -> str:
    """A note as the dashboard server reads it: from the study's system attributes (the study's
    note when ``trial`` is ``None``)."""
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = study._storage.get_study_system_attrs(study._study_id)
    trial_id = None if trial is None else trial._trial_id
    return get_note_from_system_attrs(attrs, trial_id)["body"]
