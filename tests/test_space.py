"""The search space: snapping answers into Optuna's distributions, repeats, steps from the best."""

from __future__ import annotations

import math

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import ParsedAnswer
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._space import add_changes
from optuna_llm_sampler._space import find_duplicate
from optuna_llm_sampler._space import snap_params
from optuna_llm_sampler._space import step_space


AB = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}


def test_snap_rejects_out_of_range_naming_the_parameter() -> None:
    with pytest.raises(AnswerError, match=r"a=9 is outside its range \[-7, 7\]"):
        snap_params({"a": "9", "b": "0"}, AB)


def test_snap_clips_when_asked() -> None:
    params, clipped = snap_params({"a": 9, "b": -8}, AB, out_of_range="clip")
    assert params == {"a": 7.0, "b": -7.0}
    assert clipped == ["a", "b"]


def test_snap_reflects_at_the_bound_when_asked() -> None:
    params, moved = snap_params({"a": 7.7, "b": -7.25}, AB, out_of_range="reflect")
    assert params == pytest.approx({"a": 6.3, "b": -6.75})
    assert moved == ["a", "b"]


def test_a_reflection_past_the_other_bound_stops_there() -> None:
    params, moved = snap_params({"a": 30, "b": 0}, AB, out_of_range="reflect")
    assert params == {"a": -7.0, "b": 0.0}
    assert moved == ["a"]


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


def test_find_duplicate_matches_complete_and_pending() -> None:
    rows = [
        HistoryEntry(0, {"a": 1.0, "b": 2.0}, 5.0),
        HistoryEntry(1, {"a": 3.0, "b": 4.0}, None),
    ]
    assert find_duplicate({"a": 1.0, "b": 2.0}, rows, AB) is rows[0]
    assert find_duplicate({"a": 3.0, "b": 4.0}, rows, AB) is rows[1]
    assert find_duplicate({"a": 3.0, "b": 4.0000001}, rows, AB) is None
    assert not math.isnan(rows[0].value or 0)


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


@pytest.mark.parametrize(
    "raw", [10**400, -(10**400), "1" * 5000, "-" + "9" * 400 + ".5", float("inf"), "1e999"]
)
def test_numbers_past_floats_range_are_not_finite_answers(raw: object) -> None:
    with pytest.raises(AnswerError, match="a=.* is not a finite number"):
        snap_params({"a": raw, "b": 0}, AB)
    assert add_changes({"a": 0.0}, ParsedAnswer({"change_a": raw}, "")).values["a"] in (
        raw,
        math.inf,
        -math.inf,
    )


@pytest.mark.parametrize("raw", ["1,5", "-0,25", "1,000.5", " 2,5 ", "1,2,3"])
def test_a_number_with_a_comma_asks_for_a_decimal_point(raw: str) -> None:
    with pytest.raises(AnswerError, match="written with a comma: write numbers with a decimal"):
        snap_params({"a": raw, "b": 0}, AB)


def test_a_choice_that_holds_a_comma_is_matched_before_any_number_rule() -> None:
    space = {"opt": CategoricalDistribution(["1,5", "x"])}
    assert snap_params({"opt": "1,5"}, space)[0] == {"opt": "1,5"}


def test_feedback_never_prints_an_endless_value() -> None:
    with pytest.raises(AnswerError) as error:
        snap_params({"a": "x" * 100_000, "b": [[[1]]]}, AB)
    assert len(str(error.value)) < 200
