"""``optuna-llm-sampler run`` end to end: quick samplers, the LLM through a local HTTP stub of the
OpenAI API (the real SDK path), resume, warmup import, artifacts, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._options import preset_proposal
from optuna_llm_sampler.app import RunConfig
from optuna_llm_sampler.app._llm_options import resolve_proposal
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app.cli import main
from optuna_llm_sampler.rl import rollout_episode
from optuna_llm_sampler.rl import write_warmup_file
from tests.app._responders import random_point_responder
from tests.providers.stub_server import StubLLMServer


@pytest.fixture
def llm_server() -> Iterator[StubLLMServer]:
    with StubLLMServer(responder=random_point_responder()) as server:
        yield server


def _load(name: str, storage: str = "sqlite:///optuna_llm_sampler.db") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def test_run_with_a_quick_sampler_and_resume(in_tmp: Path, capsys) -> None:
    argv = ["run", "--sampler", "random", "--n-trials", "8", "--no-progress", "--seed", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "8 complete trials" in out
    assert "best re-scored on fresh episodes" in out
    assert "optuna-llm-sampler dashboard --storage sqlite:///optuna_llm_sampler.db" in out
    assert main(argv[:4] + ["12"] + argv[5:]) == 0
    out = capsys.readouterr().out
    assert "resuming study 'MountainCarContinuous-v0-random-seed1': 8 of 12" in out
    study = _load("MountainCarContinuous-v0-random-seed1")
    assert len(study.trials) == 12
    assert study.user_attrs["env"] == "MountainCarContinuous-v0"
    assert isinstance(study.user_attrs["best_rescored_mean"], float)


def test_run_with_the_llm_through_the_openai_sdk(in_tmp: Path, llm_server, capsys) -> None:
    argv = [
        "run",
        "--model",
        "stub-model",
        "--base-url",
        llm_server.openai_base_url,
        "--n-trials",
        "8",
        "--n-startup-trials",
        "3",
        "--n-eval-episodes",
        "3",
        "--no-progress",
        "--study-name",
        "llm",
        "--artifacts",
        "art",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"model stub-model at {llm_server.openai_base_url}" in out
    assert "LLM (stub-model): 5 proposals, 0 fallbacks (100% of 5 LLM trials" in out
    study = _load("llm")
    records = [get_llm_record(t) for t in study.trials]
    assert [r is not None for r in records] == [False] * 3 + [True] * 5
    for trial, record in zip(study.trials[3:], records[3:], strict=True):
        assert record is not None and record.proposal == trial.params
        assert trial.user_attrs["llm_reasoning"] == "A random point."
        assert "The expected optimum value should be over 50." in record.messages[0].content
        assert "iterations (8)" in record.messages[0].content
    assert len(llm_server.requests) == 5
    # Per trial: one rollout and the policy, as Optuna artifacts.
    assert len(list((in_tmp / "art").iterdir())) == 16


def test_run_imports_tutorial_warmup_files(in_tmp: Path, capsys) -> None:
    folder = in_tmp / "warmup"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        weights = np.round((rng.random((2, 1)) - 0.5) * 6, 1)
        rollout = rollout_episode(weights, seed=i, max_steps=50)
        write_warmup_file(folder / f"warmup_rollout_{i}.txt", weights, rollout)
    argv = [
        "run",
        "--sampler",
        "random",
        "--n-trials",
        "6",
        "--no-progress",
        "--warmup-dir",
        str(folder),
        "--study-name",
        "w",
    ]
    assert main(argv) == 0
    assert "warmup: 4 trials imported" in capsys.readouterr().out
    study = _load("w")
    assert len(study.trials) == 6
    assert study.trials[0].user_attrs["warmup_file"] == "warmup_rollout_0.txt"


def test_create_only_creates_the_study_and_runs_nothing(in_tmp: Path) -> None:
    assert main(["run", "--sampler", "tpe", "--create-only", "--study-name", "c"]) == 0
    assert _load("c").trials == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--env", "NoSuchEnv-v9"], "is not a registered gymnasium environment"),
        (["--env", "CartPole-v1"], "Box"),
        (["--low", "3", "--high", "3"], "--low must be below --high"),
        (["--n-trials", "0"], "--n-trials must be positive"),
        (["--storage", "not-a-url"], "is not a storage URL"),
        (["--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/db"], "cannot open storage"),
        (["--model", "gpt-4o"], "OPENAI_API_KEY"),
        (["--sampler", "tpe", "--model", "gpt-4o"], "apply to --sampler llm only"),
    ],
)
def test_bad_arguments_are_clear_errors(in_tmp: Path, capsys, extra, message) -> None:
    sampler = [] if "--sampler" in extra or "--model" in extra else ["--sampler", "random"]
    assert main(["run", "--no-progress", "--n-trials", "2", *sampler, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "secret" not in err
    assert "Traceback" not in err
    assert not os.path.exists(in_tmp / "secret")


def test_plot_a_trial_and_given_weights(in_tmp: Path, capsys) -> None:
    assert main(["run", "--sampler", "random", "--n-trials", "3", "--no-progress"]) == 0
    storage = ["--storage", "sqlite:///optuna_llm_sampler.db"]
    name = ["--study-name", "MountainCarContinuous-v0-random-seed0"]
    assert main(["plot", *storage, *name, "--trial", "1", "--max-steps", "60"]) == 0
    assert main(["plot", "--weights=-0.2,6.5", "--no-gif", "--out", "mine"]) == 0
    out = capsys.readouterr().out
    assert "plots/episode_trial1.png" in out and "return" in out
    for path in (
        "plots/episode_trial1.png",
        "plots/episode_trial1.gif",
        "mine/episode_weights.png",
    ):
        assert (in_tmp / path).stat().st_size > 1000
    assert main(["plot", "--weights", "x,y"]) == 2
    assert "--weights must be comma-separated numbers" in capsys.readouterr().err


def test_run_with_the_tutorial_warmup_and_guidance(in_tmp: Path, llm_server) -> None:
    argv = [
        "run",
        "--model",
        "stub-model",
        "--base-url",
        llm_server.openai_base_url,
        "--n-trials",
        "7",
        "--n-startup-trials",
        "4",
        "--n-eval-episodes",
        "2",
        "--no-progress",
        "--study-name",
        "g",
        "--startup",
        "tutorial",
        "--task-description",
        "auto",
        "--hints",
        "--min-distance",
        "0.01",
        "--n-candidates",
        "2",
        "--history-style",
        "tutorial",
        "--precision",
        "4",
    ]
    assert main(argv) == 0
    study = _load("g")
    for trial in study.trials[:4]:
        assert get_llm_record(trial) is None
        for value in trial.params.values():
            assert -3 <= value <= 3 and round(value, 1) == value
    record = get_llm_record(study.trials[4])
    assert record is not None
    prompt = record.messages[0].content
    assert "What the function is:** f(a,b) is the mean episode reward" in prompt
    assert "Best so far: a: " in prompt and "Least explored so far: a between" in prompt
    assert "Lines 1 to 2: 2 different new inputs" not in prompt  # JSON answers: the schema says it
    assert '"candidates": [{"a": <number>, "b": <number>}' in prompt
    body = llm_server.requests[0].json
    assert body["response_format"]["json_schema"]["schema"]["properties"]["candidates"]


def test_tutorial_startup_needs_its_box(in_tmp: Path, capsys) -> None:
    argv = ["run", "--sampler", "random", "--startup", "tutorial", "--low", "-2", "--no-progress"]
    assert main(argv) == 2
    assert "--startup tutorial draws weights in [-3, 3]" in capsys.readouterr().err


# The LLM sampler's set-up for a RunConfig: the fields given on the command line (by name, as
# ``--out-of-range reject`` sets them: ``steps_from_best`` switches the proposal kind) over the
# preset ``--guidance`` names. ``steps_from_best`` below checks the kind of the resolved proposal,
# ``task_description`` the prompt's, the other names fields of the resolved proposal.
@pytest.mark.parametrize(
    ("config", "model", "expected"),
    [
        ({}, "local", {"hints": True, "min_distance": 0.1, "n_candidates": 3}),
        ({}, "local", {"steps_from_best": True, "out_of_range": "clip"}),
        ({"out_of_range": "reject"}, "local", {"out_of_range": "reject"}),
        ({}, "gpt-4o", {"steps_from_best": False}),
        ({"steps_from_best": False}, "local", {"steps_from_best": False}),
        ({}, "gpt-4o", {"out_of_range": "reject"}),
        ({"out_of_range": "clip"}, "gpt-4o", {"out_of_range": "clip"}),
        ({}, "local", {"widen_after": None}),
        # widen_after applies to steps from the best point only, which it no longer implies
        # (test_widen_after_needs_steps_from_the_best_point): it is asked for with them here.
        ({"steps_from_best": True, "widen_after": 5}, "gpt-4o", {"widen_after": 5}),
        ({}, "local:/m.gguf", {"hints": True, "n_candidates": 3}),
        ({}, "gpt-4o", {"task_description": None, "hints": False, "n_candidates": 1}),
        ({"guidance": "on"}, "gpt-4o", {"hints": True, "n_candidates": 3}),
        ({"guidance": "off"}, "local", {"task_description": None, "min_distance": None}),
        ({"n_candidates": 1, "hints": False}, "local", {"n_candidates": 1, "hints": False}),
        ({"task_description": "none"}, "local", {"task_description": None}),
        ({"task_description": "Tune it."}, "gpt-4o", {"task_description": "Tune it."}),
    ],
)
def test_guidance_defaults_and_explicit_options(config, model, expected) -> None:
    fields = {key: value for key, value in config.items() if key != "guidance"}
    prompt = {k: v for k, v in fields.items() if k == "task_description"}
    proposal_fields = {k: v for k, v in fields.items() if k != "task_description"}
    run = RunConfig(
        guidance=config.get("guidance", "auto"),
        options={"prompt": prompt, "proposal": proposal_fields},
    )
    proposal = resolve_proposal(run.guidance, model, run.options["proposal"])
    options = sampler_options(
        env=run.env, model=model, guidance=run.guidance, given=run.options, budget=run.n_trials
    )
    for key, value in expected.items():
        if key == "task_description":
            assert options["prompt"].task_description == value, key
        elif key == "steps_from_best":
            assert isinstance(proposal, StepsFromBest) == value, key
        else:
            assert getattr(proposal, key) == value, key
    # What run passes to LLMSampler: the proposal when a field was given, else the preset, which
    # LLMSampler resolves to the same proposal.
    local = model.startswith("local")
    passed = options.get("proposal") or preset_proposal(options["preset"], runs_locally=local)
    assert passed == proposal
    if config.get("guidance") == "on" or (not config and model.startswith("local")):
        assert options["prompt"].task_description.startswith("f(a,b) is the mean episode reward")


@pytest.mark.parametrize("field", ["widen_after", "n_tried_changes"])
def test_widen_after_needs_steps_from_the_best_point(field: str) -> None:
    flag = "--widen-steps-after" if field == "widen_after" else "--n-tried-changes"
    with pytest.raises(ValueError, match=f"{flag} applies to steps from the best point"):
        resolve_proposal("auto", "gpt-4o", {field: 5})
    with pytest.raises(ValueError, match=f"{flag} applies to steps from the best point"):
        resolve_proposal("on", "local", {"steps_from_best": False, field: 5})
    assert getattr(resolve_proposal("auto", "local", {field: 5}), field) == 5  # guided: steps


def test_widen_steps_after_without_steps_is_a_cli_error(in_tmp: Path, capsys) -> None:
    argv = ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1"]
    argv += ["--n-trials", "2", "--no-progress", "--widen-steps-after", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--widen-steps-after applies to steps from the best point" in err
    assert "Traceback" not in err


def test_guidance_on_through_the_cli(in_tmp: Path, llm_server) -> None:
    argv = ["run", "--model", "stub-model", "--base-url", llm_server.openai_base_url]
    argv += ["--n-trials", "5", "--n-startup-trials", "4", "--no-progress", "--guidance", "on"]
    assert main([*argv, "--study-name", "on", "--no-hints"]) == 0
    prompt = get_llm_record(_load("on").trials[4]).messages[0].content  # type: ignore[union-attr]
    assert "What the function is:**" in prompt and "Best so far" not in prompt
    schema = llm_server.requests[-1].json["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["candidates"]["minItems"] == 3


def test_steps_from_best_through_the_cli(in_tmp: Path) -> None:
    def respond(request: dict[str, Any]) -> str:
        schema = request["response_format"]["json_schema"]["schema"]
        assert set(schema["properties"]) == {"change_a", "change_b", "reasoning"}
        return json.dumps({"change_a": 0.5, "change_b": -0.25, "reasoning": "A small step."})

    with StubLLMServer(responder=respond) as server:
        argv = ["run", "--model", "stub-model", "--base-url", server.openai_base_url]
        argv += ["--n-trials", "5", "--n-startup-trials", "4", "--no-progress"]
        assert main([*argv, "--study-name", "steps", "--steps-from-best"]) == 0
    study = _load("steps")
    best = max(study.trials[:4], key=lambda t: t.value).params
    assert study.trials[4].params == pytest.approx({"a": best["a"] + 0.5, "b": best["b"] - 0.25})
    given = RunConfig(options={"proposal": {"steps_from_best": True}}).options
    options = sampler_options(env=RunConfig().env, model="gpt-4o", given=given)
    assert isinstance(options["proposal"], StepsFromBest)
    assert "proposal" not in sampler_options(env=RunConfig().env, model="gpt-4o")
    assert not isinstance(resolve_proposal("auto", "gpt-4o"), StepsFromBest)


def test_out_of_range_clip_through_the_cli(in_tmp: Path) -> None:
    def respond(request: dict[str, Any]) -> str:
        return json.dumps({"change_a": 0, "change_b": 30, "reasoning": "Far up b."})

    with StubLLMServer(responder=respond) as server:
        argv = ["run", "--model", "stub-model", "--base-url", server.openai_base_url]
        argv += ["--n-trials", "5", "--n-startup-trials", "4", "--no-progress"]
        assert (
            main([*argv, "--study-name", "clip", "--steps-from-best", "--out-of-range", "clip"])
            == 0
        )
    study = _load("clip")
    record = get_llm_record(study.trials[4])
    assert record is not None and record.fallback is None and record.clipped == ["b"]
    assert study.trials[4].params["b"] == 7.0


def test_widen_steps_after_through_the_cli(in_tmp: Path) -> None:
    prompts: list[str] = []

    def respond(request: dict[str, Any]) -> str:
        prompts.append(request["messages"][-1]["content"])
        # Large actions from a large |a| cost energy: none of these beats the startup point.
        change_a = 3.0 if len(prompts) % 2 else -3.0
        return json.dumps({"change_a": change_a * len(prompts), "change_b": 0, "reasoning": ""})

    with StubLLMServer(responder=respond) as server:
        argv = ["run", "--model", "stub-model", "--base-url", server.openai_base_url]
        argv += ["--n-trials", "4", "--n-startup-trials", "1", "--no-progress"]
        argv += ["--steps-from-best", "--widen-steps-after", "1", "--study-name", "widen"]
        argv += ["--out-of-range", "clip"]
        assert main(argv) == 0
    assert len(prompts) == 3
    study = _load("widen")
    for number, prompt in zip(range(1, 4), prompts, strict=True):
        earlier = study.trials[:number]
        best = max(earlier, key=lambda t: t.value).number
        since = number - 1 - best
        step = min(1.0 * 2**since, 7.0)
        assert f"Use steps of about {step} in different directions" in prompt, (number, since)
        assert ("found nothing better" in prompt) == (since > 0)
    assert "Use steps of about 2.0 in different directions" in prompts[-1]  # a = -7 was worse
