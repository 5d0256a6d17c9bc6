"""Many workers on one study: no point proposed twice, and a target for the study, not each worker.

* :func:`claim_proposal` closes the race between checking the storage for a duplicate and
  publishing a proposal: the proposal is published first, then the storage is read again, and a
  worker that finds another trial holding the same point withdraws its own.
* ``study.optimize(n_trials=k)`` counts the trials of one worker; N workers started with the
  remaining count each would run N times too many. :class:`StudyTarget` counts the study's
  COMPLETE trials plus the RUNNING ones of every worker, after failing the trials of workers that
  died (heartbeat), so each worker stops once the study will hold its target.
* Workers started with the same ``--seed`` (they must share it: it also seeds the evaluation
  episodes) would draw the same random startup and fallback points from ``RandomSampler(seed)``.
  :class:`PerTrialRandomSampler` draws trial ``k``'s values from ``(seed, k)``: reproducible,
  and different for every trial whichever worker runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import json
import time
from typing import Any
from typing import TYPE_CHECKING
import warnings
import zlib

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import RandomSampler
from optuna.storages import fail_stale_trials
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._history import collect_history
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import PROPOSAL_KEY
from optuna_llm_sampler._parse import find_duplicate


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study


_logger = optuna.logging.get_logger(f"optuna.{__name__}")


def claim_proposal(
    storage: BaseStorage,
    study_id: int,
    trial: FrozenTrial,
    params: Mapping[str, Any],
    search_space: Mapping[str, BaseDistribution],
    *,
    memo: dict[int, HistoryEntry | None] | None = None,
) -> HistoryEntry | None:
    """Publish ``params`` as ``trial``'s proposal, then make sure no other trial holds them.

    Checking the storage and then publishing leaves a window in which another worker can check,
    find nothing, and publish the same point. Publishing first and checking after closes it: of
    two workers that publish the same point, the one that checks last sees the other's (the
    storage is read fresh), so at least one of them withdraws; both keep it only if neither sees
    the other, which would need each check to come before the other's publication, and each
    check comes after its own. Both may withdraw, when each sees the other: they re-ask.

    Args:
        storage: The study's storage (``study._storage``).
        study_id: The study's id.
        trial: The trial the point is proposed for.
        params: The proposal, external values of every parameter of ``search_space``.
        search_space: The relative search space the proposal covers.
        memo: The caller's memo of completed trials' rows (see
            :func:`~optuna_llm_sampler._history.collect_history`), to skip re-checking them.

    Returns:
        ``None`` when the point is this trial's (it stays published under ``llm:proposal``), or
        the row of the RUNNING or COMPLETE trial that holds it (the proposal is withdrawn).
    """
    storage.set_trial_system_attr(trial._trial_id, PROPOSAL_KEY, json.dumps(dict(params)))
    others = storage.get_all_trials(
        study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)
    )
    rows = collect_history(others, search_space, exclude_number=trial.number, memo=memo)
    holder = find_duplicate(params, rows, search_space)
    if holder is not None:
        storage.set_trial_system_attr(trial._trial_id, PROPOSAL_KEY, "null")
    return holder


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


class PerTrialRandomSampler(RandomSampler):
    """Random search whose values for trial ``k`` depend only on ``(seed, k, parameter name)``.

    ``RandomSampler(seed)`` in each of N workers draws the same sequence, so their startup trials
    (and fallbacks) repeat each other's points. Seeding by trial number keeps a study reproducible
    and gives every trial its own point, whichever worker runs it.

    Args:
        seed: The study's seed; ``None`` draws one at random.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._base_seed = self._fresh_seed() if seed is None else seed

    def reseed_rng(self) -> None:
        super().reseed_rng()
        self._base_seed = self._fresh_seed()

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        entropy = [self._base_seed % 2**63, trial.number, zlib.crc32(param_name.encode())]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        return RandomSampler(seed=seed).sample_independent(
            study, trial, param_name, param_distribution
        )

    @staticmethod
    def _fresh_seed() -> int:
        return int(np.random.SeedSequence().generate_state(1)[0])
