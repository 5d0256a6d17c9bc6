"""What the sampler writes to a trial, and helpers that read it back.

Short values go to user_attrs (optuna-dashboard shows them, but does not wrap long ones); the
conversation (prompt, answers, feedback) goes to system_attrs as JSON, chunked under the 2045
characters an RDB storage has historically allowed per value (Optuna's CMA-ES sampler does the
same).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
import json
from typing import Any
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial

from optuna_llm_sampler._history import PROPOSAL_KEY
from optuna_llm_sampler.providers._base import Message


if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study


MODEL = "llm_model"
PROMPT_TOKENS = "llm_prompt_tokens"
COMPLETION_TOKENS = "llm_completion_tokens"
LATENCY = "llm_latency_s"
ATTEMPTS = "llm_attempts"
REASONING = "llm_reasoning"
FALLBACK = "llm_fallback"
CLIPPED = "llm_clipped"
CANDIDATES = "llm_candidates"
ANSWER_CUT = "llm_answer_cut"
CONVERSATION_PREFIX = "llm:conversation:"
CONVERSATION_COUNT = "llm:conversation:n"
SYSTEM_ATTR_MAX_LENGTH = 2045
# More tokens than any model reads or writes in one call: a count above it is a server's error.
MAX_TOKENS_PER_CALL = 10_000_000


@dataclass
class LLMRecord:
    """What the sampler did for one trial.

    Attributes:
        model: The model that answered (or was asked).
        attempts: LLM calls made for this trial (1 + re-asks).
        prompt_tokens: Tokens read over all attempts (0 when the provider does not report them).
        completion_tokens: Tokens written over all attempts.
        latency_s: Seconds spent waiting for the LLM.
        reasoning: The model's one-sentence reason, cut to about 300 characters.
        fallback: Why the independent sampler chose the parameters instead, or ``None``.
        clipped: Parameters the sampler moved into range (``out_of_range="clip"``).
        candidates: Usable candidates the choice was made among (``n_candidates > 1``), else 0.
        answer_cut: Characters cut from over-long answers before they were parsed, over all
            attempts (0 when none was cut).
        messages: The whole conversation: prompt, answers (a bounded excerpt of a long one) and
            feedback, in order.
        proposal: The parameters the trial was given.
    """

    model: str
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    reasoning: str = ""
    fallback: str | None = None
    clipped: list[str] = field(default_factory=list)
    candidates: int = 0
    answer_cut: int = 0
    messages: list[Message] = field(default_factory=list)
    proposal: dict[str, Any] = field(default_factory=dict)

    def user_attrs(self) -> dict[str, Any]:
        """The short values shown in optuna-dashboard."""
        attrs: dict[str, Any] = {
            MODEL: self.model,
            PROMPT_TOKENS: self.prompt_tokens,
            COMPLETION_TOKENS: self.completion_tokens,
            LATENCY: round(self.latency_s, 3),
            ATTEMPTS: self.attempts,
        }
        if self.reasoning:
            attrs[REASONING] = self.reasoning
        if self.fallback is not None:
            attrs[FALLBACK] = self.fallback
        if self.clipped:
            attrs[CLIPPED] = ",".join(self.clipped)
        if self.candidates:
            attrs[CANDIDATES] = self.candidates
        if self.answer_cut:
            attrs[ANSWER_CUT] = self.answer_cut
        return attrs


def token_count(value: object) -> int:
    """A provider's token count as the record adds it: 0 (unknown) unless it is an integer from
    0 to :data:`MAX_TOKENS_PER_CALL`, so a negative or absurd count cannot defeat
    ``max_total_tokens``.

    Example:
        >>> token_count(12), token_count(-5), token_count(2.5), token_count(10**12)
        (12, 0, 0, 0)
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 <= value <= MAX_TOKENS_PER_CALL else 0


