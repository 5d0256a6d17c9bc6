"""evaluate_linear_policy, rollout_episode and LinearPolicy: Box and Discrete actions, clear
errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import LinearPolicy
from optuna_llm_sampler.rl import Rollout
from optuna_llm_sampler.rl import rollout_episode


PENDULUM_W = [[0.5], [-0.2], [-0.8]]


def test_linear_policy_acts_like_state_times_weights():
    policy = LinearPolicy([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]], bias=[0.25, -0.5])
    state = np.array([0.3, -1.2, 2.0], dtype=np.float32)
    expected = state.astype(np.float64) @ policy.weights + policy.bias
    np.testing.assert_allclose(policy.act(state), expected, rtol=1e-15)
    assert policy.act(state).dtype == np.float64
    assert (policy.state_dim, policy.action_dim) == (3, 2)
    with pytest.raises(ValueError, match="read-only"):
        policy.weights[0, 0] = 1.0


def test_linear_policy_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        LinearPolicy([1.0, 2.0])
    with pytest.raises(ValueError, match="bias must have 1"):
        LinearPolicy([[1.0], [2.0]], bias=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        LinearPolicy([[np.nan], [2.0]])
    with pytest.raises(ValueError, match="state must have 2"):
        LinearPolicy([[1.0], [2.0]]).act([1.0, 2.0, 3.0])


def test_the_action_is_not_clipped():
    # 0.5 * 7 = 3.5, far outside MountainCar's [-1, 1]: passed on as is, like the tutorial.
    rollout = rollout_episode([7.0, 0.0], seed=0, max_steps=3)
    assert np.all(np.abs(rollout.actions) > 2.0)
    np.testing.assert_allclose(rollout.rewards, -0.1 * rollout.actions[:, 0] ** 2)


def test_returns_shape_dtype_and_seed_convention():
    returns = evaluate_linear_policy([[0.0], [7.0]], n_episodes=6, seed=10)
    assert returns.shape == (6,)
    assert returns.dtype == np.float64
    # Episode i uses reset seed seed + i.
    tail = evaluate_linear_policy([[0.0], [7.0]], n_episodes=2, seed=14)
    np.testing.assert_array_equal(returns[4:], tail)
    # Flat row-major weights mean the same policy.
    np.testing.assert_array_equal(
        evaluate_linear_policy([0.0, 7.0], n_episodes=6, seed=10), returns
    )


def test_pendulum_through_gymnasium():
    returns = evaluate_linear_policy(PENDULUM_W, "Pendulum-v1", n_episodes=2, seed=3, max_steps=60)
    # A hand-written gymnasium loop gives the same numbers.
    env = gym.make("Pendulum-v1")
    policy = LinearPolicy(PENDULUM_W)
    expected = []
    for seed in (3, 4):
        state, _ = env.reset(seed=seed)
        total = 0.0
        for _ in range(60):
            state, reward, terminated, truncated, _ = env.step(policy.act(state))
            total += float(reward)
            if terminated or truncated:
                break
        expected.append(total)
    env.close()
    np.testing.assert_array_equal(returns, expected)
    assert np.all(returns < 0)  # Pendulum's reward is a cost

    with_bias = evaluate_linear_policy(
        PENDULUM_W, "Pendulum-v1", n_episodes=1, seed=3, max_steps=60, bias=[0.5]
    )
    assert with_bias[0] != returns[0]


def test_pendulum_rollout_records_the_episode():
    rollout = rollout_episode(PENDULUM_W, "Pendulum-v1", seed=1, max_steps=500)
    assert isinstance(rollout, Rollout)
    assert rollout.length == 200  # Pendulum's own TimeLimit
    assert rollout.states.shape == (200, 3)
    assert rollout.actions.shape == (200, 1)
    assert rollout.final_state.shape == (3,)
    assert not rollout.terminated
    assert rollout.total_return == pytest.approx(rollout.rewards.sum())
    assert rollout.total_return == pytest.approx(
        evaluate_linear_policy(PENDULUM_W, "Pendulum-v1", n_episodes=1, seed=1)[0]
    )


def test_discrete_actions_take_the_argmax_of_the_scores_first_on_ties():
    policy = LinearPolicy([[1.0, -1.0, 1.0]], bias=[0.0, 0.0, 0.0])
    assert policy.choose(np.array([2.0])) == 0  # scores 2, -2, 2: the first of the tied
    assert policy.choose(np.array([-2.0])) == 1
    assert isinstance(policy.choose(np.array([2.0])), int)


def test_cartpole_returns_are_those_of_a_hand_written_argmax_loop():
    # Push toward the side the pole falls to: it balances for the full 500 steps.
    w = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    env = gym.make("CartPole-v1")
    expected = []
    for seed in (5, 6):
        state, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action = int(np.argmax(state.astype(np.float64) @ w))
            state, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        expected.append(total)
    for backend in ("gymnasium", "fast"):
        returns = evaluate_linear_policy(w, "CartPole-v1", n_episodes=2, seed=5, backend=backend)
        assert returns.tolist() == expected == [500.0, 500.0]
    # Always push left: the pole falls within a few steps.
    assert evaluate_linear_policy([[0.0, 0.0]] * 4, "CartPole-v1", bias=[1.0, 0.0]).max() < 20


def test_discrete_rollout_records_the_chosen_actions():
    rollout = rollout_episode([[0.0] * 3] * 2, "MountainCar-v0", seed=0, bias=[0.0, 0.0, 1.0])
    assert rollout.length == 200 and rollout.total_return == -200.0
    assert rollout.actions.shape == (200, 1) and set(rollout.actions[:, 0]) == {2.0}


def test_discrete_observation_space_is_refused():
    with pytest.raises(ValueError, match=r"Discrete observation space.*1-D Box.*CartPole-v1"):
        evaluate_linear_policy([[0.0]], "FrozenLake-v1")


@pytest.mark.parametrize("env_id", ["NoSuchEnv-v0", "MountainCarContinuous-v9"])
def test_unknown_env_id_is_refused(env_id):
    with pytest.raises(ValueError, match=r"not a registered gymnasium environment.*registry"):
        evaluate_linear_policy([[0.0], [1.0]], env_id)


def test_fast_backend_gives_gymnasiums_returns_on_pendulum():
    kwargs = {"n_episodes": 3, "seed": 4, "max_steps": 150, "bias": [0.3]}
    fast = evaluate_linear_policy(PENDULUM_W, "Pendulum-v1", backend="fast", **kwargs)
    slow = evaluate_linear_policy(PENDULUM_W, "Pendulum-v1", backend="gymnasium", **kwargs)
    assert fast.tolist() == slow.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_episodes": 0}, "n_episodes must be a positive integer, got 0"),
        ({"max_steps": -5}, "max_steps must be a positive integer, got -5"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"backend": "torch"}, "backend must be one of"),
        ({"bias": [1.0, 2.0]}, "bias must have 1 value"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_linear_policy([[0.0], [7.0]], **kwargs)


def test_wrong_weight_shape_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"shape \(2, 1\) for 'MountainCarContinuous-v0'"):
        evaluate_linear_policy([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(3, 1\) for 'Pendulum-v1'"):
        evaluate_linear_policy([[1.0], [2.0]], "Pendulum-v1")
