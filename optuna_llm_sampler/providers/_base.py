"""The one interface between the sampler and an LLM, and the errors a provider may raise.

Everything that talks to a model implements :class:`LLMClient`: a single ``complete`` method that
takes chat messages (and optionally a JSON schema for structured output) and returns a
:class:`Completion`. The sampler never sees an SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable


Role = Literal["system", "user", "assistant"]


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
        prompt_tokens: Tokens read, when the provider reports them.
        completion_tokens: Tokens written, when the provider reports them.
        latency_s: Wall-clock seconds of the call, retries included.
        cached: True when the answer was replayed from a response cache (no tokens were paid).
    """

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    cached: bool = False


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
    """The provider kept failing with transient errors (timeouts, 429, 5xx) until retries ran
    out."""


class ProviderConfigError(ProviderError, ValueError):
    """A problem that retrying cannot fix: a missing or rejected API key, an unknown model, a
    missing optional dependency. The sampler always raises it, whatever ``on_error`` says."""
