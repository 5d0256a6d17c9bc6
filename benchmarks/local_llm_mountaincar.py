"""Is the embedded model worth running? LLM sampler set-ups on MountainCar, side by side.

Each set-up runs ``--seeds`` studies of ``--n-trials`` trials (20 startup + LLM proposals) on
MountainCarContinuous-v0 with fresh evaluation episodes per trial, then re-scores each study's
best weights on 100 fresh episodes. Printed per set-up: the median best re-scored, the median
best value seen, the share of post-startup trials that were the LLM's own proposals (not
fallbacks), exact repeats proposed, the largest ``b`` the LLM proposed, and seconds per call;
each seed's line also counts the own proposals clipped to the box. Random search is run on the
same seeds for reference.

Set-ups (each a dict of the sampler's option objects; every set-up gives its proposal
explicitly, so ``preset`` plays no part, and the prompt's ``budget`` is ``--n-trials``):
  tutorial  the tutorial's loop: 20 warmup points from its ``initialize_policy`` (uniform in
            [-3, 3], one decimal), its prompt with full-precision numbers (``precision=None``,
            ``HistoryOptions(style="tutorial")``), exact repeats re-asked.
  default   the library's defaults for a remote model (``PRESETS["tutorial"]``, i.e.
            ``AbsolutePoints()``): random startup over the whole [-7, 7] box, lean CSV history.
  guided    default + ``hints=True`` (best point, least explored slices) + ``min_distance=0.25``
            + the task described in the prompt (ProPS+).
  candidates  guided + ``n_candidates=3``: three proposals per call; the one with the highest
            expected improvement under a small Gaussian-process model of the history is
            evaluated.
  steps     candidates as ``StepsFromBest``: the LLM answers with changes to the best point so
            far instead of absolute values; the prompt lists the changes already tried from the
            best (``n_tried_changes=8``).
  steps_untried  steps without that list (``n_tried_changes=0``).
  steps_clip  exactly the library's ``PRESETS["guided"]`` proposal plus the MountainCar task
            description (``MOUNTAINCAR_TASK``): steps with ``out_of_range="clip"`` (a change past
            a bound stops at the bound; counted in "clipped") and ``min_distance=0.1`` (the
            model's deliberate small steps). What ``preset="auto"`` gives the embedded model.
  steps_widen  steps_clip with ``widen_after=5``: the suggested step doubles for every 5 trials
            without a new best (a plateau such as the do-nothing policy's reward of 0).
  candidates6  the same as candidates with six proposals per call.
  advised   ``preset="advised"``: Optuna's GPSampler(seed) in control, the LLM proposing 30 % of
            the trials after GP's own 10 startup trials with the guided proposal and the task
            description. ``advised_tpe`` and ``advised_cmaes``: the same with TPESampler and
            CmaEsSampler as the base. Compare them with ``gp``, ``tpe`` and ``cmaes``, Optuna's
            samplers alone on the same seeds (the same startup points).

Seed ``s`` means what it means in ``run`` and ``compare``: every LLM set-up but the advised ones
samples its startup trials (and fallbacks) with ``startup_sampler(s)``, as random search does, so
that on each seed the LLM's 20 startup trials are random search's first 20; the advised ones start
from their base sampler's own startup, as it does alone. All play the episodes from
``episode_seed(s)``.

The control: ``--model control`` (or its older name ``random-changes``) replaces the LLM by
:class:`~optuna_llm_sampler.RandomProposer`, which answers the same JSON schema with random values
of the kind the set-up asks for: each ``change_x`` drawn from N(0, 1) (the prompt's
``search_std``) and rounded to 0.1, each absolute value uniform in its range, as many candidates as
asked. A set-up's LLM figure says something only beside this control's (``compare --samplers
llm,llm-control`` gives the same pair with paired statistics).

Run: ``python benchmarks/local_llm_mountaincar.py --setups tutorial,default,guided --seeds 3``
(the embedded model needs ``pip install "optuna-llm-sampler[local,rl]"``; 7-19 s a call, 7-19
minutes a study). ``--first-seed`` continues a measurement on further seeds; ``--storage`` keeps
the studies for a look at every proposal (``get_llm_record``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import statistics
import time
from typing import Any

import numpy as np
import optuna

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import RandomProposer
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._advice import make_base_sampler
from optuna_llm_sampler.app._compare_objectives import episode_seed
from optuna_llm_sampler.app._named_samplers import startup_sampler
from optuna_llm_sampler.providers import create_client
from optuna_llm_sampler.rl import evaluate_best
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import MOUNTAINCAR_TASK


# The prompt of every set-up: the tutorial's step and hint (its budget is set per run).
_PROMPT = PromptOptions(search_std=1.0, expected_optimum=50)
_TASK = replace(_PROMPT, task_description=MOUNTAINCAR_TASK)

_GUIDED = AbsolutePoints(hints=True, min_distance=0.25)
_CANDIDATES = replace(_GUIDED, n_candidates=3)
_STEPS = StepsFromBest(n_candidates=3, min_distance=0.25, hints=True)  # candidates, as steps
# = replace(_STEPS, min_distance=0.1, out_of_range="clip", stall_after=10)
_STEPS_CLIP = PRESETS["guided"].proposal

SETUPS: dict[str, dict[str, Any]] = {
    "tutorial": {
        "prompt": replace(_PROMPT, precision=None),
        "history": HistoryOptions(style="tutorial"),
        "proposal": PRESETS["tutorial"].proposal,
    },
    "default": {"prompt": _PROMPT, "proposal": PRESETS["tutorial"].proposal},
    "guided": {"prompt": _TASK, "proposal": _GUIDED},
    "candidates": {"prompt": _TASK, "proposal": _CANDIDATES},
    "steps": {"prompt": _TASK, "proposal": _STEPS},
    # "steps" before the prompt listed the changes tried from the best
    "steps_untried": {"prompt": _TASK, "proposal": replace(_STEPS, n_tried_changes=0)},
    "steps_clip": {"prompt": _TASK, "proposal": _STEPS_CLIP},
    "steps_widen": {"prompt": _TASK, "proposal": replace(_STEPS_CLIP, widen_after=5)},
    "candidates6": {"prompt": _TASK, "proposal": replace(_CANDIDATES, n_candidates=6)},
    "advised": {"prompt": _TASK, "preset": "advised"},
    "advised_tpe": {"prompt": _TASK, "preset": "advised", "base_sampler": "tpe"},
    "advised_cmaes": {"prompt": _TASK, "preset": "advised", "base_sampler": "cmaes"},
}
#: Optuna's samplers alone, the references of the advised set-ups.
OPTUNA_SAMPLERS = ("random", "gp", "tpe", "cmaes")


#: The model names of the no-LLM control (``random-changes``: its name in older results).
CONTROL_MODELS = ("control", "random-changes")


def random_changes(seed: int, scale: float = 1.0) -> RandomProposer:
    """The no-LLM control: answers the sampler's JSON schema with random values of its kind."""
    return RandomProposer(seed=seed, search_std=scale, model="random-changes")


