"""A deterministic client for tests and dry runs: it answers from a script, never from a model."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
import threading
from typing import Any
from typing import Union

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import LockedState
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderError


Responder = Callable[[Sequence[Message], dict[str, Any] | None], str]
ScriptItem = Union[str, Completion, BaseException, Responder]  # noqa: UP007 (runtime alias, 3.10)


class ScriptedClient(LockedState):  # pickles with its remaining script (and responder)
    """An :class:`~optuna_llm_sampler.LLMClient` that replays scripted answers in order.

    Each call pops the next item of the script: a string is returned as the answer, a
    :class:`Completion` as is, an exception is raised, and a callable is called with
    ``(messages, schema)`` and its string returned. When the script is empty, ``respond`` (if
    given) answers every further call; otherwise the call raises :class:`ProviderError`.

    Args:
        answers: The initial script.
        respond: Answers calls once the script is exhausted.
        model: The model name reported in completions and records.
        supports_schema: Whether the sampler should ask for JSON (``True``) or the tutorial's free
            text (``False``).
        tokens_per_char: Token counts are estimated as ``len(text) * tokens_per_char`` so that
            budgets and records can be tested.

    Example:
        .. code-block:: python

            client = ScriptedClient(["a: 1.5, b: -2\\nStep towards the best point."])
            sampler = LLMSampler(model=client, n_startup_trials=0)

    Attributes:
        calls: Every call received, as ``(messages, schema)`` tuples, in order.
    """

    def __init__(
        self,
        answers: Iterable[ScriptItem] = (),
        *,
        respond: Responder | None = None,
        model: str = "scripted",
        supports_schema: bool = False,
        tokens_per_char: float = 0.25,
    ) -> None:
        if tokens_per_char < 0:
            raise ValueError(f"tokens_per_char must be non-negative, got {tokens_per_char}.")
        self.model = model
        self.supports_schema = supports_schema
        self._script: deque[ScriptItem] = deque(answers)
        self._respond = respond
        self._tokens_per_char = tokens_per_char
        self._lock = threading.Lock()
        self.calls: list[tuple[list[Message], dict[str, Any] | None]] = []

    def enqueue(self, *answers: ScriptItem) -> None:
        """Append answers to the script."""
        with self._lock:
            self._script.extend(answers)

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        with self._lock:
            self.calls.append((list(messages), schema))
            item: ScriptItem | None = self._script.popleft() if self._script else None
        if item is None:
            if self._respond is None:
                raise ProviderError(f"ScriptedClient {self.model!r} has no answer left.")
            item = self._respond
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Completion):
            return item
        text = item if isinstance(item, str) else item(messages, schema)
        prompt_chars = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=round(prompt_chars * self._tokens_per_char),
            completion_tokens=round(len(text) * self._tokens_per_char),
            latency_s=0.0,
        )
