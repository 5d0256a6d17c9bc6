"""From an answer's candidates to the point a trial may evaluate: usable candidates, and repeats
judged as the prompt shows points (at its precision)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import FloatDistribution
import pytest

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._prompt import format_param
from optuna_llm_sampler._proposals import Candidate
from optuna_llm_sampler._proposals import read_candidates
from optuna_llm_sampler._proposals import repeat_problem
from optuna_llm_sampler._proposals import show_point


AB = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
values = st.floats(-7, 7, allow_nan=False)
precisions = st.one_of(st.integers(1, 8), st.none())


def _point(a: float, b: float = 2.0) -> Candidate:
    return Candidate({"a": a, "b": b}, [], "")


@settings(max_examples=300, deadline=None)
@given(tried=values, proposed=values, precision=precisions)
def test_a_point_repeats_a_row_when_the_prompt_shows_both_alike(
    tried: float, proposed: float, precision: int | None
) -> None:
    rows = [HistoryEntry(0, {"a": tried, "b": 2.0}, 1.0)]
    problem = repeat_problem(_point(proposed), AB, rows, precision=precision, min_distance=None)
    alike = format_param(proposed, AB["a"], precision) == format_param(tried, AB["a"], precision)
    assert (problem is not None) == alike
    if alike:
        shown = show_point({"a": proposed, "b": 2.0}, AB, precision)
        assert problem == (
            f"the point ({shown}) was already evaluated (trial 0). Propose a different point."
        )
    assert repeat_problem(_point(tried), AB, rows, precision=precision, min_distance=None)


def test_a_rounded_copy_at_the_default_precision() -> None:
    rows = [HistoryEntry(4, {"a": 1.2349, "b": 2.0}, 1.0)]
    problem = repeat_problem(_point(1.2341), AB, rows, precision=3, min_distance=None)
    assert problem == (
        "the point (a: 1.23, b: 2) was already evaluated (trial 4). Propose a different point."
    )
    assert repeat_problem(_point(1.2341), AB, rows, precision=4, min_distance=None) is None


def test_pending_rows_the_latest_equal_row_and_rows_of_other_spaces() -> None:
    rows = [
        HistoryEntry(0, {"a": 1.0, "b": 2.0}, 1.0),
        HistoryEntry(1, {"a": 1.001, "b": 2.0}, 3.0),
        HistoryEntry(2, {"a": 5.0}, 0.0),  # another search space: lacks b
        HistoryEntry(3, {"a": 3.0, "b": 3.0}, None),  # running
    ]
    latest = repeat_problem(_point(1.0), AB, rows, precision=3, min_distance=None)
    assert latest is not None and "(trial 1)" in latest  # the latest of the equal rows
    running = repeat_problem(_point(3.0, 3.0), AB, rows, precision=3, min_distance=None)
    assert running is not None and "is being evaluated right now (trial 3)" in running
    assert repeat_problem(_point(5.0), AB, rows, precision=3, min_distance=None) is None


def test_near_points_with_min_distance() -> None:
    rows = [HistoryEntry(0, {"a": 1.0, "b": 2.0}, 1.0)]
    problem = repeat_problem(_point(1.05, 2.02), AB, rows, precision=3, min_distance=0.1)
    assert problem == (
        "the point (a: 1.05, b: 2.02) is only 0.05 away from (a: 1, b: 2) of trial 0. "
        "Propose a point at least 0.1 away from every point tried so far."
    )
    assert repeat_problem(_point(1.2, 2.0), AB, rows, precision=3, min_distance=0.1) is None


def test_changes_are_quoted_as_the_model_wrote_them() -> None:
    rows = [HistoryEntry(0, {"a": 1.0, "b": 7.0}, 1.0)]
    candidate = Candidate({"a": 1.0, "b": 7.0}, ["b"], "", {"change_a": 0.0, "change_b": 4.0})
    assert repeat_problem(candidate, AB, rows, precision=3, min_distance=None) == (
        "the changes (change_a: 0, change_b: 4) lead to the point (a: 1, b: 7, stopped at the "
        "edge of the range for b), which was already evaluated (trial 0). Propose a different "
        "point."
    )
    reflected = Candidate({"a": 1.0, "b": 6.0}, ["b"], "", {"change_a": 0.0, "change_b": 2.0})
    rows = [HistoryEntry(0, {"a": 1.0, "b": 6.0}, 1.0)]
    problem = repeat_problem(
        reflected, AB, rows, precision=3, min_distance=None, out_of_range="reflect"
    )
    assert problem is not None and "(a: 1, b: 6, turned back at the edge of the range for b)" in (
        problem
    )


@settings(max_examples=200, deadline=None)
@given(
    base=st.tuples(values, values),
    changes=st.tuples(st.floats(-14, 14), st.floats(-14, 14)),
    out_of_range=st.sampled_from(["reject", "clip", "reflect"]),
)
def test_steps_from_the_best_stay_in_the_box_or_are_refused(base, changes, out_of_range) -> None:
    text = f"change_a: {changes[0]!r}, change_b: {changes[1]!r}"
    proposal = StepsFromBest(out_of_range=out_of_range)
    usable, problems = read_candidates(text, AB, proposal, {"a": base[0], "b": base[1]})
    assert len(usable) + len(problems) >= 1
    for candidate in usable:
        assert all(-7 <= candidate.params[n] <= 7 for n in "ab")
        if out_of_range == "reject":
            assert candidate.params["a"] == pytest.approx(base[0] + changes[0])
        assert set(candidate.clipped) <= {"a", "b"}
    if out_of_range != "reject":
        assert len(usable) == 1 and not problems


def test_several_candidates_and_their_problems() -> None:
    usable, problems = read_candidates(
        "a: 1, b: 2\na: 9, b: 0\na: 3, b: 4", AB, AbsolutePoints(n_candidates=3), None
    )
    assert [c.params for c in usable] == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    assert problems == ["a=9 is outside its range [-7, 7]."]


def test_an_answer_with_thousands_of_candidates_is_read_up_to_twice_the_asked_number() -> None:
    text = "\n".join(f"a: {i / 1000:.3f}, b: 1" for i in range(5000))
    usable, problems = read_candidates(text, AB, AbsolutePoints(n_candidates=3), None)
    assert [c.params["a"] for c in usable] == [0.0, 0.001, 0.002, 0.003, 0.004, 0.005]
    assert problems == []
