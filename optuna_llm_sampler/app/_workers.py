"""Many workers on one study: a target for the study, not for each worker.

``study.optimize(n_trials=k)`` counts the trials of one worker; N workers started with the
remaining count each would run N times too many. :class:`StudyTarget` counts the study's COMPLETE
trials plus the RUNNING ones of every worker, after failing the trials of workers that died
(heartbeat), so each worker stops once the study will hold its target.
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import TYPE_CHECKING
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import fail_stale_trials
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


if TYPE_CHECKING:
    from optuna.study import Study


_logger = optuna.logging.get_logger(f"optuna.{__name__}")


class StudyTarget:
    """A callback for ``study.optimize`` that stops a worker when the study holds ``n_trials``
    complete trials, counting the trials other workers are running.

    After each trial the worker fails the stale trials of dead workers (with a heartbeat storage;
    their retries are queued by the storage's callback), then counts COMPLETE + RUNNING trials.
    Below the target it goes on; at the target it stops, except that with a heartbeat storage it
    first waits while other workers' trials are still RUNNING: if one of them fails, or its worker
    dies and the trial is failed and re-queued, the study is below its target again and this
    worker runs what is missing. So the last worker standing finishes the study, and no trial of a
    killed worker stays RUNNING. (A trial started with ``study.ask()`` outside ``optimize`` sends
    no heartbeat and is never failed: tell it, or the waiting workers wait for it.)

    Two workers that finish a trial at the same moment can both see one trial missing and both
    start one. :meth:`guard` settles it when the objective starts, before it samples any
    parameter (with Optuna 5, before the LLM is asked): trial numbers are given in creation
    order, and a trial with ``n_trials`` COMPLETE or RUNNING trials before it is pruned as
    surplus and stops its worker.

    Example:
        .. code-block:: python

            target = StudyTarget(400)
            study.optimize(
                target.guard(objective), n_trials=target.room(study), callbacks=[target]
            )

    Args:
        n_trials: The complete trials the study should hold.
        poll_interval: Seconds between checks while waiting for other workers' trials; ``None``
            uses the storage's heartbeat interval (at most 5 s).

    Raises:
        ValueError: ``n_trials`` or ``poll_interval`` is not positive.
    """

    def __init__(self, n_trials: int, *, poll_interval: float | None = None) -> None:
        if n_trials <= 0:
            raise ValueError(f"n_trials must be positive, got {n_trials}.")
        if poll_interval is not None and poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}.")
        self._n_trials = n_trials
        self._poll_interval = poll_interval

    @property
    def n_trials(self) -> int:
        return self._n_trials

    def room(self, study: Study) -> int:
        """Trials still to start for the study to reach its target (0: stop).

        With a heartbeat storage, waits while the target is reached only by counting RUNNING
        trials of other workers, failing those that go stale.
        """
        heartbeat = is_heartbeat_enabled(study._storage)
        waited = False
        while True:
            if heartbeat:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    fail_stale_trials(study)
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            running = len(trials) - complete
            room = self._n_trials - complete - running
            if room > 0 or complete >= self._n_trials or running == 0 or not heartbeat:
                return max(room, 0)
            if not waited:
                waited = True
                _logger.info(
                    f"The study holds {complete} complete trials of {self._n_trials}; waiting for "
                    f"the {running} running in other workers (a dead worker's trial is failed "
                    "and queued again after the heartbeat grace period)."
                )
            time.sleep(self._poll_seconds(study))

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if self.room(study) == 0:
            study.stop()

    def guard(self, objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
        """``objective``, preceded by the surplus check: a trial that starts when the trials
        numbered before it already make up the target is pruned before it samples anything."""

        def guarded(trial: optuna.Trial) -> float:
            ahead = trial.study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            if sum(t.number < trial.number for t in ahead) >= self._n_trials:
                trial.study.stop()
                raise optuna.TrialPruned(
                    f"surplus: the study already holds or runs its {self._n_trials} trials "
                    "(another worker started the last one at the same moment)"
                )
            return objective(trial)

        return guarded

    def _poll_seconds(self, study: Study) -> float:
        if self._poll_interval is not None:
            return self._poll_interval
        interval = getattr(study._storage, "get_heartbeat_interval", lambda: None)()
        return float(min(interval or 5, 5))
