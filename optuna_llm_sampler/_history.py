"""Which trials the LLM sees, in which order, and what they cost in tokens.

Pure functions over plain data: :func:`collect_history` turns Optuna trials into
:class:`HistoryEntry` rows, :func:`select_history` chooses the rows a prompt shows.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import datetime
import json
import math
import re
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._options import HistoryMode


# The storage key under which the sampler publishes a proposal as soon as it is chosen, so that
# other threads and processes see the point as pending before the objective suggests it.
PROPOSAL_KEY = "llm:proposal"
# Where Optuna keeps the parameters of an enqueued trial (``study.enqueue_trial``): they win over
# any sampler's values when the objective suggests them.
FIXED_PARAMS_KEY = "fixed_params"

# HistoryOptions(max_tokens="auto"): this share of the client's context window, which leaves the
# rest for the prompt's fixed text, the tried changes, a re-ask's conversation and the answer.
_AUTO_SHARE = 4
# The context window assumed when a client states none: the embedded model's n_ctx. A quarter of
# it (2048 tokens, ~130 rows of two parameters) keeps the sampler's own time per trial below
# TPE's at 1,000 trials (benchmarks/sampler_overhead.py).
_DEFAULT_CONTEXT_WINDOW = 8192
_TOKEN_PATTERN = re.compile(r"\d|[A-Za-z]+|[^\sA-Za-z\d]")
_EPOCH = datetime.datetime.min


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the table the LLM reads.

    Args:
        number: The trial number.
        params: The trial's values for the parameters of the search space (external values).
        value: The objective value, or ``None`` while the trial is still running (pending).
    """

    number: int
    params: Mapping[str, Any]
    value: float | None

    @property
    def pending(self) -> bool:
        return self.value is None


