from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection
from optuna.trial import create_trial
from optuna.trial import TrialState
import pytest

from optuna_llm_sampler._history import collect_history
from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import fixed_params
from optuna_llm_sampler._history import HISTORY_STRIDE
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._history import select_history


SPACE = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}


def _trial(number: int, a: float, b: float, value: float | None, *, finished: int = 0):
    state = TrialState.COMPLETE if value is not None else TrialState.RUNNING
    trial = create_trial(
        state=state,
        value=value,
        params={"a": a, "b": b},
        distributions=dict(SPACE),
    )
    trial.number = number
    if value is not None:
        trial.datetime_complete = datetime.datetime(2026, 1, 1) + datetime.timedelta(
            seconds=finished
        )
    return trial


def test_collect_orders_by_completion_and_puts_pending_last() -> None:
    trials = [
        _trial(0, 1, 1, 5.0, finished=2),
        _trial(1, 2, 2, None),
        _trial(2, 3, 3, 7.0, finished=1),
        _trial(3, 4, 4, None),
    ]
    rows = collect_history(trials, SPACE, exclude_number=3)
    assert [r.number for r in rows] == [2, 0, 1]
    assert [r.pending for r in rows] == [False, False, True]


def test_collect_skips_unusable_trials() -> None:
    nan = _trial(0, 1, 1, 1.0)
    nan._values = [float("nan")]
    wider = FloatDistribution(-10, 10)  # a dynamic range: this trial's b lies outside SPACE's
    outside = create_trial(
        value=3.0, params={"a": 1.0, "b": 9.0}, distributions={"a": wider, "b": wider}
    )
    other_space = create_trial(value=1.0, params={"c": 1.0}, distributions={"c": SPACE["a"]})
    failed = create_trial(state=TrialState.FAIL, params={"a": 1.0, "b": 1.0}, distributions=SPACE)
    assert collect_history([nan, outside, other_space, failed], SPACE) == []


def test_collect_reads_published_proposals_of_running_trials() -> None:
    running = create_trial(
        state=TrialState.RUNNING, system_attrs={"llm:proposal": '{"a": 1.0, "b": 2.0}'}
    )
    running.number = 5
    rows = collect_history([running], SPACE)
    assert rows == [HistoryEntry(5, {"a": 1.0, "b": 2.0}, None)]


def _rows(values: list[float]) -> list[HistoryEntry]:
    return [HistoryEntry(i, {"a": float(i), "b": 0.0}, v) for i, v in enumerate(values)]


def test_select_all_keeps_everything_in_order() -> None:
    rows = _rows([3, 1, 2]) + [HistoryEntry(9, {"a": 0.0, "b": 0.0}, None)]
    assert select_history(rows, direction=StudyDirection.MAXIMIZE) == rows


@pytest.mark.parametrize(
    ("direction", "best"), [(StudyDirection.MAXIMIZE, [9, 8]), (StudyDirection.MINIMIZE, [0, 1])]
)
def test_select_best_recent(direction: StudyDirection, best: list[int]) -> None:
    rows = _rows([float(i) for i in range(10)])
    chosen = select_history(rows, direction=direction, mode="best_recent", best_k=2, recent_k=3)
    numbers = [r.number for r in chosen]
    assert numbers == sorted(set(best) | {7, 8, 9})


