"""RandomProposer, the no-LLM control: it answers any schema the sampler builds, as the set-up
asks (uniform points in the box, N(0, search_std) changes from the best point), seeded."""

from __future__ import annotations

import json
import pickle
import statistics

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import RandomProposer
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._answer import build_candidates_schema
from optuna_llm_sampler._answer import build_compact_schema
from optuna_llm_sampler._answer import build_json_schema
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._space import snap_params
from optuna_llm_sampler._space import step_space
from optuna_llm_sampler.providers import create_client
from optuna_llm_sampler.providers import LLMClient
from optuna_llm_sampler.providers import parse_model_string
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderError


def _answer(client: RandomProposer, schema: dict) -> dict:
    return json.loads(client.complete([], schema=schema).text)


def test_is_a_client_that_costs_nothing():
    client = RandomProposer(seed=0)
    assert isinstance(client, LLMClient)
    assert client.supports_schema and not client.runs_locally
    completion = client.complete([], schema=build_json_schema({"a": FloatDistribution(-7, 7)}))
    assert completion.model == "control"
    assert (completion.prompt_tokens, completion.completion_tokens) == (0, 0)
    assert 0 <= completion.latency_s < 1 and not completion.cached


def test_absolute_points_are_uniform_in_the_box():
    client = RandomProposer(seed=1)
    schema = build_json_schema({"a": FloatDistribution(-7, 7), "b": FloatDistribution(0, 1)})
    answers = [_answer(client, schema) for _ in range(2000)]
    a = [x["a"] for x in answers]
    assert min(a) >= -7 and max(a) <= 7
    assert abs(statistics.mean(a)) < 0.4 and min(a) < -6.5 and max(a) > 6.5
    assert all(0 <= x["b"] <= 1 for x in answers)
    assert {x["reasoning"] for x in answers} == {"random"}
    # full precision, not a grid
    assert len({round(v, 6) for v in a}) == len(a)


def test_steps_are_normal_changes_of_scale_search_std_rounded_to_a_tenth():
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    schema = build_candidates_schema(step_space(space), 3)
    for std in (0.5, 2.0):
        client = RandomProposer(seed=2, search_std=std)
        answers = [_answer(client, schema) for _ in range(700)]
        assert all(len(x["candidates"]) == 3 for x in answers)
        changes = [c[k] for x in answers for c in x["candidates"] for k in c]
        assert all(round(v, 1) == v for v in changes)
        assert statistics.pstdev(changes) == pytest.approx(std, rel=0.08)
        assert abs(statistics.mean(changes)) < 0.1 * std


def test_compact_answers_are_positional_and_steps_known_by_their_titles():
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    client = RandomProposer(seed=4, search_std=0.5)
    steps = client.complete([], schema=build_compact_schema(step_space(space), 3)).text
    points = json.loads(steps)
    assert len(points) == 3 and all(len(p) == 2 for p in points)
    changes = [v for p in points for v in p]
    assert all(round(v, 1) == v and abs(v) < 3 for v in changes)
    parsed = parse_candidates(steps, list(step_space(space)), positional=True)
    assert [list(p.values.values()) for p in parsed] == points
    # Absolute points on the same symmetric box are uniform, not changes: told by the titles.
    absolute = [
        v
        for _ in range(50)
        for p in json.loads(client.complete([], schema=build_compact_schema(space, 3)).text)
        for v in p
    ]
    assert max(map(abs, absolute)) > 5 and any(round(v, 1) != v for v in absolute)
    with_reason = build_compact_schema(space, 2, reasoning=True)
    answer = json.loads(client.complete([], schema=with_reason).text)
    assert len(answer["candidates"]) == 2 and answer["reasoning"] == "random"


def test_steps_stay_in_the_schema_range_and_full_precision_on_request():
    schema = build_json_schema(step_space({"a": FloatDistribution(0, 0.5)}))
    client = RandomProposer(seed=3, search_std=10.0, decimals=None)
    changes = [_answer(client, schema)["change_a"] for _ in range(200)]
    assert all(-0.5 <= v <= 0.5 for v in changes)
    assert any(v in (-0.5, 0.5) for v in changes)  # clipped at the range
    assert any(round(v, 1) != v for v in changes)


def test_same_seed_same_answers_and_pickle_continues_the_stream():
    schema = build_candidates_schema({"a": FloatDistribution(-7, 7)}, 3)
    first, second = RandomProposer(seed=5), RandomProposer(seed=5)
    assert [_answer(first, schema) for _ in range(3)] == [
        _answer(second, schema) for _ in range(3)
    ]
    copy = pickle.loads(pickle.dumps(first))
    assert _answer(copy, schema) == _answer(first, schema)
    assert _answer(RandomProposer(seed=6), schema) != _answer(RandomProposer(seed=5), schema)


