"""Episodes of a linear policy: through gymnasium, or the exact fast MountainCar simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import functools
from typing import Any
from typing import Literal
from typing import TYPE_CHECKING

import numpy as np

from optuna_llm_sampler.rl import _mountaincar
from optuna_llm_sampler.rl._policy import _as_bias
from optuna_llm_sampler.rl._policy import _as_weights
from optuna_llm_sampler.rl._policy import LinearPolicy


if TYPE_CHECKING:
    from numpy.typing import ArrayLike


Backend = Literal["auto", "fast", "gymnasium"]
_BACKENDS = ("auto", "fast", "gymnasium")


def _import_gymnasium() -> Any:
    try:
        import gymnasium
    except ImportError as e:
        raise ImportError(
            "gymnasium is needed for this environment or backend: "
            'pip install ".[rl]" (from the optuna-llm-sampler checkout).'
        ) from e
    return gymnasium


def _make_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id)``, with unknown ids turned into a ValueError that says the fix."""
    gym = _import_gymnasium()
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise ValueError(f"env_id {env_id!r} needs a missing dependency: {e}") from e
    except gym.error.Error as e:
        raise ValueError(
            f"env_id {env_id!r} is not a registered gymnasium environment ({e}). "
            "Use a registered id with Box observation and action spaces, such as "
            "'MountainCarContinuous-v0' or 'Pendulum-v1' (gymnasium.pprint_registry() lists them)."
        ) from e


def env_dims(env_id: str) -> tuple[int, int]:
    """``(state_dim, action_dim)`` of ``env_id``; ValueError unless both spaces are 1-D Boxes."""
    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a gymnasium id string, got {env_id!r}.")
    return _env_dims(env_id)


