"""Reading the LLM's answer: values by name in the text or JSON formats, candidates, schemas."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import build_candidates_schema
from optuna_llm_sampler._answer import build_json_schema
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._space import snap_params


AB = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}

# Answers the way real models write them, and what the sampler must read from them.
REAL_ANSWERS = [
    ("a: 1.5, b: -2.3\nMoving toward the best point.", (1.5, -2.3), "Moving toward the best"),
    ("a: 1.5; b: -2.3", (1.5, -2.3), ""),
    ("A: 1e-3, B: +2.\nSmall step.", (0.001, 2.0), "Small step."),
    ("a: .5, b: -0.", (0.5, 0.0), ""),
    ("Sure! Here is my proposal:\na: 3.2, b: 5.1\nExploring b.", (3.2, 5.1), "Exploring b."),
    ("**a**: 3.2, **b**: 5.1\n**Reason:** higher b helped.", (3.2, 5.1), "higher b helped."),
    ("a = 3.2, b = 5.1", (3.2, 5.1), ""),
    ("```\na: 3.2, b: 5.1\n```\nBecause.", (3.2, 5.1), "Because."),
    ('```json\n{"a": 3.2, "b": 5.1, "reasoning": "r"}\n```', (3.2, 5.1), "r"),
    ('{"A": 3.2, "B": 5.1}', (3.2, 5.1), ""),
    ('Thinking: {"a": 0, "b": 0} was bad.\n{"a": 1, "b": 2, "reasoning": "x"}', (1, 2), "x"),
    ("<think>maybe a: 9, b: 9</think>\na: 2, b: 3\nSafer.", (2.0, 3.0), "Safer."),
    ("a: 2\nb: 3\nOne per line.", (2.0, 3.0), "One per line."),
    ("a: 2 b: 3", (2.0, 3.0), ""),
    ("a: −1.5, b: 2", (-1.5, 2.0), ""),
]


@pytest.mark.parametrize(("text", "expected", "reason_start"), REAL_ANSWERS)
def test_parse_real_answers(text: str, expected: tuple, reason_start: str) -> None:
    answer = parse_answer(text, ["a", "b"])
    params, clipped = snap_params(answer.values, AB)
    assert params == pytest.approx({"a": expected[0], "b": expected[1]})
    assert all(isinstance(v, float) for v in params.values())
    assert answer.reasoning.startswith(reason_start)
    assert clipped == []


@pytest.mark.parametrize(
    "text",
    ["", "   ", "I cannot help with that.", "a: 1.5 only", "b: 2\nsomething", '{"a": 1}'],
)
def test_parse_rejects_answers_missing_a_value(text: str) -> None:
    with pytest.raises(AnswerError):
        parse_answer(text, ["a", "b"])


def test_missing_names_are_named_in_the_error() -> None:
    with pytest.raises(AnswerError, match="no value found for b"):
        parse_answer("a: 1.0", ["a", "b"])


def test_names_that_prefix_each_other() -> None:
    answer = parse_answer("x2: 5, x: 1", ["x", "x2"])
    assert answer.values == {"x": "1", "x2": "5"}


def test_reasoning_is_cut() -> None:
    answer = parse_answer("a: 1, b: 2\n" + "word " * 200, ["a", "b"])
    assert len(answer.reasoning) <= 300
    assert answer.reasoning.endswith("…")


def test_json_schema_shape() -> None:
    space = {
        "a": FloatDistribution(-7, 7),
        "n": IntDistribution(1, 8),
        "c": CategoricalDistribution(["x", 2, None]),
    }
    schema = build_json_schema(space)
    assert schema["required"] == ["a", "n", "c", "reasoning"]
    assert schema["properties"]["n"] == {"type": "integer", "minimum": 1, "maximum": 8}
    assert schema["properties"]["c"] == {"enum": ["x", 2, None]}
    assert schema["additionalProperties"] is False


def test_json_schema_rejects_reserved_name() -> None:
    with pytest.raises(ValueError, match="reasoning"):
        build_json_schema({"reasoning": FloatDistribution(0, 1)})


CANDIDATE_ANSWERS = [
    ('{"candidates": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "reasoning": "two"}', 2, "two"),
    ('[{"a": 1, "b": 2}, {"A": 3, "B": 4}, {"a": 5}]', 2, ""),
    ('{"a": 1, "b": 2}\n{"a": 3, "b": 4}', 2, ""),
    ("a: 1, b: 2\na: 3, b: 4\na: 5, b: 6\nSpread around the best.", 3, "Spread around the best."),
    ("```\na: 1, b: 2\n```", 1, ""),
]


@pytest.mark.parametrize(("text", "count", "reasoning"), CANDIDATE_ANSWERS)
def test_parse_candidates(text: str, count: int, reasoning: str) -> None:
    candidates = parse_candidates(text, ["a", "b"])
    assert len(candidates) == count
    assert all(c.reasoning == reasoning for c in candidates)
    assert snap_params(candidates[0].values, AB)[0] == {"a": 1.0, "b": 2.0}


def test_parse_candidates_needs_one_complete_candidate() -> None:
    with pytest.raises(AnswerError, match="no complete candidate"):
        parse_candidates("a: 1\nThinking.", ["a", "b"])


def test_candidates_schema() -> None:
    schema = build_candidates_schema(AB, 3)
    items = schema["properties"]["candidates"]
    assert (items["minItems"], items["maxItems"]) == (3, 3)
    assert set(items["items"]["properties"]) == {"a", "b"}
    assert schema["required"] == ["candidates", "reasoning"]
