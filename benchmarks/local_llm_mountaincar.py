"""Is the embedded model worth running? LLM sampler set-ups on MountainCar, side by side.

Each set-up runs ``--seeds`` studies of ``--n-trials`` trials (20 startup + LLM proposals) on
MountainCarContinuous-v0 with fresh evaluation episodes per trial, then re-scores each study's
best weights on 100 fresh episodes. Printed per set-up: the median best re-scored, the median
best value seen, the share of post-startup trials that were the LLM's own proposals (not
fallbacks), exact repeats proposed, the largest ``b`` the LLM proposed, and seconds per call;
each seed's line also counts the own proposals clipped to the box. Random search is run on the
same seeds for reference.

Set-ups:
  tutorial  the tutorial's loop: 20 warmup points from its ``initialize_policy`` (uniform in
            [-3, 3], one decimal), its prompt with full-precision numbers, exact repeats re-asked.
  default   LLMSampler's defaults: random startup over the whole [-7, 7] box, lean CSV history.
  guided    default + ``hints=True`` (best point, least explored slices) + ``min_distance=0.25``
            + the task described in the prompt (ProPS+).
  candidates  guided + ``n_candidates=3``: three proposals per call; the one with the highest
            expected improvement under a small Gaussian-process model of the history is
            evaluated.
  steps     candidates + ``steps_from_best=True``: the LLM answers with changes to the best
            point so far instead of absolute values; the prompt lists the changes already
            tried from the best (``n_tried_changes=8``).
  steps_untried  steps without that list (``n_tried_changes=0``).
  steps_clip  steps with ``out_of_range="clip"`` (a change past a bound stops at the bound;
            counted in "clipped") and ``min_distance=0.1`` (the model's deliberate small steps).
            What ``run --guidance auto`` uses.
  steps_widen  steps_clip with ``widen_steps_after=5``: the suggested step doubles for every 5
            trials without a new best (a plateau such as the do-nothing policy's reward of 0).
  candidates6  the same as candidates with six proposals per call.

Run: ``python benchmarks/local_llm_mountaincar.py --setups tutorial,default,guided --seeds 3``
(the embedded model needs ``pip install "optuna-llm-sampler[local,rl]"``; 7-19 s a call, 7-19
minutes a study). ``--first-seed`` continues a measurement on further seeds; ``--storage`` keeps
the studies for a look at every proposal (``get_llm_record``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import optuna

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.rl import evaluate_best
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import MOUNTAINCAR_TASK


_GUIDED: dict[str, Any] = {
    "hints": True,
    "min_distance": 0.25,
    "task_description": MOUNTAINCAR_TASK,
}
_CANDIDATES = {**_GUIDED, "n_candidates": 3}
_STEPS = {**_CANDIDATES, "steps_from_best": True}
_STEPS_CLIP = {**_STEPS, "min_distance": 0.1, "out_of_range": "clip"}

SETUPS: dict[str, dict[str, Any]] = {
    "tutorial": {"history_style": "tutorial", "precision": None},
    "default": {},
    "guided": _GUIDED,
    "candidates": _CANDIDATES,
    "steps": _STEPS,
    # "steps" before the prompt listed the changes tried from the best
    "steps_untried": {**_STEPS, "n_tried_changes": 0},
    "steps_clip": _STEPS_CLIP,
    "steps_widen": {**_STEPS_CLIP, "widen_steps_after": 5},
    "candidates6": {**_CANDIDATES, "n_candidates": 6},
}


def tutorial_warmup(seed: int, n: int) -> list[dict[str, float]]:
    """The tutorial's ``initialize_policy``: ``round((rand(2, 1) - 0.5) * 6, 1)``."""
    rng = np.random.default_rng(seed)
    return [{"a": float(a), "b": float(b)} for a, b in np.round((rng.random((n, 2)) - 0.5) * 6, 1)]


def run_one(
    setup: str, seed: int, n_trials: int, client: Any, storage: str | None = None
) -> dict[str, float]:
    options = dict(SETUPS.get(setup, {}))
    sampler: optuna.samplers.BaseSampler
    if setup == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = LLMSampler(
            model=client,
            n_startup_trials=20,
            search_std=1.0,
            expected_optimum=50,
            budget=n_trials,
            seed=seed,
            dashboard_notes=False,
            **options,
        )
    study = optuna.create_study(
        direction="maximize",
        sampler=sampler,
        storage=storage,
        study_name=f"{setup}-seed{seed}-{time.strftime('%Y%m%dT%H%M%S')}",
    )
    if setup == "tutorial":
        for params in tutorial_warmup(seed, 20):
            study.enqueue_trial(params)
    calls_before = time.perf_counter()
    study.optimize(linear_policy_objective(seed=seed), n_trials=n_trials)
    elapsed = time.perf_counter() - calls_before
    result = evaluate_best(study, n_episodes=100)
    usage = llm_usage(study)
    proposals = [get_llm_record(t) for t in study.trials]
    own_records = [r for r in proposals if r is not None and r.fallback is None]
    own = [r.proposal for r in own_records]
    repeats = sum(
        "was already evaluated" in m.content or "being evaluated" in m.content
        for r in proposals
        if r is not None
        for m in r.messages
        if m.role == "user"
    )
    return {
        "rescored": result.mean,
        "best_seen": study.best_value,
        "share": usage.proposal_share if usage.llm_trials else float("nan"),
        "repeats": repeats,
        "clipped": sum(bool(r.clipped) for r in own_records),
        "max_b": max((p["b"] for p in own), default=float("nan")),
        "s_per_call": usage.latency_s / usage.calls if usage.calls else float("nan"),
        "minutes": elapsed / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="random,tutorial,default,guided,candidates")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--model", default="local", help="model string for the LLM set-ups")
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.7, help="of the local model")
    parser.add_argument("--storage", help="keep the studies, e.g. sqlite:///bench.db")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from optuna_llm_sampler import create_client

    client = None
    setups = args.setups.split(",")
    if any(s != "random" for s in setups):
        options: dict[str, Any] = {}
        if args.model.startswith("local"):
            options = {"n_threads": args.n_threads, "temperature": args.temperature}
        client = create_client(args.model, **options)
    print(f"{args.seeds} seeds x {args.n_trials} trials (20 startup), model {args.model}")
    header = (
        f"{'setup':>9} | {'rescored':>8} | {'best seen':>9} | {'LLM share':>9} | "
        f"{'repeats':>7} | {'max b':>6} | {'s/call':>6}"
    )
    print(header)
    print("-" * len(header))
    for setup in setups:
        rows = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.append(run_one(setup, seed, args.n_trials, client, args.storage))
            print(f"  ({setup} seed {seed} done: {rows[-1]})", flush=True)

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        print(
            f"{setup:>9} | {med('rescored'):8.1f} | {med('best_seen'):9.1f} | "
            f"{med('share'):9.0%} | {med('repeats'):7.0f} | {med('max_b'):6.2f} | "
            f"{med('s_per_call'):6.2f}",
            flush=True,
        )
        for seed, r in enumerate(rows, start=args.first_seed):
            print(f"          seed {seed}: " + ", ".join(f"{k}={v:.3g}" for k, v in r.items()))


if __name__ == "__main__":
    main()
