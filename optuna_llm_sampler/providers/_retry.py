"""Faults → errors, and one retry loop shared by the cloud providers.

Every provider call goes through :func:`call_with_retry`. A provider's attempt function turns
the SDK's exceptions into one of three outcomes:

* :class:`TransientError` (timeouts, connection errors, HTTP 408 / 409 / 429 / 5xx): retried with
  exponential backoff and full jitter, honouring ``Retry-After``, bounded by ``max_retries`` and
  ``max_retry_time``; when exhausted, :class:`ProviderUnavailableError`.
* :class:`ProviderConfigError` (HTTP 401 / 403 / 404): raised at once; retrying cannot fix a key
  or a model name.
* :class:`ProviderError` (HTTP 400 and other client errors, unreadable answers, and a refused
  structured-output shape whatever its status, see :func:`rejects_structured_output`): raised
  at once; the sampler falls back for that trial.

A provider that stays down must not cost every trial the whole retry time again: a
:class:`CircuitBreaker` counts the calls in a row that ended unavailable and, after
``cooldown_after`` of them, fails the next calls at once for ``cooldown_time`` seconds (the
sampler then falls back at once); the first call after that tries again, and a success closes it.

The SDKs' own retries are switched off so that this loop is the only one. Sleeping and the clock
are injectable so that tests never wait.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import email.utils
import math
import random
import threading
import time
from typing import TypeVar

import optuna

from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import ProviderUnavailableError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")
T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_rng = random.Random()

# Words with which servers reject ``response_format`` / a response schema they do not support.
_STRUCTURED_OUTPUT_WORDS = (
    "response_format",
    "json_schema",
    "json_object",
    "response_schema",
    "responsejsonschema",
    "response_json_schema",
    "response_mime_type",
    "responsemimetype",
    "structured output",
    "guided_json",
)


class TransientError(Exception):
    """Raised by an attempt to ask :func:`call_with_retry` for another try.

    Args:
        reason: A short reason, shown if retries run out (``"HTTP 503"``,
            ``"timeout after 5.0 s"``). Must not contain secrets.
        retry_after: Seconds the server asked to wait (``Retry-After``), if any.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient faults.

    Args:
        max_retries: Retries after the first attempt (0: one attempt only).
        max_retry_time: Upper bound in seconds on the whole call, waits included: a retry whose
            wait would end past it is not made. (This loop cannot stop a running attempt: the
            HTTP clients give each attempt only the time left, reading included.)
        base_delay: First backoff ceiling in seconds; the n-th wait is drawn uniformly from
            ``[0, min(max_delay, base_delay * 2**n)]`` ("full jitter").
        max_delay: Largest backoff ceiling in seconds.
        max_retry_after: Cap in seconds on a server's ``Retry-After``.

    Example:
        >>> RetryPolicy(max_retries=2, max_retry_time=10.0).max_retries
        2
    """

    max_retries: int = 4
    max_retry_time: float = 120.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ValueError(f"max_retries must be an int, got {self.max_retries!r}.")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be non-negative, got {self.max_retries}.")
        for name in ("max_retry_time", "base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}.")


class CircuitBreaker:
    """Fails calls at once while a provider that kept failing cools down.

    After ``cooldown_after`` calls in a row ended in :class:`ProviderUnavailableError`, every
    call within ``cooldown_time`` seconds of the last failure raises it at once, without a
    request, saying how long the cool-down lasts and what the last failure was. The first call
    after the cool-down is made as usual: any answer of the server resets the count (an HTTP 400
    too: the server is up), another failure starts another cool-down. Only unavailability
    counts: timeouts, refused connections, 429, 5xx. Thread-safe.

    Args:
        cooldown_after: Failed calls in a row that start a cool-down; 0 never cools down.
        cooldown_time: Seconds the cool-down lasts.
        clock: Monotonic seconds; injected by tests.

    Example:
        >>> breaker = CircuitBreaker(cooldown_after=3, cooldown_time=60.0)
        >>> breaker.check("OpenAI model 'gpt-4o'")  # closed: returns, the call may go ahead
    """

    def __init__(
        self,
        *,
        cooldown_after: int = 3,
        cooldown_time: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(cooldown_after, bool) or not isinstance(cooldown_after, int):
            raise ValueError(f"cooldown_after must be an int, got {cooldown_after!r}.")
        if cooldown_after < 0:
            raise ValueError(f"cooldown_after must be non-negative, got {cooldown_after}.")
        if (
            isinstance(cooldown_time, bool)
            or not isinstance(cooldown_time, (int, float))
            or not math.isfinite(cooldown_time)
            or cooldown_time < 0
        ):
            raise ValueError(
                f"cooldown_time must be a finite non-negative number of seconds, "
                f"got {cooldown_time!r}."
            )
        self.cooldown_after = cooldown_after
        self.cooldown_time = float(cooldown_time)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._failed_at = 0.0
        self._last_reason = ""

    @property
    def failures(self) -> int:
        """Calls in a row that ended unavailable."""
        with self._lock:
            return self._failures

    def check(self, what: str) -> None:
        """Return if a call may go ahead; raise :class:`ProviderUnavailableError` if cooling down.

        Args:
            what: Names the call in the message, e.g. ``"OpenAI model 'gpt-4o'"``.
        """
        with self._lock:
            if not self.cooldown_after or self._failures < self.cooldown_after:
                return
            left = self._failed_at + self.cooldown_time - self._clock()
            if left <= 0:
                return
            failures, reason = self._failures, self._last_reason
        raise ProviderUnavailableError(
            f"{what} unavailable: cooling down for {left:.0f} s after {failures} failed calls in "
            f"a row: {reason} (no request sent; cooldown_after=0 disables the cool-down)."
        )

    def succeeded(self) -> None:
        """The provider answered (an answer, or an error about the request): it is up."""
        with self._lock:
            self._failures = 0

    def failed(self, reason: str) -> None:
        """A call ended unavailable with ``reason`` (no secrets in it)."""
        with self._lock:
            self._failures += 1
            self._failed_at = self._clock()
            self._last_reason = reason


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Args:
        value: The header value.
        now: The current UNIX time (for tests); default ``time.time()``.

    Returns:
        Non-negative seconds, or ``None`` when absent or unreadable.

    Example:
        >>> parse_retry_after("2.5")
        2.5
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0)
        5.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """``retry-after-ms`` (OpenAI) or ``Retry-After`` from response headers, in seconds."""
    if headers is None:
        return None
    try:
        milliseconds = headers.get("retry-after-ms")
        if milliseconds is not None:
            seconds = parse_retry_after(milliseconds)
            if seconds is not None:
                return seconds / 1000.0
        return parse_retry_after(headers.get("retry-after"))
    except Exception:  # headers of an unexpected type: no hint rather than a crash
        return None


def backoff_delay(retry: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """The wait before retry number ``retry`` (0-based): full jitter on an exponential ceiling."""
    ceiling = min(policy.max_delay, policy.base_delay * (2.0 ** min(retry, 60)))
    return (rng or _rng).uniform(0.0, ceiling)


def call_with_retry(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying on :class:`TransientError`.

    Args:
        attempt: One try; raises :class:`TransientError` for faults worth retrying. Any other
            exception propagates at once.
        policy: The bounds.
        what: Names the call in messages, e.g. ``"OpenAI model 'gpt-4o'"``.
        sleep: Waits; injected by tests.
        clock: Monotonic seconds; injected by tests (``max_retry_time`` is measured with it).
        started: ``clock()`` when the whole call began (default: now).
        rng: Source of the jitter.
        breaker: Counts the calls that end unavailable; while it cools down the call raises at
            once, without calling ``attempt``.

    Returns:
        What ``attempt`` returned.

    Raises:
        ProviderUnavailableError: Retries or retry time ran out (the message gives the last
            reason and the attempts made), or ``breaker`` is cooling down.

    Example:
        >>> call_with_retry(lambda: 42, policy=RetryPolicy(), what="demo")
        42
    """
    if breaker is not None:
        breaker.check(what)
    start = clock() if started is None else started
    retries = 0
    while True:
        try:
            result = attempt()
        except TransientError as exc:
            reason, retry_after = exc.reason, exc.retry_after
        except ProviderError:
            # The server answered (a rejected request, an unreadable body): it is up.
            if breaker is not None:
                breaker.succeeded()
            raise
        else:
            if breaker is not None:
                breaker.succeeded()
            return result
        elapsed = clock() - start
        attempts = retries + 1
        tried = f"{attempts} attempt{'s' if attempts > 1 else ''} in {elapsed:.1f} s"
        why = None
        delay = 0.0
        if retries >= policy.max_retries:
            why = f"{reason} ({tried})"
        else:
            if retry_after is not None:
                delay = min(retry_after, policy.max_retry_after)
            else:
                delay = backoff_delay(retries, policy, rng)
            if elapsed + delay > policy.max_retry_time:
                why = (
                    f"{reason} ({tried}; waiting {delay:.1f} s more would pass "
                    f"max_retry_time={policy.max_retry_time:g} s)"
                )
        if why is not None:
            if breaker is not None:
                breaker.failed(why)
            raise ProviderUnavailableError(f"{what} unavailable: {why}.") from None
        _logger.info(
            f"{what}: {reason}; retry {retries + 1} of {policy.max_retries} in {delay:.2f} s."
        )
        sleep(delay)
        retries += 1


