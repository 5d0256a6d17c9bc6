"""An answer's candidates → points the trial may evaluate, and why the others may not.

Pure functions: the sampler reads the storage and claims the chosen point; everything between
the answer's text and that choice is here. A problem is a sentence fed back to the LLM when it is
re-asked, so each one quotes the numbers the model wrote and the point as the prompt shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection

from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._candidates import score_candidates
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._options import OutOfRange
from optuna_llm_sampler._options import Proposal
from optuna_llm_sampler._prompt import format_param
from optuna_llm_sampler._prompt import shown_key
from optuna_llm_sampler._space import add_changes
from optuna_llm_sampler._space import changes_out_of_range
from optuna_llm_sampler._space import find_near
from optuna_llm_sampler._space import show_value
from optuna_llm_sampler._space import snap_params
from optuna_llm_sampler._space import STEP_PREFIX
from optuna_llm_sampler._space import step_space


@dataclass(frozen=True)
class Candidate:
    """A usable point of an answer.

    Attributes:
        params: The point, in Optuna's external representation.
        clipped: Parameters moved to a bound (``out_of_range="clip"``).
        reasoning: The model's reason.
        changes: The changes the model wrote for this point (steps from the best), else ``None``.
    """

    params: dict[str, Any]
    clipped: list[str]
    reasoning: str
    changes: Mapping[str, Any] | None = None


def read_candidates(
    text: str,
    search_space: Mapping[str, BaseDistribution],
    proposal: Proposal,
    base: Mapping[str, Any] | None,
    *,
    positional: bool = False,
) -> tuple[list[Candidate], list[str]]:
    """The usable points of an answer, and the problems of the others.

    With ``base`` (steps from the best point), the answer holds changes to that point. Of an
    answer listing more candidates than asked, the first twice ``n_candidates`` are read: a few
    extra are a model's habit, thousands would only spend the trial's time. ``positional``: the
    compact format was asked for (values by position, see
    :func:`~optuna_llm_sampler._answer.parse_candidates`).

    Raises:
        AnswerError: The answer cannot be read at all; the message says why.
    """
    answer_space = search_space if base is None else step_space(search_space)
    if proposal.n_candidates == 1 and not positional:
        answers = [parse_answer(text, answer_space)]
    else:
        answers = parse_candidates(
            text, answer_space, limit=2 * proposal.n_candidates, positional=positional
        )
    problems: list[str] = []
    usable: list[Candidate] = []
    for answer in answers:
        changes: Mapping[str, Any] | None = None
        if base is not None:
            problem = (
                changes_out_of_range(base, answer, search_space)
                if proposal.out_of_range == "reject"
                else None
            )
            if problem is not None:
                _add(problems, problem)
                continue
            changes = answer.values
            answer = add_changes(base, answer)
        try:
            params, clipped = snap_params(
                answer.values, search_space, out_of_range=proposal.out_of_range
            )
        except AnswerError as error:
            problems.append(str(error))
            continue
        usable.append(Candidate(params, clipped, answer.reasoning, changes))
    return usable, problems


def show_point(
    params: Mapping[str, Any], search_space: Mapping[str, BaseDistribution], precision: int | None
) -> str:
    """A point as the prompt shows numbers: the model copies what it reads, so feedback with
    full-precision values would invite it to repeat them digit for digit.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> show_point({"a": 1.23456}, {"a": FloatDistribution(-7, 7)}, 3)
        'a: 1.23'
    """
    return ", ".join(
        f"{name}: {format_param(params[name], dist, precision)}"
        for name, dist in search_space.items()
    )


def repeat_problem(
    candidate: Candidate,
    search_space: Mapping[str, BaseDistribution],
    rows: Sequence[HistoryEntry],
    *,
    precision: int | None,
    min_distance: float | None,
    shown: Mapping[tuple[str, ...], HistoryEntry] | None = None,
    out_of_range: OutOfRange = "clip",
) -> str | None:
    """Why ``candidate`` repeats a tried point, if it does.

    A point repeats a row when the prompt would show both alike (at ``precision``) or, with
    ``min_distance``, when it lies closer than that to the row. With changes (steps from the
    best), the message names them as the model wrote them and says when a bound moved the point
    (``out_of_range``: stopped there, or turned back).
    ``shown`` is :func:`rows_by_shown_key` of ``rows``, when the caller keeps it.
    """
    params = candidate.params
    point = show_point(params, search_space, precision)
    subject = f"the point ({point})"
    if candidate.changes is not None:
        written = ", ".join(
            f"{STEP_PREFIX}{name}: {show_value(candidate.changes[STEP_PREFIX + name])}"
            for name in search_space
        )
        edge = ""
        if candidate.clipped:
            moved = "turned back" if out_of_range == "reflect" else "stopped"
            edge = f", {moved} at the edge of the range for {', '.join(candidate.clipped)}"
        subject = f"the changes ({written}) lead to the point ({point}{edge}), which"
    if shown is None:
        shown = rows_by_shown_key(rows, search_space, precision)
    row = shown.get(shown_key(params, search_space, precision))
    if row is not None:
        when = "is being evaluated right now" if row.pending else "was already evaluated"
        return f"{subject} {when} (trial {row.number}). Propose a different point."
    if min_distance is None:
        return None
    near = find_near(params, rows, search_space, min_distance)
    if near is None:
        return None
    row, distance = near
    other = show_point(row.params, search_space, precision)
    return (
        f"{subject} is only {distance:.3g} away from ({other}) of trial "
        f"{row.number}. Propose a point at least {min_distance:g} away from every "
        "point tried so far."
    )


def rows_by_shown_key(
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    precision: int | None,
    key_of: Callable[[HistoryEntry], tuple[str, ...]] | None = None,
) -> dict[tuple[str, ...], HistoryEntry]:
    """The rows by their :func:`~optuna_llm_sampler._prompt.shown_key`; of several rows with one
    key, the latest. ``key_of`` computes a row's key (a caller's cache), by default afresh."""
    if key_of is None:

        def key_of(row: HistoryEntry) -> tuple[str, ...]:
            return shown_key(row.params, search_space, precision)

    return {key_of(row): row for row in rows if all(name in row.params for name in search_space)}


def choose(
    fresh: Sequence[Candidate],
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    direction: StudyDirection,
) -> Candidate:
    """The candidate with the highest expected improvement under the small GP, or the only one."""
    if len(fresh) == 1:
        return fresh[0]
    scores = score_candidates(
        [candidate.params for candidate in fresh], rows, search_space, direction=direction
    )
    return fresh[max(range(len(fresh)), key=lambda k: scores[k])]


def _add(problems: list[str], problem: str) -> None:
    if problem not in problems:
        problems.append(problem)
