"""Time spent in LLMSampler per trial, excluding the LLM call, side by side with TPESampler.

Both samplers get the same study history (100 and 1,000 completed trials of a 2-parameter
objective, in-memory storage) and are timed on the same work: ``study.ask()`` plus the two
``suggest_float`` calls that trigger sampling, then ``tell`` as FAIL so the history does not grow.
The LLM is an instant scripted client whose own time is measured and subtracted, so what is left
is the sampler's overhead: history selection, rendering, parsing, validation, duplicate checks and
records. Also printed: the prompt's size in (estimated) tokens. The default history budget
(``HistoryOptions(max_tokens="auto")``: a quarter of the client's context window, 2048 tokens for
this client, which states none) is timed against the tutorial's unbounded history
(``max_tokens=None``) and a 1,500-token budget; the last line is the ratio at 1,000 trials with
the defaults. The sampler otherwise runs with its defaults: the instant client is a remote-like
one, so ``preset="auto"`` gives ``AbsolutePoints()``.

Run: ``python benchmarks/sampler_overhead.py [--repeats 50]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import random
import statistics
import time
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.samplers import BaseSampler
from optuna.samplers import TPESampler
from optuna.trial import create_trial
from optuna.trial import TrialState

from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import Message


SPACE = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
BUDGET = HistoryOptions(max_tokens=1500)
UNBOUNDED = HistoryOptions(max_tokens=None)
# The set-ups timed: a history size, a label and the sampler's option objects.
SETUPS: list[tuple[int, str, dict[str, Any]]] = [
    (100, "default", {}),
    (1000, "default", {}),
    (1000, "1500", {"history": BUDGET}),
    (1000, "unbounded", {"history": UNBOUNDED}),
]


class InstantClient:
    """Answers at once with a fresh random point, and keeps the time spent inside it."""

    model = "instant"
    supports_schema = False

    def __init__(self) -> None:
        self.seconds = 0.0
        self.prompt_tokens: list[int] = []
        self._rng = random.Random(0)

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        start = time.perf_counter()
        self.prompt_tokens.append(sum(estimate_tokens(m.content) for m in messages))
        text = f"a: {self._rng.uniform(-7, 7):.6f}, b: {self._rng.uniform(-7, 7):.6f}\nRandom."
        completion = Completion(text=text, model=self.model)
        self.seconds += time.perf_counter() - start
        return completion


def _study(sampler: BaseSampler, n_history: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rng = random.Random(1)
    for _ in range(n_history):
        a, b = rng.uniform(-7, 7), rng.uniform(-7, 7)
        study.add_trial(
            create_trial(value=-(a**2) - b**2, params={"a": a, "b": b}, distributions=SPACE)
        )
    return study


def _time_per_trial(
    sampler: BaseSampler, n_history: int, repeats: int, client: InstantClient | None = None
) -> float:
    """Median seconds per trial, minus the time spent inside ``client`` during that trial."""
    study = _study(sampler, n_history)
    timings = []
    for _ in range(repeats):
        inside_client = client.seconds if client else 0.0
        start = time.perf_counter()
        trial = study.ask()
        trial.suggest_float("a", -7, 7)
        trial.suggest_float("b", -7, 7)
        elapsed = time.perf_counter() - start
        timings.append(elapsed - ((client.seconds if client else 0.0) - inside_client))
        study.tell(trial, state=TrialState.FAIL)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    print(f"optuna {optuna.__version__}; median of {args.repeats} trials each; in-memory storage")
    header = (
        f"{'history':>8} | {'budget':>9} | {'TPE ms':>8} | {'LLM ms':>8} | {'LLM/TPE':>8} | "
        f"{'prompt tok':>10}"
    )
    print(header)
    print("-" * len(header))
    ratios = {}
    for n_history, label, options in SETUPS:
        tpe = _time_per_trial(TPESampler(seed=0), n_history, args.repeats)
        client = InstantClient()
        sampler = LLMSampler(model=client, n_startup_trials=0, **options)
        llm = _time_per_trial(sampler, n_history, args.repeats, client)
        ratios[n_history, label] = llm / tpe
        tokens = int(statistics.median(client.prompt_tokens))
        print(
            f"{n_history:>8} | {label:>9} | {tpe * 1e3:8.2f} | {llm * 1e3:8.2f} | "
            f"{llm / tpe:8.2f} | {tokens:>10}"
        )
    print(
        "budget: default is HistoryOptions(max_tokens='auto'); unbounded is max_tokens=None "
        "(the tutorial's 'all')."
    )
    print(
        f"LLM/TPE at 1,000 trials with the defaults: {ratios[1000, 'default']:.2f} "
        "(<= 1: the LLM sampler adds no more overhead per trial than TPE)."
    )


if __name__ == "__main__":
    main()
