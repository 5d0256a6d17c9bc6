"""The compact answer format: values by position under a grammar, reasoning only when asked, and
a history budget that follows the client's context window."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial
import pytest

from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import build_compact_schema
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import history_budget
from optuna_llm_sampler._prompt import feedback_message
from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import ScriptedClient


SPACE = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
NAMES = ["change_a", "change_b"]


class LocalScripted(ScriptedClient):
    """A scripted client that says it runs in-process, as LlamaCppClient does."""

    runs_locally = True


def _study(sampler: LLMSampler, n: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for k in range(n):
        a, b = (k * 0.37) % 14 - 7, (k * 0.91) % 14 - 7
        study.add_trial(
            create_trial(value=-(a**2) - b**2, params={"a": a, "b": b}, distributions=SPACE)
        )
    return study


def _ask(study: optuna.Study) -> None:
    trial = study.ask()
    trial.suggest_float("a", -7, 7)
    trial.suggest_float("b", -7, 7)


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [
        ("[[0.5,-1],[1,0.2],[-0.5,0.3]]", [(0.5, -1), (1, 0.2), (-0.5, 0.3)], ""),
        ('{"candidates": [[1, 2]], "reasoning": "up the hill"}', [(1, 2)], "up the hill"),
        ("[1.5, -2]", [(1.5, -2)], ""),
        ("```json\n[[1, 2], [3, 4]]\n```", [(1, 2), (3, 4)], ""),
        ("change_a: 1, change_b: 2", [("1", "2")], ""),  # a model that names them anyway
    ],
)
def test_positional_answers_are_read_in_the_order_of_the_names(
    text: str, expected: list, reason: str
) -> None:
    parsed = parse_candidates(text, NAMES, positional=True)
    assert [tuple(p.values[n] for n in NAMES) for p in parsed] == expected
    assert all(p.reasoning == reason for p in parsed)


@pytest.mark.parametrize("text", ["[[1, 2, 3]]", "[[1], [2]]", "[[1, [2]]]", "[]", "1, 2"])
def test_points_of_the_wrong_length_are_no_candidates(text: str) -> None:
    with pytest.raises(AnswerError):
        parse_candidates(text, NAMES, positional=True)


def test_without_positional_a_bare_array_is_no_answer() -> None:
    with pytest.raises(AnswerError):
        parse_candidates("[[1, 2]]", NAMES)


def test_limit_keeps_the_first_points() -> None:
    parsed = parse_candidates("[[1,2],[3,4],[5,6]]", NAMES, positional=True, limit=2)
    assert [p.values["change_a"] for p in parsed] == [1, 3]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(
            st.floats(-14, 14, allow_nan=False).map(lambda x: round(x, 1)), min_size=2, max_size=2
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_list_of_points_reads_back(points: list[list[float]]) -> None:
    parsed = parse_candidates(json.dumps(points), NAMES, positional=True)
    assert [[p.values[n] for n in NAMES] for p in parsed] == points


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["[", "]", ",", "{", "}", '"candidates":', '"reasoning":', "-", "."]),
            st.floats().map(str),
            st.integers(0, 10**6).map(str),
            st.integers(50, 3000).map(lambda n: "[" * n),
            st.integers(300, 6000).map(lambda n: "9" * n),
        ),
        max_size=30,
    ).map("".join)
)
def test_any_hostile_text_is_points_or_an_answer_error(text: str) -> None:
    try:
        parsed = parse_candidates(text, NAMES, positional=True, limit=6)
    except AnswerError:
        return
    assert 1 <= len(parsed) <= 6
    assert all(set(p.values) == set(NAMES) for p in parsed)


def test_compact_schema_lists_tuples_with_the_prompts_decimals() -> None:
    schema = build_compact_schema(SPACE, 3, decimals={"a": 2})
    assert schema["minItems"] == schema["maxItems"] == 3
    first, second = schema["items"]["prefixItems"]
    assert first["multipleOf"] == pytest.approx(0.01) and "multipleOf" not in second
    with_reason = build_compact_schema(SPACE, 1, reasoning=True)
    assert with_reason["required"] == ["candidates", "reasoning"]
    assert with_reason["properties"]["reasoning"]["maxLength"] <= 60


def _prompt_and_schema(client: ScriptedClient, **options: Any) -> tuple[str, Any]:
    caught: dict[str, Any] = {}

    def record(messages: Any, schema: Any) -> str:
        caught.update(prompt=messages[0].content, schema=schema)
        return "[[1, 0], [0, 1], [-1, 0]]"

    client._respond = record  # type: ignore[attr-defined]
    sampler = LLMSampler(model=client, n_startup_trials=3, max_retries=0, **options)
    _ask(_study(sampler, 5))
    return caught["prompt"], caught["schema"]


def test_a_local_model_gets_values_only_and_no_reasoning_by_default() -> None:
    prompt, schema = _prompt_and_schema(LocalScripted(respond=str, supports_schema=True))
    assert schema["type"] == "array" and "reasoning" not in json.dumps(schema)
    assert "[[change_a, change_b], [change_a, change_b]]" in prompt
    assert "not the point itself" in prompt
    assert "explanation" not in prompt and "Changes already tried" not in prompt
    # One decimal for changes on [-7, 7] at precision 3 (a change spans [-14, 14]).
    assert schema["items"]["prefixItems"][0]["multipleOf"] == pytest.approx(0.1)


def test_a_local_model_asked_for_reasons_gives_a_clause() -> None:
    prompt, schema = _prompt_and_schema(
        LocalScripted(respond=str, supports_schema=True), prompt=PromptOptions(reasoning=True)
    )
    assert schema["properties"]["reasoning"]["maxLength"] <= 60
    assert '"reasoning" is a few words on why' in prompt


def test_a_remote_model_keeps_the_json_schema_and_a_sentence() -> None:
    prompt, schema = _prompt_and_schema(ScriptedClient(respond=str, supports_schema=True))
    assert set(schema["properties"]) == {"a", "b", "reasoning"}
    assert "brief (one sentence) explanation" in prompt
    _, schema = _prompt_and_schema(
        ScriptedClient(respond=str, supports_schema=True), prompt=PromptOptions(reasoning=False)
    )
    assert set(schema["properties"]) == {"a", "b"} and schema["required"] == ["a", "b"]


def test_a_compact_study_evaluates_the_models_changes() -> None:
    client = LocalScripted(supports_schema=True)
    client.enqueue("[[1.5, -0.5], [0, 0], [0, 0]]")
    sampler = LLMSampler(model=client, n_startup_trials=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(create_trial(value=1.0, params={"a": 1.0, "b": 2.0}, distributions=SPACE))
    _ask(study)
    trial = study.trials[-1]
    assert trial.params == pytest.approx({"a": 2.5, "b": 1.5})


def test_compact_feedback_repeats_the_shape() -> None:
    context = {"answer_format": "compact", "compact_example": "[[a, b]]", "reasoning": False}
    message = feedback_message("the point (a: 1) was already evaluated.", context)
    assert "JSON [[a, b]]" in message.content


@pytest.mark.parametrize(
    ("budget", "window", "expected"),
    [
        ("auto", 8192, 2048),
        ("auto", 4096, 1024),
        ("auto", None, 2048),
        ("auto", True, 2048),
        (700, 8192, 700),
        (None, 8192, None),
    ],
)
def test_history_budget_follows_the_context_window(
    budget: Any, window: Any, expected: Any
) -> None:
    client = type("C", (), {"context_window": window})()
    assert history_budget(budget, client) == expected


def test_a_1000_trial_history_renders_within_the_default_budget() -> None:
    prompts: list[str] = []

    def record(messages: Any, schema: Any) -> Completion:
        prompts.append(messages[0].content)
        return Completion(text="a: 0.123, b: 0.456", model="m")

    sampler = LLMSampler(model=ScriptedClient(respond=record), n_startup_trials=0)
    _ask(_study(sampler, 1000))
    table = re.search(r"a,b,f\(a,b\)\n(.*?)\n\n", prompts[0], re.S)
    assert table is not None
    rows = table.group(1).splitlines()
    assert 50 < len(rows) < 1000
    assert sum(estimate_tokens(row) + 1 for row in rows) <= 2048
    # The tutorial's unbounded history stays available by name.
    unbounded = LLMSampler(
        model=ScriptedClient(respond=record),
        n_startup_trials=0,
        history=HistoryOptions(mode="all", max_tokens=None),
    )
    _ask(_study(unbounded, 1000))
    assert prompts[-1].count("\n") > 1000


def test_options_check_the_new_fields() -> None:
    with pytest.raises(ValueError, match="reasoning"):
        PromptOptions(reasoning="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_tokens"):
        HistoryOptions(max_tokens="all")  # type: ignore[arg-type]
    assert HistoryOptions().max_tokens == "auto"
