"""The linear-policy objective and re-score that ``compare`` runs on a gymnasium environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from optuna_llm_sampler.rl import MOUNTAINCAR


# Seed s plays episodes from s * EPISODE_SEED_STRIDE on, so studies of different seeds never share
# an episode (a study uses n_trials * n_eval_episodes of them: 2,000 for 100 x 20).
EPISODE_SEED_STRIDE = 1_000_000
#: Seeds of a study are below this: its episodes then stay below reset seed 2**31.
MAX_STUDY_SEED = 2**31 // EPISODE_SEED_STRIDE


def episode_seed(seed: int) -> int:
    """The first reset seed of the evaluation episodes of the study of ``seed``, in ``run``,
    ``compare`` and the benchmarks: ``seed * 1,000,000``, so seed ``s`` plays the same episodes
    everywhere and studies of different seeds never share one.

    Raises:
        ValueError: ``seed`` is not in ``[0, 2147)``.

    Example:
        >>> episode_seed(3)
        3000000
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_STUDY_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_STUDY_SEED}), got {seed!r}.")
    return seed * EPISODE_SEED_STRIDE


@dataclass(frozen=True)
class LinearPolicyFactory:
    """``factory(seed)``: the linear-policy objective of ``env_id`` for the study of ``seed``:
    fresh evaluation episodes per trial (see
    :func:`~optuna_llm_sampler.rl.linear_policy_objective`), starting at reset seed
    ``seed * 1,000,000`` so that studies of different seeds play different episodes. Picklable,
    for worker processes. Seeds must be below 2,147.

    Example:
        >>> objective = LinearPolicyFactory("Pendulum-v1", n_eval_episodes=5)(seed=0)
    """

    env_id: str = MOUNTAINCAR
    n_eval_episodes: int = 20
    max_steps: int = 1000
    low: float = -7.0
    high: float = 7.0
    bias: bool = False

    def __call__(self, seed: int) -> Callable[[optuna.Trial], float]:
        from optuna_llm_sampler.rl import linear_policy_objective

        return linear_policy_objective(
            self.env_id,
            n_eval_episodes=self.n_eval_episodes,
            max_steps=self.max_steps,
            low=self.low,
            high=self.high,
            bias=self.bias,
            seed=episode_seed(seed),
        )


@dataclass(frozen=True)
class LinearPolicyRescore:
    """``rescore(study)``: the mean return of the study's best policy on ``n_episodes`` fresh
    episodes (:func:`~optuna_llm_sampler.rl.evaluate_best`; the same episodes for every study).

    Example:
        >>> LinearPolicyRescore("MountainCarContinuous-v0")(study)  # doctest: +SKIP
        92.4
    """

    env_id: str = MOUNTAINCAR
    n_episodes: int = 100
    max_steps: int = 1000
    bias: bool = False

    def __call__(self, study: optuna.Study) -> float:
        from optuna_llm_sampler.rl import evaluate_best

        result = evaluate_best(
            study,
            n_episodes=self.n_episodes,
            env_id=self.env_id,
            max_steps=self.max_steps,
            bias=self.bias,
        )
        return result.mean
