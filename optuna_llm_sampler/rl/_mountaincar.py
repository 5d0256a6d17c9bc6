"""An exact, fast replica of gymnasium's ``MountainCarContinuous-v0`` under a linear policy.

Replicated source: ``gymnasium/envs/classic_control/continuous_mountain_car.py`` (gymnasium 1.4,
``Continuous_MountainCarEnv``), cited below as ``L<n>``, plus the ``TimeLimit`` of 999 steps from
its registration (``gymnasium/envs/__init__.py``, ``max_episode_steps=999``).

Environment facts:

* Observation: ``Box([-1.2, -0.07], [0.6, 0.07], float32)``: position and velocity.
* Action: ``Box(-1, 1, (1,), float32)``; the env clips the force to [-1, 1] (L153) but charges
  the penalty ``-0.1 * action**2`` on the *unclipped* action (L176).
* Reward: that penalty at every step, plus 100 on the step that reaches the goal (L173-175).
* Episode end: termination when ``position >= 0.45 and velocity >= 0`` (L169-171), truncation
  after 999 steps (TimeLimit).
* Reset: ``position ~ U(-0.6, -0.4)`` drawn by ``np_random.uniform`` and velocity 0 (L190).

Why a plain float64 replica is not exact (up to 0.19 per episode): ``step`` mixes Python floats
with numpy scalars, and numpy 2 (NEP 50) keeps the type of a numpy scalar against a Python
float. After the first step ``self.state`` is a float32 array (L178), so ``position`` and
``velocity`` are ``np.float32`` scalars (L151-152), and:

* ``force = min(max(action[0], -1.0), 1.0)`` (L153) is the action's ``np.float64`` when inside
  [-1, 1], but the Python float ``-1.0`` / ``1.0`` when clipped.
* ``velocity += force * power - 0.0025 * math.cos(3 * position)`` (L155): ``3 * position`` is a
  float32 product; the increment is float64 either way, but it is a ``np.float64`` (unclipped
  force: float32 + float64 -> float64) or a Python float (clipped force: float32 + weak Python
  float -> float32 arithmetic).
* ``velocity`` clipped to +-0.07 (L156-159) becomes a Python float; comparisons of a float32
  scalar with a Python float happen in float32 (``np.float32(0.6) > 0.6`` is False).
* ``position += velocity`` (L160) is float64 only when ``velocity`` is a ``np.float64``,
  float32 otherwise; the position clip (L161-164), the wall stop (L165) and the goal test (L169-
  171) compare in that type.
* The first step after ``reset`` differs: ``self.state`` is still the float64 array of L190, so
  all of its arithmetic is float64, while the policy saw the float32 observation of L194.

Every step ends by rounding both to float32 (L178). This module tracks the type of ``position``
and ``velocity`` through one step and rounds exactly where numpy does. The loop is written in the
subset of Python that numba compiles; without numba the same function runs as plain Python.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import math
from typing import Any

import numpy as np


ENV_ID = "MountainCarContinuous-v0"
STATE_DIM = 2
ACTION_DIM = 1
TIME_LIMIT = 999  # gymnasium/envs/__init__.py: register(..., max_episode_steps=999)

# L117-126: constants of Continuous_MountainCarEnv.__init__.
_MIN_ACTION = -1.0
_MAX_ACTION = 1.0
_MIN_POSITION = -1.2
_MAX_POSITION = 0.6
_MAX_SPEED = 0.07
_GOAL_POSITION = 0.45
_GOAL_VELOCITY = 0.0  # goal_velocity=0 (an int; comparing with it is exact in any type)
_POWER = 0.0015

# The same constants as float32 comparisons see them (a float32 scalar compared with a Python
# float converts the Python float to float32, NEP 50). Stored as float64 holding float32 values,
# so that a float64 comparison of a float32-valued operand with them is the float32 comparison.
_F32_MIN_POSITION = float(np.float32(_MIN_POSITION))
_F32_MAX_POSITION = float(np.float32(_MAX_POSITION))
_F32_MAX_SPEED = float(np.float32(_MAX_SPEED))
_F32_GOAL_POSITION = float(np.float32(_GOAL_POSITION))

# Kinds of a value inside Continuous_MountainCarEnv.step.
_F64 = 0  # np.float64 scalar: arithmetic and comparisons in float64
_F32 = 1  # np.float32 scalar: arithmetic and comparisons in float32
_PY = 2  # Python float (a clipped value): float64 comparisons, but weak in arithmetic


def _simulate(
    w0: float,
    w1: float,
    bias: float,
    has_bias: bool,
    starts: np.ndarray,
    n_steps: int,
    record: bool,
    returns: np.ndarray,
    lengths: np.ndarray,
    goals: np.ndarray,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    two: float,
) -> None:
    """Run one episode per start position; write returns, lengths, goals (and the trajectory).

    ``n_steps`` is ``min(max_steps, TIME_LIMIT)``. With ``record``, episode 0's observations
    (``n_steps + 1`` rows, the last one final), actions and rewards go to ``states``,
    ``actions`` and ``rewards``. ``two`` is 2.0, passed at run time so that the compiler cannot
    turn ``pow(action, 2.0)`` into ``action * action``: libm's ``pow``, which CPython's
    ``math.pow`` calls, is sometimes one ulp away from the exact square. Numba-compilable:
    scalars and arrays only.
    """
    for ep in range(starts.shape[0]):
        # L190: self.state = np.array([uniform, 0]), a float64 array.
        position = starts[ep]
        velocity = 0.0
        # L194: the observation is the float32 copy of it.
        obs_position = np.float64(np.float32(position))
        obs_velocity = 0.0
        total = 0.0
        terminated = False
        t = 0
        while t < n_steps:
            # LinearPolicy.act: ((s0 * w0) + s1 * w1) + bias, in float64, no fused multiply-add.
            action = obs_position * w0
            action = action + obs_velocity * w1
            if has_bias:
                action = action + bias
            if record and ep == 0:
                states[t, 0] = obs_position
                states[t, 1] = obs_velocity
                actions[t] = action

            # L153: force = min(max(action[0], self.min_action), self.max_action).
            # max(x, y) returns y only if y > x; min(x, y) returns y only if y < x.
            force: float = action
            force_kind = _F64
            if force < _MIN_ACTION:
                force = _MIN_ACTION
                force_kind = _PY
            if force > _MAX_ACTION:
                force = _MAX_ACTION
                force_kind = _PY

            # L151-152 and L155: the first step works on the float64 reset state; later steps
            # on float32 scalars, where 3 * position is a float32 product.
            first = t == 0
            cos_argument = 3.0 * position if first else np.float64(np.float32(3.0 * position))
            increment = force * _POWER - 0.0025 * math.cos(cos_argument)
            if first or force_kind == _F64:
                velocity = velocity + increment  # float64 result
                velocity_kind = _F64
            else:
                # np.float32 + Python float: the float is cast to float32, the sum rounded
                # to float32 (float64 addition of two float32 values, then one rounding, is
                # the correctly rounded float32 sum).
                velocity = np.float64(np.float32(velocity + np.float64(np.float32(increment))))
                velocity_kind = _F32

            # L156-159: clip velocity, compared in its own type; a clipped value is Python's.
            if velocity > (_F32_MAX_SPEED if velocity_kind == _F32 else _MAX_SPEED):
                velocity = _MAX_SPEED
                velocity_kind = _PY
            if velocity < (-_F32_MAX_SPEED if velocity_kind == _F32 else -_MAX_SPEED):
                velocity = -_MAX_SPEED
                velocity_kind = _PY

            # L160: position += velocity.
            if first or velocity_kind == _F64:
                position = position + velocity  # np.float64 position, or float32 + float64
                position_kind = _F64
            else:
                # float32 + float32, or float32 + weak Python float: float32 arithmetic.
                position = np.float64(np.float32(position + np.float64(np.float32(velocity))))
                position_kind = _F32

            # L161-164: clip position, compared in its own type.
            if position > (_F32_MAX_POSITION if position_kind == _F32 else _MAX_POSITION):
                position = _MAX_POSITION
                position_kind = _PY
            if position < (_F32_MIN_POSITION if position_kind == _F32 else _MIN_POSITION):
                position = _MIN_POSITION
                position_kind = _PY
            # L165-166: inelastic left wall.
            if (
                position == (_F32_MIN_POSITION if position_kind == _F32 else _MIN_POSITION)
                and velocity < 0.0
            ):
                velocity = 0.0

            # L169-171: termination.
            terminated = (
                position >= (_F32_GOAL_POSITION if position_kind == _F32 else _GOAL_POSITION)
                and velocity >= _GOAL_VELOCITY
            )

            # L173-176: reward = 0 (+100 at the goal), minus 0.1 * unclipped action ** 2,
            # squared by libm's pow as math.pow does.
            reward = 100.0 if terminated else 0.0
            reward = reward - math.pow(action, two) * 0.1

            # L178: self.state = np.array([position, velocity], dtype=np.float32).
            position = np.float64(np.float32(position))
            velocity = np.float64(np.float32(velocity))
            obs_position = position
            obs_velocity = velocity

            if record and ep == 0:
                rewards[t] = reward
            total += reward
            t += 1
            if terminated:
                break
        if record and ep == 0:
            states[t, 0] = obs_position
            states[t, 1] = obs_velocity
        returns[ep] = total
        lengths[ep] = t
        goals[ep] = terminated


@functools.cache
def _kernel() -> Callable[..., None]:
    """``_simulate`` compiled by numba (cached on disk), or as plain Python without numba."""
    try:
        import numba
    except ImportError:
        return _simulate
    return numba.njit(cache=True)(_simulate)


def reset_positions(seeds: np.ndarray) -> np.ndarray:
    """Start positions of ``env.reset(seed=s)`` for each seed, as float64 (the internal state).

    ``Env.reset`` seeds ``self.np_random`` with ``gymnasium.utils.seeding.np_random(seed)``,
    which is ``Generator(PCG64(SeedSequence(seed)))``, the generator that
    ``np.random.default_rng(seed)`` builds; L189-190 then draws
    ``self.np_random.uniform(low=-0.6, high=-0.4)``.
    """
    return np.array(
        [np.random.default_rng(int(s)).uniform(low=-0.6, high=-0.4) for s in seeds],
        dtype=np.float64,
    )


def _run(
    weights: np.ndarray,
    bias: np.ndarray | None,
    seeds: np.ndarray,
    max_steps: int,
    record: bool,
    kernel: Callable[..., None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    starts = reset_positions(seeds)
    n_steps = min(max_steps, TIME_LIMIT)
    n = starts.shape[0]
    returns = np.zeros(n, dtype=np.float64)
    lengths = np.zeros(n, dtype=np.int64)
    goals = np.zeros(n, dtype=np.bool_)
    rows = n_steps + 1 if record else 1
    states = np.zeros((rows, STATE_DIM), dtype=np.float64)
    actions = np.zeros(rows, dtype=np.float64)
    rewards = np.zeros(rows, dtype=np.float64)
    run = kernel if kernel is not None else _kernel()
    run(
        float(weights[0, 0]),
        float(weights[1, 0]),
        0.0 if bias is None else float(bias[0]),
        bias is not None,
        starts,
        n_steps,
        record,
        returns,
        lengths,
        goals,
        states,
        actions,
        rewards,
        2.0,
    )
    return returns, lengths, goals, states, actions, rewards


def simulate_returns(
    weights: np.ndarray,
    bias: np.ndarray | None,
    seeds: np.ndarray,
    max_steps: int,
    **kwargs: Any,
) -> np.ndarray:
    """Episode returns for reset seeds ``seeds``, equal to gymnasium's loop.

    ``weights`` is a validated float64 ``(2, 1)`` matrix, ``bias`` ``(1,)`` or ``None``.
    """
    return _run(weights, bias, seeds, max_steps, False, **kwargs)[0]


def simulate_episode(
    weights: np.ndarray,
    bias: np.ndarray | None,
    seed: int,
    max_steps: int,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """One recorded episode: observations ``(T + 1, 2)`` (float32 values), actions ``(T,)``,
    rewards ``(T,)`` and whether it terminated at the goal."""
    _, lengths, goals, states, actions, rewards = _run(
        weights, bias, np.array([seed]), max_steps, True, **kwargs
    )
    t = int(lengths[0])
    return states[: t + 1].copy(), actions[:t].copy(), rewards[:t].copy(), bool(goals[0])
