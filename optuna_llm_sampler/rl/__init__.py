"""Reinforcement-learning objectives: linear policies on gymnasium environments.

The ProPS tutorial's problem as an Optuna objective: a linear policy ``action = state @ W``
on ``MountainCarContinuous-v0`` (or any gymnasium environment with a Box observation space and
a Box or ``Discrete(n)`` action space: the argmax of the linear scores, as in the ProPS paper),
scored by its mean return, with an exact compiled simulator of MountainCarContinuous that returns
the same values as gymnasium about 100x faster and, for other environments, an exact loop that
plays the episodes side by side (benchmarks/objective_speed.py). :data:`PAPER_TASKS` holds the
ProPS paper's tasks and settings (MuJoCo ones need the ``mujoco`` extra).

Example:
    .. code-block:: python

        import optuna
        from optuna_llm_sampler.rl import evaluate_best
        from optuna_llm_sampler.rl import linear_policy_objective

        study = optuna.create_study(direction="maximize")
        study.optimize(linear_policy_objective(seed=0), n_trials=100)
        print(study.best_params, evaluate_best(study).mean)

Needs the ``rl`` extra (``pip install ".[rl]"`` from the checkout): gymnasium for environments
other than MountainCarContinuous, numba for the fast simulator (without numba it runs as plain
Python, slower but with the same results).
"""

from optuna_llm_sampler.rl._evaluate import discrete_actions
from optuna_llm_sampler.rl._evaluate import evaluate_linear_policy
from optuna_llm_sampler.rl._evaluate import render_episode
from optuna_llm_sampler.rl._evaluate import Rollout
from optuna_llm_sampler.rl._evaluate import rollout_episode
from optuna_llm_sampler.rl._mountaincar import ENV_ID as MOUNTAINCAR
from optuna_llm_sampler.rl._objective import default_param_names
from optuna_llm_sampler.rl._objective import evaluate_best
from optuna_llm_sampler.rl._objective import EVALUATION_SEED
from optuna_llm_sampler.rl._objective import EvaluationResult
from optuna_llm_sampler.rl._objective import linear_policy_objective
from optuna_llm_sampler.rl._objective import policy_from_params
from optuna_llm_sampler.rl._objective import weights_from_params
from optuna_llm_sampler.rl._policy import LinearPolicy
from optuna_llm_sampler.rl._tasks import MOUNTAINCAR_TASK
from optuna_llm_sampler.rl._tasks import PAPER_TASKS
from optuna_llm_sampler.rl._tasks import PaperTask
from optuna_llm_sampler.rl._tasks import TASK_DESCRIPTIONS
from optuna_llm_sampler.rl._warmup import add_warmup_trials
from optuna_llm_sampler.rl._warmup import load_warmup_folder
from optuna_llm_sampler.rl._warmup import read_warmup_file
from optuna_llm_sampler.rl._warmup import write_warmup_file


__all__ = [
    "EVALUATION_SEED",
    "EvaluationResult",
    "LinearPolicy",
    "MOUNTAINCAR",
    "MOUNTAINCAR_TASK",
    "Rollout",
    "PAPER_TASKS",
    "PaperTask",
    "add_warmup_trials",
    "default_param_names",
    "discrete_actions",
    "evaluate_best",
    "evaluate_linear_policy",
    "linear_policy_objective",
    "load_warmup_folder",
    "policy_from_params",
    "read_warmup_file",
    "render_episode",
    "rollout_episode",
    "TASK_DESCRIPTIONS",
    "weights_from_params",
    "write_warmup_file",
]
