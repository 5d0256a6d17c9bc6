"""Whose trial it is: the pure rules, and LLMSampler with a base sampler in control."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
import math
import pickle
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.samplers import RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import Message
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._advice import base_startup
from optuna_llm_sampler._advice import llm_owns
from optuna_llm_sampler._advice import make_base_sampler
from optuna_llm_sampler._advice import share_picks
from optuna_llm_sampler._advice import since_moved
from optuna_llm_sampler.providers import ScriptedClient
from tests._answers import SchemaResponder


MAX = StudyDirection.MAXIMIZE


# --------------------------------------------------------------------------- the rules


@settings(max_examples=200, deadline=None)
@given(
    share=st.floats(min_value=0.001, max_value=1.0),
    start=st.integers(min_value=0, max_value=10_000),
    length=st.integers(min_value=1, max_value=500),
)
def test_share_picks_spreads_the_share_evenly_over_any_run_of_numbers(
    share: float, start: int, length: int
) -> None:
    picks = sum(share_picks(n, share) for n in range(start, start + length))
    exact = 1.0 if share >= 1 else float(Fraction(share).limit_denominator(1000))
    assert math.floor(length * exact) - 1 <= picks <= math.floor(length * exact) + 1


def test_share_picks_from_zero_gives_exactly_the_share() -> None:
    assert sum(share_picks(n, 0.3) for n in range(1000)) == 300
    assert [n for n in range(20) if share_picks(n, 0.3)] == [3, 6, 9, 13, 16, 19]
    assert all(share_picks(n, 1.0) for n in range(50))


def test_the_llm_takes_its_startup_then_waits_for_the_base_startup() -> None:
    owners = [
        llm_owns(n, n_complete=n, n_startup_trials=10, llm_share=0.3, llm_startup_trials=3)
        for n in range(20)
    ]
    assert [n for n, own in enumerate(owners) if own] == [0, 1, 2, 13, 16, 19]
    # Workers disagree on nothing but the count of completed trials: before the base startup is
    # complete no trial is the LLM's, whatever its number.
    assert not llm_owns(13, n_complete=9, n_startup_trials=10, llm_share=0.3, llm_startup_trials=0)


def test_since_moved_counts_trials_since_the_best_moved_beyond_the_noise() -> None:
    assert since_moved([], MAX) == 0
    assert since_moved([0.0, 0.0, 0.0, 0.0], MAX) == 3  # all equal: nothing moved
    low = [-300.0, -200.0, -100.0, -50.0, -20.0]  # the median is -20: the noise is 0.2
    assert since_moved([*low, 0.0, 0.15, 0.1, 0.2], MAX) == 3
    assert since_moved([-100.0, 0.0, 50.0, 49.0], MAX) == 1
    # small gains that add up count once they exceed the noise
    assert since_moved([*low, 0.0, 0.1, 0.2, 0.3], MAX) == 0
    # a few disastrous trials do not make a real gain noise
    assert since_moved([-3000.0, 80.0, 81.0, 85.0, 86.0], MAX) == 0
    assert since_moved([100.0, 0.0, 0.5], StudyDirection.MINIMIZE) == 1
    assert since_moved([float("nan"), 1.0, float("inf"), 1.0], MAX) == 2


def test_base_samplers_by_name_and_their_startup() -> None:
    assert base_startup(make_base_sampler("gp", seed=0)) == 10
    assert base_startup(make_base_sampler("tpe", seed=0)) == 10
    assert base_startup(make_base_sampler("cmaes", seed=0)) == 1
    assert base_startup(make_base_sampler("random", seed=0)) == 10  # none of its own
    with pytest.raises(ValueError, match="base_sampler must be a sampler object or one of gp"):
        make_base_sampler("nsga2", seed=0)


# --------------------------------------------------------------------------- the sampler


def _quadratic(trial: optuna.Trial) -> float:
    return -((trial.suggest_float("x", -5, 5) - 1) ** 2) - (trial.suggest_float("y", -5, 5) ** 2)


def _client(calls: list[int] | None = None) -> ScriptedClient:
    responder = SchemaResponder(seed=0)

    def respond(messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        if calls is not None:
            calls.append(1)
        return responder(messages, schema)

    return ScriptedClient(respond=respond, supports_schema=True)


def _llm_numbers(study: optuna.Study) -> list[int]:
    return [
        t.number
        for t in study.trials
        if (record := get_llm_record(t)) is not None and record.fallback is None
    ]


@pytest.mark.parametrize("base", ["gp", "tpe", "random"])
def test_the_llm_proposes_its_share_after_the_base_startup_and_the_base_the_rest(
    base: str,
) -> None:
    sampler = LLMSampler(
        model=_client(), base_sampler=make_base_sampler(base, seed=0), llm_share=0.3
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_quadratic, n_trials=24)
    assert _llm_numbers(study) == [13, 16, 19, 23]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_the_issue_call_works_as_written() -> None:
    sampler = LLMSampler(
        model=_client(), base_sampler=optuna.samplers.GPSampler(seed=0), llm_share=0.3
    )
    assert isinstance(sampler.base_sampler, optuna.samplers.GPSampler)


def test_the_advised_preset_puts_gp_in_control_and_explicit_arguments_win() -> None:
    advised = LLMSampler(model=_client(), preset="advised", seed=0)
    assert isinstance(advised.base_sampler, optuna.samplers.GPSampler)
    assert advised._llm_share == 0.3 and advised._n_startup_trials == 10
    mine = LLMSampler(model=_client(), preset="advised", base_sampler="tpe", llm_share=0.5)
    assert isinstance(mine.base_sampler, optuna.samplers.TPESampler) and mine._llm_share == 0.5
    with pytest.raises(ValueError, match="independent_sampler both sample"):
        LLMSampler(model=_client(), preset="advised", independent_sampler=RandomSampler())
    with pytest.raises(ValueError, match="independent_sampler both sample"):
        LLMSampler(model=_client(), base_sampler="gp", independent_sampler=RandomSampler())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"llm_share": 0}, "llm_share must be a number in"),
        ({"llm_share": 1.2}, "llm_share must be a number in"),
        ({"llm_startup_trials": -1}, "llm_startup_trials must be a non-negative integer"),
        ({"base_sampler": 3}, "base_sampler must be an Optuna sampler"),
        ({"base_sampler": "nsga2"}, "base_sampler must be a sampler object or one of"),
    ],
)
def test_bad_advice_arguments_are_refused_by_name(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LLMSampler(model=_client(), **kwargs)


class _FailingClient(ScriptedClient):
    def complete(self, messages: Sequence[Message], *, schema: Any = None) -> Any:
        raise ConnectionError("the provider is down")


def test_a_failed_llm_trial_is_the_base_samplers_own_cma_es_trial() -> None:
    """A fallback is sampled by the base's relative sampling, not at random: with CMA-ES the
    trial carries the generation key that CmaEsSampler writes for its own trials."""
    sampler = LLMSampler(
        model=_FailingClient(), base_sampler=make_base_sampler("cmaes", seed=0), llm_share=0.5
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_quadratic, n_trials=12)
    fallbacks = [t for t in study.trials if (r := get_llm_record(t)) and r.fallback is not None]
    reasons = [str(getattr(get_llm_record(t), "fallback", "")) for t in fallbacks]
    assert fallbacks and all(reason.startswith("provider error") for reason in reasons)
    assert all("cma:generation" in t.system_attrs for t in fallbacks)


def test_cma_es_keeps_its_generations_beside_the_llms_trials() -> None:
    """CmaEsSampler (Optuna 5.0) updates its optimizer with the completed trials of the current
    generation only: the LLM's trials carry no generation key and are left out, its own
    generations still complete, and the study converges."""
    sampler = LLMSampler(
        model=_client(), base_sampler=make_base_sampler("cmaes", seed=0), llm_share=0.3
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_quadratic, n_trials=60)
    llm = set(_llm_numbers(study))
    assert len(llm) >= 15
    assert all("cma:generation" not in study.trials[n].system_attrs for n in llm)
    generations = [
        t.system_attrs["cma:generation"]
        for t in study.trials
        if "cma:generation" in t.system_attrs
    ]
    assert len(generations) == 60 - 1 - len(llm)  # every base trial but the startup one is CMA-ES'
    assert max(generations) >= 3  # the optimizer was told whole generations of its own trials
    assert generations == sorted(generations)
    assert study.best_value > -0.5


class _SpySampler(RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.calls: list[str] = []

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.calls.append("before")

    def after_trial(self, study: Any, trial: FrozenTrial, state: Any, values: Any) -> None:
        self.calls.append("after")

    def reseed_rng(self) -> None:
        self.calls.append("reseed")
        super().reseed_rng()


def test_the_base_samplers_hooks_are_forwarded() -> None:
    spy = _SpySampler()
    sampler = LLMSampler(model=_client(), base_sampler=spy, llm_share=0.3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_quadratic, n_trials=3)
    sampler.reseed_rng()
    assert spy.calls == ["before", "after"] * 3 + ["reseed"]
    assert sampler._owners == {}  # the trials' owners are forgotten when they end


def test_llm_startup_trials_come_before_the_base_startup() -> None:
    prompt = PromptOptions(task_description="f(x, y) peaks near x = 1, y = 0.")
    sampler = LLMSampler(
        model=_client(),
        prompt=prompt,
        base_sampler=make_base_sampler("tpe", seed=0),
        llm_share=0.3,
        llm_startup_trials=4,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_quadratic, n_trials=14)
    # Trial 0 teaches Optuna the parameters; trials 1-3 are the LLM's, then TPE's startup.
    assert _llm_numbers(study) == [1, 2, 3, 13]


def test_a_stalled_best_hands_a_third_of_the_llms_trials_to_the_base() -> None:
    flat = StepsFromBest(stall_after=3, out_of_range="clip")
    sampler = LLMSampler(model=_client(), proposal=flat, n_startup_trials=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: 0.0 * t.suggest_float("x", -5, 5), n_trials=20)
    llm = [t.number for t in study.trials if get_llm_record(t) is not None]  # the LLM was asked
    handed = [n for n in range(2, 20) if n not in llm]
    # All values equal: stalled from trial 4 on (3 completed since the first), then every
    # third number goes to a point far from the tried ones.
    assert handed == [n for n in range(4, 20) if share_picks(n, 1 / 3)]
    assert llm == [2, 3] + [n for n in range(4, 20) if not share_picks(n, 1 / 3)]
    # Each is farther from the points tried before it than 90 % of uniform draws would be (the
    # farthest of 50 draws is, but for a chance of 0.9**50).
    uniform = np.random.default_rng(0).uniform(-5, 5, size=1000)
    for number in handed:
        before = np.array([t.params["x"] for t in study.trials[:number]])
        gap = np.abs(before - study.trials[number].params["x"]).min()
        gaps = np.abs(uniform[:, None] - before[None, :]).min(axis=1)
        assert (gaps < gap).mean() >= 0.9, number


def test_stalled_trials_spread_the_same_way_for_the_same_seed() -> None:
    def run(seed: int) -> list[float]:
        flat = StepsFromBest(stall_after=3, out_of_range="clip")
        sampler = LLMSampler(model=_client(), proposal=flat, n_startup_trials=2, seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(lambda t: 0.0 * t.suggest_float("x", -5, 5), n_trials=12)
        return [t.params["x"] for t in study.trials if get_llm_record(t) is None]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_an_advised_sampler_pickles_with_its_base() -> None:
    sampler = LLMSampler(model=ScriptedClient(), base_sampler="gp", llm_share=0.3, seed=1)
    restored = pickle.loads(pickle.dumps(sampler))
    assert isinstance(restored.base_sampler, optuna.samplers.GPSampler)
    assert restored._llm_share == 0.3 and restored._owners == {}


def test_a_stalled_best_hands_every_llm_trial_to_a_base_sampler_in_control() -> None:
    flat = StepsFromBest(stall_after=3, out_of_range="clip")
    sampler = LLMSampler(
        model=_client(), proposal=flat, base_sampler=make_base_sampler("tpe", seed=0), seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: 0.0 * t.suggest_float("x", -5, 5), n_trials=16)
    # TPE's 10 startup trials, then the share (all) would be the LLM's, but all values are
    # equal: every one goes back to TPE.
    assert [t.number for t in study.trials if get_llm_record(t) is not None] == []
    assert len(study.trials) == 16