def tutorial_warmup(seed: int, n: int) -> list[dict[str, float]]:
    """The tutorial's ``initialize_policy``: ``round((rand(2, 1) - 0.5) * 6, 1)``."""
    rng = np.random.default_rng(seed)
    return [{"a": float(a), "b": float(b)} for a, b in np.round((rng.random((n, 2)) - 0.5) * 6, 1)]


def run_one(
    setup: str, seed: int, n_trials: int, client: Any, storage: str | None = None
) -> dict[str, float]:
    sampler: optuna.samplers.BaseSampler
    if setup == "random":
        sampler = startup_sampler(seed)
    elif setup in OPTUNA_SAMPLERS:
        sampler = make_base_sampler(setup, seed=seed)
    elif SETUPS[setup].get("preset") == "advised":
        options = dict(SETUPS[setup])
        options["prompt"] = replace(options["prompt"], budget=n_trials)
        sampler = LLMSampler(model=client, seed=seed, **options)  # the base's own startup
    else:
        options = dict(SETUPS[setup])
        options["prompt"] = replace(options["prompt"], budget=n_trials)
        sampler = LLMSampler(
            model=client,
            n_startup_trials=20,
            # random search's stream: the startup trials are random search's first 20
            independent_sampler=startup_sampler(seed),
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
    study.optimize(linear_policy_objective(seed=episode_seed(seed)), n_trials=n_trials)
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
    reached = [t.number + 1 for t in study.trials if t.value is not None and t.value >= 90]
    return {
        "rescored": result.mean,
        "trials_to_90": min(reached, default=float("nan")),
        "best_seen": study.best_value,
        "share": usage.proposal_share if usage.llm_trials else float("nan"),
        "llm_trials": usage.llm_trials,
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
    parser.add_argument(
        "--model",
        default="local",
        help="model string for the LLM set-ups, or control (random-changes) for the no-LLM "
        "control",
    )
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.7, help="of the local model")
    parser.add_argument("--storage", help="keep the studies, e.g. sqlite:///bench.db")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    client = None
    setups = args.setups.split(",")
    unknown = [s for s in setups if s not in OPTUNA_SAMPLERS and s not in SETUPS]
    if unknown:
        parser.error(
            f"unknown set-ups {unknown}; known: {', '.join(OPTUNA_SAMPLERS + tuple(SETUPS))}"
        )
    if any(s not in OPTUNA_SAMPLERS for s in setups) and args.model not in CONTROL_MODELS:
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
            if args.model in CONTROL_MODELS:
                client = random_changes(seed)
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
