"""Optuna objectives over linear-policy weights, and re-scoring the best trial."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import string
from typing import TYPE_CHECKING

import numpy as np

from optuna_llm_sampler.rl._evaluate import _check_positive_int
from optuna_llm_sampler.rl._evaluate import _check_seed
from optuna_llm_sampler.rl._evaluate import _resolve_backend
from optuna_llm_sampler.rl._evaluate import Backend
from optuna_llm_sampler.rl._evaluate import env_dims
from optuna_llm_sampler.rl._evaluate import evaluate_linear_policy
from optuna_llm_sampler.rl._policy import LinearPolicy


if TYPE_CHECKING:
    import optuna


#: Training seeds are drawn below this bound (see :func:`linear_policy_objective`).
MAX_TRAINING_SEED = 2**31
#: First reset seed of :func:`evaluate_best`'s default episodes: above every training seed.
EVALUATION_SEED = 2**32


def default_param_names(
    env_id: str = "MountainCarContinuous-v0", *, bias: bool = False
) -> tuple[str, ...]:
    """Parameter names of the weights (row-major), then of the bias.

    ``a``, ``b``, ``c``, ... as in the ProPS tutorial while they fit in the alphabet, else
    ``w{row}_{column}`` and ``bias{column}``.

    Example:
        .. code-block:: python

            default_param_names()  # ('a', 'b')
            default_param_names("Pendulum-v1", bias=True)  # ('a', 'b', 'c', 'd')
    """
    state_dim, action_dim = env_dims(env_id)
    n = state_dim * action_dim + (action_dim if bias else 0)
    if n <= len(string.ascii_lowercase):
        return tuple(string.ascii_lowercase[:n])
    names = [f"w{i}_{j}" for i in range(state_dim) for j in range(action_dim)]
    if bias:
        names += [f"bias{j}" for j in range(action_dim)]
    return tuple(names)


def _param_names(env_id: str, param_names: Sequence[str] | None, bias: bool) -> tuple[str, ...]:
    expected = default_param_names(env_id, bias=bias)
    if param_names is None:
        return expected
    if isinstance(param_names, str):
        raise ValueError(f"param_names must be a sequence of names, got {param_names!r}.")
    names = tuple(param_names)
    if len(names) != len(expected) or len(set(names)) != len(names):
        what = "weights and bias" if bias else "weights"
        raise ValueError(
            f"param_names must hold {len(expected)} distinct names for the {what} of "
            f"{env_id!r}, got {list(names)}."
        )
    return names


def policy_from_params(
    params: Mapping[str, float],
    env_id: str = "MountainCarContinuous-v0",
    *,
    param_names: Sequence[str] | None = None,
    bias: bool = False,
) -> LinearPolicy:
    """The :class:`LinearPolicy` that a trial's ``params`` describe.

    Args:
        params: Trial parameters, e.g. ``study.best_params``.
        env_id: The environment, which fixes the weight shape.
        param_names: Names as given to :func:`linear_policy_objective`.
        bias: Whether the objective had a bias.

    Example:
        .. code-block:: python

            policy_from_params({"a": -0.3, "b": 6.0}).weights  # [[-0.3], [6.0]]
    """
    state_dim, action_dim = env_dims(env_id)
    names = _param_names(env_id, param_names, bias)
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(
            f"params lack {missing} (have {sorted(params)}); pass the param_names and bias "
            "that the objective used."
        )
    values = np.array([float(params[n]) for n in names], dtype=np.float64)
    n_weights = state_dim * action_dim
    weights = values[:n_weights].reshape(state_dim, action_dim)
    return LinearPolicy(weights, values[n_weights:] if bias else None)


def weights_from_params(
    params: Mapping[str, float],
    env_id: str = "MountainCarContinuous-v0",
    *,
    param_names: Sequence[str] | None = None,
    bias: bool = False,
) -> np.ndarray:
    """The weight matrix ``(state_dim, action_dim)`` that a trial's ``params`` describe.

    The weights are read row-major from ``param_names`` (``a``, ``b``, ... by default); with
    ``bias``, the last ``action_dim`` names are the bias, which :func:`policy_from_params`
    returns too.

    Example:
        .. code-block:: python

            weights_from_params(study.best_params)  # array([[-0.3], [ 6. ]])
    """
    return np.array(policy_from_params(params, env_id, param_names=param_names, bias=bias).weights)


class _LinearPolicyObjective:
    """The callable that :func:`linear_policy_objective` returns (picklable)."""

    def __init__(
        self,
        env_id: str,
        n_eval_episodes: int,
        max_steps: int,
        low: float,
        high: float,
        param_names: tuple[str, ...],
        bias: bool,
        seed: int,
        fixed_episodes: bool,
        backend: Backend,
    ) -> None:
        self._env_id = env_id
        self._n_eval_episodes = n_eval_episodes
        self._max_steps = max_steps
        self._low = low
        self._high = high
        self._param_names = param_names
        self._bias = bias
        self._seed = seed
        self._fixed_episodes = fixed_episodes
        self._backend = backend

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the suggested parameters: weights row-major, then the bias."""
        return self._param_names

    def episode_seed(self, trial_number: int) -> int:
        """Reset seed of the first episode of trial ``trial_number``."""
        if self._fixed_episodes:
            return self._seed
        return self._seed + trial_number * self._n_eval_episodes

    def __call__(self, trial: optuna.Trial) -> float:
        params = {n: trial.suggest_float(n, self._low, self._high) for n in self._param_names}
        policy = policy_from_params(
            params, self._env_id, param_names=self._param_names, bias=self._bias
        )
        returns = evaluate_linear_policy(
            policy.weights,
            self._env_id,
            n_episodes=self._n_eval_episodes,
            seed=self.episode_seed(trial.number),
            max_steps=self._max_steps,
            backend=self._backend,
            bias=policy.bias,
        )
        return float(np.mean(returns))

    def __repr__(self) -> str:
        return (
            f"linear_policy_objective({self._env_id!r}, n_eval_episodes={self._n_eval_episodes}, "
            f"params={list(self._param_names)}, low={self._low}, high={self._high}, "
            f"seed={self._seed}, fixed_episodes={self._fixed_episodes})"
        )


