"""Claims across workers: no point proposed twice, and a random stream per trial.

* :func:`claim_proposal` closes the race between checking the storage for a duplicate and
  publishing a proposal: the proposal is published first, then the storage is read again, and a
  worker that finds another trial holding the same point withdraws its own.
* Workers that share a seed would draw the same random startup and fallback points from
  ``RandomSampler(seed)``. :class:`PerTrialRandomSampler` draws trial ``k``'s values from
  ``(seed, k)``: reproducible, and different for every trial whichever worker runs it. It is
  :class:`~optuna_llm_sampler.LLMSampler`'s default independent sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import json
from typing import Any
from typing import TYPE_CHECKING
import zlib

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._history import collect_history
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import PROPOSAL_KEY
from optuna_llm_sampler._space import find_duplicate


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study


def claim_proposal(
    storage: BaseStorage,
    study_id: int,
    trial: FrozenTrial,
    params: Mapping[str, Any],
    search_space: Mapping[str, BaseDistribution],
    *,
    memo: dict[int, HistoryEntry | None] | None = None,
    holds: Callable[[HistoryEntry], bool] | None = None,
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
        holds: Whether a row holds the point (the sampler's test: equal as the prompt shows
            numbers); ``None`` compares exact values.

    Returns:
        ``None`` when the point is this trial's (it stays published under ``llm:proposal``), or
        the row of the RUNNING or COMPLETE trial that holds it (the proposal is withdrawn).
    """
    storage.set_trial_system_attr(trial._trial_id, PROPOSAL_KEY, json.dumps(dict(params)))
    others = storage.get_all_trials(
        study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)
    )
    rows = collect_history(others, search_space, exclude_number=trial.number, memo=memo)
    if holds is None:
        holder = find_duplicate(params, rows, search_space)
    else:
        complete = (row for row in reversed(rows) if all(n in row.params for n in search_space))
        holder = next((row for row in complete if holds(row)), None)
    if holder is not None:
        storage.set_trial_system_attr(trial._trial_id, PROPOSAL_KEY, "null")
    return holder


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
        self._base_seed = fresh_seed() if seed is None else seed

    def reseed_rng(self) -> None:
        super().reseed_rng()
        self._base_seed = fresh_seed()

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


def fresh_seed() -> int:
    """A seed drawn from the operating system's entropy, for a sampler given ``seed=None``."""
    return int(np.random.SeedSequence().generate_state(1)[0])
