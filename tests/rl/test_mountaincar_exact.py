"""The fast MountainCarContinuous simulator returns what gymnasium's own loop returns."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from optuna_llm_sampler.rl import _mountaincar
from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import LinearPolicy
from optuna_llm_sampler.rl import rollout_episode


ENV_ID = "MountainCarContinuous-v0"
TOLERANCE = 1e-9  # per episode; measured: 0 (bit-identical)


def gymnasium_returns(weights, seeds, max_steps, bias=None):
    """A plain gymnasium loop, written independently of the package's backend."""
    env = gym.make(ENV_ID)
    policy = LinearPolicy(np.reshape(weights, (2, 1)), bias)
    out = []
    for seed in seeds:
        state, _ = env.reset(seed=int(seed))
        total = 0.0
        for _ in range(max_steps):
            state, reward, terminated, truncated, _ = env.step(policy.act(state))
            total += float(reward)
            if terminated or truncated:
                break
        out.append(total)
    env.close()
    return np.array(out)


def _weight_cases():
    rng = np.random.default_rng(20240611)
    anywhere = [rng.uniform(-7.0, 7.0, 2) for _ in range(120)]
    # The good region (b ~ 5-7) reaches the goal in most episodes.
    reaching = [np.array([rng.uniform(-1.0, 0.5), rng.uniform(4.0, 7.0)]) for _ in range(40)]
    # Weak pushes never reach it and run into the time limit.
    never = [np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)]) for _ in range(10)]
    return anywhere + reaching + never


WEIGHT_CASES = _weight_cases()


def test_reset_states_match_gymnasium():
    env = gym.make(ENV_ID)
    seeds = [0, 1, 2, 3, 7, 42, 999, 123456, 2**31 - 1, 2**32, 2**40 + 5, 2**63 - 1, 2**64 + 3]
    starts = _mountaincar.reset_positions(np.array(seeds, dtype=object))
    for seed, start in zip(seeds, starts, strict=True):
        obs, _ = env.reset(seed=int(seed))
        # The internal state is float64 (continuous_mountain_car.py L190) ...
        assert env.unwrapped.state[0] == start
        assert env.unwrapped.state.dtype == np.float64
        # ... and the observation its float32 copy (L194).
        assert obs[0] == np.float32(start)
        assert obs[1] == 0.0
    env.close()


def test_compiled_reset_equals_numpy_generator():
    rng = np.random.default_rng(0)
    seeds = np.concatenate(
        [
            np.arange(3000),
            rng.integers(0, 2**63 - 1, size=2000, dtype=np.int64),
            [2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1],
        ]
    )
    seed_list = [int(s) for s in seeds]
    compiled = _mountaincar.reset_positions(np.array(seed_list))
    np.testing.assert_array_equal(compiled, _mountaincar.reset_positions_numpy(seed_list))
    # Beyond int64 the numpy generator takes over.
    huge = [2**63, 2**64 + 3, 10**30]
    np.testing.assert_array_equal(
        _mountaincar.reset_positions(np.array(huge, dtype=object)),
        _mountaincar.reset_positions_numpy(huge),
    )


def test_fast_returns_equal_gymnasium_for_many_weights():
    worst = 0.0
    n_goal = n_timeout = 0
    for k, w in enumerate(WEIGHT_CASES):
        seeds = np.arange(3) + 100 * k
        for max_steps in (1000, 240):
            expected = gymnasium_returns(w, seeds, max_steps)
            got = evaluate_linear_policy(w, n_episodes=3, seed=int(seeds[0]), max_steps=max_steps)
            assert got.dtype == np.float64
            worst = max(worst, float(np.max(np.abs(got - expected))))
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=str(w))
            if max_steps == 1000:
                n_goal += int(np.sum(expected > 0))
                n_timeout += int(np.sum(expected < 0))
    # The cases cover both endings.
    assert n_goal >= 30
    assert n_timeout >= 10
    assert worst <= TOLERANCE