def linear_policy_objective(
    env_id: str = "MountainCarContinuous-v0",
    *,
    n_eval_episodes: int = 20,
    max_steps: int = 1000,
    low: float = -7.0,
    high: float = 7.0,
    param_names: Sequence[str] | None = None,
    bias: bool = False,
    seed: int | None = None,
    fixed_episodes: bool = False,
    backend: Backend = "auto",
) -> Callable[[optuna.Trial], float]:
    """An Optuna objective: the mean return of a linear policy whose weights the trial suggests.

    Each weight is one ``trial.suggest_float(name, low, high)``; the weight matrix
    ``(state_dim, action_dim)`` is read row-major from the names (``a``, ``b`` for
    MountainCarContinuous, as in the ProPS tutorial), and with ``bias`` further names follow
    for the bias. The value is the mean return over ``n_eval_episodes`` episodes (see
    :func:`evaluate_linear_policy`). Nothing else is written to the trial.

    Episode seeds. By default every trial plays fresh episodes: trial number ``k`` uses reset
    seeds ``seed + k * n_eval_episodes + i`` for ``i < n_eval_episodes``. A study is thus
    reproducible (same ``seed``, same sampler seed, same values), yet no two trials share a start
    state, so a lucky draw of easy starts cannot be exploited by re-proposing nearby weights. The
    price is noise (a 20-episode mean of a good MountainCar policy varies by about +-6, since
    some start states defeat it): compare policies with :func:`evaluate_best`, not by their best
    value. With ``fixed_episodes=True`` every trial plays the same episodes ``seed + i``: a
    deterministic function of the weights, less noisy between trials but biased toward those
    start states. ``seed=None`` draws ``seed`` at random
    once, when the objective is created (Optuna's convention for ``seed=None``).

    Training seeds stay below ``2**32`` (``seed < 2**31`` and fewer than ``2**31`` episodes), so
    the default evaluation episodes of :func:`evaluate_best`, from seed ``2**32``, are disjoint.

    Args:
        env_id: A gymnasium id with 1-D Box observation and action spaces.
        n_eval_episodes: Episodes per trial.
        max_steps: Step cap per episode (the environment's own time limit applies too).
        low: Lower bound of every weight (and bias).
        high: Upper bound of every weight (and bias).
        param_names: Parameter names, weights row-major then bias; default ``a``, ``b``, ...
        bias: Whether to add a bias term per action.
        seed: Base reset seed in ``[0, 2**31)``, or ``None`` for a random one.
        fixed_episodes: Play the same episodes in every trial instead of fresh ones.
        backend: ``"auto"``, ``"fast"`` or ``"gymnasium"``, as in :func:`evaluate_linear_policy`.

    Returns:
        ``objective(trial) -> float``, to pass to ``study.optimize``; it also has a
        ``param_names`` attribute.

    Example:
        .. code-block:: python

            import optuna
            from optuna_llm_sampler.rl import evaluate_best, linear_policy_objective

            study = optuna.create_study(direction="maximize")
            study.optimize(linear_policy_objective(seed=0), n_trials=50)
            print(evaluate_best(study).mean)
    """
    names = _param_names(env_id, param_names, bias)
    n_eval_episodes = _check_positive_int(n_eval_episodes, "n_eval_episodes")
    max_steps = _check_positive_int(max_steps, "max_steps")
    _resolve_backend(backend, env_id)
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"low must be below high (both finite), got low={low}, high={high}.")
    if seed is None:
        seed = int(np.random.default_rng().integers(MAX_TRAINING_SEED))
    seed = _check_seed(seed)
    if seed >= MAX_TRAINING_SEED:
        raise ValueError(
            "seed must be below 2**31 (to keep training and evaluation episodes apart), "
            f"got {seed}."
        )
    return _LinearPolicyObjective(
        env_id,
        n_eval_episodes,
        max_steps,
        low,
        high,
        names,
        bool(bias),
        seed,
        bool(fixed_episodes),
        backend,
    )


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """The best trial's policy re-scored on fresh episodes.

    Attributes:
        mean: Mean return over the fresh episodes.
        std: Standard deviation of those returns (``ddof=0``).
        returns: The returns, one per episode.
        params: The best trial's parameters.
        trial_number: The best trial's number.
        training_value: Its value during optimization (typically above ``mean``: the maximum of
            many noisy estimates is biased upward).
    """

    mean: float
    std: float
    returns: np.ndarray
    params: dict[str, float]
    trial_number: int
    training_value: float


