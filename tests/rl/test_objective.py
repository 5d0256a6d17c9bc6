"""The Optuna objective factory, its episode seeds, params <-> weights, and evaluate_best."""

from __future__ import annotations

import pickle

import numpy as np
import optuna
import pytest

from optuna_llm_sampler.rl import default_param_names
from optuna_llm_sampler.rl import evaluate_best
from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import EVALUATION_SEED
from optuna_llm_sampler.rl import EvaluationResult
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import policy_from_params
from optuna_llm_sampler.rl import weights_from_params


def _study(objective, n_trials=6, seed=0):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed))
    study.optimize(objective, n_trials=n_trials)
    return study


def test_objective_suggests_a_b_and_returns_the_mean_return():
    objective = linear_policy_objective(seed=100)
    study = _study(objective)
    assert objective.param_names == ("a", "b")
    for trial in study.trials:
        assert set(trial.params) == {"a", "b"}
        assert trial.distributions["a"] == optuna.distributions.FloatDistribution(-7.0, 7.0)
        assert trial.user_attrs == {}
        # Fresh episodes per trial: trial k plays seeds 100 + 20 k + i.
        expected = evaluate_linear_policy(
            [trial.params["a"], trial.params["b"]], n_episodes=20, seed=100 + 20 * trial.number
        ).mean()
        assert trial.value == expected


def test_study_is_reproducible_and_trials_see_fresh_episodes():
    first = _study(linear_policy_objective(seed=7), n_trials=3)
    second = _study(linear_policy_objective(seed=7), n_trials=3)
    assert [t.value for t in first.trials] == [t.value for t in second.trials]

    # Same weights, different trial numbers: different episodes, different values.
    objective = linear_policy_objective(seed=7)
    study = optuna.create_study(direction="maximize")
    for _ in range(2):
        study.enqueue_trial({"a": 0.0, "b": 5.0})
    study.optimize(objective, n_trials=2)
    assert study.trials[0].value != study.trials[1].value


def test_fixed_episodes_make_the_value_a_function_of_the_weights():
    objective = linear_policy_objective(seed=7, fixed_episodes=True, n_eval_episodes=5)
    study = optuna.create_study(direction="maximize")
    for _ in range(2):
        study.enqueue_trial({"a": 0.0, "b": 5.0})
    study.optimize(objective, n_trials=2)
    assert study.trials[0].value == study.trials[1].value
    expected = evaluate_linear_policy([0.0, 5.0], n_episodes=5, seed=7).mean()
    assert study.trials[0].value == expected


def test_seed_none_draws_a_base_seed_once():
    objective = linear_policy_objective(n_eval_episodes=2)
    assert 0 <= objective.episode_seed(0) < 2**31
    assert objective.episode_seed(3) == objective.episode_seed(0) + 6


def test_bias_and_custom_names():
    objective = linear_policy_objective(bias=True, seed=0, n_eval_episodes=2)
    assert objective.param_names == ("a", "b", "c")
    study = _study(objective, n_trials=2)
    policy = policy_from_params(study.trials[0].params, bias=True)
    assert policy.bias is not None
    assert policy.bias[0] == study.trials[0].params["c"]

    named = linear_policy_objective(param_names=["x", "v"], seed=0, n_eval_episodes=2)
    study = _study(named, n_trials=2)
    assert set(study.trials[0].params) == {"x", "v"}


def test_default_param_names():
    assert default_param_names() == ("a", "b")
    assert default_param_names(bias=True) == ("a", "b", "c")
    assert default_param_names("Pendulum-v1") == ("a", "b", "c")


def test_pendulum_objective_through_gymnasium():
    objective = linear_policy_objective(
        "Pendulum-v1", n_eval_episodes=1, max_steps=30, low=-2.0, high=2.0, seed=0
    )
    study = _study(objective, n_trials=2)
    assert set(study.trials[0].params) == {"a", "b", "c"}
    assert all(t.value < 0 for t in study.trials)


def test_objective_is_picklable():
    objective = linear_policy_objective(seed=3, n_eval_episodes=2)
    clone = pickle.loads(pickle.dumps(objective))
    assert clone.param_names == objective.param_names
    assert "seed=3" in repr(clone)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_eval_episodes": 0}, "n_eval_episodes must be a positive integer"),
        ({"low": 1.0, "high": 1.0}, "low must be below high"),
        ({"param_names": ["a"]}, "param_names must hold 2 distinct names"),
        ({"param_names": ["a", "a"]}, "param_names must hold 2 distinct names"),
        ({"param_names": "ab"}, "param_names must be a sequence"),
        ({"seed": 2**31}, "seed must be below 2\\*\\*31"),
        ({"seed": -3}, "seed must be a non-negative integer"),
        ({"backend": "numba"}, "backend must be one of"),
    ],
)
def test_objective_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        linear_policy_objective(**kwargs)


def test_weights_from_params():
    weights = weights_from_params({"a": -0.3, "b": 6.0})
    np.testing.assert_array_equal(weights, [[-0.3], [6.0]])
    weights = weights_from_params({"a": 1.0, "b": 2.0, "c": 3.0}, "Pendulum-v1")
    assert weights.shape == (3, 1)
    with pytest.raises(ValueError, match=r"params lack \['b'\]"):
        weights_from_params({"a": 1.0})


def test_evaluate_best_replays_the_best_weights_on_unseen_episodes():
    study = _study(linear_policy_objective(seed=0), n_trials=8)
    result = evaluate_best(study, n_episodes=50)
    assert isinstance(result, EvaluationResult)
    assert result.params == study.best_params
    assert result.trial_number == study.best_trial.number
    assert result.training_value == study.best_value
    expected = evaluate_linear_policy(
        weights_from_params(study.best_params), n_episodes=50, seed=EVALUATION_SEED
    )
    np.testing.assert_array_equal(result.returns, expected)
    assert result.mean == expected.mean()
    assert result.std == expected.std()


def test_evaluation_seeds_lie_above_training_seeds():
    # The largest base seed with ten million 20-episode trials stays below EVALUATION_SEED.
    objective = linear_policy_objective(seed=2**31 - 1)
    assert objective.episode_seed(10_000_000) + 20 <= EVALUATION_SEED


def test_evaluate_best_refuses_a_minimizing_study():
    study = optuna.create_study(direction="minimize")
    study.enqueue_trial({"a": 0.0, "b": 5.0})
    study.optimize(linear_policy_objective(seed=0, n_eval_episodes=1), n_trials=1)
    with pytest.raises(ValueError, match="direction='maximize'"):
        evaluate_best(study)