@pytest.mark.parametrize("max_steps", [1, 2, 57, 500, 998, 999, 1000, 5000])
def test_fast_equals_gymnasium_for_any_step_cap(max_steps):
    for w in ([0.1, 6.5], [0.2, 0.1], [-3.0, 4.0]):
        expected = gymnasium_returns(w, range(2), max_steps)
        got = evaluate_linear_policy(w, n_episodes=2, seed=0, max_steps=max_steps)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_fast_equals_gymnasium_with_bias():
    for w, b in (([0.0, 6.0], [0.3]), ([-1.0, 5.0], [-0.8]), ([2.0, -3.0], [1.5])):
        expected = gymnasium_returns(w, range(3), 1000, bias=b)
        got = evaluate_linear_policy(w, n_episodes=3, seed=0, bias=b)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_time_limit_is_999_steps():
    rollout = rollout_episode([0.0, 0.0], seed=0, max_steps=5000)
    assert rollout.length == 999
    assert not rollout.terminated


def test_fast_rollout_equals_gymnasium_rollout():
    for w, seed in (([0.1, 7.0], 0), ([-0.4, 5.5], 3), ([5.0, -6.0], 1), ([0.0, 0.3], 2)):
        fast = rollout_episode(w, seed=seed, backend="fast")
        slow = rollout_episode(w, seed=seed, backend="gymnasium")
        assert fast.length == slow.length
        assert fast.terminated == slow.terminated
        np.testing.assert_array_equal(fast.states, slow.states)
        np.testing.assert_array_equal(fast.actions, slow.actions)
        np.testing.assert_allclose(fast.rewards, slow.rewards, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(fast.final_state, slow.final_state)
        assert fast.states.dtype == slow.states.dtype == np.float32
        assert abs(fast.total_return - slow.total_return) <= TOLERANCE
        # The rollout is episode 0 of the evaluation with the same seed.
        assert fast.total_return == evaluate_linear_policy(w, n_episodes=1, seed=seed)[0]


def test_pure_python_kernel_matches():
    """Without numba the same function runs as plain Python, with the same results."""
    for w in WEIGHT_CASES[::8]:
        weights = np.reshape(w, (2, 1)).astype(np.float64)
        seeds = np.arange(2)
        compiled = _mountaincar.simulate_returns(weights, None, seeds, 1000)
        python = _mountaincar.simulate_returns(
            weights, None, seeds, 1000, kernel=_mountaincar._simulate
        )
        np.testing.assert_array_equal(python, compiled)


def test_fast_backend_works_when_numba_is_missing():
    code = (
        "import sys, json\n"
        "sys.modules['numba'] = None\n"
        "from optuna_llm_sampler.rl import evaluate_linear_policy, _mountaincar\n"
        "r = evaluate_linear_policy([0.1, 6.5], n_episodes=2, seed=5, backend='fast')\n"
        "print(json.dumps([_mountaincar._kernel() is _mountaincar._simulate, r.tolist()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    is_python, returns = json.loads(out.stdout.strip().splitlines()[-1])
    assert is_python
    np.testing.assert_allclose(
        returns, gymnasium_returns([0.1, 6.5], [5, 6], 1000), rtol=0, atol=TOLERANCE
    )


def _plain_float64_returns(weights, seeds, max_steps):
    """The dynamics of continuous_mountain_car.py in float64 throughout: *not* exact."""
    out = []
    for start in _mountaincar.reset_positions(np.asarray(seeds)):
        position, velocity, total = start, 0.0, 0.0
        obs = (float(np.float32(position)), 0.0)
        for _ in range(min(max_steps, 999)):
            action = obs[0] * weights[0] + obs[1] * weights[1]
            force = min(max(action, -1.0), 1.0)
            velocity = min(
                max(velocity + force * 0.0015 - 0.0025 * np.cos(3 * position), -0.07), 0.07
            )
            position = min(max(position + velocity, -1.2), 0.6)
            if position == -1.2 and velocity < 0:
                velocity = 0.0
            terminated = position >= 0.45 and velocity >= 0
            total += (100.0 if terminated else 0.0) - 0.1 * action**2
            position, velocity = float(np.float32(position)), float(np.float32(velocity))
            obs = (position, velocity)
            if terminated:
                break
        out.append(total)
    return np.array(out)


def test_a_plain_float64_replica_would_fail_these_cases():
    """Guards the test data: it does tell the exact arithmetic from the naive one."""
    worst = 0.0
    for k, w in enumerate(WEIGHT_CASES[:60]):
        seeds = np.arange(3) + 100 * k
        naive = _plain_float64_returns(w, seeds, 1000)
        exact = evaluate_linear_policy(w, n_episodes=3, seed=int(seeds[0]))
        worst = max(worst, float(np.max(np.abs(naive - exact))))
    assert worst > 1e-6  # measured 3.6e-3, far above TOLERANCE