def evaluate_best(
    study: optuna.Study,
    *,
    n_episodes: int = 100,
    seed: int = EVALUATION_SEED,
    env_id: str = "MountainCarContinuous-v0",
    max_steps: int = 1000,
    param_names: Sequence[str] | None = None,
    bias: bool = False,
    backend: Backend = "auto",
) -> EvaluationResult:
    """Re-score the best trial's policy on ``n_episodes`` fresh episodes.

    The best value a study reports is the maximum of noisy estimates and overstates the policy
    (by 5-10 on MountainCar with 20-episode trials). This plays the best trial's weights again on
    episodes with reset seeds ``seed + i``; the default ``seed=2**32`` lies above every training
    seed of :func:`linear_policy_objective` (which stay below ``2**32``), so no episode seen
    during optimization is replayed.

    Args:
        study: A finished single-objective study (``direction="maximize"``).
        n_episodes: Number of fresh episodes.
        seed: Reset seed of the first one.
        env_id: The environment of the objective.
        max_steps: Step cap, as in the objective.
        param_names: As given to the objective.
        bias: As given to the objective.
        backend: As in :func:`evaluate_linear_policy`.

    Returns:
        The :class:`EvaluationResult`.

    Example:
        .. code-block:: python

            result = evaluate_best(study, n_episodes=100)
            print(f"{result.mean:.1f} +- {result.std:.1f} (seen: {result.training_value:.1f})")
    """
    import optuna

    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(
            "study must be a single-objective study with direction='maximize' (returns are "
            f"maximized), got directions {[d.name for d in study.directions]}."
        )
    best = study.best_trial
    policy = policy_from_params(best.params, env_id, param_names=param_names, bias=bias)
    returns = evaluate_linear_policy(
        policy.weights,
        env_id,
        n_episodes=n_episodes,
        seed=seed,
        max_steps=max_steps,
        backend=backend,
        bias=policy.bias,
    )
    return EvaluationResult(
        mean=float(np.mean(returns)),
        std=float(np.std(returns)),
        returns=returns,
        params=dict(best.params),
        trial_number=best.number,
        training_value=float(best.value) if best.value is not None else float("nan"),
    )
