"""Claims across workers: a proposal published then checked again, a random stream per trial."""

from __future__ import annotations

from typing import Any

import optuna

from optuna_llm_sampler._claims import claim_proposal
from optuna_llm_sampler._claims import PerTrialRandomSampler


def test_random_points_depend_on_the_trial_not_the_worker() -> None:
    def points(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=PerTrialRandomSampler(seed=seed))
        study.optimize(lambda t: t.suggest_float("a", -7, 7) + t.suggest_int("b", 0, 9), 4)
        return [t.params for t in study.trials]

    worker1, worker2 = points(0), points(0)
    assert worker1 == worker2  # reproducible from the seed...
    assert len({tuple(p.items()) for p in worker1}) == 4  # ...and one point per trial number
    assert points(1) != worker1


def test_claim_proposal_lets_one_of_two_trials_keep_a_point() -> None:
    study = optuna.create_study()
    space = {"a": optuna.distributions.FloatDistribution(-7, 7)}
    first, second = study.ask(), study.ask()
    storage, sid = study._storage, study._study_id
    frozen = [storage.get_trial(t._trial_id) for t in (first, second)]
    assert claim_proposal(storage, sid, frozen[0], {"a": 1.5}, space) is None
    holder = claim_proposal(storage, sid, frozen[1], {"a": 1.5}, space)
    assert holder is not None and holder.number == first.number
    assert storage.get_trial(second._trial_id).system_attrs["llm:proposal"] == "null"
    assert claim_proposal(storage, sid, frozen[1], {"a": 2.0}, space) is None


def test_claim_proposal_compares_points_as_the_caller_says() -> None:
    # Two workers proposing points that the prompt shows alike (1.23 at two decimals): with the
    # sampler's test the second withdraws, where exact equality would let both keep theirs.
    study = optuna.create_study()
    space = {"a": optuna.distributions.FloatDistribution(-7, 7)}
    first, second = study.ask(), study.ask()
    storage, sid = study._storage, study._study_id
    frozen = [storage.get_trial(t._trial_id) for t in (first, second)]

    def holds_rounded(point: float):  # type: ignore[no-untyped-def]
        return lambda row: round(row.params["a"], 2) == round(point, 2)

    assert claim_proposal(storage, sid, frozen[0], {"a": 1.2349}, space) is None
    assert claim_proposal(storage, sid, frozen[1], {"a": 1.2341}, space) is None  # exact: kept
    holder = claim_proposal(
        storage, sid, frozen[1], {"a": 1.2341}, space, holds=holds_rounded(1.2341)
    )
    assert holder is not None and holder.number == first.number


def test_reseed_rng_draws_a_new_stream_for_every_trial() -> None:
    def first_points(sampler: PerTrialRandomSampler) -> list[float]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("a", -7, 7), 3)
        return [t.params["a"] for t in study.trials]

    seeded = PerTrialRandomSampler(seed=5)
    before = first_points(seeded)
    assert first_points(seeded) == before  # the stream depends on (seed, trial), not on history
    seeded.reseed_rng()  # as each thread of study.optimize(n_jobs=2) does
    assert first_points(seeded) != before
    assert first_points(PerTrialRandomSampler()) != first_points(PerTrialRandomSampler())