def best_row(rows: Sequence[HistoryEntry], direction: StudyDirection) -> HistoryEntry | None:
    """The best completed row (the first of equals, in ``rows``' order), or ``None``.

    Example:
        >>> rows = [HistoryEntry(0, {}, 1.0), HistoryEntry(1, {}, 3.0), HistoryEntry(2, {}, None)]
        >>> best_row(rows, StudyDirection.MAXIMIZE).number
        1
    """
    done = [row for row in rows if not row.pending]
    if not done:
        return None
    pick = max if direction == StudyDirection.MAXIMIZE else min
    return pick(done, key=lambda row: float(row.value))  # type: ignore[arg-type]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free, slightly pessimistic token count.

    Every digit counts as a token (Qwen and Llama tokenizers split numbers digit by digit), as does
    every word and every punctuation mark. Provider tokenizers that group digits use fewer.

    Example:
        >>> estimate_tokens("a: -0.3; b: 2.9; f(a,b): 12.5")
        24
    """
    return len(_TOKEN_PATTERN.findall(text))


def history_budget(max_tokens: int | str | None, client: object) -> int | None:
    """The history's token budget: ``max_tokens`` as given, or for ``"auto"`` a quarter of the
    client's ``context_window`` (2048 tokens when it states none or an unusable one).

    Example:
        >>> class Local:
        ...     context_window = 4096
        >>> history_budget("auto", Local()), history_budget("auto", 0), history_budget(None, 0)
        (1024, 2048, None)
    """
    if max_tokens != "auto":
        return max_tokens  # type: ignore[return-value]
    window = getattr(client, "context_window", None)
    if isinstance(window, bool) or not isinstance(window, int) or window < 512:
        window = _DEFAULT_CONTEXT_WINDOW
    return window // _AUTO_SHARE


def _complete_order(trial: FrozenTrial) -> tuple[datetime.datetime, int]:
    return (trial.datetime_complete or _EPOCH, trial.number)


def collect_history(
    trials: Sequence[FrozenTrial],
    search_space: Mapping[str, BaseDistribution],
    *,
    exclude_number: int | None = None,
    memo: dict[int, HistoryEntry | None] | None = None,
) -> list[HistoryEntry]:
    """Rows for every usable trial: completed ones in the order they finished, then pending ones.

    A completed trial is usable when it has a finite value and a value for every parameter of the
    search space that the distribution contains. A running trial is pending when its parameters
    are known: suggested already, fixed by ``study.enqueue_trial``, or published by a sampler
    under ``"llm:proposal"``. A waiting (enqueued) trial whose fixed parameters cover the search
    space is pending too: it will evaluate that point.
    Completion order (not trial number) keeps the table append-only, so its prefix is stable
    between calls even when parallel workers finish out of order (prompt caches reuse prefixes).

    ``memo`` (trial number → row, or ``None`` for an unusable trial) saves re-checking completed
    trials, which never change, on every call; it must belong to one study and search space.

    Example:
        >>> rows = collect_history(study.trials, {"a": FloatDistribution(-7, 7)})
    """
    names = list(search_space)
    complete: list[tuple[tuple[datetime.datetime, int], HistoryEntry]] = []
    pending: list[HistoryEntry] = []
    for trial in trials:
        if trial.number == exclude_number:
            continue
        if trial.state == TrialState.COMPLETE:
            if memo is not None and trial.number in memo:
                row = memo[trial.number]
            else:
                row = _complete_row(trial, search_space)
                if memo is not None:
                    memo[trial.number] = row
            if row is not None:
                complete.append((_complete_order(trial), row))
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            params = dict(_published_proposal(trial)) if trial.state == TrialState.RUNNING else {}
            params.update(fixed_params(trial, search_space))
            params.update(trial.params)
            if all(name in params for name in names):
                pending.append(HistoryEntry(trial.number, {n: params[n] for n in names}, None))
    complete.sort(key=lambda item: item[0])
    return [row for _, row in complete] + sorted(pending, key=lambda row: row.number)


def _complete_row(
    trial: FrozenTrial, search_space: Mapping[str, BaseDistribution]
) -> HistoryEntry | None:
    value = trial.value
    if value is None or not math.isfinite(value):
        return None
    if not _has_params(trial.params, trial.distributions, search_space):
        return None
    return HistoryEntry(trial.number, {n: trial.params[n] for n in search_space}, float(value))


def _has_params(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    search_space: Mapping[str, BaseDistribution],
) -> bool:
    for name, distribution in search_space.items():
        if name not in params or name not in distributions:
            return False
        if distributions[name] == distribution:
            continue  # suggested from this very distribution, so it contains the value
        try:
            internal = distribution.to_internal_repr(params[name])
        except ValueError:
            return False
        if not distribution._contains(internal):
            return False
    return True


def fixed_params(
    trial: FrozenTrial, search_space: Mapping[str, BaseDistribution]
) -> dict[str, Any]:
    """The parameters of the search space that ``study.enqueue_trial`` fixed for ``trial``, as
    the trial will hold them (Optuna's external representation of the value it stores).

    Example:
        >>> fixed_params(study.trials[-1], {"a": FloatDistribution(-7, 7)})
        {'a': 1.0}
    """
    raw = trial.system_attrs.get(FIXED_PARAMS_KEY)
    if not isinstance(raw, Mapping):
        return {}
    fixed = {}
    for name, value in raw.items():
        dist = search_space.get(name)
        if dist is None:
            continue
        try:
            fixed[name] = dist.to_external_repr(dist.to_internal_repr(value))
        except (ValueError, TypeError, IndexError):
            continue  # Optuna reports a value the distribution cannot hold when it is suggested
    return fixed


def _published_proposal(trial: FrozenTrial) -> Mapping[str, Any]:
    raw = trial.system_attrs.get(PROPOSAL_KEY)
    if not isinstance(raw, str):
        return {}
    try:
        proposal = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return proposal if isinstance(proposal, dict) else {}


def select_history(
    rows: Sequence[HistoryEntry],
    *,
    direction: StudyDirection,
    mode: HistoryMode = "all",
    best_k: int = 20,
    recent_k: int = 20,
    max_tokens: int | None = None,
    line_tokens: Callable[[HistoryEntry], int] | None = None,
) -> list[HistoryEntry]:
    """Choose the rows a prompt shows, keeping their order.

    ``"all"`` keeps every row, as the tutorial does. ``"best_recent"`` keeps the ``best_k`` best
    and the ``recent_k`` most recently finished rows. Either way, when ``max_tokens`` is given the
    rows are admitted by priority (best, most recent, second best, second most recent, ...) until
    the budget is spent, so the prompt stops growing with the study while the rows that matter
    most stay. Pending rows are always shown (they prevent duplicate proposals) and count against
    the budget first.

    Args:
        rows: Rows as returned by :func:`collect_history`.
        direction: The study's direction; decides what "best" means.
        mode: ``"all"`` or ``"best_recent"``.
        best_k: How many best rows ``"best_recent"`` keeps.
        recent_k: How many most recent rows ``"best_recent"`` keeps.
        max_tokens: A budget for the rows' tokens, or ``None`` for no budget.
        line_tokens: Tokens a row costs; required with ``max_tokens``.

    Returns:
        The chosen rows, in the order of ``rows``.
    """
    if mode not in ("all", "best_recent"):
        raise ValueError(f"history must be 'all' or 'best_recent', got {mode!r}.")
    if best_k < 0 or recent_k < 0:
        raise ValueError(f"best_k and recent_k must be non-negative, got {best_k}, {recent_k}.")
    if max_tokens is not None and line_tokens is None:
        raise ValueError("line_tokens is required with max_tokens.")

    pending = [i for i, row in enumerate(rows) if row.pending]
    done = [i for i, row in enumerate(rows) if not row.pending]
    sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
    keep_k = (best_k, recent_k) if mode == "best_recent" else None
    chosen = set(pending)
    if max_tokens is None or line_tokens is None:
        chosen.update(_priority(rows, done, sign, keep_k))
        return [rows[i] for i in sorted(chosen)]
    pending_cost = sum(line_tokens(rows[i]) for i in pending)
    if mode == "all" and len(done) >= HISTORY_STRIDE:
        stable = _stable_selection(rows, done, sign, max_tokens - pending_cost, line_tokens)
        if stable is not None:
            return [rows[i] for i in sorted(chosen | stable)]
    chosen |= _admit(
        rows, _priority(rows, done, sign, keep_k), max_tokens - pending_cost, line_tokens
    )
    return [rows[i] for i in sorted(chosen)]


#: With a token budget, the rows older than the last multiple of this many completed rows are
#: chosen once per block and the newer ones appended in trial order, so the prompt's beginning
#: stays the same for this many calls. A local model re-reads only what changed: choosing afresh
#: on every call moved a row near the table's start each time, and on CartPole (10 parameters, a
#: 2,048-token history) every call re-read its ~3,100-token prompt, 60 s instead of 23 s a call.
#: The price: room for this many of the longest rows is kept free for the block's new rows.
HISTORY_STRIDE = 8


def _priority(
    rows: Sequence[HistoryEntry],
    done: Sequence[int],
    sign: float,
    keep_k: tuple[int, int] | None,
) -> list[int]:
    """Indices of ``done`` by priority: best, most recent, second best, second most recent...
    With ``keep_k`` (best_recent's ``best_k``, ``recent_k``) only those rows, else all."""
    by_quality = sorted(done, key=lambda i: (sign * rows[i].value, i))  # type: ignore[operator]
    by_recency = list(done[::-1])
    if keep_k is not None:
        by_quality, by_recency = by_quality[: keep_k[0]], by_recency[: keep_k[1]]
    priority: list[int] = []
    seen: set[int] = set()
    for pair in zip(by_quality, by_recency, strict=False):
        for i in pair:
            if i not in seen:
                seen.add(i)
                priority.append(i)
    longer = by_quality if len(by_quality) > len(by_recency) else by_recency
    for i in longer[min(len(by_quality), len(by_recency)) :]:
        if i not in seen:
            seen.add(i)
            priority.append(i)
    if keep_k is None:
        priority += [i for i in done if i not in seen]
    return priority


def _admit(
    rows: Sequence[HistoryEntry],
    priority: Sequence[int],
    budget: int,
    line_tokens: Callable[[HistoryEntry], int],
) -> set[int]:
    """The rows of ``priority``, in its order, that fit in ``budget`` tokens."""
    chosen: set[int] = set()
    spent = 0
    for i in priority:
        cost = line_tokens(rows[i])
        if spent + cost > budget:
            continue
        spent += cost
        chosen.add(i)
    return chosen


def _stable_selection(
    rows: Sequence[HistoryEntry],
    done: Sequence[int],
    sign: float,
    budget: int,
    line_tokens: Callable[[HistoryEntry], int],
) -> set[int] | None:
    """Every row if all fit; else the rows before the last block boundary chosen by priority in
    the budget less room for a block of new rows, and every row after it (see
    :data:`HISTORY_STRIDE`). ``None`` when the new rows outgrow that room."""
    costs = {i: line_tokens(rows[i]) for i in done}
    if sum(costs.values()) <= budget:
        return set(done)
    anchor = len(done) - len(done) % HISTORY_STRIDE
    old, new = done[:anchor], done[anchor:]
    room = budget - HISTORY_STRIDE * max(costs[i] for i in old)
    # A block of new rows may take at most half the budget: in a smaller one, choosing afresh
    # shows more rows, and its prompt is short enough to re-read.
    if room < budget / 2 or sum(costs[i] for i in new) > budget - room:
        return None
    return _admit(rows, _priority(rows, old, sign, None), room, line_tokens) | set(new)
