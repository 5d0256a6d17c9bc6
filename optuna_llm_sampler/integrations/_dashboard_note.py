"""The optuna-dashboard note of each LLM trial, written while the trial runs.

optuna-dashboard shows a trial's user_attrs (short values, which do not wrap) and its Markdown
note; it does not show system_attrs. So each LLM trial gets a short note with what the user_attrs
cannot hold: the reasoning, the proposal, the end of the prompt and the raw answers.

The notes are written in optuna-dashboard's own storage format (study system attributes, see
:func:`save_note_attrs`), so writing one needs no optional dependency: the notes of a study run
without optuna-dashboard are there when it is installed later. No storage or rendering problem
raises from here, so a note can never fail a trial. Every text that comes from the model (its
reasoning, answers, the fallback reason) is made inert: optuna-dashboard renders raw HTML in
notes, so a model that answers ``<img src=http://x>`` or ``![](http://x)`` must not make the
browser fetch anything. This module depends on the records alone: :class:`TrialNoteCallback`,
passed to ``study.optimize``, writes each LLM trial's note from what the sampler recorded.
"""

from __future__ import annotations

import math
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

# optuna-dashboard's note format (optuna_dashboard/_note.py, unchanged from 0.9 to 0.21): per
# note, a version counter under NOTE_VER and the Markdown body in chunks of at most
# NOTE_CHUNK_CHARS characters under NOTE_STR + index, all in the *study's* system attributes; a
# trial's keys carry its trial id. A shorter new body blanks the chunks it no longer uses.
NOTE_CHUNK_CHARS = 2045

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """A dashboard problem is worth one warning per process, not one per trial."""
    if key in _warned:
        _logger.debug(message)
        return
    _warned.add(key)
    _logger.warning(message)


def dashboard_module() -> Any | None:
    """optuna-dashboard, or ``None`` when it is not installed (figures need it; notes do not)."""
    try:
        import optuna_dashboard
    except ImportError:
        return None
    return optuna_dashboard


def note_version_key(trial_id: int | None) -> str:
    """The system attribute of a note's version: the study's note when ``trial_id`` is None.

    Example:
        >>> note_version_key(None), note_version_key(3)
        ('dashboard:note_ver', 'dashboard:3:note_ver')
    """
    return "dashboard:note_ver" if trial_id is None else f"dashboard:{trial_id}:note_ver"


def note_chunk_prefix(trial_id: int | None) -> str:
    """The prefix of a note's body chunks (``PREFIX0``, ``PREFIX1``, ...).

    Example:
        >>> note_chunk_prefix(None), note_chunk_prefix(3)
        ('dashboard:note_str:', 'dashboard:3:note_str:')
    """
    return "dashboard:note_str:" if trial_id is None else f"dashboard:{trial_id}:note_str:"


def save_note_attrs(storage: BaseStorage, study_id: int, trial_id: int | None, body: str) -> None:
    """Store ``body`` as the note of a study (``trial_id=None``) or of one of its trials, as
    ``optuna_dashboard.save_note`` does, without importing optuna-dashboard.

    Example:
        >>> save_note_attrs(study._storage, study._study_id, None, "## My study")
    """
    attrs = storage.get_study_system_attrs(study_id)
    version = attrs.get(note_version_key(trial_id), 0)
    version = version if isinstance(version, int) and not isinstance(version, bool) else 0
    prefix = note_chunk_prefix(trial_id)
    storage.set_study_system_attr(study_id, note_version_key(trial_id), version + 1)
    n_chunks = math.ceil(len(body) / NOTE_CHUNK_CHARS)
    for i in range(n_chunks):
        chunk = body[i * NOTE_CHUNK_CHARS : (i + 1) * NOTE_CHUNK_CHARS]
        storage.set_study_system_attr(study_id, f"{prefix}{i}", chunk)
    # The reader joins chunks 0..k-1 for the k keys with the prefix: blank the old tail.
    n_old = sum(1 for key in attrs if key.startswith(prefix))
    for i in range(n_chunks, n_old):
        storage.set_study_system_attr(study_id, f"{prefix}{i}", "")


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


