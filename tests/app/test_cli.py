"""``optuna-llm-sampler run`` end to end: quick samplers, the LLM through a local HTTP stub of the
OpenAI API (the real SDK path), resume, warmup import, artifacts, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import re
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
from optuna_llm_sampler.rl import PAPER_TASKS
from optuna_llm_sampler.rl import rollout_episode
from optuna_llm_sampler.rl import write_warmup_file
from tests.app._responders import random_point_responder
from tests.providers.stub_server import StubLLMServer


REPO = Path(__file__).resolve().parents[2]


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
        (["--env", "FrozenLake-v1"], "Box"),
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


@pytest.mark.parametrize("env", sorted(PAPER_TASKS))
def test_run_works_on_each_task_of_the_props_paper(in_tmp: Path, capsys, env: str) -> None:
    argv = ["run", "--env", env, "--sampler", "cmaes", "--n-trials", "4", "--no-progress"]
    argv += ["--n-eval-episodes", "2", "--max-steps", "60"]
    assert main(argv) == 0
    assert "4 complete trials" in capsys.readouterr().out
    study = _load(f"{env}-cmaes-seed0")
    task = PAPER_TASKS[env]
    # The paper's policy (weights and a bias in [-6, 6]), but the tutorial's on MountainCar.
    tutorial = env == "MountainCarContinuous-v0"
    n_params = task.state_dim * task.action_dim + (0 if tutorial else task.action_dim)
    assert len(study.best_params) == n_params
    box = (-7.0, 7.0) if tutorial else (-6.0, 6.0)
    assert (study.user_attrs["low"], study.user_attrs["high"]) == box


def test_the_papers_policy_defaults_give_way_to_the_flags(in_tmp: Path) -> None:
    argv = ["run", "--env", "CartPole-v1", "--sampler", "random", "--n-trials", "2"]
    argv += ["--n-eval-episodes", "1", "--no-progress", "--no-bias", "--low", "-2"]
    assert main(argv) == 0
    trial = _load("CartPole-v1-random-seed0").trials[0]
    assert sorted(trial.params) == list("abcdefgh")  # 4x2 weights, no bias
    assert trial.distributions["a"] == optuna.distributions.FloatDistribution(-2.0, 6.0)
    argv = ["run", "--env", "MountainCarContinuous-v0", "--sampler", "random", "--bias"]
    assert main([*argv, "--n-trials", "2", "--n-eval-episodes", "1", "--no-progress"]) == 0
    assert sorted(_load("MountainCarContinuous-v0-random-seed0").best_params) == ["a", "b", "c"]


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
        ({}, "local", {"hints": True, "min_distance": 0.1, "n_candidates": 2}),
        ({}, "local", {"steps_from_best": True, "out_of_range": "reflect"}),
        ({"out_of_range": "reject"}, "local", {"out_of_range": "reject"}),
        ({}, "gpt-4o", {"steps_from_best": False}),
        ({"steps_from_best": False}, "local", {"steps_from_best": False}),
        ({}, "gpt-4o", {"out_of_range": "reject"}),
        ({"out_of_range": "clip"}, "gpt-4o", {"out_of_range": "clip"}),
        ({}, "local", {"widen_after": None}),
        # widen_after applies to steps from the best point only, which it no longer implies
        # (test_widen_after_needs_steps_from_the_best_point): it is asked for with them here.
        ({"steps_from_best": True, "widen_after": 5}, "gpt-4o", {"widen_after": 5}),
        ({}, "local:/m.gguf", {"hints": True, "n_candidates": 2}),
        ({}, "gpt-4o", {"task_description": None, "hints": False, "n_candidates": 1}),
        ({"guidance": "on"}, "gpt-4o", {"hints": True, "n_candidates": 2}),
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
    assert schema["properties"]["candidates"]["minItems"] == 2


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


# --------------------------------------------------------------------------- every error: one line


def _one_line_error(capsys, command: str) -> str:
    """The command's stderr, checked to be one error line: no traceback, nothing else."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("[I ")]  # Optuna's INFO
    assert len(lines) == 1, err
    assert lines[0].startswith(f"optuna-llm-sampler {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def random_study(in_tmp: Path) -> str:
    """A finished ``run`` with a quick sampler in ``run``'s default storage; its study name."""
    assert main(["run", "--sampler", "random", "--n-trials", "3", "--no-progress"]) == 0
    return "MountainCarContinuous-v0-random-seed0"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--trial", "3"],
            "--trial 3: study 'MountainCarContinuous-v0-random-seed0' has trials 0 to 2",
        ),
        (["--trial", "-1"], "--trial -1: study"),
        (["--trial", "99999999999999999999"], "has trials 0 to 2"),
        (["--study-name", "nope"], "no study 'nope' in storage sqlite:///optuna_llm_sampler.db"),
    ],
)
def test_plot_of_a_missing_trial_or_study_is_one_line(
    random_study: str, capsys, extra, message
) -> None:
    capsys.readouterr()
    argv = ["plot", "--storage", "sqlite:///optuna_llm_sampler.db", "--no-gif"]
    if "--study-name" not in extra:
        argv += ["--study-name", random_study]
    assert main([*argv, *extra]) == 2
    assert message in _one_line_error(capsys, "plot")
    assert not (Path("plots")).exists()


