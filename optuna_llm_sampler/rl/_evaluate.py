"""Episodes of a linear policy: through gymnasium, or exact fast paths (a compiled MountainCar
simulator, episodes side by side on unwrapped environments)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import functools
import threading
from typing import Any
from typing import Literal
from typing import TYPE_CHECKING

import numpy as np

from optuna_llm_sampler.rl import _mountaincar
from optuna_llm_sampler.rl import _swimmer
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
    """``(state_dim, action_dim)`` of ``env_id``: ``action_dim`` is the number of actions of a
    ``Discrete(n)`` action space. ValueError unless the observation space is a 1-D Box and the
    action space a 1-D Box or a ``Discrete(n)``."""
    info = _env_info(env_id)
    return info.state_dim, info.action_dim


def discrete_actions(env_id: str) -> bool:
    """Whether ``env_id`` has a ``Discrete(n)`` action space (the policy then takes the argmax of
    its ``n`` linear scores); ValueError as in :func:`env_dims`."""
    return _env_info(env_id).discrete


@dataclass(frozen=True)
class _EnvInfo:
    state_dim: int
    action_dim: int
    discrete: bool
    #: The registered ``TimeLimit`` (``None``: none), which the fast loop applies itself.
    time_limit: int | None
    #: Whether ``gymnasium.make`` adds only wrappers that change no value (the fast loop steps the
    #: unwrapped environment).
    plain_wrappers: bool


def _env_info(env_id: str) -> _EnvInfo:
    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a gymnasium id string, got {env_id!r}.")
    return _cached_env_info(env_id)


# gymnasium.make's own wrappers: they check the call order and the spaces, and cut the episode at
# the registered time limit (applied by the fast loop itself); none changes a value.
_PLAIN_WRAPPERS = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker")


@functools.cache
def _cached_env_info(env_id: str) -> _EnvInfo:
    if env_id == _mountaincar.ENV_ID:
        return _EnvInfo(
            _mountaincar.STATE_DIM, _mountaincar.ACTION_DIM, False, _mountaincar.TIME_LIMIT, True
        )
    gym = _import_gymnasium()
    env = _make_env(env_id)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        wrappers = []
        inner = env
        while isinstance(inner, gym.Wrapper):
            wrappers.append(type(inner).__name__)
            inner = inner.env
        time_limit = env.spec.max_episode_steps if env.spec is not None else None
    finally:
        env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(
            f"env_id {env_id!r} has a {type(obs_space).__name__} observation space {obs_space}; "
            "a linear policy needs a 1-D Box (continuous) observation space. Use an environment "
            "such as 'MountainCarContinuous-v0', 'Pendulum-v1' or 'CartPole-v1'."
        )
    discrete = isinstance(act_space, gym.spaces.Discrete) and int(act_space.start) == 0
    if not discrete and (not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1):
        raise ValueError(
            f"env_id {env_id!r} has a {type(act_space).__name__} action space {act_space}; a "
            "linear policy needs a 1-D Box (continuous) or a Discrete(n) action space starting "
            "at 0. Use an environment such as 'MountainCarContinuous-v0', 'Pendulum-v1' or "
            "'CartPole-v1'."
        )
    action_dim = int(act_space.n) if discrete else int(act_space.shape[0])
    return _EnvInfo(
        int(obs_space.shape[0]),
        action_dim,
        discrete,
        None if time_limit is None else int(time_limit),
        all(name in _PLAIN_WRAPPERS for name in wrappers),
    )


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
    if backend == "gymnasium":
        return backend
    if env_id == _mountaincar.ENV_ID or _env_info(env_id).plain_wrappers:
        return "fast"
    if backend == "fast":
        raise ValueError(
            f"backend='fast' steps the unwrapped environment, but gymnasium.make({env_id!r}) "
            "adds wrappers that may change values; use backend='gymnasium' (or 'auto')."
        )
    return "gymnasium"


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
    charges ``-0.1 * action**2`` on the raw action); on a ``Discrete(n)`` action space the
    action is the index of the largest of the ``n`` scores (the first on ties), as in the ProPS
    paper's code. An episode ends at termination, at truncation by the environment's own
    ``TimeLimit`` (999 steps for MountainCarContinuous), or after ``max_steps`` steps,
    whichever comes first.

    Args:
        weights: Weight matrix ``(state_dim, action_dim)``, or a flat row-major array of it
            (``[a, b]`` for MountainCar); ``action_dim`` is ``n`` for ``Discrete(n)``.
        env_id: A gymnasium id whose observation space is a 1-D Box and whose action space is
            a 1-D Box or a ``Discrete(n)``.
        n_episodes: Number of episodes.
        seed: Reset seed of the first episode (non-negative).
        max_steps: Step cap per episode.
        backend: ``"gymnasium"``: the plain loop over ``gymnasium.make(env_id)``, one episode
            after the other; ``"fast"``: the same returns, faster: the exact compiled
            MountainCarContinuous simulator (100x faster or more), and for other environments
            the episodes side by side on unwrapped environments (the policy acts on all of them
            at once; refused when ``gymnasium.make`` adds wrappers that may change values);
            ``"auto"``: fast where it is allowed, gymnasium otherwise.
        bias: Optional bias ``(action_dim,)``.

    Returns:
        Float64 array of shape ``(n_episodes,)``: the undiscounted return of each episode.

    Raises:
        ValueError: For an unknown env id, an unsupported space, a wrong weight shape or a bad
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
        if env_id == _mountaincar.ENV_ID:
            return _mountaincar.simulate_returns(w, b, seeds, max_steps)
        return _lockstep_returns(w, b, env_id, seeds, max_steps)

    policy = LinearPolicy(w, b)
    act = policy.choose if discrete_actions(env_id) else policy.act
    returns = np.empty(n_episodes, dtype=np.float64)
    env = _make_env(env_id)
    try:
        for i, episode_seed in enumerate(seeds):
            state, _ = env.reset(seed=episode_seed)
            total = 0.0
            for _ in range(max_steps):
                state, reward, terminated, truncated, _ = env.step(act(state))
                total += float(reward)
                if terminated or truncated:
                    break
            returns[i] = total
    finally:
        env.close()
    return returns


# Unwrapped environments kept between evaluations, per thread (an environment is not thread-safe)
# and per id: building a MuJoCo environment parses its model (milliseconds).
_POOL = threading.local()


def _pooled_envs(env_id: str, n: int) -> list[Any]:
    pools: dict[str, list[Any]] = getattr(_POOL, "envs", None) or {}
    _POOL.envs = pools
    envs = pools.setdefault(env_id, [])
    while len(envs) < n:
        envs.append(_make_env(env_id).unwrapped)
    return envs[:n]


def _batch_scores(states: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``LinearPolicy.act`` for a batch of states: the same float64 operations in the same order
    (an explicit sum over state rows, no BLAS), so every row equals ``act`` of that state."""
    out = states[:, 0:1] * w[0]
    for i in range(1, w.shape[0]):
        out = out + states[:, i : i + 1] * w[i]
    if b is not None:
        out = out + b
    return out


