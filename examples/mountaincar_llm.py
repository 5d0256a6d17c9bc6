"""The ProPS MountainCar tutorial, rewritten on Optuna and optuna-llm-sampler.

An LLM reads the table of (policy weights, mean episode reward) and proposes the next weights
of a linear policy ``action = a * position + b * velocity`` for MountainCarContinuous-v0.
Optuna owns the loop, the history (trials) and the storage; the LLM is the sampler.

    python examples/mountaincar_llm.py   # gpt-4o, or the embedded model offline
    python examples/mountaincar_llm.py --model gemini-2.0-flash --n-trials 100
    python examples/mountaincar_llm.py --preset guided   # steps from the best point

Then watch it, with each LLM trial's reasoning in its note:
``optuna-dashboard sqlite:///mountaincar_llm.db``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from dataclasses import fields
import os

import optuna

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler.integrations import TrialNoteCallback
from optuna_llm_sampler.rl import evaluate_best
from optuna_llm_sampler.rl import linear_policy_objective


@dataclass
class Args:
    model: str = "gpt-4o" if os.environ.get("OPENAI_API_KEY") else "local"
    """the LLM: gpt-4o, gpt-4o-mini, o3-mini, gemini-2.0-flash, local (embedded, offline)..."""
    base_url: str | None = None
    """an OpenAI-compatible server for --model (llama-server, vLLM, Ollama: docs/servers.md)"""
    preset: str = "auto"
    """what the LLM answers with: "tutorial" (the next point, the tutorial's loop), "guided"
    (two candidate steps from the best point, reflected at the box, with hints), or "auto"
    (guided for the embedded model, tutorial for the others)"""
    n_trials: int = 400
    """trials in all: the tutorial's 400 episodes"""
    n_startup_trials: int = 20
    """random trials before the LLM is asked: the tutorial's warmup episodes"""
    n_eval_episodes: int = 20
    """episodes averaged per trial (fresh episodes every trial)"""
    search_std: float = 1.0
    """the exploration step the prompt suggests"""
    low: float = -7.0
    """lower bound of both weights, as the tutorial's prompt says"""
    high: float = 7.0
    """upper bound of both weights"""
    seed: int = 0
    """seeds the startup trials and the evaluation episodes"""
    storage: str = "sqlite:///mountaincar_llm.db"
    """where the study lives; open it with optuna-dashboard"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        flag = "--" + f.name.replace("_", "-")
        kind = float if f.type == "float" else int if f.type == "int" else str
        parser.add_argument(flag, type=kind, default=f.default)
    return Args(**vars(parser.parse_args()))


if __name__ == "__main__":
    args = parse_args()
    run_name = f"mountaincar-{args.model.replace(':', '_').replace('/', '_')}-seed{args.seed}"

    # --- the objective: mean return of the linear policy over fresh episodes ---
    objective = linear_policy_objective(
        "MountainCarContinuous-v0",
        n_eval_episodes=args.n_eval_episodes,
        low=args.low,
        high=args.high,
        seed=args.seed,
    )

    # --- the sampler: the tutorial's prompt; the preset says what the LLM answers with ---
    sampler = LLMSampler(
        model=args.model,
        base_url=args.base_url,
        preset=args.preset,
        prompt=PromptOptions(
            search_std=args.search_std,
            expected_optimum=50,  # the tutorial's hint
            budget=args.n_trials,
        ),
        n_startup_trials=args.n_startup_trials,
        seed=args.seed,
    )
    print(f"the LLM answers with {sampler.proposal}")

    # --- the loop: Optuna's, resumable by name; each LLM trial gets a dashboard note ---
    study = optuna.create_study(
        study_name=run_name,
        storage=args.storage,
        direction="maximize",
        sampler=sampler,
        load_if_exists=True,
    )
    study.optimize(
        objective,
        n_trials=max(0, args.n_trials - len(study.trials)),
        callbacks=[TrialNoteCallback()],
    )

    # --- what came out ---
    best = study.best_trial
    record = get_llm_record(best)
    rescored = evaluate_best(study, n_episodes=100)
    usage = llm_usage(study)
    print(f"best weights a={best.params['a']:.3f}, b={best.params['b']:.3f}: {best.value:.1f}")
    print(f"re-scored on 100 fresh episodes: {rescored.mean:.1f} ± {rescored.std:.1f}")
    if record is not None:
        print(f"the LLM's reason for it: {record.reasoning}")
    print(
        f"{usage.proposals} LLM proposals, {usage.fallbacks} fallbacks, "
        f"{usage.total_tokens} tokens, {usage.latency_s:.0f} s waiting for the LLM"
    )
