"""Stub models for the commands' tests: answers of the local OpenAI stub (tests.providers)."""

from __future__ import annotations

import json
import random
from typing import Any


def random_point_responder(seed: int = 0):
    """A well-behaved model of (a, b) in [-7, 7]: a random point, as JSON when asked for it."""
    rng = random.Random(seed)

    def respond(request: dict[str, Any]) -> str:
        response_format = request.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema")
        a, b = rng.uniform(-7, 7), rng.uniform(-7, 7)
        if schema is not None:
            return json.dumps({"a": a, "b": b, "reasoning": "A random point."})
        return f"a: {a:.4f}, b: {b:.4f}\nA random point."

    return respond