def test_plot_of_a_study_without_complete_trials_or_with_many_studies(
    in_tmp: Path, capsys
) -> None:
    assert main(["run", "--sampler", "tpe", "--create-only", "--study-name", "empty"]) == 0
    storage = ["--storage", "sqlite:///optuna_llm_sampler.db"]
    assert main(["plot", *storage, "--no-gif"]) == 2
    assert "has no complete trial yet: give --trial N" in _one_line_error(capsys, "plot")
    assert main(["run", "--sampler", "tpe", "--create-only", "--study-name", "other"]) == 0
    capsys.readouterr()
    assert main(["plot", *storage, "--no-gif"]) == 2
    assert "holds 2 studies ('empty', 'other'): give --study-name" in _one_line_error(
        capsys, "plot"
    )
    _load("empty").enqueue_trial({"a": 0.0, "b": 1.0})  # WAITING: its weights are not set yet
    capsys.readouterr()
    assert main(["plot", *storage, "--study-name", "empty", "--trial", "0", "--no-gif"]) == 2
    assert "trial 0 (WAITING) has no value for a, b" in _one_line_error(capsys, "plot")


@pytest.mark.parametrize("url", ["sqlite:///missing.db", "journal:missing.log"])
def test_plot_of_a_storage_file_that_does_not_exist_creates_none(
    in_tmp: Path, capsys, url: str
) -> None:
    assert main(["plot", "--storage", url]) == 2
    assert "no such file" in _one_line_error(capsys, "plot")
    assert list(in_tmp.iterdir()) == []


def test_plot_reads_a_journal_storage(in_tmp: Path, capsys) -> None:
    storage = ["--storage", "journal:runs.log"]
    assert main(["run", "--sampler", "random", "--n-trials", "3", "--no-progress", *storage]) == 0
    assert main(["plot", *storage, "--max-steps", "50", "--no-gif"]) == 0
    assert (in_tmp / "plots").is_dir() and any((in_tmp / "plots").iterdir())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-candidates", "0"], "n_candidates must be an integer >= 1, got 0"),
        (["--min-distance", "-1"], "min_distance"),
        (["--precision", "0"], "precision"),
        (["--search-std", "nan"], "search_std"),
        (["--max-history-tokens", "-5"], "max_tokens"),
    ],
)
def test_bad_llm_options_are_one_line_before_any_storage_exists(
    in_tmp: Path, capsys, extra, message
) -> None:
    argv = ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1"]
    assert main([*argv, "--n-trials", "2", "--no-progress", *extra]) == 2
    assert message in _one_line_error(capsys, "run")
    assert list(in_tmp.iterdir()) == []  # the sampler is checked before the storage is made


