from __future__ import annotations

import math

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._parse import add_changes
from optuna_llm_sampler._parse import AnswerError
from optuna_llm_sampler._parse import build_candidates_schema
from optuna_llm_sampler._parse import build_json_schema
from optuna_llm_sampler._parse import find_duplicate
from optuna_llm_sampler._parse import parse_answer
from optuna_llm_sampler._parse import parse_candidates
from optuna_llm_sampler._parse import ParsedAnswer
from optuna_llm_sampler._parse import snap_params
from optuna_llm_sampler._parse import step_space


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


def test_snap_rejects_out_of_range_naming_the_parameter() -> None:
    with pytest.raises(AnswerError, match=r"a=9 is outside its range \[-7, 7\]"):
        snap_params({"a": "9", "b": "0"}, AB)


def test_snap_clips_when_asked() -> None:
    params, clipped = snap_params({"a": 9, "b": -8}, AB, out_of_range="clip")
    assert params == {"a": 7.0, "b": -7.0}
    assert clipped == ["a", "b"]


@pytest.mark.parametrize("raw", ["nan", "inf", "abc", True, None, "1.2.3"])
def test_snap_rejects_non_numbers(raw: object) -> None:
    with pytest.raises(AnswerError):
        snap_params({"a": raw, "b": 0}, AB)


def test_snap_float_step_and_int_step_and_log() -> None:
    space = {
        "f": FloatDistribution(-10, 10, step=0.5),
        "i": IntDistribution(3, 9, step=2),
        "lf": FloatDistribution(1e-7, 1.0, log=True),
        "li": IntDistribution(1, 100, log=True),
    }
    params, _ = snap_params({"f": "1.26", "i": "6.2", "lf": "1e-3", "li": 42.6}, space)
    assert params == {"f": 1.5, "i": 7, "lf": 0.001, "li": 43}
    assert isinstance(params["i"], int) and isinstance(params["li"], int)
    for name, dist in space.items():
        assert dist._contains(dist.to_internal_repr(params[name]))


@pytest.mark.filterwarnings("ignore:The distribution is specified by")
def test_snap_step_at_the_top_stays_in_range() -> None:
    space = {"f": FloatDistribution(0, 1, step=0.3), "i": IntDistribution(0, 10, step=3)}
    params, _ = snap_params({"f": 1.0, "i": 10}, space, out_of_range="clip")
    assert params["f"] == pytest.approx(0.9) and params["f"] <= 1
    assert params["i"] == 9


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("adam", "adam"), ("Adam", "adam"), ("'sgd'", "sgd"), ("1", 1), (1.0, 1), ("None", None)],
)
def test_snap_categorical(raw: object, expected: object) -> None:
    space = {"c": CategoricalDistribution(["adam", "sgd", 1, None])}
    params, _ = snap_params({"c": raw}, space)
    assert params["c"] == expected and type(params["c"]) is type(expected)


def test_snap_categorical_unknown_choice_lists_the_choices() -> None:
    with pytest.raises(AnswerError, match=r"not one of the choices \(adam, sgd\)"):
        snap_params({"c": "rmsprop"}, {"c": CategoricalDistribution(["adam", "sgd"])})


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(AnswerError) as info:
        snap_params({"a": "99", "b": "x"}, AB)
    assert "a=99" in str(info.value) and "b=x" in str(info.value)


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


def test_find_duplicate_matches_complete_and_pending() -> None:
    rows = [
        HistoryEntry(0, {"a": 1.0, "b": 2.0}, 5.0),
        HistoryEntry(1, {"a": 3.0, "b": 4.0}, None),
    ]
    assert find_duplicate({"a": 1.0, "b": 2.0}, rows, AB) is rows[0]
    assert find_duplicate({"a": 3.0, "b": 4.0}, rows, AB) is rows[1]
    assert find_duplicate({"a": 3.0, "b": 4.0000001}, rows, AB) is None
    assert not math.isnan(rows[0].value or 0)


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


def test_add_changes_adds_numbers_and_passes_the_rest_on() -> None:
    answer = ParsedAnswer({"change_a": "-0.5", "change_b": "a lot"}, "why")
    point = add_changes({"a": 1.0, "b": 2.0}, answer)
    assert point.values == {"a": 0.5, "b": "a lot"} and point.reasoning == "why"
    assert step_space({"a": FloatDistribution(-7, 7), "n": IntDistribution(0, 4)}) == {
        "change_a": FloatDistribution(-14, 14),
        "change_n": FloatDistribution(-4, 4),
    }
    with pytest.raises(ValueError, match="'c' is CategoricalDistribution"):
        step_space({"c": CategoricalDistribution(["x", "y"])})
