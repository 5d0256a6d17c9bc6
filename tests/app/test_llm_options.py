"""The LLM sampler's options on the command line: one flag per option field, its help read from the
option's docstring, only the flags given passed on, and the ``LLMSampler(...)`` call ``run``
prints builds the sampler ``run`` uses."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import optuna
import pytest

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler.app import RunConfig
from optuna_llm_sampler.app._llm_options import add_llm_flags
from optuna_llm_sampler.app._llm_options import flag_help
from optuna_llm_sampler.app._llm_options import FLAGS
from optuna_llm_sampler.app._llm_options import given_options
from optuna_llm_sampler.app._llm_options import GROUPS
from optuna_llm_sampler.app._llm_options import history_tokens
from optuna_llm_sampler.app._llm_options import python_call
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app._run import _make_run_sampler
from optuna_llm_sampler.app.cli import build_parser
from optuna_llm_sampler.app.cli import main
from optuna_llm_sampler.providers import ScriptedClient
from optuna_llm_sampler.rl import MOUNTAINCAR
from optuna_llm_sampler.rl import TASK_DESCRIPTIONS


# --------------------------------------------------------------------------- the flags


@pytest.mark.parametrize("flag", FLAGS, ids=[f.name for f in FLAGS])
def test_every_flag_has_help_from_its_options_docstring(flag) -> None:
    text = flag_help(flag)
    description, _, default = text.rpartition(" (default: ")
    assert len(description) > 20 and default.endswith(")") and len(default) > 1, text
    assert "``" not in text and ":class:" not in text, text  # docstring markup made plain
    if flag.field != "steps_from_best":
        words = flag.doc().replace("``", "").split()[:4]
        assert description.startswith(" ".join(words)), (text, words)
    assert flag.group in GROUPS and flag.name.startswith("--")


@pytest.mark.parametrize("command", ["run", "compare"])
def test_every_flag_is_on_the_commands_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    for flag in FLAGS:
        assert flag.name in out
        assert " ".join(flag_help(flag).split()[:5]) in out, flag.name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_llm_flags(parser)
    return parser


def _value(flag) -> st.SearchStrategy[tuple[list[str], Any]]:
    """Command-line words for ``flag`` and the value they parse to."""
    if flag.type is None:
        no = "--no-" + flag.name[2:]
        return st.sampled_from([([flag.name], True), ([no], False)])
    if flag.choices:
        return st.sampled_from(flag.choices).map(lambda c: ([flag.name, c], c))
    if flag.type is int:
        if flag.field == "precision":
            none = st.just(([flag.name, "none"], None))
            return st.one_of(st.integers(1, 17).map(lambda i: ([flag.name, str(i)], i)), none)
        return st.integers(0, 10**6).map(lambda i: ([flag.name, str(i)], i))
    if flag.type is history_tokens:
        words = st.sampled_from([("auto", "auto"), ("none", None)])
        numbers = st.integers(1, 10**6).map(lambda i: (str(i), i))
        return st.one_of(words, numbers).map(lambda w: ([flag.name, w[0]], w[1]))
    if flag.type is float:
        floats = st.floats(min_value=1e-6, max_value=1e6)
        return floats.map(lambda x: ([f"{flag.name}={x!r}"], x))
    text = st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1)
    return text.map(lambda t: ([f"{flag.name}={t}"], t))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_given_options_holds_exactly_the_flags_given(data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(FLAGS), unique=True, max_size=len(FLAGS)))
    argv: list[str] = []
    expected: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for flag in chosen:
        words, value = data.draw(_value(flag))
        argv += words
        expected[flag.group][flag.field] = value
    assert given_options(_parser().parse_args(argv)) == expected  # flags in any order


def test_given_options_of_nothing_is_empty_groups_and_guidance_stays_apart() -> None:
    args = _parser().parse_args(["--guidance", "on"])
    assert given_options(args) == {"prompt": {}, "history": {}, "proposal": {}, "sampler": {}}
    assert args.guidance == "on"
    assert _parser().parse_args([]).guidance == "auto"


# --------------------------------------------------------------------------- the printed call


def _namespace(model_client: ScriptedClient) -> dict[str, Any]:
    """What ``python_call``'s output needs: the option classes, the task descriptions, and an
    LLMSampler whose model string, endpoint and provider options are stood in for by a
    ScriptedClient (no SDK, no network)."""

    def llm_sampler(**kwargs: Any) -> LLMSampler:
        for name in ("model", "base_url", "api_key", "provider_options"):
            kwargs.pop(name, None)
        return LLMSampler(model=model_client, **kwargs)

    return {
        "LLMSampler": llm_sampler,
        "PromptOptions": PromptOptions,
        "HistoryOptions": HistoryOptions,
        "AbsolutePoints": AbsolutePoints,
        "StepsFromBest": StepsFromBest,
        "TASK_DESCRIPTIONS": TASK_DESCRIPTIONS,
    }


CONFIGS = [
    {},
    {"guidance": "on"},
    {"guidance": "off", "model": "local"},
    {"model": "local"},
    {"model": "local", "options": {"proposal": {"n_candidates": 1, "steps_from_best": False}}},
    {"options": {"proposal": {"steps_from_best": True, "widen_after": 3, "out_of_range": "clip"}}},
    {
        "options": {
            "prompt": {"task_description": "Tune it.", "precision": None, "search_std": 0.5},
            "history": {"style": "tutorial", "max_tokens": 900},
            "proposal": {"min_distance": 0.05, "hints": True},
        },
        "max_total_tokens": 5000,
        "n_startup_trials": 4,
        "seed": 3,
    },
    {"env": "Pendulum-v1", "guidance": "on", "options": {"prompt": {"expected_optimum": -200}}},
    {"llm_options": {"provider_options": {"timeout": 5.0}}},
    {"guidance": "advised"},
    {"options": {"sampler": {"base_sampler": "cmaes", "llm_share": 0.5}}},
    {"options": {"sampler": {"base_sampler": "tpe", "llm_startup_trials": 3}}},
]


@pytest.mark.parametrize("case", CONFIGS)
def test_the_printed_call_builds_the_sampler_run_uses(
    case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dict(case)
    model = settings.pop("model", "stub-model")
    if model == "local":
        pytest.importorskip("llama_cpp", reason="needs the [local] extra")
    else:
        settings["base_url"] = "http://127.0.0.1:9/v1"  # never reached: nothing is asked
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = RunConfig(model=model, **settings)
    lines: list[str] = []
    try:
        used = _make_run_sampler(config, model, lines.append)
    except Exception as error:  # the embedded model's parts are not installed
        if model == "local":
            pytest.skip(f"embedded model unavailable: {error}")
        raise
    assert isinstance(used, LLMSampler)
    [call] = [line.removeprefix("in Python: ") for line in lines if line.startswith("in Python:")]
    assert call.startswith(f"LLMSampler(model={model!r}, ")
    # The stand-in client runs where the real one does: preset="auto" depends on it.
    client = ScriptedClient()
    client.runs_locally = bool(getattr(used.client, "runs_locally", False))  # type: ignore[attr-defined]
    built = eval(call, _namespace(client))  # noqa: S307 - our own output
    assert built.proposal == used.proposal
    # The rest of the set-up too (no public accessors: the options the sampler holds).
    assert built._prompt == used._prompt and built._history == used._history
    assert built._n_startup_trials == used._n_startup_trials == config.n_startup_trials
    assert built._max_total_tokens == used._max_total_tokens == config.max_total_tokens
    assert type(built.base_sampler) is type(used.base_sampler)
    assert built._llm_share == used._llm_share
    assert built._llm_startup_trials == used._llm_startup_trials


def test_the_base_sampler_flags_reach_the_printed_call(in_tmp: Path, capsys) -> None:
    argv = ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1", "--create-only"]
    argv += ["--study-name", "c", "--base-sampler", "tpe", "--llm-share", "0.25"]
    assert main(argv) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("in Python: ")]
    assert "base_sampler='tpe', llm_share=0.25" in line
    built = eval(line.removeprefix("in Python: "), _namespace(ScriptedClient()))  # noqa: S307
    assert isinstance(built.base_sampler, optuna.samplers.TPESampler) and built._llm_share == 0.25


def test_run_prints_the_call(in_tmp: Path, capsys) -> None:
    argv = ["run", "--model", "stub-model", "--base-url", "http://127.0.0.1:9/v1", "--create-only"]
    argv += ["--study-name", "c", "--steps-from-best", "--min-distance", "0.2", "--precision", "4"]
    assert main(argv) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("in Python: ")]
    assert line == (
        "in Python: LLMSampler(model='stub-model', preset='auto', prompt=PromptOptions("
        "expected_optimum=50.0, budget=1, precision=4), proposal=StepsFromBest(min_distance=0.2), "
        "base_url='http://127.0.0.1:9/v1', n_startup_trials=20, seed=0)"
    )
    built = eval(line.removeprefix("in Python: "), _namespace(ScriptedClient()))  # noqa: S307
    assert built.proposal == StepsFromBest(min_distance=0.2)


def test_python_call_leaves_defaults_out_and_names_the_task_description() -> None:
    options = sampler_options(env=MOUNTAINCAR, model="local", guidance="auto", budget=60)
    assert python_call(options, env=MOUNTAINCAR) == (
        "LLMSampler(model='local', preset='auto', prompt=PromptOptions(expected_optimum=50.0, "
        "task_description=TASK_DESCRIPTIONS['MountainCarContinuous-v0'], budget=60))"
    )
    assert python_call({"model": "m", "provider_options": {}}, env="X") == "LLMSampler(model='m')"
    assert python_call({"model": "m", "prompt": PromptOptions()}, env="X") == (
        "LLMSampler(model='m', prompt=PromptOptions())"
    )


def test_the_printed_call_of_a_prompt_with_template_vars_evaluates() -> None:
    """``RunConfig.llm_options`` may carry a whole ``PromptOptions``; its ``template_vars`` (a
    read-only mapping inside) must print as a dict the call can be built from."""
    prompt = PromptOptions(template="{{ note }}", template_vars={"note": "Go."})
    call = python_call({"model": "m", "prompt": prompt}, env="X")
    built = eval(call, _namespace(ScriptedClient()))  # noqa: S307 - our own output
    assert built._prompt == prompt