@pytest.mark.parametrize(
    "base_url", ["not a url", "ftp://127.0.0.1/v1", "http://", "127.0.0.1:8080"]
)
def test_a_base_url_that_is_no_url_is_one_line(in_tmp: Path, capsys, base_url: str) -> None:
    """The client refuses it when the sampler is built (ProviderConfigError): before any trial,
    any storage, any random search that would pass for an LLM study."""
    argv = ["run", "--model", "stub-model", "--base-url", base_url, "--n-trials", "2"]
    assert main([*argv, "--no-progress"]) == 2
    assert "base_url" in _one_line_error(capsys, "run")
    assert list(in_tmp.iterdir()) == []


def test_main_turns_every_expected_error_into_one_line(
    in_tmp: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classes a user can cause: bad values, provider set-up, missing modules and files;
    multi-line messages (an SDK's, a database's) are joined."""
    from optuna_llm_sampler import ProviderConfigError
    from optuna_llm_sampler import ProviderUnavailableError
    from optuna_llm_sampler.app import cli

    errors = [
        ValueError("bad value\n  on two lines"),
        ProviderConfigError("no key\nset OPENAI_API_KEY"),
        ProviderUnavailableError("down"),
        ImportError("No module named 'matplotlib'"),
        FileNotFoundError(2, "No such file or directory", "x/y"),
        PermissionError(13, "Permission denied", "out"),
    ]
    for error in errors:

        def handler(args, error=error):
            raise error

        monkeypatch.setattr(cli, "_run", handler)
        assert main(["run"]) == 2
        line = _one_line_error(capsys, "run")
        assert " ".join(str(error).split()) in line


# --------------------------------------------------------------------------- samplers and modules


def _block(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import module`` (and its submodules, loaded or not) fail, as when not installed."""
    import sys

    monkeypatch.setitem(sys.modules, module, None)
    for name in [m for m in sys.modules if m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)


OPTIONAL_MODULES = ("scipy", "cmaes", "torch")


def _quadratic(trial: optuna.Trial) -> float:
    return (trial.suggest_float("x", -5, 5) - 1) ** 2 + trial.suggest_float("y", -5, 5) ** 2


@pytest.mark.parametrize("module", OPTIONAL_MODULES)
@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "gp", "random", "qmc"])
def test_every_sampler_works_or_is_refused_up_front_without_a_module(
    monkeypatch: pytest.MonkeyPatch, sampler: str, module: str
) -> None:
    """Each of Optuna's samplers the commands offer, with each optional module missing: refused
    when it is built, with the install hint, or it runs a study past its startup trials."""
    from optuna_llm_sampler.app._named_samplers import make_sampler
    from optuna_llm_sampler.app._named_samplers import SAMPLER_MODULES

    _block(monkeypatch, module)
    if module in SAMPLER_MODULES.get(sampler, ()):
        with pytest.raises(ValueError, match=rf"the {sampler} sampler needs .*pip install") as e:
            make_sampler(sampler, seed=0)
        assert "\n" not in str(e.value)
        hint = "torch --index-url" if module == "torch" else 'pip install ".[samplers]"'
        assert hint in str(e.value)
        return
    study = optuna.create_study(sampler=make_sampler(sampler, seed=0))
    study.optimize(_quadratic, n_trials=13)  # GPSampler fits its model after 10 trials
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 13


def test_the_samplers_extra_brings_the_modules_the_samplers_need() -> None:
    """What ``pip install ".[samplers]"`` (in quickstart) installs covers what the hints say."""
    import tomllib

    from optuna_llm_sampler.app._named_samplers import SAMPLER_MODULES

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    shipped = {re.split(r"[<>=\[ ]", req, maxsplit=1)[0] for req in extras["samplers"]}
    needed = {m for modules in SAMPLER_MODULES.values() for m in modules} - {"torch"}
    assert needed <= shipped


