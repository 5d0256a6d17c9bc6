"""LLMSampler on your own objective: a mixed search space, a custom prompt, records read back.

Any Optuna objective works: floats (log, step), ints, categoricals. Here a toy "training run"
whose loss depends on a learning rate, a layer count and an optimizer. The LLM answers with
absolute points (``AbsolutePoints``): steps from the best point (``StepsFromBest``, what the
"guided" preset uses) need linear numeric parameters only.

    python examples/custom_objective.py --model gpt-4o-mini
"""

from __future__ import annotations

import argparse
import math
import os

import optuna

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"])
    penalty = {"adam": 0.0, "rmsprop": 0.05, "sgd": 0.15}[optimizer]
    return (math.log10(lr) + 3) ** 2 / 4 + (layers - 4) ** 2 / 16 + penalty


TEMPLATE = """You tune the hyperparameters of a small neural network to {{ direction }} its \
validation loss {{ function }}.
{{ search_space_text }}

Trials so far ({{ history_header }}):
{{ history_table }}
{% if pending_table %}Running now (do not repeat): {{ pending_table }}
{% endif %}
Propose the next trial as a JSON object {{ json_example }}."""

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="gpt-4o" if os.environ.get("OPENAI_API_KEY") else "local"
    )
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--n-trials", type=int, default=30)
    args = parser.parse_args()

    sampler = LLMSampler(
        model=args.model,
        base_url=args.base_url,
        # the custom prompt above, answered in JSON; it suggests no step size
        prompt=PromptOptions(template=TEMPLATE, answer_format="json", search_std=None),
        # the next point's values, whatever the model (see above)
        proposal=AbsolutePoints(),
        n_startup_trials=8,
        seed=0,
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=args.n_trials)

    print(f"best: {study.best_params} -> {study.best_value:.4f}")
    for trial in study.trials[-3:]:
        record = get_llm_record(trial)
        if record is not None:
            print(f"trial {trial.number}: {trial.params} because {record.reasoning!r}")
