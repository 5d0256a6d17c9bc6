"""An LLM tunes a linear policy with bias for Pendulum-v1 (three observations, one action).

Pendulum has no fast simulator here: episodes run through gymnasium itself, so each trial is
slower than MountainCar's. The policy is ``torque = [cos θ, sin θ, θ̇] @ W + bias``: four
parameters (``a``, ``b``, ``c``, ``d``), so the prompt lists all four and the LLM proposes all at
once. Rewards are negative; closer to 0 is better.

    python examples/pendulum_llm.py --model gpt-4o-mini --n-trials 60
"""

from __future__ import annotations

import argparse
import os

import optuna

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler.rl import evaluate_best
from optuna_llm_sampler.rl import linear_policy_objective


ENV = "Pendulum-v1"
TASK = (
    "f(a,b,c,d) is the mean episode reward of a linear controller swinging up a pendulum: "
    "torque = a*cos(angle) + b*sin(angle) + c*angular_velocity + d, clipped to [-2, 2]. "
    "Rewards are negative (angle error, speed and torque are penalized); 0 is perfect."
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="gpt-4o" if os.environ.get("OPENAI_API_KEY") else "local"
    )
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--n-eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    objective = linear_policy_objective(
        ENV, n_eval_episodes=args.n_eval_episodes, low=-5.0, high=5.0, bias=True, seed=args.seed
    )
    sampler = LLMSampler(
        model=args.model,
        base_url=args.base_url,
        # what the prompt says: smaller steps than the default 1.0, and what a, b, c, d mean
        prompt=PromptOptions(search_std=0.5, task_description=TASK),
        # the LLM answers with the next point; the prompt ends with the best point so far and
        # each parameter's least explored slice of its range
        proposal=AbsolutePoints(hints=True),
        n_startup_trials=10,
        seed=args.seed,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=args.n_trials)

    rescored = evaluate_best(study, env_id=ENV, n_episodes=20, bias=True)
    print(f"best parameters {study.best_params}: {study.best_value:.1f}")
    print(f"re-scored on 20 fresh episodes: {rescored.mean:.1f} ± {rescored.std:.1f}")
    print(f"LLM: {llm_usage(study)}")