def test_token_budget_bounds_the_history_and_keeps_the_best() -> None:
    rows = _rows([float(i % 7) for i in range(200)])
    chosen = select_history(
        rows,
        direction=StudyDirection.MAXIMIZE,
        max_tokens=100,
        line_tokens=lambda row: 10,
    )
    assert len(chosen) == 10
    assert max(r.value for r in chosen) == 6.0  # the best survives
    assert chosen[-1].number == 199  # so does the most recent
    assert [r.number for r in chosen] == sorted(r.number for r in chosen)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-100, 100), min_size=HISTORY_STRIDE, max_size=120),
    costs=st.lists(st.integers(8, 14), min_size=120, max_size=120),
    budget=st.integers(300, 900),
)
def test_a_budgeted_history_grows_by_appending_within_a_block(
    values: list[float], costs: list[int], budget: int
) -> None:
    # The prompt's beginning stays put from call to call (a local model re-reads only its
    # tail), the budget holds, and the best and the latest rows are always shown.
    rows = _rows(values)

    def line_tokens(row: HistoryEntry) -> int:
        return costs[row.number]

    def shown(n: int) -> list[int]:
        chosen = select_history(
            rows[:n], direction=StudyDirection.MAXIMIZE, max_tokens=budget, line_tokens=line_tokens
        )
        return [r.number for r in chosen]

    previous = shown(HISTORY_STRIDE)
    for n in range(HISTORY_STRIDE + 1, len(rows) + 1):
        now = shown(n)
        assert sum(costs[k] for k in now) <= budget
        assert n - 1 in now
        best = max(range(n), key=lambda k: (values[k], -k))
        assert best in now
        if n % HISTORY_STRIDE and sum(costs[: n - 1]) > budget:
            # inside a block: the same rows, and the new one appended
            assert now == previous + [n - 1]
        previous = now


def test_a_budgeted_history_keeps_its_start_for_a_block_of_calls() -> None:
    rows = _rows([float(i % 13) for i in range(64)])
    budget = 40 * 10

    def shown(n: int) -> list[int]:
        chosen = select_history(
            rows[:n],
            direction=StudyDirection.MAXIMIZE,
            max_tokens=budget,
            line_tokens=lambda r: 10,
        )
        return [r.number for r in chosen]

    first = shown(56)
    for n in range(57, 64):
        assert shown(n) == first + list(range(56, n))
    assert shown(64) != first + list(range(56, 64))  # a new block chooses again
    assert len(shown(64)) == 40 - HISTORY_STRIDE


def test_pending_rows_always_shown_and_count_first() -> None:
    rows = _rows([1.0, 2.0]) + [HistoryEntry(5, {"a": 0.0, "b": 0.0}, None)]
    chosen = select_history(
        rows, direction=StudyDirection.MAXIMIZE, max_tokens=15, line_tokens=lambda r: 10
    )
    assert [r.number for r in chosen] == [5]


def test_select_validates_arguments() -> None:
    with pytest.raises(ValueError, match="history must be"):
        select_history([], direction=StudyDirection.MAXIMIZE, mode="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="line_tokens"):
        select_history([], direction=StudyDirection.MAXIMIZE, max_tokens=10)


def test_estimate_tokens_counts_digits() -> None:
    assert estimate_tokens("a: -0.3; b: 2.9; f(a,b): 12.5") == 24
    full = "a: -0.30000000000000004; b: 2.9; f(a,b): -12.345678901234567"
    assert estimate_tokens(full) > 2 * estimate_tokens("a: -0.3; b: 2.9; f(a,b): -12.35")


def test_enqueued_points_are_pending_rows_whether_waiting_or_running() -> None:
    waiting = create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": {"a": 1}})
    waiting.number = 5
    partial = create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": {"a": 2}})
    partial.number = 6
    running = create_trial(
        state=TrialState.RUNNING,
        system_attrs={"fixed_params": {"a": 3}, "llm:proposal": '{"a": 0.5, "b": 4}'},
    )
    running.number = 7
    full = create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": {"a": 1, "b": 2}})
    full.number = 8
    rows = collect_history([waiting, partial, running, full], SPACE)
    # The fixed values win over a proposal published before them: they are what is evaluated.
    assert [(r.number, dict(r.params), r.pending) for r in rows] == [
        (7, {"a": 3.0, "b": 4}, True),
        (8, {"a": 1.0, "b": 2.0}, True),
    ]


def test_fixed_params_in_the_distributions_external_form() -> None:
    space = {**SPACE, "opt": CategoricalDistribution(["x", "y"]), "n": IntDistribution(0, 9)}
    trial = create_trial(
        state=TrialState.WAITING,
        system_attrs={"fixed_params": {"a": 1, "opt": "y", "n": 3, "other": 7, "b": "junk"}},
    )
    assert fixed_params(trial, space) == {"a": 1.0, "opt": "y", "n": 3}
    assert fixed_params(create_trial(state=TrialState.WAITING), space) == {}
