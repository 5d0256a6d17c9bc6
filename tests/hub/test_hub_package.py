"""The OptunaHub package in hub/samplers/llm_sampler, loaded offline as OptunaHub loads it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import re
import socket
import subprocess
import sys
import time
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import optunahub
from packaging.requirements import Requirement
import pytest
import yaml

import optuna_llm_sampler
from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler.providers import ScriptedClient
from tests._answers import SchemaResponder


REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "hub"
PACKAGE = HUB / "samplers" / "llm_sampler"

# The registry's rules: optunahub-registry/header_confirm.py checks these keys (non-empty), and
# template/README.md names these sections.
FRONT_MATTER_KEYS = ("author", "title", "description", "tags", "optuna_versions", "license")
SECTIONS = ("Abstract", "APIs", "Installation", "Example", "Others")
EXPORTS = {
    "AbsolutePoints",
    "HistoryOptions",
    "LLMSampler",
    "PRESETS",
    "PromptOptions",
    "StepsFromBest",
}

NETWORK_BLOCKER = """\
import socket


def _no_network(*args, **kwargs):
    raise OSError("network access attempted in an offline test")


socket.socket.connect = _no_network
socket.socket.connect_ex = _no_network
socket.create_connection = _no_network
"""


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("network access attempted in an offline test")


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection)
    socket.socket.connect = _no_network  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _no_network  # type: ignore[method-assign,assignment]
    socket.create_connection = _no_network  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = saved  # type: ignore[method-assign]


with _offline():
    hub_module = optunahub.load_local_module(
        package="samplers/llm_sampler", registry_root=str(HUB)
    )


@pytest.fixture(autouse=True)
def _offline_during_tests() -> Iterator[None]:
    with _offline():
        yield


def _front_matter_and_body() -> tuple[dict[str, Any], str]:
    text = (PACKAGE / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, flags=re.DOTALL)
    assert match, "README.md must start with a front matter block between '---' lines"
    return yaml.safe_load(match.group(1)), match.group(2)


# --- the module ----------------------------------------------------------------------------------


def test_module_is_a_thin_wrapper_over_the_library() -> None:
    assert hub_module.__name__ == "optunahub_registry.package.samplers.llm_sampler"
    assert set(hub_module.__all__) == EXPORTS
    public = {name for name in vars(hub_module) if not name.startswith("_")}
    assert public == EXPORTS
    for name in EXPORTS:
        assert getattr(hub_module, name) is getattr(optuna_llm_sampler, name)

    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module == "optuna_llm_sampler" and node.level == 0
        else:
            assert isinstance(node, ast.Assign), "only re-exports and __all__"


def test_study_uses_the_llms_proposals() -> None:
    answers = [
        {"x": 1.25, "y": -0.5, "reasoning": "Move towards the best point."},
        {"x": -2.0, "y": 3.75, "reasoning": "Explore the other corner."},
        {"x": 0.5, "y": 0.25, "reasoning": "Refine near the origin."},
    ]
    client = ScriptedClient([json.dumps(a) for a in answers], supports_schema=True)
    sampler = hub_module.LLMSampler(
        model=client, proposal=hub_module.AbsolutePoints(), n_startup_trials=3, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: t.suggest_float("x", -5, 5) ** 2 + t.suggest_float("y", -5, 5) ** 2,
        n_trials=6,
    )

    assert len(client.calls) == 3
    assert all(get_llm_record(t) is None for t in study.trials[:3])
    for trial, answer in zip(study.trials[3:], answers, strict=True):
        assert trial.params == {"x": answer["x"], "y": answer["y"]}
        record = get_llm_record(trial)
        assert record is not None
        assert record.fallback is None
        assert record.model == "scripted"
        assert record.attempts == 1
        assert record.proposal == trial.params
        assert record.reasoning == answer["reasoning"]


# --- the registry's format -----------------------------------------------------------------------


def test_front_matter_has_every_required_key() -> None:
    front, _ = _front_matter_and_body()
    for key in FRONT_MATTER_KEYS:
        assert front.get(key) not in (None, "", []), f"front matter lacks {key!r}"
    assert "sampler" in front["tags"]  # packages under package/samplers/ must carry it
    assert all(isinstance(tag, str) for tag in front["tags"])
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", str(v)) for v in front["optuna_versions"])
    assert front["license"] == "MIT License"


def test_readme_has_the_required_sections_and_no_html() -> None:
    _, body = _front_matter_and_body()
    headings = re.findall(r"^## (.+)$", body, flags=re.MULTILINE)
    assert [h for h in headings if h in SECTIONS] == list(SECTIONS)
    # The registry strips HTML tags from README.md: only markdown is allowed.
    prose = re.sub(r"```.*?```", "", body, flags=re.DOTALL)
    assert not re.search(r"</?[A-Za-z][^>]*>", prose)


def test_license_and_requirements() -> None:
    license_text = (PACKAGE / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 optuna-llm-sampler developers" in license_text

    lines = (PACKAGE / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [Requirement(line) for line in lines if line.strip()]
    assert {r.name for r in requirements} >= {"optuna", "optunahub", "optuna-llm-sampler"}


# --- example.py ----------------------------------------------------------------------------------


def test_example_runs_offline_without_keys(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NETWORK_BLOCKER, encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith(("_API_KEY", "_BASE_URL")) and key != "OPTUNA_LLM_SAMPLER_MODEL"
    }
    env["PYTHONPATH"] = str(blocker)
    env["HOME"] = str(tmp_path)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(PACKAGE / "example.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 60
    assert "scripted stand-in answers instead of an LLM" in done.stdout
    assert "best: {" in done.stdout
    assert "trial 19 by stand-in" in done.stdout  # the last trial was the stand-in's proposal


# --- Optuna's sampler conformance suites, through the loaded module ------------------------------


class TestHubLLMSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        def factory() -> BaseSampler:
            client = ScriptedClient(respond=SchemaResponder(seed=0), supports_schema=True)
            return hub_module.LLMSampler(model=client, n_startup_trials=0, seed=0)

        return factory