@pytest.mark.parametrize(
    ("argv", "module", "command"),
    [
        (["run", "--sampler", "qmc", "--n-trials", "2", "--no-progress"], "scipy", "run"),
        (["run", "--sampler", "gp", "--n-trials", "2", "--no-progress"], "torch", "run"),
        (
            ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1"]
            + ["--base-sampler", "gp", "--n-trials", "2", "--no-progress"],
            "torch",
            "run",
        ),
        (
            ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1"]
            + ["--guidance", "advised", "--n-trials", "2", "--no-progress"],
            "torch",
            "run",
        ),
        (
            ["compare", "--samplers", "random,cmaes", "--n-trials", "2", "--no-progress"],
            "cmaes",
            "compare",
        ),
    ],
)
def test_a_sampler_without_its_module_is_refused_before_anything_runs(
    in_tmp: Path, capsys, monkeypatch: pytest.MonkeyPatch, argv, module, command
) -> None:
    _block(monkeypatch, module)
    assert main(argv) == 2
    line = _one_line_error(capsys, command)
    assert "pip install" in line and "is not installed" in line
    assert list(in_tmp.iterdir()) == []  # no storage, no output folder


# --------------------------------------------------------------------------- what run reports


def test_run_groups_fallbacks_by_reason_and_shows_no_credentials(in_tmp: Path, capsys) -> None:
    import random

    from tests.providers.stub_server import Fault

    rng = random.Random(0)

    def respond(request: dict[str, Any]) -> Any:
        text = " ".join(str(m.get("content")) for m in request["messages"])
        if "iteration 3." in text or "iteration 4." in text:
            return Fault.bad_request("the model refuses")
        if "iteration 5." in text:
            return "I cannot decide, sorry."  # no point in it: re-asked, then a fallback
        return json.dumps({"a": rng.uniform(-1, 1), "b": rng.uniform(3, 7), "reasoning": "Near."})

    with StubLLMServer(responder=respond) as server:
        base_url = server.openai_base_url.replace("http://", "http://me:hunter2@")
        argv = ["run", "--model", "stub-model", "--base-url", base_url, "--n-trials", "7"]
        argv += ["--n-startup-trials", "3", "--n-eval-episodes", "2", "--no-progress"]
        assert main([*argv, "--study-name", "fb"]) == 0
    out = capsys.readouterr().out
    assert "LLM (stub-model): 1 proposals, 3 fallbacks" in out
    line = next(line for line in out.splitlines() if line.startswith("fallbacks: "))
    assert line.startswith("fallbacks: 2 provider error: ")
    assert re.search(r"; 1 no usable answer after \d+ attempts: ", line), line
    assert f"model stub-model at {base_url.replace('hunter2', '***')}" in out
    assert "base_url='http://me:***@127.0.0.1:" in out  # the "in Python:" line
    study = _load("fb")
    assert study.user_attrs["base_url"].startswith("http://me:***@127.0.0.1:")
    stored = json.dumps(
        [
            study.user_attrs,
            study._storage.get_study_system_attrs(study._study_id),  # notes included
            [(t.user_attrs, t.system_attrs) for t in study.trials],
        ],
        default=str,
    )
    assert "hunter2" not in out and "hunter2" not in stored
    from tests._notes import note_of

    note = note_of(study)
    assert "| fallback reasons | 2 provider error: " in note
    assert "| sampler | LLM, model `stub-model` at http://me:***@127.0.0.1:" in note