# What can turn text into markup that loads or runs something: raw HTML (optuna-dashboard renders
# it) starts with "<", images and links with "[" or "!", entities with "&"; the backslash itself
# and the code, emphasis and heading marks keep the text as written. Everything else is left as
# is, so ordinary sentences stay readable in the note's source.
_INERT = re.compile(r"([\\`*_\[\]<>!#~&$])")
# GFM turns bare URLs into links, and a link's end is found in the raw text, so "http://x\>"
# would swallow the backslash: "://" and "www." are broken up by escapes (shown as written).
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")


def inert(text: str) -> str:
    r"""``text`` as Markdown that renders as the same plain text: no HTML, image or link.

    Example:
        >>> print(inert("<img src=http://x> ![](y)"))
        \<img src=http:\/\/x\> \!\[\](y)
    """
    text = _INERT.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: m.group(1).replace("/", "\\/").replace(".", "\\."), text)


def text_cell(value: Any) -> str:
    """A table cell for a value that may come from the model or the user: inert, one line."""
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return markdown_cell(inert(" ".join(text.split())))


def code_span(text: str) -> str:
    """``text`` as inline code whose delimiters no backtick run inside can close.

    Example:
        >>> code_span("gpt-4o"), code_span("a`b")
        ('`gpt-4o`', '``a`b``')
    """
    text = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _quote(text: str) -> str:
    return "\n".join(f"> {inert(line)}" if line else ">" for line in text.strip().splitlines())


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
    model = code_span(record.model)
    if record.fallback is None:
        lines = [f"#### Trial {trial_number}: proposed by {model}", ""]
    else:
        lines = [
            f"#### Trial {trial_number}: independent sampler (fallback from {model})",
            "",
            f"**Fallback:** {inert(' '.join(record.fallback.split()))}",
            "",
        ]
    if record.reasoning:
        lines += [_quote(record.reasoning), ""]
    if record.proposal:  # one row: the note stays short with many parameters
        names = list(record.proposal)
        values = [
            text_cell(record.proposal[n]) + (" (clipped)" if n in record.clipped else "")
            for n in names
        ]
        lines += [
            "| " + " | ".join(text_cell(n) for n in names) + " |",
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
    ~25 lines of the prompt (the end of the history and the question) and the raw answers, all
    shown as plain text (see :func:`inert`). :class:`TrialNoteCallback` calls it for every LLM
    trial that finishes. optuna-dashboard need not be installed.

    Example:
        .. code-block:: python

            record = get_llm_record(trial)
            write_trial_note(study, trial, record)

    Args:
        study: The trial's study.
        trial: The trial (running or finished).
        record: What the sampler did for it.

    Returns:
        Whether the note was written: ``False`` when the write failed (logged, never raised).
    """
    try:
        body = trial_note_markdown(trial.number, record)
        save_note_attrs(study._storage, study._study_id, trial._trial_id, body)
    except Exception as error:
        warn_once(
            "trial-note",
            f"Trial {trial.number}: could not write the dashboard note "
            f"({type(error).__name__}: {error}); the trial goes on without it.",
        )
        return False
    return True


class TrialNoteCallback:
    """A ``study.optimize`` callback that writes the optuna-dashboard note of each LLM trial.

    Trials the LLM was not asked for (startup, enqueued, other samplers) get no note. It needs
    no optuna-dashboard (the notes are there when it is installed later); a failed write is
    logged once and never fails the study.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.integrations import TrialNoteCallback

            study.optimize(objective, n_trials=100, callbacks=[TrialNoteCallback()])
    """

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        try:
            record = get_llm_record(trial)
        except Exception as error:  # a record another version wrote: no note, no failed study
            warn_once("trial-note", f"Trial {trial.number}: unreadable LLM record ({error!r}).")
            return
        if record is not None:
            write_trial_note(study, trial, record)


def write_study_note(study: Study, text: str) -> bool:
    """Replace the study's optuna-dashboard note with ``text`` (Markdown, written as given).

    optuna-dashboard need not be installed.

    Example:
        >>> write_study_note(study, "## MountainCar with gpt-4o\\n400 trials, 20 random first.")
        True

    Returns:
        Whether the note was written: ``False`` when the write failed (logged, never raised).
    """
    try:
        save_note_attrs(study._storage, study._study_id, None, text)
    except Exception as error:
        warn_once(
            "study-note",
            f"Could not write the dashboard note of study {study.study_name!r} "
            f"({type(error).__name__}: {error}).",
        )
        return False
    return True