def shorten(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_error(
    status: int,
    *,
    provider: str,
    model: str,
    message: str,
    key_hint: str,
    retry_after: float | None = None,
    base_url: str | None = None,
) -> Exception:
    """The exception for an HTTP error status (the caller raises it).

    Args:
        status: The HTTP status code.
        provider: ``"OpenAI"`` or ``"Gemini"``.
        model: The model asked for.
        message: The server's message, already redacted.
        key_hint: How to fix a rejected key (``"check OPENAI_API_KEY"``).
        retry_after: The server's ``Retry-After`` in seconds.
        base_url: The custom endpoint, if any (named in 404 messages).

    Returns:
        :class:`TransientError` for 408 / 409 / 429 / 5xx, :class:`ProviderConfigError` for
        401 / 403 / 404, :class:`ProviderError` otherwise.
    """
    said = f" Server said: {shorten(message)}" if message else ""
    if status in RETRYABLE_STATUS or 500 <= status < 600:
        reason = f"HTTP {status}" + (" (rate limited)" if status == 429 else "")
        if message:
            reason += f": {shorten(message, 120)}"
        return TransientError(reason, retry_after=retry_after)
    if status in (401, 403):
        return ProviderConfigError(
            f"{provider} rejected the API key for model {model!r} (HTTP {status}): "
            f"{key_hint}.{said}"
        )
    if status == 404:
        where = f" and base_url={base_url!r}" if base_url else ""
        return ProviderConfigError(
            f"{provider} model {model!r} not found (HTTP 404): check the model name{where}.{said}"
        )
    return ProviderError(
        f"{provider} rejected the request for model {model!r} (HTTP {status}).{said}"
    )


def rejects_structured_output(status: int, message: str) -> bool:
    """Whether an error says the server does not support the requested structured output.

    A client error (400, 422, 501) naming any structured-output word is one. So is an HTTP 500
    whose message names ``response_format``: llama-cpp-python's server (0.3.x) answers a
    ``json_schema`` request with 500 and its validation error ("Input should be 'text' or
    'json_object'"), and llama.cpp's ``llama-server`` before ``json_schema`` support with 500
    "response_format type must be one of ...". Such a request fails the same way every time, so
    it is never retried as a transient fault.

    Example:
        >>> rejects_structured_output(500, "loc: ('body', 'response_format', 'type')")
        True
        >>> rejects_structured_output(500, "out of memory")
        False
    """
    lowered = message.lower()
    if status == 500:
        return "response_format" in lowered
    if status not in (400, 422, 501):
        return False
    return any(word in lowered for word in _STRUCTURED_OUTPUT_WORDS)


def timeout_reason(timeout: float) -> str:
    """``"timeout after 5.0 s"``."""
    return f"timeout after {timeout:.1f} s"