def test_the_python_call_run_prints_holds_no_credentials() -> None:
    from optuna_llm_sampler.app._llm_options import python_call

    options = {
        "model": "m",
        "base_url": "http://me:hunter2@127.0.0.1:8080/v1?api_key=k3y-value",
        "api_key": "sk-secret-0123456789",
    }
    call = python_call(options, env="X")
    assert "hunter2" not in call and "k3y-value" not in call and "sk-secret" not in call
    assert "base_url='http://me:***@127.0.0.1:8080/v1?api_key=***'" in call
    assert "api_key=os.environ[...]" in call


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_during_run_is_one_line_and_the_study_resumes(in_tmp: Path, capsys) -> None:
    from tests.app._interrupt import complete_trials
    from tests.app._interrupt import interrupt_when

    storage = f"sqlite:///{in_tmp / 'study.db'}"
    args = ["run", "--sampler", "random", "--n-trials", "100000", "--storage", storage]
    # Long trials (500 episodes each), so Ctrl-C lands inside the objective, as it mostly does.
    args += ["--study-name", "ctrl-c", "--no-progress", "--n-eval-episodes", "500"]
    code, err = interrupt_when(args, lambda: sum(complete_trials(storage)) >= 2, cwd=in_tmp)
    lines = [line for line in err.splitlines() if not line.startswith("[I ")]
    assert code == 130, err
    assert lines == ["interrupted; the study is saved and resumes with the same command"], err
    done = len(_load("ctrl-c", storage).get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    assert done >= 2
    # The interrupted trial is failed; only one interrupted while Optuna created it (the last)
    # can be left RUNNING (no heartbeat in this run to fail it).
    trials = _load("ctrl-c", storage).trials
    assert all(t.state.is_finished() for t in trials[:-1])
    args[4] = str(done + 2)  # --n-trials: the same command, resumed, goes on
    assert main(args) == 0
    assert f"resuming study 'ctrl-c': {done} of {done + 2} trials complete" in (
        capsys.readouterr().out
    )
    resumed = _load("ctrl-c", storage).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(resumed) >= done + 1


def test_ctrl_c_surfacing_as_another_error_is_one_line(
    in_tmp: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna_llm_sampler.app import cli

    def handler(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise UnboundLocalError("cannot access local variable 'updated_state'") from None

    monkeypatch.setattr(cli, "_run", handler)
    assert main(["run"]) == 130
    assert capsys.readouterr().err == cli.INTERRUPTED["run"] + "\n"


def test_run_whose_llm_never_answers_exits_non_zero_with_the_reason(in_tmp: Path, capsys) -> None:
    from tests.providers.stub_server import Fault

    with StubLLMServer(responder=lambda request: Fault.bad_request("no such adapter")) as server:
        argv = ["run", "--model", "stub-model", "--base-url", server.openai_base_url]
        argv += ["--n-trials", "6", "--n-startup-trials", "3", "--n-eval-episodes", "1"]
        assert main([*argv, "--no-progress", "--study-name", "down"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("error: "))
    assert "the first 3 LLM trials all fell back" in line
    assert "HTTP 400" in line and "no such adapter" in line
    assert "check the model name" in line


@pytest.mark.parametrize("family", ["llama-cpp-python", "no-structured-output"])
def test_run_against_a_server_that_rejects_structured_shapes(
    in_tmp: Path, capsys, family: str
) -> None:
    from tests.providers.stub_server import SERVER_FAMILIES

    rejects = SERVER_FAMILIES[family]
    with StubLLMServer(responder=random_point_responder(), rejects=rejects) as server:
        argv = ["run", "--model", "stub-model", "--base-url", server.openai_base_url]
        argv += ["--n-trials", "6", "--n-startup-trials", "3", "--n-eval-episodes", "1"]
        assert main([*argv, "--no-progress", "--study-name", "shapes"]) == 0
        rejected = [r for r in server.requests if rejects(r.json) is not None]
    out = capsys.readouterr().out
    assert "LLM (stub-model): 3 proposals, 0 fallbacks" in out
    # Detected at the first LLM call and kept: one rejection per shape the server refuses.
    assert len(rejected) == {"llama-cpp-python": 1, "no-structured-output": 3}[family]