def test_no_schema_is_a_configuration_error():
    with pytest.raises(ProviderConfigError, match="answer_format"):
        RandomProposer(seed=0).complete([], schema=None)


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"properties": []},
        {"properties": {"a": "number"}},
        {"properties": {"a": {"type": "number"}}},
        {"properties": {"a": {"type": "number", "minimum": 2, "maximum": 1}}},
        {"properties": {"a": {"type": "number", "minimum": "x", "maximum": 1}}},
        {"properties": {"a": {"type": "number", "minimum": float("-inf"), "maximum": 1}}},
        {"properties": {"a": {"type": "integer", "minimum": 0.2, "maximum": 0.8}}},
        {"properties": {"a": {"enum": []}}},
        {"properties": {"a": {"type": "object"}}},
        {"properties": {"candidates": {"type": "array", "items": {}, "minItems": 2}}},
        {
            "properties": {
                "candidates": {"type": "array", "items": {"properties": {}}, "minItems": 10**9}
            }
        },
    ],
)
def test_a_schema_the_sampler_never_builds_is_a_provider_error(schema):
    with pytest.raises(ProviderError):
        RandomProposer(seed=0).complete([], schema=schema)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"search_std": 0}, "search_std"),
        ({"search_std": float("nan")}, "search_std"),
        ({"search_std": True}, "search_std"),
        ({"decimals": -1}, "decimals"),
        ({"decimals": 1.5}, "decimals"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomProposer(**kwargs)


def test_model_string_control():
    assert parse_model_string("control") == ("control", None)
    client = create_client("control", seed=3, search_std=0.5)
    assert isinstance(client, RandomProposer)
    assert (client.seed, client.search_std) == (3, 0.5)
    with pytest.raises(ValueError, match="base_url"):
        create_client("control", base_url="http://127.0.0.1:1/v1")


def _distribution(kind: str, low: float, width: float) -> BaseDistribution:
    if kind == "float":
        return FloatDistribution(low, low + width)
    if kind == "log":
        return FloatDistribution(1e-5, 1e-5 + width, log=True)
    if kind == "int":
        return IntDistribution(int(low), int(low) + max(1, int(width)))
    if kind == "step":
        return FloatDistribution(int(low), int(low) + 2 * max(1, int(width)), step=0.25)
    return CategoricalDistribution(["adam", "sgd", 3, None, True][: max(1, int(width) % 5 + 1)])


spaces = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.builds(
        _distribution,
        st.sampled_from(["float", "log", "int", "step", "categorical"]),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.floats(0.01, 1e4, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(space=spaces, n_candidates=st.integers(1, 6), seed=st.integers(0, 2**32))
def test_answers_every_absolute_schema_with_values_the_space_accepts(space, n_candidates, seed):
    client = RandomProposer(seed=seed)
    if n_candidates == 1:
        text = client.complete([], schema=build_json_schema(space)).text
        answers = [parse_answer(text, space)]
    else:
        text = client.complete([], schema=build_candidates_schema(space, n_candidates)).text
        answers = parse_candidates(text, space)
        assert len(answers) == n_candidates
    for answer in answers:
        params, _ = snap_params(answer.values, space)  # no value out of range or unknown
        assert set(params) == set(space)


@settings(max_examples=100, deadline=None)
@given(
    space=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.builds(
            _distribution,
            st.sampled_from(["float", "int", "step"]),
            st.floats(-1e3, 1e3, allow_nan=False),
            st.floats(0.01, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    ),
    std=st.floats(0.01, 1e3),
    seed=st.integers(0, 2**32),
)
def test_answers_every_step_schema_with_changes_in_range(space, std, seed):
    changes = step_space(space)
    text = (
        RandomProposer(seed=seed, search_std=std)
        .complete([], schema=build_candidates_schema(changes, 3))
        .text
    )
    for answer in parse_candidates(text, changes):
        snap_params(answer.values, changes)  # every change within the parameter's width


@pytest.mark.parametrize("runs_locally", [False, True])  # True: compact positional answers
@pytest.mark.parametrize("preset", ["tutorial", "guided"])
def test_a_study_with_the_control_never_falls_back(preset, runs_locally):
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_float("y", -5, 5)
        return (x - 1) ** 2 + y**2

    client = RandomProposer(seed=0, runs_locally=runs_locally)
    sampler = LLMSampler(model=client, preset=preset, seed=0, n_startup_trials=5)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=20)
    usage = llm_usage(study)
    assert usage.llm_trials == 15 and usage.fallbacks == 0 and usage.total_tokens == 0
    record = get_llm_record(study.trials[-1])
    assert record is not None and record.model == "control"
    assert record.candidates == (2 if preset == "guided" else 0)


def test_a_study_of_mixed_parameters_falls_back_to_absolute_points_without_error():
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        n = trial.suggest_int("n", 1, 9, step=2)
        opt = trial.suggest_categorical("opt", ["adam", "sgd"])
        return lr * n + (opt == "sgd")

    sampler = LLMSampler(model=RandomProposer(seed=0), preset="guided", n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=12)
    assert llm_usage(study).fallbacks == 0
    assert isinstance(PRESETS["guided"].proposal, StepsFromBest)
