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
Reset states come from the same generator as gymnasium's (``default_rng(seed)``), replicated in
compiled code when numba is there (see ``_reset_starts``).

The replica targets numpy >= 2 (NEP 50 promotion) and gymnasium 1.x's
``continuous_mountain_car.py``; the tests compare it with gymnasium episode by episode.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
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


# Reset states. numpy's own path (``default_rng(seed).uniform``) costs ~7 us per seed, a third of
# a whole fast evaluation, so with numba the same arithmetic runs compiled: SeedSequence
# (numpy/random/bit_generator.pyx: _int_to_uint32_array, hashmix, mix, mix_entropy,
# generate_state), PCG64 seeding and its first output (numpy/random/src/pcg64/pcg64.h:
# pcg_setseq_128_srandom_r, pcg_setseq_128_xsl_rr_64_random_r), next_double and
# random_uniform. Tests compare it with default_rng and with gymnasium's reset.
_U32 = np.uint64(0xFFFFFFFF)
_SHIFT_16 = np.uint64(16)
_SHIFT_32 = np.uint64(32)
_SHIFT_58 = np.uint64(58)
_SHIFT_63 = np.uint64(63)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_INIT_A = np.uint64(0x43B0D7E5)  # bit_generator.pyx constants
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)
_PCG_MULT_HIGH = np.uint64(2549297995355413924)  # PCG_DEFAULT_MULTIPLIER_128
_PCG_MULT_LOW = np.uint64(4865540595714422341)
_PCG_MULT_LOW_LO = _PCG_MULT_LOW & _U32
_PCG_MULT_LOW_HI = _PCG_MULT_LOW >> _SHIFT_32
_MAX_COMPILED_SEED = 2**63 - 1  # seeds travel as int64


def _reset_starts(seeds: np.ndarray, out: np.ndarray) -> None:
    """``default_rng(seed).uniform(low=-0.6, high=-0.4)`` for each int64 seed, into ``out``.

    Numba-only (uint64 arithmetic that wraps; numpy scalars would warn on overflow).
    """
    pool = np.zeros(4, dtype=np.uint64)
    words = np.zeros(8, dtype=np.uint64)
    for k in range(seeds.shape[0]):
        seed = np.uint64(seeds[k])
        # _int_to_uint32_array: 32-bit words, lowest first; [0] for 0.
        entropy_low = seed & _U32
        entropy_high = seed >> _SHIFT_32
        n_entropy = 1 if entropy_high == _ZERO else 2
        # mix_entropy into a pool of 4 words: hashmix each entropy word (or 0) ...
        hash_const = _INIT_A
        for i in range(4):
            value = _ZERO
            if i == 0:
                value = entropy_low
            elif i == 1 and n_entropy == 2:
                value = entropy_high
            value = value ^ hash_const
            hash_const = (hash_const * _MULT_A) & _U32
            value = (value * hash_const) & _U32
            pool[i] = value ^ (value >> _SHIFT_16)
        # ... then mix every pool word into every other one.
        for i_src in range(4):
            for i_dst in range(4):
                if i_src != i_dst:
                    value = pool[i_src] ^ hash_const
                    hash_const = (hash_const * _MULT_A) & _U32
                    value = (value * hash_const) & _U32
                    value = value ^ (value >> _SHIFT_16)
                    result = (_MIX_MULT_L * pool[i_dst] - _MIX_MULT_R * value) & _U32
                    pool[i_dst] = result ^ (result >> _SHIFT_16)
        # generate_state(4, np.uint64): 8 words cycling over the pool, paired little-endian.
        hash_const = _INIT_B
        for i in range(8):
            value = pool[i % 4] ^ hash_const
            hash_const = (hash_const * _MULT_B) & _U32
            value = (value * hash_const) & _U32
            words[i] = value ^ (value >> _SHIFT_16)
        init_high = words[0] | (words[1] << _SHIFT_32)
        init_low = words[2] | (words[3] << _SHIFT_32)
        seq_high = words[4] | (words[5] << _SHIFT_32)
        seq_low = words[6] | (words[7] << _SHIFT_32)
        # pcg_setseq_128_srandom_r: inc = seq << 1 | 1; state = 0; step; state += init; step.
        # Then the first output steps once more (3 steps in all).
        inc_high = (seq_high << _ONE) | (seq_low >> _SHIFT_63)
        inc_low = (seq_low << _ONE) | _ONE
        state_high = _ZERO
        state_low = _ZERO
        for step in range(3):
            if step == 1:
                low = state_low + init_low
                state_high = state_high + init_high + (_ONE if low < state_low else _ZERO)
                state_low = low
            # state = state * MULT + inc (mod 2**128), with a 64x64 -> 128 bit product.
            a_lo = state_low & _U32
            a_hi = state_low >> _SHIFT_32
            lo_lo = a_lo * _PCG_MULT_LOW_LO
            hi_lo = a_hi * _PCG_MULT_LOW_LO
            cross = (lo_lo >> _SHIFT_32) + (hi_lo & _U32) + a_lo * _PCG_MULT_LOW_HI
            product_high = (hi_lo >> _SHIFT_32) + (cross >> _SHIFT_32) + a_hi * _PCG_MULT_LOW_HI
            new_high = product_high + state_high * _PCG_MULT_LOW + state_low * _PCG_MULT_HIGH
            new_low = state_low * _PCG_MULT_LOW
            low = new_low + inc_low
            state_high = new_high + inc_high + (_ONE if low < new_low else _ZERO)
            state_low = low
        # pcg_output_xsl_rr_128_64: rotate (high ^ low) right by high >> 58.
        x = state_high ^ state_low
        rot = state_high >> _SHIFT_58
        raw = (x >> rot) | (x << ((np.uint64(64) - rot) & _SHIFT_63))
        # next_double, then random_uniform: low + (high - low) * double.
        d = np.float64(raw >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        out[k] = -0.6 + (-0.4 - -0.6) * d


@functools.cache
def _reset_kernel() -> Callable[..., None] | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True)(_reset_starts)


def reset_positions(seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    """Start positions of ``env.reset(seed=s)`` for each seed, as float64 (the internal state).

    ``Env.reset`` seeds ``self.np_random`` with ``gymnasium.utils.seeding.np_random(seed)``,
    which is ``Generator(PCG64(SeedSequence(seed)))``, the generator that
    ``np.random.default_rng(seed)`` builds; L189-190 then draws
    ``self.np_random.uniform(low=-0.6, high=-0.4)``.
    """
    seed_list = [int(s) for s in seeds]
    kernel = _reset_kernel()
    if kernel is not None and all(0 <= s <= _MAX_COMPILED_SEED for s in seed_list):
        out = np.empty(len(seed_list), dtype=np.float64)
        kernel(np.array(seed_list, dtype=np.int64), out)
        return out
    return reset_positions_numpy(seed_list)


def reset_positions_numpy(seeds: list[int]) -> np.ndarray:
    """:func:`reset_positions` through numpy's own generator (the reference, and no numba)."""
    return np.array(
        [np.random.default_rng(s).uniform(low=-0.6, high=-0.4) for s in seeds],
        dtype=np.float64,
    )


def _run(
    weights: np.ndarray,
    bias: np.ndarray | None,
    seeds: Sequence[int],
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
    seeds: Sequence[int],
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
        weights, bias, [seed], max_steps, True, **kwargs
    )
    t = int(lengths[0])
    return states[: t + 1].copy(), actions[:t].copy(), rewards[:t].copy(), bool(goals[0])