def _stored_int(value: object) -> int:
    """A count read back from storage; 0 for anything but a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not (value.is_integer() and value >= 0):
        return 0
    return max(0, int(value))


def _stored_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    number = float(value)
    return number if number >= 0 and number != float("inf") else 0.0


def chunk_text(text: str, limit: int = SYSTEM_ATTR_MAX_LENGTH) -> list[str]:
    """Split ``text`` into pieces whose JSON encoding is at most ``limit`` characters.

    Example:
        >>> [len(c) for c in chunk_text("x" * 5000)]
        [2043, 2043, 914]
    """
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + limit - 2)
        while len(json.dumps(text[start:end])) > limit:
            end = start + max(1, (end - start) // 2 + (end - start) // 4)
        chunks.append(text[start:end])
        start = end
    return chunks


def write_record(storage: BaseStorage, trial_id: int, record: LLMRecord) -> None:
    """Write a record to a trial: user_attrs, the proposal and the chunked conversation."""
    for key, value in record.user_attrs().items():
        storage.set_trial_user_attr(trial_id, key, value)
    storage.set_trial_system_attr(trial_id, PROPOSAL_KEY, json.dumps(record.proposal))
    if record.messages:
        text = json.dumps([{"role": m.role, "content": m.content} for m in record.messages])
        chunks = chunk_text(text)
        for i, chunk in enumerate(chunks):
            storage.set_trial_system_attr(trial_id, f"{CONVERSATION_PREFIX}{i}", chunk)
        storage.set_trial_system_attr(trial_id, CONVERSATION_COUNT, len(chunks))


def get_llm_record(trial: FrozenTrial) -> LLMRecord | None:
    """The sampler's record of a trial, or ``None`` if the LLM was not involved.

    Example:
        >>> record = get_llm_record(study.best_trial)
        >>> print(record.messages[0].content)  # the prompt
        >>> print(record.messages[1].content)  # the answer
    """
    attrs = trial.user_attrs
    if MODEL not in attrs:
        return None
    messages: list[Message] = []
    count = trial.system_attrs.get(CONVERSATION_COUNT)
    if isinstance(count, int) and count > 0:
        text = "".join(
            str(trial.system_attrs.get(f"{CONVERSATION_PREFIX}{i}", "")) for i in range(count)
        )
        try:
            messages = [Message(m["role"], m["content"]) for m in json.loads(text)]
        except (json.JSONDecodeError, KeyError, TypeError):
            messages = []
    proposal_text = trial.system_attrs.get(PROPOSAL_KEY)
    proposal = json.loads(proposal_text) if isinstance(proposal_text, str) else {}
    clipped = attrs.get(CLIPPED)
    return LLMRecord(
        model=str(attrs[MODEL]),
        attempts=int(attrs.get(ATTEMPTS, 0)),
        prompt_tokens=int(attrs.get(PROMPT_TOKENS, 0)),
        completion_tokens=int(attrs.get(COMPLETION_TOKENS, 0)),
        latency_s=float(attrs.get(LATENCY, 0.0)),
        reasoning=str(attrs.get(REASONING, "")),
        fallback=attrs.get(FALLBACK),
        clipped=clipped.split(",") if isinstance(clipped, str) and clipped else [],
        candidates=int(attrs.get(CANDIDATES, 0)),
        answer_cut=int(attrs.get(ANSWER_CUT, 0)),
        messages=messages,
        proposal=proposal,
    )


@dataclass(frozen=True)
class LLMUsage:
    """What the LLM cost a study, summed over every worker's trials.

    Attributes:
        llm_trials: Trials the LLM sampler handled (LLM proposals and fallbacks).
        proposals: Trials whose parameters the LLM chose.
        fallbacks: Trials the independent sampler chose after the LLM failed or the budget ran out.
        calls: LLM calls, re-asks included.
        prompt_tokens: Tokens read.
        completion_tokens: Tokens written.
        latency_s: Seconds spent waiting for the LLM.
    """

    llm_trials: int = 0
    proposals: int = 0
    fallbacks: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def proposal_share(self) -> float:
        """The share of LLM-handled trials whose parameters the LLM chose (0 when none)."""
        return self.proposals / self.llm_trials if self.llm_trials else 0.0


def usage_of_trials(trials: Iterable[FrozenTrial]) -> LLMUsage:
    """Sum the records of ``trials`` (see :func:`llm_usage`)."""
    llm_trials = fallbacks = calls = prompt = completion = 0
    latency = 0.0
    for trial in trials:
        attrs = trial.user_attrs
        if MODEL not in attrs:
            continue
        llm_trials += 1
        fallbacks += FALLBACK in attrs
        # Stored values are read defensively: a budget must hold whatever a storage holds.
        calls += _stored_int(attrs.get(ATTEMPTS, 0))
        prompt += _stored_int(attrs.get(PROMPT_TOKENS, 0))
        completion += _stored_int(attrs.get(COMPLETION_TOKENS, 0))
        latency += _stored_float(attrs.get(LATENCY, 0.0))
    return LLMUsage(
        llm_trials=llm_trials,
        proposals=llm_trials - fallbacks,
        fallbacks=fallbacks,
        calls=calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_s=latency,
    )


def llm_usage(study: Study) -> LLMUsage:
    """Study-wide LLM totals, read from storage, so they are right across parallel workers.

    Example:
        >>> usage = llm_usage(study)
        >>> print(usage.calls, usage.total_tokens, usage.fallbacks)
    """
    return usage_of_trials(study.get_trials(deepcopy=False))


# LLM trials that, all falling back for the same provider reason, make a silent random search.
OUTAGE_TRIALS = 3
_PROVIDER_ERROR = "provider error: "
_FIXES = {
    "ProviderUnavailableError": (
        "check that the server runs at base_url and serves this model (a local server must be "
        "started first), or raise timeout / max_retry_time for a slow one"
    ),
    "ProviderError": (
        "the server refuses the request: check the model name and the options sent "
        "(extra_body, max_tokens...), or ask for the text format (answer_format='text')"
    ),
}
_DEFAULT_FIX = "check the provider's settings; on_error='raise' shows the error where it happens"


@dataclass(frozen=True)
class ProviderOutage:
    """The first LLM trials all fell back for the same provider reason: the study is a random
    search that looks like an LLM one.

    Attributes:
        trials: The numbers of those trials.
        error: The provider's error type, e.g. ``"ProviderUnavailableError"``.
        reason: The first of them's ``llm_fallback`` text.
        fix: What to do about it.
    """

    trials: tuple[int, ...]
    error: str
    reason: str
    fix: str

    def message(self) -> str:
        """One line: what happened, why, and the fix."""
        return (
            f"the first {len(self.trials)} LLM trials all fell back to the independent sampler "
            f"(a random search): {self.reason.rstrip('. ')}. Fix: {self.fix}."
        )


def provider_outage(
    trials: Iterable[FrozenTrial], *, first: int = OUTAGE_TRIALS
) -> ProviderOutage | None:
    """Whether the ``first`` LLM trials (by number) all fell back with a provider error of the
    same type, else ``None`` (also while fewer than ``first`` LLM trials have a record).

    Example:
        >>> outage = provider_outage(study.trials)  # doctest: +SKIP
        >>> outage.message() if outage else "the LLM answered"  # doctest: +SKIP
        'the first 3 LLM trials all fell back ...: provider error: ProviderUnavailableError: ...'
    """
    if first < 1:
        raise ValueError(f"first must be at least 1, got {first}.")
    llm_trials = sorted((t for t in trials if MODEL in t.user_attrs), key=lambda t: t.number)
    chosen = llm_trials[:first]
    if len(chosen) < first:
        return None
    kinds = set()
    for trial in chosen:
        reason = trial.user_attrs.get(FALLBACK)
        if not isinstance(reason, str) or not reason.startswith(_PROVIDER_ERROR):
            return None
        kinds.add(reason[len(_PROVIDER_ERROR) :].split(":", 1)[0].strip())
    if len(kinds) != 1:
        return None
    (error,) = kinds
    return ProviderOutage(
        trials=tuple(t.number for t in chosen),
        error=error,
        reason=str(chosen[0].user_attrs[FALLBACK]),
        fix=_FIXES.get(error, _DEFAULT_FIX),
    )