def _lockstep_returns(
    w: np.ndarray, b: np.ndarray | None, env_id: str, seeds: list[int], max_steps: int
) -> np.ndarray:
    """The episodes of the gymnasium loop, played side by side on unwrapped environments.

    Exact: the same resets, the same actions (the policy acts on all running episodes at once,
    with :func:`_batch_scores`) and the same reward sums; the registered time limit, which
    ``TimeLimit`` would apply, cuts the loop instead. Faster: one policy evaluation per step for
    all episodes, and no wrapper calls.
    """
    info = _env_info(env_id)
    limit = max_steps if info.time_limit is None else min(max_steps, info.time_limit)
    if env_id == _swimmer.ENV_ID and _swimmer.default_swimmer(_pooled_envs(env_id, 1)[0]):
        env, policy = _pooled_envs(env_id, 1)[0], LinearPolicy(w, b)
        return np.array([_swimmer.swimmer_return(env, policy, s, limit) for s in seeds])
    envs = _pooled_envs(env_id, len(seeds))
    states = [np.asarray(env.reset(seed=seed)[0]) for env, seed in zip(envs, seeds, strict=True)]
    totals = [0.0] * len(seeds)
    running = list(range(len(seeds)))
    for _ in range(limit):
        scores = _batch_scores(np.array([states[i] for i in running], dtype=np.float64), w, b)
        actions: list[Any] = np.argmax(scores, axis=1).tolist() if info.discrete else list(scores)
        still = []
        for i, action in zip(running, actions, strict=True):
            state, reward, terminated, truncated, _ = envs[i].step(action)
            totals[i] += float(reward)
            states[i] = np.asarray(state)
            if not (terminated or truncated):
                still.append(i)
        running = still
        if not running:
            break
    return np.array(totals, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Rollout:
    """One recorded episode of a linear policy.

    Attributes:
        env_id: The environment.
        seed: Its reset seed.
        states: Observations the policy acted on, shape ``(T, state_dim)``.
        actions: Raw (unclipped) actions, shape ``(T, action_dim)``; on a ``Discrete(n)``
            action space the index of the action taken, shape ``(T, 1)``.
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
    if resolved == "fast" and env_id == _mountaincar.ENV_ID:
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
    discrete = discrete_actions(env_id)
    env = _make_env(env_id)
    state_list: list[np.ndarray] = []
    action_list: list[np.ndarray] = []
    reward_list: list[float] = []
    terminated = False
    try:
        state, _ = env.reset(seed=seed)
        for _ in range(max_steps):
            action: Any = policy.choose(state) if discrete else policy.act(state)
            state_list.append(np.array(state))
            action_list.append(np.array([action], dtype=np.float64) if discrete else action)
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
    act = policy.choose if discrete_actions(env_id) else policy.act
    env = _make_env(env_id, render_mode="rgb_array")
    try:
        state, _ = env.reset(seed=seed)
        yield env.render()
        for step in range(1, max_steps + 1):
            state, _, terminated, truncated, _ = env.step(act(state))
            done = terminated or truncated or step == max_steps
            if step % frame_skip == 0 or done:
                yield env.render()
            if done:
                break
    finally:
        env.close()