@functools.cache
def _env_dims(env_id: str) -> tuple[int, int]:
    if env_id == _mountaincar.ENV_ID:
        return _mountaincar.STATE_DIM, _mountaincar.ACTION_DIM
    gym = _import_gymnasium()
    env = _make_env(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    for name, space in (("observation", obs_space), ("action", act_space)):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(
                f"env_id {env_id!r} has a {type(space).__name__} {name} space {space}; a linear "
                "policy needs 1-D Box (continuous) observation and action spaces. Use a "
                "continuous-control environment such as 'MountainCarContinuous-v0' or "
                "'Pendulum-v1' (for example 'MountainCarContinuous-v0' instead of "
                "'MountainCar-v0')."
            )
    return int(obs_space.shape[0]), int(act_space.shape[0])


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer (a reset seed), got {seed!r}.")
    return int(seed)


def _resolve_backend(backend: str, env_id: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "fast" if env_id == _mountaincar.ENV_ID else "gymnasium"
    if backend == "fast" and env_id != _mountaincar.ENV_ID:
        raise ValueError(
            f"backend='fast' simulates only {_mountaincar.ENV_ID!r}, got env_id={env_id!r}; "
            "use backend='gymnasium' (or 'auto')."
        )
    return backend


def _policy_for(
    weights: ArrayLike, bias: ArrayLike | None, env_id: str
) -> tuple[np.ndarray, np.ndarray | None]:
    state_dim, action_dim = env_dims(env_id)
    what = repr(env_id)
    return _as_weights(weights, state_dim, action_dim, what), _as_bias(bias, action_dim, what)


def evaluate_linear_policy(
    weights: ArrayLike,
    env_id: str = "MountainCarContinuous-v0",
    *,
    n_episodes: int = 20,
    seed: int = 0,
    max_steps: int = 1000,
    backend: Backend = "auto",
    bias: ArrayLike | None = None,
) -> np.ndarray:
    """Play ``n_episodes`` episodes of the linear policy and return their returns.

    Episode ``i`` starts from ``env.reset(seed=seed + i)``, so the same ``seed`` replays the same
    start states. At each step the policy's raw action ``state @ weights (+ bias)`` is passed to
    ``env.step`` unclipped, as in the ProPS tutorial (MountainCarContinuous clips the force but
    charges ``-0.1 * action**2`` on the raw action). An episode ends at termination, at
    truncation by the environment's own ``TimeLimit`` (999 steps for MountainCarContinuous), or
    after ``max_steps`` steps, whichever comes first.

    Args:
        weights: Weight matrix ``(state_dim, action_dim)``, or a flat row-major array of it
            (``[a, b]`` for MountainCar).
        env_id: A gymnasium id whose observation and action spaces are 1-D Boxes.
        n_episodes: Number of episodes.
        seed: Reset seed of the first episode (non-negative).
        max_steps: Step cap per episode.
        backend: ``"fast"``: the exact compiled MountainCarContinuous simulator (same returns as
            gymnasium, 100x faster or more); ``"gymnasium"``: ``gymnasium.make(env_id)``;
            ``"auto"``: fast for ``MountainCarContinuous-v0``, gymnasium otherwise.
        bias: Optional bias ``(action_dim,)``.

    Returns:
        Float64 array of shape ``(n_episodes,)``: the undiscounted return of each episode.

    Raises:
        ValueError: For an unknown env id, a non-Box space, a wrong weight shape or a bad
            argument.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.rl import evaluate_linear_policy

            returns = evaluate_linear_policy([[0.0], [7.0]], n_episodes=20, seed=0)
            returns.mean()  # 93.9: near the best linear policy without bias
    """
    n_episodes = _check_positive_int(n_episodes, "n_episodes")
    max_steps = _check_positive_int(max_steps, "max_steps")
    seed = _check_seed(seed)
    resolved = _resolve_backend(backend, env_id)
    w, b = _policy_for(weights, bias, env_id)
    seeds = [seed + i for i in range(n_episodes)]
    if resolved == "fast":
        return _mountaincar.simulate_returns(w, b, seeds, max_steps)

    policy = LinearPolicy(w, b)
    returns = np.empty(n_episodes, dtype=np.float64)
    env = _make_env(env_id)
    try:
        for i, episode_seed in enumerate(seeds):
            state, _ = env.reset(seed=episode_seed)
            total = 0.0
            for _ in range(max_steps):
                state, reward, terminated, truncated, _ = env.step(policy.act(state))
                total += float(reward)
                if terminated or truncated:
                    break
            returns[i] = total
    finally:
        env.close()
    return returns


@dataclass(frozen=True, eq=False)
class Rollout:
    """One recorded episode of a linear policy.

    Attributes:
        env_id: The environment.
        seed: Its reset seed.
        states: Observations the policy acted on, shape ``(T, state_dim)``.
        actions: Raw (unclipped) actions, shape ``(T, action_dim)``.
        rewards: Rewards, shape ``(T,)``.
        final_state: Observation after the last step, shape ``(state_dim,)``.
        terminated: Whether the episode ended by termination (the goal, for MountainCar)
            rather than by a time limit.
        total_return: Sum of ``rewards``.
    """

    env_id: str
    seed: int
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    final_state: np.ndarray
    terminated: bool
    total_return: float

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return int(self.rewards.shape[0])


def rollout_episode(
    weights: ArrayLike,
    env_id: str = "MountainCarContinuous-v0",
    *,
    seed: int = 0,
    max_steps: int = 1000,
    bias: ArrayLike | None = None,
    backend: Backend = "auto",
) -> Rollout:
    """Play one episode and record states, actions and rewards.

    The episode is the one :func:`evaluate_linear_policy` plays with the same ``seed``
    (its episode 0); both backends record identical arrays for MountainCarContinuous.

    Args:
        weights: Weight matrix ``(state_dim, action_dim)`` or a flat row-major array of it.
        env_id: A gymnasium id with 1-D Box observation and action spaces.
        seed: Reset seed (non-negative).
        max_steps: Step cap.
        bias: Optional bias ``(action_dim,)``.
        backend: As in :func:`evaluate_linear_policy`.

    Returns:
        The :class:`Rollout`.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.rl import rollout_episode

            rollout = rollout_episode([0.0, 7.0], seed=0)
            rollout.length, rollout.terminated, rollout.total_return
    """
    max_steps = _check_positive_int(max_steps, "max_steps")
    seed = _check_seed(seed)
    resolved = _resolve_backend(backend, env_id)
    w, b = _policy_for(weights, bias, env_id)
    if resolved == "fast":
        states, actions, rewards, terminated = _mountaincar.simulate_episode(w, b, seed, max_steps)
        return Rollout(
            env_id=env_id,
            seed=seed,
            states=states[:-1].astype(np.float32),
            actions=actions.reshape(-1, 1),
            rewards=rewards,
            final_state=states[-1].astype(np.float32),
            terminated=terminated,
            total_return=_sequential_sum(rewards),
        )

    policy = LinearPolicy(w, b)
    env = _make_env(env_id)
    state_list: list[np.ndarray] = []
    action_list: list[np.ndarray] = []
    reward_list: list[float] = []
    terminated = False
    try:
        state, _ = env.reset(seed=seed)
        for _ in range(max_steps):
            action = policy.act(state)
            state_list.append(np.array(state))
            action_list.append(action)
            state, reward, terminated, truncated, _ = env.step(action)
            reward_list.append(float(reward))
            if terminated or truncated:
                break
    finally:
        env.close()
    rewards = np.array(reward_list, dtype=np.float64)
    return Rollout(
        env_id=env_id,
        seed=seed,
        states=np.array(state_list),
        actions=np.array(action_list, dtype=np.float64),
        rewards=rewards,
        final_state=np.array(state),
        terminated=bool(terminated),
        total_return=_sequential_sum(rewards),
    )


def _sequential_sum(values: np.ndarray) -> float:
    """Left-to-right sum, the order in which the evaluation loops add rewards."""
    total = 0.0
    for v in values.tolist():
        total += v
    return total


def render_episode(
    weights: ArrayLike,
    env_id: str = _mountaincar.ENV_ID,
    *,
    seed: int = 0,
    max_steps: int = 1000,
    bias: ArrayLike | None = None,
    frame_skip: int = 1,
) -> Iterator[np.ndarray]:
    """The frames of one episode of the linear policy, rendered by gymnasium (``rgb_array``).

    The episode is the one :func:`rollout_episode` records with the same arguments. The first
    and the last frame are always given, and every ``frame_skip``-th one between them.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.rl import render_episode

            frames = list(render_episode([0.0, 7.0], seed=0, frame_skip=10))
            frames[0].shape  # (400, 600, 3)

    Raises:
        ValueError: A bad argument (the message names it) or an environment that cannot render.
    """
    frame_skip = _check_positive_int(frame_skip, "frame_skip")
    max_steps = _check_positive_int(max_steps, "max_steps")
    seed = _check_seed(seed)
    w, b = _policy_for(weights, bias, env_id)
    # Checked above, before the first frame is asked for; the frames come from a generator.
    return _frames(LinearPolicy(w, b), env_id, seed, max_steps, frame_skip)


def _frames(
    policy: LinearPolicy, env_id: str, seed: int, max_steps: int, frame_skip: int
) -> Iterator[np.ndarray]:
    env = _make_env(env_id, render_mode="rgb_array")
    try:
        state, _ = env.reset(seed=seed)
        yield env.render()
        for step in range(1, max_steps + 1):
            state, _, terminated, truncated, _ = env.step(policy.act(state))
            done = terminated or truncated or step == max_steps
            if step % frame_skip == 0 or done:
                yield env.render()
            if done:
                break
    finally:
        env.close()
