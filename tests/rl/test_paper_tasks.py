"""The ProPS paper's tasks: their settings, and the fast loop's returns equal gymnasium's."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from optuna_llm_sampler.rl import default_param_names
from optuna_llm_sampler.rl import discrete_actions
from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import PAPER_TASKS
from optuna_llm_sampler.rl import TASK_DESCRIPTIONS
from optuna_llm_sampler.rl._evaluate import env_dims


TASKS = sorted(PAPER_TASKS)


@pytest.mark.parametrize("env_id", TASKS)
def test_each_task_has_the_shape_of_its_environment(env_id):
    task = PAPER_TASKS[env_id]
    assert env_dims(env_id) == (task.state_dim, task.action_dim)
    assert discrete_actions(env_id) == task.discrete
    assert (task.low, task.high, task.decimals, task.bias) == (-6.0, 6.0, 1, True)
    assert (task.n_trials, task.n_eval_episodes, task.max_steps) == (400, 20, 1000)
    assert TASK_DESCRIPTIONS[env_id] == task.description
    assert env_id.split("-")[0].replace("2d", "")[:6].lower() in task.description.lower()


def test_parameter_counts_are_the_papers():
    counts = {env_id: task.n_params for env_id, task in PAPER_TASKS.items()}
    assert counts == {
        "MountainCarContinuous-v0": 3,
        "InvertedPendulum-v5": 5,
        "InvertedDoublePendulum-v5": 10,
        "Swimmer-v5": 18,
        "Hopper-v5": 36,
        "Walker2d-v5": 108,
        "Reacher-v5": 22,
        "MountainCar-v0": 9,
        "CartPole-v1": 10,
    }


def test_names_stay_short_and_distinct_for_108_parameters():
    names = default_param_names("Walker2d-v5", bias=True)
    assert len(names) == len(set(names)) == 108
    assert names[:2] == ("w0_0", "w0_1") and names[-1] == "bias5"
    assert all(name.isidentifier() and len(name) <= 6 for name in names)


def _policies(task, rng):
    """A zero policy (long episodes), a small and a large random one (short ones)."""
    shape = (task.state_dim, task.action_dim)
    for scale in (0.0, 0.3, 3.0):
        yield (
            np.round(rng.normal(0.0, scale, shape), 1),
            np.round(rng.normal(0.0, scale, task.action_dim), 1),
        )


@pytest.mark.parametrize("env_id", TASKS)
def test_fast_loop_returns_exactly_gymnasiums(env_id):
    rng = np.random.default_rng(sum(map(ord, env_id)))
    for w, b in _policies(PAPER_TASKS[env_id], rng):
        kwargs = {"n_episodes": 3, "seed": 11, "bias": b}
        fast = evaluate_linear_policy(w, env_id, backend="fast", **kwargs)
        slow = evaluate_linear_policy(w, env_id, backend="gymnasium", **kwargs)
        assert fast.tolist() == slow.tolist()
    # A step cap below the time limit cuts both loops at the same step.
    w, b = next(_policies(PAPER_TASKS[env_id], rng))
    kwargs = {"n_episodes": 2, "seed": 3, "bias": b, "max_steps": 7}
    assert (
        evaluate_linear_policy(w, env_id, backend="fast", **kwargs).tolist()
        == evaluate_linear_policy(w, env_id, backend="gymnasium", **kwargs).tolist()
    )


@pytest.mark.parametrize("env_id", TASKS)
def test_a_short_study_runs_on_each_task_with_the_papers_box(env_id):
    objective = linear_policy_objective(
        env_id, n_eval_episodes=2, max_steps=100, low=-6.0, high=6.0, bias=True, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=3)
    assert len(study.trials) == 3
    assert len(study.best_params) == PAPER_TASKS[env_id].n_params
    assert all(np.isfinite(t.value) for t in study.trials)
