"""The examples run as a user runs them: as scripts, with the LLM behind a local OpenAI stub."""

from __future__ import annotations

import json
from pathlib import Path
import random
import subprocess
import sys
from typing import Any

import pytest

from tests.providers.stub_server import StubLLMServer


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _responder(request: dict[str, Any]) -> str:
    """A well-behaved model: a random valid point of whatever schema the sampler sends."""
    rng = random.Random(len(json.dumps(request)))
    schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema")
    answer: dict[str, Any] = {}
    for name, spec in (schema or {"properties": {}})["properties"].items():
        if "enum" in spec:
            answer[name] = rng.choice(spec["enum"])
        elif spec.get("type") == "integer":
            answer[name] = rng.randint(spec["minimum"], spec["maximum"])
        elif spec.get("type") == "number":
            answer[name] = rng.uniform(spec["minimum"], spec["maximum"])
        else:
            answer[name] = "The stub's random choice."
    return json.dumps(answer)


@pytest.mark.parametrize(
    ("script", "extra", "expected"),
    [
        ("mountaincar_llm.py", ["--n-trials", "24", "--n-eval-episodes", "2"], "re-scored on"),
        ("pendulum_llm.py", ["--n-trials", "13", "--n-eval-episodes", "1"], "re-scored on"),
        ("custom_objective.py", ["--n-trials", "11"], 'because "The stub\'s random choice."'),
    ],
)
def test_example_runs(script: str, extra: list[str], expected: str, tmp_path: Path) -> None:
    with StubLLMServer(responder=_responder) as server:
        command = [
            sys.executable,
            str(EXAMPLES / script),
            "--model",
            "stub-model",
            "--base-url",
            server.openai_base_url,
            *extra,
        ]
        if script == "mountaincar_llm.py":
            command += ["--storage", f"sqlite:///{tmp_path / 'example.db'}"]
        done = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "PYTHONPATH": str(EXAMPLES.parent),
            },
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert expected in done.stdout
        assert len(server.requests) >= 3  # the LLM really was asked
