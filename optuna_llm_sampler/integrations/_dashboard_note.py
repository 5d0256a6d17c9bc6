"""The optuna-dashboard note of each LLM trial, written while the trial runs.

optuna-dashboard shows a trial's user_attrs (short values, which do not wrap) and its Markdown
note; it does not show system_attrs. So each LLM trial gets a short note with what the user_attrs
cannot hold: the reasoning, the proposal, the end of the prompt and the raw answers.

optuna-dashboard is optional: every function here does nothing and returns ``False`` when it is
missing, and never raises on a storage or rendering problem, so a note can never fail a trial.
This module depends on the records alone: :class:`TrialNoteCallback`, passed to
``study.optimize``, writes each LLM trial's note from what the sampler recorded.
"""

from __future__ import annotations

from collections.abc import Callable
import re
import textwrap
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from optuna_llm_sampler._records import get_llm_record
from optuna_llm_sampler._records import LLMRecord


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

PROMPT_EXCERPT_LINES = 25
ANSWER_MAX_CHARS = 1200
WRAP_WIDTH = 90
INSTALL_HINT = 'pip install "optuna-llm-sampler[dashboard]"'

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """A dashboard problem is worth one warning per process, not one per trial."""
    if key in _warned:
        _logger.debug(message)
        return
    _warned.add(key)
    _logger.warning(message)


def dashboard_module() -> Any | None:
    try:
        import optuna_dashboard
    except ImportError:
        return None
    return optuna_dashboard


class _TrialRef:
    """The three things ``optuna_dashboard.save_note`` reads from a trial.

    A callback gets a :class:`~optuna.trial.FrozenTrial`, not an :class:`optuna.Trial`;
    building an ``optuna.Trial`` would call the sampler's ``before_trial`` again, so this stands
    in for one.
    """

    def __init__(self, study: Study, trial_id: int) -> None:
        self.storage: BaseStorage = study._storage
        self.study = study
        self._trial_id = trial_id


# --------------------------------------------------------------------------- Markdown helpers


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a fenced code block whose fence no backtick run inside can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def markdown_cell(value: Any) -> str:
    """A value for a Markdown table cell: short numbers, no pipes, no newlines."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f"\n… ({len(text) - limit} more characters)"


def _wrap(text: str, width: int = WRAP_WIDTH) -> str:
    """Hard-wrap long lines: optuna-dashboard widens the whole page for a long line of code."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent="  ",
            break_on_hyphens=False,
            drop_whitespace=True,
            replace_whitespace=False,
        ) or [line[:width]]
    return "\n".join(out)


