"""Optional integrations that read the sampler's records; the core never imports them.

:class:`TrialNoteCallback` writes the optuna-dashboard note of each LLM trial (its reasoning,
proposal, costs, answers and the end of its prompt) when the trial finishes.

Example:
    .. code-block:: python

        from optuna_llm_sampler.integrations import TrialNoteCallback

        study.optimize(objective, n_trials=100, callbacks=[TrialNoteCallback()])
"""

from optuna_llm_sampler.integrations._dashboard_note import trial_note_markdown
from optuna_llm_sampler.integrations._dashboard_note import TrialNoteCallback
from optuna_llm_sampler.integrations._dashboard_note import write_study_note
from optuna_llm_sampler.integrations._dashboard_note import write_trial_note


__all__ = ["TrialNoteCallback", "trial_note_markdown", "write_study_note", "write_trial_note"]
