"""Swimmer-v5's step without gymnasium's per-step bookkeeping: the same values, fewer calls.

Swimmer is the ProPS task whose episodes never end early (1,000 steps each), so it costs the most
per trial. ``SwimmerEnv.step`` (gymnasium 1.x, ``envs/mujoco/swimmer_v5.py``) spends about as
long in Python (an action-shape check, copies, the info dict of seven entries, a norm) as MuJoCo
spends in physics. This loop does only what makes the observation and the reward, with the same
float64 operations in the same order:

* ``data.ctrl[:] = action``, ``mj_step(model, data, nstep=frame_skip)`` and
  ``mj_rnePostConstraint`` (``MujocoEnv._step_mujoco_simulation``);
* ``x_velocity = (x_after - x_before) / dt`` with ``dt = timestep * frame_skip``;
* ``reward = forward_reward_weight * x_velocity - ctrl_cost_weight * sum(action**2)``;
* the observation ``concatenate([qpos[2:], qvel])``.

Resets go through the environment's own ``reset(seed=...)``, so the start states are gymnasium's.
The tests compare it with gymnasium's loop episode by episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optuna_llm_sampler.rl._policy import LinearPolicy


ENV_ID = "Swimmer-v5"


def default_swimmer(env: Any) -> bool:
    """Whether ``env`` (unwrapped) is a Swimmer-v5 with the settings this loop replicates."""
    return (
        type(env).__name__ == "SwimmerEnv"
        and env._forward_reward_weight == 1.0
        and env._exclude_current_positions_from_observation
        and env.render_mode is None
    )


def swimmer_return(env: Any, policy: LinearPolicy, seed: int, limit: int) -> float:
    """The return of one episode of ``policy`` on the unwrapped Swimmer ``env`` from
    ``reset(seed=seed)``, cut after ``limit`` steps (Swimmer never terminates)."""
    import mujoco

    env.reset(seed=seed)
    model, data = env.model, env.data
    qpos, qvel, ctrl = data.qpos, data.qvel, data.ctrl
    frame_skip = env.frame_skip
    dt = env.dt
    forward_weight = env._forward_reward_weight
    ctrl_weight = env._ctrl_cost_weight
    mj_step, rne = mujoco.mj_step, mujoco.mj_rnePostConstraint
    act, concatenate, total_of, square = policy.act, np.concatenate, np.sum, np.square
    total = 0.0
    for _ in range(limit):
        action = act(concatenate([qpos[2:], qvel]))
        x_before = float(qpos[0])
        ctrl[:] = action
        mj_step(model, data, nstep=frame_skip)
        rne(model, data)
        x_velocity = (float(qpos[0]) - x_before) / dt
        reward = forward_weight * x_velocity - ctrl_weight * total_of(square(action))
        total += float(reward)
    return total
