"""The one interface between the sampler and an LLM, and the errors a provider may raise.

Everything that talks to a model implements :class:`LLMClient`: a single ``complete`` method that
takes chat messages (and optionally a JSON schema for structured output) and returns a
:class:`Completion`. The sampler never sees an SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import threading
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable


Role = Literal["system", "user", "assistant"]
# More tokens than any model reads or writes in one call: a count above it is a server's bug (or
# a hostile server), and taken at face value it would exhaust ``max_total_tokens`` at once.
MAX_TOKENS_PER_CALL = 10_000_000


def token_count(value: object) -> int | None:
    """``value`` as a token count a provider may report, else ``None`` (unknown).

    A count is an ``int`` (not a ``bool``) in ``[0, MAX_TOKENS_PER_CALL]``; anything else a
    server sends (negative, fractional, a string, absurdly large) is unknown rather than trusted.

    Example:
        >>> token_count(12), token_count(-3), token_count(2.5), token_count(10**12)
        (12, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return int(value) if 0 <= value <= MAX_TOKENS_PER_CALL else None


@dataclass(frozen=True)
class Message:
    """One chat message.

    Args:
        role: ``"system"``, ``"user"`` or ``"assistant"``. Providers translate roles where their
            API differs (``developer`` for OpenAI reasoning models, ``model`` for Gemini).
        content: The text of the message.
    """

    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """What a provider returns for one call.

    Args:
        text: The model's answer, as text (JSON text when a schema was used).
        model: The model that answered, as the provider reports it.
        prompt_tokens: Tokens read, when the provider reports them. A count that is not an int in
            ``[0, MAX_TOKENS_PER_CALL]`` becomes ``None`` (see :func:`token_count`).
        completion_tokens: Tokens written, when the provider reports them (checked the same way).
        latency_s: Wall-clock seconds of the call, retries included.
        cached: True when the answer was replayed from a response cache (no tokens were paid).
    """

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    cached: bool = False

    def __post_init__(self) -> None:
        # Every provider (and the response cache) builds a Completion, so checking here covers
        # them all: a server's negative or absurd usage must not reach the sampler's budget.
        object.__setattr__(self, "prompt_tokens", token_count(self.prompt_tokens))
        object.__setattr__(self, "completion_tokens", token_count(self.completion_tokens))


@runtime_checkable
class LLMClient(Protocol):
    """The provider interface: anything with ``complete`` can drive :class:`LLMSampler`.

    Attributes:
        model: The model name, used in records before the first answer arrives.
        supports_schema: Whether ``complete`` honours ``schema`` (structured output). When False
            the sampler asks for the tutorial's free-text format instead.
        runs_locally: Optional (``False`` when absent): whether the model runs in this process,
            such as a llama.cpp model. ``LLMSampler(preset="auto")`` guides such models.

    Example:
        .. code-block:: python

            class EchoClient:
                model = "echo"
                supports_schema = False

                def complete(self, messages, *, schema=None):
                    return Completion(text="a: 1.0, b: 2.0\\nA guess.", model="echo")
    """

    model: str
    supports_schema: bool

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        """Send ``messages`` to the model and return its answer."""
        ...


class ProviderError(RuntimeError):
    """An LLM call failed.

    With ``LLMSampler(on_error="fallback")`` (the default) the trial is sampled by the independent
    sampler and the reason is recorded in the trial's ``llm_fallback`` user attribute.
    """


class ProviderUnavailableError(ProviderError):
    """The provider kept failing with transient errors (timeouts, 429, 5xx, refused connections)
    until retries or ``max_retry_time`` ran out, or the client is cooling down after
    ``cooldown_after`` such calls in a row (then no request was sent)."""


class ProviderConfigError(ProviderError, ValueError):
    """A problem that retrying cannot fix: a missing or rejected API key, an unknown model, a
    missing optional dependency. The sampler always raises it, whatever ``on_error`` says."""


class LockedState:
    """A client whose state is guarded by ``self._lock`` and pickles without it: the lock is
    made anew on unpickling, and the rest of the state (a script, a random stream) carries on
    in the other process."""

    _lock: threading.Lock

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
