"""Figures of a policy's episode: a trajectory plot and an animated GIF.

Headless: figures are drawn with matplotlib's object-oriented API on the Agg canvas (pyplot and
the user's backend are never touched) and written to files; the GIF's frames come from
gymnasium's ``render_mode="rgb_array"`` and are written by Pillow. Needs the ``plots`` extra
(``pip install ".[plots]"`` in a checkout), and the ``rl`` extra for the episodes.
"""

from __future__ import annotations

import os
from pathlib import Path
import sys
from typing import Any
from typing import TYPE_CHECKING

import numpy as np

from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.rl import MOUNTAINCAR
from optuna_llm_sampler.rl import Rollout
from optuna_llm_sampler.rl import rollout_episode


if TYPE_CHECKING:
    from numpy.typing import ArrayLike


__all__ = ["plot_episode", "save_episode_gif"]

_GOAL_POSITION = 0.45  # continuous_mountain_car.py: self.goal_position
# Observation components as gymnasium documents them.
_STATE_NAMES = {
    MOUNTAINCAR: ("position", "velocity"),
    "Pendulum-v1": ("cos(theta)", "sin(theta)", "angular velocity"),
}


def _import_figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"matplotlib is needed for plots: {install_hint('plots')}.") from e
    return Figure


def _import_pil_image() -> Any:
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            f"Pillow is needed for GIFs: {install_hint('plots')}; or pass --no-gif."
        ) from e
    return Image


def plot_episode(
    rollout_or_weights: Rollout | ArrayLike,
    path: str | os.PathLike[str],
    *,
    env_id: str = MOUNTAINCAR,
    seed: int = 0,
    max_steps: int = 1000,
    bias: ArrayLike | None = None,
    title: str | None = None,
) -> Path:
    """Plot one episode over time and save the figure (PNG, SVG, PDF: by ``path``'s suffix).

    For MountainCarContinuous, four panels: position (with the goal at 0.45), velocity, action
    (the raw policy output, with the [-1, 1] band the environment clips the force to) and
    reward per step. For other environments, one panel per observation component (named for
    Pendulum-v1), then action and reward.

    Args:
        rollout_or_weights: A :class:`~optuna_llm_sampler.rl.Rollout`, or the policy weights to
            play one episode with (see :func:`~optuna_llm_sampler.rl.rollout_episode`).
        path: Output file.
        env_id: Environment, when weights are given.
        seed: Reset seed, when weights are given.
        max_steps: Step cap, when weights are given.
        bias: Policy bias, when weights are given.
        title: Figure title; by default the environment, seed, length and return.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.app._plots import plot_episode

            plot_episode([[0.0], [7.0]], "episode.png", seed=0)
    """
    if isinstance(rollout_or_weights, Rollout):
        rollout = rollout_or_weights
    else:
        rollout = rollout_episode(
            rollout_or_weights, env_id, seed=seed, max_steps=max_steps, bias=bias
        )
    Figure = _import_figure()

    steps = np.arange(rollout.length)
    # Observations include the final one, so position and velocity show where the car ended.
    states = np.vstack([rollout.states, rollout.final_state[None, :]])
    state_steps = np.arange(states.shape[0])
    n_state = rollout.states.shape[1]
    names = _STATE_NAMES.get(rollout.env_id, ())
    if len(names) != n_state:
        names = tuple(f"obs[{i}]" for i in range(n_state))
    state_panels = [(name[0].upper() + name[1:], name, [i]) for i, name in enumerate(names)]
    n_panels = len(state_panels) + 2
    fig = Figure(figsize=(9, 2.0 * n_panels + 0.6), layout="constrained")
    axes = fig.subplots(n_panels, 1, sharex=True)

    for ax, (panel_title, ylabel, columns) in zip(axes, state_panels, strict=False):
        for c in columns:
            ax.plot(state_steps, states[:, c], color="tab:blue")
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
    if rollout.env_id == MOUNTAINCAR:
        axes[0].axhline(_GOAL_POSITION, color="tab:green", linestyle="--", label="goal (0.45)")
        axes[0].legend(loc="lower right")

    ax_action = axes[-2]
    for j in range(rollout.actions.shape[1]):
        label = "action" if rollout.actions.shape[1] == 1 else f"action[{j}]"
        ax_action.plot(steps, rollout.actions[:, j], label=label)
    if rollout.env_id == MOUNTAINCAR:
        ax_action.axhspan(-1.0, 1.0, color="0.9", label="force range [-1, 1]")
    ax_action.set_title("Action (raw policy output)")
    ax_action.set_ylabel("action")
    ax_action.legend(loc="lower right")

    ax_reward = axes[-1]
    ax_reward.plot(steps, rollout.rewards, color="tab:red")
    ax_reward.set_title("Reward per step")
    ax_reward.set_ylabel("reward")
    ax_reward.set_xlabel("step")

    end = "goal reached" if rollout.terminated else "time limit"
    fig.suptitle(
        title
        if title is not None
        else (
            f"{rollout.env_id}, seed {rollout.seed}: {rollout.length} steps ({end}), "
            f"return {rollout.total_return:.2f}"
        )
    )
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def _headless_sdl() -> None:
    """Let pygame (gymnasium's renderer) start without a display on a headless Linux box."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def save_episode_gif(
    weights: ArrayLike,
    path: str | os.PathLike[str],
    *,
    env_id: str = MOUNTAINCAR,
    seed: int = 0,
    max_steps: int = 1000,
    bias: ArrayLike | None = None,
    fps: int = 30,
    frame_skip: int = 2,
) -> Path:
    """Render one episode of the linear policy to an animated GIF.

    The episode is the one :func:`~optuna_llm_sampler.rl.rollout_episode` records with the same
    arguments, played in ``gymnasium.make(env_id, render_mode="rgb_array")``. Every
    ``frame_skip``-th frame is kept (the first and last always), and the GIF plays ``fps``
    frames per second, so it runs ``frame_skip`` times faster than the environment's clock
    when ``fps`` equals its ``render_fps`` (30 for MountainCar). Frames share the first frame's
    palette. A MountainCar episode of 999 steps with ``frame_skip=2`` keeps 500 frames of
    600x400 pixels in memory (about 120 MB) before writing.

    Args:
        weights: Policy weights ``(state_dim, action_dim)`` or flat row-major.
        path: Output ``.gif`` file.
        env_id: A gymnasium id with Box spaces that can render ``rgb_array``.
        seed: Reset seed.
        max_steps: Step cap.
        bias: Policy bias.
        fps: Playback frames per second.
        frame_skip: Keep one frame in ``frame_skip``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.app._plots import save_episode_gif

            save_episode_gif([[0.0], [7.0]], "episode.gif", seed=0)
    """
    from optuna_llm_sampler.rl import render_episode

    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps!r}.")
    Image = _import_pil_image()
    _headless_sdl()

    frames: list[Any] = []
    palette: Any = None
    episode = render_episode(
        weights, env_id, seed=seed, max_steps=max_steps, bias=bias, frame_skip=frame_skip
    )
    for frame in episode:
        image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
        if palette is None:
            palette = image.quantize(colors=255)
            frames.append(palette)
        else:
            frames.append(image.quantize(palette=palette))

    path = Path(path)
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
        optimize=False,
    )
    return path
