"""Reading the LLM's answer: values by name in the text or JSON formats, candidates, schemas."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._answer import answer_excerpt
from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import build_candidates_schema
from optuna_llm_sampler._answer import build_json_schema
from optuna_llm_sampler._answer import cut_answer
from optuna_llm_sampler._answer import EXCERPT_CHARS
from optuna_llm_sampler._answer import MAX_ANSWER_CHARS
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._answer import reasoning_key
from optuna_llm_sampler._answer import text_safe_name
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


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (["a", "b"], "reasoning"),
        (["reasoning", "b"], "reason"),
        (["Reasoning "], "reason"),  # case and spaces aside: a model writes either
        (["reasoning", "reason", "explanation", "rationale"], "_reasoning"),
    ],
)
def test_the_reasoning_key_is_one_no_parameter_uses(names: list[str], key: str) -> None:
    space = {name: FloatDistribution(0, 1) for name in names}
    assert reasoning_key(names) == key
    schema = build_json_schema(space)
    assert schema["required"] == [*names, key]
    assert schema["properties"][key] == {"type": "string", "maxLength": 160}
    candidates = build_candidates_schema(space, 2)
    assert candidates["required"] == ["candidates", key]
    assert set(candidates["properties"]["candidates"]["items"]["properties"]) == set(names)
    point = {name: 0.5 for name in names}
    answer = parse_answer(json.dumps({**point, key: "Why not."}), names)
    assert answer.values == point and answer.reasoning == "Why not."
    both = json.dumps({"candidates": [point, point], key: "Twice."})
    assert [c.values for c in parse_candidates(both, names)] == [point, point]
    assert parse_candidates(both, names)[0].reasoning == "Twice."


def test_a_parameter_named_reasoning_is_read_in_the_text_format_too() -> None:
    answer = parse_answer("reasoning: 0.25, b: 0.5\nA sentence.", ["reasoning", "b"])
    assert answer.values == {"reasoning": "0.25", "b": "0.5"}
    assert answer.reasoning == "A sentence."


# Names that differ in case or spacing only: each takes the value written with it exactly.
EXACT_NAMES = [
    (["a", "A"], '{"a": 0.1, "A": 0.9}', {"a": 0.1, "A": 0.9}),
    (["a", "A"], '{"A": 0.9, "a": 0.1}', {"a": 0.1, "A": 0.9}),
    (["a", "A"], "a: 0.1, A: 0.9", {"a": "0.1", "A": "0.9"}),
    (["a", "A"], "A: 0.9, a: 0.1", {"a": "0.1", "A": "0.9"}),
    (["lr", "LR", "Lr"], '{"Lr": 3, "LR": 2, "lr": 1}', {"lr": 1, "LR": 2, "Lr": 3}),
    (["x y", "xy"], '{"xy": 2, "x y": 1}', {"x y": 1, "xy": 2}),
    # Unambiguous: another case or spacing is read.
    (["alpha", "beta"], '{"Alpha": 1, " BETA ": 2}', {"alpha": 1, "beta": 2}),
    (["learning rate"], "Learning  Rate: 0.5", {"learning rate": "0.5"}),
    # Names a and A, keys a and " A ": " A " is the only key left for A.
    (["a", "A"], '{"a": 1, " A ": 2}', {"a": 1, "A": 2}),
]


@pytest.mark.parametrize(("names", "text", "values"), EXACT_NAMES)
def test_names_match_exactly_first(names: list[str], text: str, values: dict) -> None:
    assert parse_answer(text, names).values == values


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (["a", "A", "b"], '{"A": 0.9, "b": 1}'),
        (["a", "A", "b"], "A: 0.9, b: 1"),
        (["a", "A", "b"], '{"a": 1, "b": 3}'),
        (["ab", "AB"], '{"Ab": 1, "aB": 2}'),
        (["a", "a_"], "a_: 1"),  # a mention of a_ is none of a
        (["a", "_a"], "_a: 1"),
    ],
)
def test_a_name_is_no_match_for_another_name(names: list[str], text: str) -> None:
    """With parameters ``a`` and ``A``, an answer holding only ``A`` names no value for ``a``."""
    with pytest.raises(AnswerError, match="no value found for"):
        parse_answer(text, names)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet="aAbB _", min_size=1, max_size=4).filter(str.strip),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_every_name_gets_its_own_value_in_json_and_text(names, rng, as_text: bool) -> None:
    """The class: names equal up to case or spaces, written in any order."""
    order = list(names)
    rng.shuffle(order)
    if as_text and not all(text_safe_name(n) for n in names):
        as_text = False  # the sampler asks for JSON for such names
    if as_text:
        text = ", ".join(f"{name}: {names.index(name)}" for name in order)
        expected: dict = {name: str(names.index(name)) for name in names}
    else:
        text = json.dumps({name: names.index(name) for name in order})
        expected = {name: names.index(name) for name in names}
    assert parse_answer(text, names).values == expected
    candidates = parse_candidates(f"{text}\n{text}", names)
    assert all(c.values == expected for c in candidates)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1,5, b: 2,5",
        "a: 1,5; b: 2",
        "a = 1,5\nb = 2,5",
        "a: -0,25, b: 2",
        "a: 1,000.5, b: 2",
        '{"a": 1,5, "b": 2}',
        '{"a": "1,5", "b": 2}',
    ],
)
def test_a_decimal_comma_is_asked_again_never_truncated(text: str) -> None:
    answer = parse_answer(text, ["a", "b"])
    with pytest.raises(
        AnswerError, match="a=.* is written with a comma: write numbers with a dec"
    ):
        snap_params(answer.values, AB)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-6, 6),
    st.integers(0, 10**6),
    st.sampled_from([", ", "; ", "\n", " "]),
    st.sampled_from([":", "=", " :", "**:"]),
)
def test_no_number_with_a_decimal_comma_is_read_as_its_integer_part(
    whole: int, fraction: int, separator: str, assign: str
) -> None:
    text = f"a{assign} {whole},{fraction}{separator}b{assign} 1"
    try:
        params, _ = snap_params(parse_answer(text, ["a", "b"]).values, AB)
    except AnswerError as error:
        assert "decimal point" in str(error)
    else:
        raise AssertionError(f"{text!r} was read as {params}")


def test_quoted_values_carry_commas_colons_and_quotes() -> None:
    space = {"opt": CategoricalDistribution(["x, y", 'say "hi"', "a: b", "plain"]), "n": AB["a"]}
    for choice in space["opt"].choices:
        text = f"opt: {json.dumps(choice)}, n: 1\nA choice."
        answer = parse_answer(text, ["opt", "n"])
        assert snap_params(answer.values, space)[0] == {"opt": choice, "n": 1.0}
        assert answer.reasoning == "A choice."


def test_cut_answer_keeps_the_head_and_the_tail_and_counts_the_cut() -> None:
    text = "a: 1, b: 2\n" + "x" * 200_000 + "\nThe end."
    cut, count = cut_answer(text)
    assert len(cut) <= MAX_ANSWER_CHARS + 1 and count == len(text) - MAX_ANSWER_CHARS
    assert cut.startswith("a: 1, b: 2\n") and cut.endswith("\nThe end.")
    assert cut_answer("a: 1") == ("a: 1", 0)
    excerpt = answer_excerpt(text)
    assert len(excerpt) <= EXCERPT_CHARS + 60
    assert f"[… {len(text) - EXCERPT_CHARS} characters left out …]" in excerpt
    assert excerpt.startswith("a: 1, b: 2") and excerpt.endswith("The end.")
    assert answer_excerpt("short") == "short"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("a", True),
        ("learning rate", True),
        ("x_1", True),
        ("a,b", False),
        ("a:b", False),
        ("a;b", False),
        ("a=b", False),
        ('a"b', False),
        ("a'b", False),
        ("a\nb", False),
        (" a", False),
        ("", False),
    ],
)
def test_text_safe_names(name: str, safe: bool) -> None:
    assert text_safe_name(name) is safe


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
