"""Scripted answers for tests: a responder that reads the sampler's JSON schema."""

from __future__ import annotations

from collections.abc import Sequence
import json
import random
from typing import Any

from optuna_llm_sampler import Message


class SchemaResponder:
    """Answers every call with a random valid point of the schema, like a well-behaved model."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def __call__(self, messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        if schema is None:
            raise AssertionError("SchemaResponder needs answer_format='json'.")
        answer: dict[str, Any] = {}
        for name, spec in schema["properties"].items():
            if "enum" in spec:
                answer[name] = self._rng.choice(spec["enum"])
            elif spec.get("type") == "integer":
                answer[name] = self._rng.randint(spec["minimum"], spec["maximum"])
            elif spec.get("type") == "number":
                answer[name] = self._rng.uniform(spec["minimum"], spec["maximum"])
            else:
                answer[name] = "A random point of the search space."
        return "```json\n" + json.dumps(answer) + "\n```"
