"""Are a model's proposals better than random points? A one-step probe on MountainCar.

A full study mixes many effects (startup luck, noise, fallbacks, selection). This probe isolates
the LLM's part: for each of ``--states`` histories (the first 20 trials of random search with
seed 0, 1, ...), it builds the prompt ``LLMSampler`` would send for the next trial, asks the model
``--answers`` times, and scores every proposed point that is new (at least ``--min-distance`` from
each tried point, inside the box) by its mean return on 100 fresh episodes. Two baselines are
scored the same way, side by side:

* ``control``: the set-up's own control, :class:`~optuna_llm_sampler.RandomProposer` answering the
  same prompt's schema as often as the model (random changes of scale ``search_std`` from the best
  point with ``--steps-from-best``, uniform points in the box otherwise), filtered the same way.
  This is the baseline that says whether the model adds anything to the set-up.
* ``uniform``: as many uniform random points in the box as the model proposed new ones.

Printed per state and overall: how many proposed points were new, how many beat the history's best
(scored the same way), and their median score; the last lines are the ratios of the "beat the
best" shares, model / control and model / uniform.

Run: ``python benchmarks/proposal_quality.py --states 3 --answers 4`` (the embedded model needs
``pip install "optuna-llm-sampler[local,rl]"``; about 10 s an answer). ``--model gpt-4o`` or
``--model NAME --base-url URL`` probe any other model the same way; ``--model control`` probes the
control itself (seconds; a check of the probe, the model and control rows then differ only by
their random draws). The states are the same startup points and episodes that seed ``s`` gives in
``run`` and ``compare``.

The prompt is the guided one: ``PromptOptions`` with the MountainCar task described, and
``AbsolutePoints(hints=True, min_distance=..., n_candidates=...)``, or ``StepsFromBest`` with the
same settings under ``--steps-from-best`` (the answers are then changes to the best point).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np
import optuna

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import RandomProposer
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._space import add_changes
from optuna_llm_sampler.app._compare_objectives import episode_seed
from optuna_llm_sampler.app._named_samplers import startup_sampler
from optuna_llm_sampler.providers import create_client
from optuna_llm_sampler.providers import ScriptedClient
from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import linear_policy_objective
from optuna_llm_sampler.rl import MOUNTAINCAR_TASK


SCORE_SEED = 10**9  # reset seeds of the scoring episodes: far from every study's episodes
N_STARTUP = 20
# The guided prompt: the tutorial's step and hint, a 60-trial budget, the task described.
PROMPT = PromptOptions(
    search_std=1.0, expected_optimum=50, budget=60, task_description=MOUNTAINCAR_TASK
)


_SCORES: dict[tuple[float, float], float] = {}


def true_score(a: float, b: float) -> float:
    """Mean return over 100 fixed fresh episodes (memoized: many points repeat)."""
    if (a, b) not in _SCORES:
        returns = evaluate_linear_policy([a, b], n_episodes=100, seed=SCORE_SEED)
        _SCORES[(a, b)] = float(np.mean(returns))
    return _SCORES[(a, b)]


def history(seed: int) -> list[optuna.trial.FrozenTrial]:
    """The first 20 trials of seed ``seed``: its startup points and episodes in run and compare."""
    study = optuna.create_study(direction="maximize", sampler=startup_sampler(seed))
    study.optimize(linear_policy_objective(seed=episode_seed(seed)), n_trials=N_STARTUP)
    return study.trials


def prompt_for(trials: list[optuna.trial.FrozenTrial], setup: dict[str, Any]) -> tuple[Any, Any]:
    """The messages and schema LLMSampler sends for trial 20 with the option objects of
    ``setup``, caught by a recording client."""
    caught: dict[str, Any] = {}

    def record(messages: Any, schema: Any) -> str:
        caught.update(messages=list(messages), schema=schema)
        return "{}"

    client = ScriptedClient(respond=record, supports_schema=True)
    sampler = LLMSampler(
        model=client,
        n_startup_trials=N_STARTUP,
        max_retries=0,
        **setup,
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for trial in trials:
        study.add_trial(trial)
    study.ask().suggest_float("a", -7, 7)
    return caught["messages"], caught["schema"]


def proposed_points(
    text: str, n_candidates: int, base: dict[str, float] | None
) -> list[tuple[float, float]]:
    names = ["a", "b"] if base is None else ["change_a", "change_b"]
    try:
        if n_candidates > 1:
            answers = parse_candidates(text, names)
        else:
            answers = [parse_answer(text, names)]
    except Exception:  # an unusable answer proposes nothing
        return []
    if base is not None:
        answers = [add_changes(base, answer) for answer in answers]
    points = []
    for answer in answers:
        try:
            points.append((float(answer.values["a"]), float(answer.values["b"])))
        except (TypeError, ValueError):
            continue
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=3)
    parser.add_argument("--answers", type=int, default=4, help="answers asked per state")
    parser.add_argument("--model", default="local")
    parser.add_argument("--base-url")
    parser.add_argument("--n-candidates", type=int, default=3)
    parser.add_argument("--min-distance", type=float, default=0.25)
    parser.add_argument(
        "--steps-from-best", action="store_true", help="ask for changes to the best point"
    )
    parser.add_argument("--temperature", type=float, default=0.7, help="of the local model")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options: dict[str, Any] = {}
    if args.model.startswith("local"):
        options = {"n_threads": 2, "temperature": args.temperature}
    client = create_client(args.model, base_url=args.base_url, **options)
    kind = StepsFromBest if args.steps_from_best else AbsolutePoints
    proposal = kind(n_candidates=args.n_candidates, min_distance=args.min_distance, hints=True)
    setup: dict[str, Any] = {"prompt": PROMPT, "proposal": proposal}
    rng = np.random.default_rng(0)
    groups = ("llm", "control", "uniform")
    totals: dict[str, list[float]] = {name: [] for name in groups}
    beats: dict[str, int] = {name: 0 for name in groups}
    print(f"model {args.model}, {args.n_candidates} candidates per answer")
    for seed in range(args.states):
        trials = history(seed)
        tried = np.array([[t.params["a"], t.params["b"]] for t in trials])
        best_params = max(trials, key=lambda t: t.value or -np.inf).params
        best = true_score(best_params["a"], best_params["b"])
        base = best_params if args.steps_from_best else None
        messages, schema = prompt_for(trials, setup)
        control = RandomProposer(seed=seed, search_std=PROMPT.search_std or 1.0)
        proposed: dict[str, int] = {}
        new: dict[str, list[tuple[float, float]]] = {}
        for name, answerer in (("llm", client), ("control", control)):
            proposed[name], new[name] = 0, []
            for _ in range(args.answers):
                completion = answerer.complete(messages, schema=schema)
                points = proposed_points(completion.text, args.n_candidates, base)
                proposed[name] += len(points)
                new[name] += [
                    p
                    for p in points
                    if all(-7 <= v <= 7 for v in p)
                    and np.abs(tried - p).max(axis=1).min() >= args.min_distance
                ]
        new["uniform"] = [tuple(rng.uniform(-7, 7, size=2)) for _ in new["llm"]]
        for name in groups:
            scores = [true_score(*p) for p in new[name]]
            totals[name] += scores
            beats[name] += sum(s > best for s in scores)
            median = f"{statistics.median(scores):8.1f}" if scores else "       -"
            print(
                f"state {seed}: {name:>7}: {len(scores):2d} new points"
                + (f" of {proposed[name]} proposed" if name in proposed else "")
                + f", {sum(s > best for s in scores)} beat the best ({best:.1f}), "
                f"median score {median}",
                flush=True,
            )
    print("overall:")
    for name in groups:
        n = len(totals[name])
        share = beats[name] / n if n else float("nan")
        overall = statistics.median(totals[name]) if n else float("nan")
        print(
            f"  {name:>7}: {n} new points, {share:6.1%} beat the history's best, "
            f"median score {overall:.1f}"
        )
    for baseline in ("control", "uniform"):
        mine = beats["llm"] / len(totals["llm"]) if totals["llm"] else float("nan")
        theirs = beats[baseline] / len(totals[baseline]) if totals[baseline] else 0.0
        ratio = f"{mine / theirs:.2f}" if theirs else f"undefined (no {baseline} point did)"
        print(f"ratio of 'beat the best' shares, LLM / {baseline}: {ratio}")


if __name__ == "__main__":
    main()