def trial_note_markdown(trial_number: int, record: LLMRecord) -> str:
    """The Markdown note of one LLM trial (see :func:`write_trial_note`).

    Example:
        >>> record = LLMRecord(model="gpt-4o", attempts=1, reasoning="Step towards the best.")
        >>> print(trial_note_markdown(7, record).splitlines()[0])
        #### Trial 7: proposed by `gpt-4o`
    """
    if record.fallback is None:
        lines = [f"#### Trial {trial_number}: proposed by `{record.model}`", ""]
    else:
        lines = [
            f"#### Trial {trial_number}: independent sampler (fallback from `{record.model}`)",
            "",
            f"**Fallback:** {record.fallback}",
            "",
        ]
    if record.reasoning:
        lines += [_quote(record.reasoning), ""]
    if record.proposal:  # one row: the note stays short with many parameters
        names = list(record.proposal)
        values = [
            markdown_cell(record.proposal[n]) + (" (clipped)" if n in record.clipped else "")
            for n in names
        ]
        lines += [
            "| " + " | ".join(markdown_cell(n) for n in names) + " |",
            "|" + " --- |" * len(names),
            "| " + " | ".join(values) + " |",
            "",
        ]
    lines += [
        f"attempts **{record.attempts}** · tokens **{record.prompt_tokens}** prompt + "
        f"**{record.completion_tokens}** completion · latency **{record.latency_s:.2f} s**",
        "",
    ]
    # The prompt is everything before the first answer; what follows are the answers, with the
    # feedback of each re-ask between them.
    first_answer = next(
        (i for i, m in enumerate(record.messages) if m.role == "assistant"), len(record.messages)
    )
    n_answer = 0
    for message in record.messages[first_answer:]:
        if message.role == "assistant":
            n_answer += 1
            head, text = f"**Answer {n_answer}:**", _cut(message.content, ANSWER_MAX_CHARS)
        else:
            head, text = "**Feedback:**", _cut(message.content, ANSWER_MAX_CHARS // 2)
        lines += [head, "", fenced(_wrap(text)), ""]
    # The end of the prompt holds the latest history rows and the question: what the model saw
    # last before this proposal.
    prompt = record.messages[first_answer - 1].content if first_answer else ""
    prompt_lines = prompt.strip("\n").splitlines()
    if prompt_lines:
        shown = prompt_lines[-PROMPT_EXCERPT_LINES:]
        while shown and not shown[0].strip():
            shown.pop(0)
        if len(shown) < len(prompt_lines):
            head = f"**Prompt**, its last {len(shown)} of {len(prompt_lines)} lines:"
        else:
            head = f"**Prompt** ({len(prompt_lines)} lines):"
        lines += [head, "", fenced(_wrap("\n".join(shown))), ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- notes


def write_trial_note(study: Study, trial: FrozenTrial, record: LLMRecord) -> bool:
    """Write the optuna-dashboard note of an LLM trial.

    The note holds what the short user attributes cannot: the model's reasoning, the proposal as
    a small table, attempts, tokens and latency, the fallback reason if any, the last
    ~25 lines of the prompt (the end of the history and the question) and the raw answers.
    :class:`TrialNoteCallback` calls it for every LLM trial that finishes.

    Example:
        .. code-block:: python

            record = get_llm_record(trial)
            write_trial_note(study, trial, record)

    Args:
        study: The trial's study.
        trial: The trial (running or finished).
        record: What the sampler did for it.

    Returns:
        Whether the note was written: ``False`` when optuna-dashboard is not installed or the
        write failed (logged, never raised).
    """
    return _save_note(
        lambda: (_TrialRef(study, trial._trial_id), trial_note_markdown(trial.number, record)),
        "trial-note",
        f"Trial {trial.number}: could not write the dashboard note",
        "; the trial goes on without it.",
    )


class TrialNoteCallback:
    """A ``study.optimize`` callback that writes the optuna-dashboard note of each LLM trial.

    Trials the LLM was not asked for (startup, enqueued, other samplers) get no note. Without
    optuna-dashboard it does nothing; a failed write is logged once and never fails the study.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.integrations import TrialNoteCallback

            study.optimize(objective, n_trials=100, callbacks=[TrialNoteCallback()])
    """

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        record = get_llm_record(trial)
        if record is not None:
            write_trial_note(study, trial, record)


def write_study_note(study: Study, text: str) -> bool:
    """Replace the study's optuna-dashboard note with ``text`` (Markdown).

    Example:
        >>> write_study_note(study, "## MountainCar with gpt-4o\\n400 trials, 20 random first.")
        True

    Returns:
        Whether the note was written: ``False`` when optuna-dashboard is not installed or the
        write failed (logged, never raised).
    """
    return _save_note(
        lambda: (study, text),
        "study-note",
        f"Could not write the dashboard note of study {study.study_name!r}",
        ".",
    )


def _save_note(
    target_and_body: Callable[[], tuple[Any, str]], kind: str, failure: str, tail: str
) -> bool:
    """Save a note through optuna-dashboard; a failure is logged once per kind, never raised."""
    dashboard = dashboard_module()
    if dashboard is None:
        return False
    try:
        target, body = target_and_body()
        dashboard.save_note(target, body)
    except Exception as error:
        warn_once(kind, f"{failure} ({type(error).__name__}: {error}){tail}")
        return False
    return True
