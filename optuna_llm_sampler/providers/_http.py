"""What the cloud clients (:class:`OpenAIClient`, :class:`GeminiClient`) share: one ``complete``
around an SDK that talks HTTP.

:class:`HTTPClient` holds the common settings and runs every call the same way: check the
arguments, replay the answer from the response cache if there is one, send the request through
:func:`call_with_retry`, fall back to a plainer structured-output mode when ``json_mode="auto"``
and the server rejects the current one, and store the answer. A provider fills in only what its
API does differently: the request for a mode, one attempt through its SDK, how its errors map to
:class:`TransientError` / :class:`ProviderError`, how text and usage are read from its response,
and which settings make up the cache key.

Every call ends within ``max_retry_time`` seconds, reading included, and every attempt within
``timeout`` seconds: the SDKs' timeouts apply to each read, so a server that trickles its answer
one byte at a time would hold a call for as long as it likes. :func:`bound_by_deadline` puts a
network layer under the SDK's HTTP client that checks, before every connect, read and write, the
deadline :func:`deadline` set for the attempt, and shortens the socket timeout to what is left.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import contextvars
import dataclasses
import functools
import ipaddress
import json
import logging
import math
import os
import re
import threading
import time
from typing import Any
from typing import ClassVar
from typing import Generic
from typing import Literal
from typing import TypeVar
from urllib.parse import urlsplit

import optuna

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._cache import cached_lookup
from optuna_llm_sampler.providers._cache import cached_store
from optuna_llm_sampler.providers._cache import ResponseCache
from optuna_llm_sampler.providers._keys import env_key_allowed
from optuna_llm_sampler.providers._keys import key_hint
from optuna_llm_sampler.providers._keys import PLACEHOLDER_KEY
from optuna_llm_sampler.providers._keys import protect_logs
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._keys import redact_url
from optuna_llm_sampler.providers._keys import resolve_api_key
from optuna_llm_sampler.providers._keys import url_secrets
from optuna_llm_sampler.providers._retry import call_with_retry
from optuna_llm_sampler.providers._retry import CircuitBreaker
from optuna_llm_sampler.providers._retry import rejects_structured_output
from optuna_llm_sampler.providers._retry import RetryPolicy
from optuna_llm_sampler.providers._retry import shorten
from optuna_llm_sampler.providers._retry import status_error


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

JsonMode = Literal["auto", "json_schema", "json_object", "off"]
JSON_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "off")
# What "auto" falls back to when a server rejects a structured-output request (a provider with
# more shapes, such as OpenAI-compatible servers, sets its own ``_fallbacks``).
_DOWNGRADE: Mapping[str, str] = {"json_schema": "json_object", "json_object": "off"}
_ROLES = ("system", "user", "assistant")
# A host name as the HTTP libraries take it: ASCII labels (IDNs in their xn-- form).
_HOST = re.compile(
    r"^[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_\-]*[a-z0-9_])?)*\.?$"
)
# When the running attempt must end (time.monotonic()), and how long it was allowed.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "optuna_llm_sampler_deadline", default=None
)
_ALLOWED: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "optuna_llm_sampler_allowed", default=None
)

RequestT = TypeVar("RequestT")


class _StructuredOutputRejected(ProviderError):
    """The server rejected the requested structured output; ``auto`` mode downgrades."""


class HTTPClient(abc.ABC, Generic[RequestT]):
    """The common part of the cloud :class:`~optuna_llm_sampler.providers.LLMClient` classes.

    ``RequestT`` is whatever a provider builds for one request (the keyword arguments of the
    SDK call, a small record...): :meth:`_request` builds it, :meth:`_send` sends it and
    :meth:`_sdk_error` reads it again to classify a failure.

    The constructor checks and keeps the keyword arguments every provider has (``model``,
    ``base_url``, ``timeout``, ``max_retries``, ``max_retry_time``, ``cooldown_after``,
    ``cooldown_time``, ``temperature``, ``max_tokens``, ``seed``, ``json_mode``, ``extra_body``,
    ``sleep``, ``clock``: see the providers for what they mean). A provider's constructor calls
    it first, then handles its own options, opens the response cache into ``_cache`` (after its
    options, so that a warning about them still comes before a bad ``cache`` is refused),
    imports its SDK, takes the key with :meth:`_use_key` and creates the SDK client over an
    HTTP client passed through :func:`bound_by_deadline`. It also sets the class attributes
    ``_provider`` (the provider in cache keys), ``_label`` (its name in messages),
    ``_structured_output_name`` (what the ``auto`` fallback's warning says was rejected) and
    ``_log`` (its module's logger, which that warning goes to).

    Attributes:
        model: The model name.
        supports_schema: True unless ``json_mode="off"``.
    """

    _provider: ClassVar[str]
    _label: ClassVar[str]
    _structured_output_name: ClassVar[str]
    _log: ClassVar[logging.Logger] = _logger
    # The structured-output mode "auto" tries after each rejected one, ending in "off".
    _fallbacks: ClassVar[Mapping[str, str]] = _DOWNGRADE
    # Set by the provider's constructor: the response cache, the key sent (through _use_key)
    # and where that key came from.
    _cache: ResponseCache | None
    _key: str
    _key_hint: str

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        max_retry_time: float,
        cooldown_after: int,
        cooldown_time: float,
        temperature: float | None,
        max_tokens: int | None,
        seed: int | None,
        json_mode: JsonMode,
        extra_body: Mapping[str, Any] | None,
        sleep: Callable[[float], None] | None,
        clock: Callable[[], float] | None,
        base_url_name: str = "base_url",
    ) -> None:
        check_common_options(
            model=model,
            base_url=base_url,
            base_url_name=base_url_name,
            timeout=timeout,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            json_mode=json_mode,
        )
        if extra_body is not None and not isinstance(extra_body, Mapping):
            raise ValueError(f"extra_body must be a mapping or None, got {extra_body!r}.")
        self.model = model
        self.supports_schema = json_mode != "off"
        self._base_url = base_url.strip() if base_url is not None else None
        self._timeout = float(timeout)
        self._policy = RetryPolicy(max_retries=max_retries, max_retry_time=max_retry_time)
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._seed = seed
        self._json_mode = json_mode
        self._extra_body = dict(extra_body) if extra_body else None
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._breaker = CircuitBreaker(
            cooldown_after=cooldown_after, cooldown_time=cooldown_time, clock=self._clock
        )
        self._lock = threading.Lock()
        # The structured-output mode in use; "auto" starts with json_schema and may downgrade.
        self._mode: str = "json_schema" if json_mode == "auto" else json_mode

    def _use_key(
        self,
        api_key: str | None,
        env_vars: Sequence[str],
        *,
        hosts: Sequence[str],
        base_url_var: str,
    ) -> None:
        """Take the key from ``api_key``, else from ``env_vars`` when the endpoint may have it,
        else the placeholder; remember where it came from for error messages.

        A key from the environment goes only to the provider's own ``hosts`` (https) or to the
        endpoint ``base_url_var`` names (the user set both together). It is required for the
        provider's own endpoint; any other endpoint without ``api_key=`` gets the placeholder.
        """
        given = api_key is not None and isinstance(api_key, str) and bool(api_key.strip())
        own_endpoint = env_key_allowed(self._base_url, official_hosts=hosts, paired="")
        env_allowed = env_key_allowed(self._base_url, official_hosts=hosts, paired=base_url_var)
        key = resolve_api_key(
            api_key,
            env_vars=env_vars if env_allowed else (),
            provider=self._label,
            model=self.model,
            required=own_endpoint and not given,
        )
        self._key = key or PLACEHOLDER_KEY
        if given or env_allowed:
            self._key_hint = key_hint(api_key, env_vars)
        else:
            variables = " / ".join(env_vars)
            self._key_hint = (
                f"pass api_key= (the environment's {variables} is sent only to {hosts[0]}, or "
                f"to the {base_url_var} set with it)"
            )
            if any(os.environ.get(name, "").strip() for name in env_vars):
                self._log.info(
                    f"{self._what}: {variables} is not sent to this base_url (it goes only to "
                    f"{hosts[0]}, or to the {base_url_var} set with it); pass api_key= to send "
                    "a key."
                )
        protect_logs([self._key, *url_secrets(self._base_url)])

    def _cannot_create(self, exc: BaseException) -> ProviderConfigError:
        """The error for an SDK that refused to create its client (the caller raises it)."""
        return ProviderConfigError(
            f"Cannot create the {self._label} client for model {self.model!r}: "
            f"{redact(exc, self._key)}"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={safe_url(self._base_url)!r}, "
            f"json_mode={self._json_mode!r})"
        )

    @property
    def _what(self) -> str:
        where = f" at {safe_url(self._base_url)}" if self._base_url else ""
        return f"{self._label} model {self.model!r}{where}"

    @property
    def json_mode_in_use(self) -> str:
        """The structured-output mode requests use now (after any ``auto`` fallback)."""
        with self._lock:
            return self._mode

    def complete(
        self, messages: Sequence[Message], *, schema: dict[str, Any] | None = None
    ) -> Completion:
        """Send ``messages`` (and ``schema`` for structured output) and return the answer.

        Raises:
            ProviderUnavailableError: Transient faults outlasted the retries.
            ProviderConfigError: The key was rejected or the model does not exist.
            ProviderError: Any other failure (bad request, unreadable, refused, blocked or empty
                answer).
        """
        check_messages(messages, schema)
        started = self._clock()
        cache_key = None
        if self._cache is not None:
            cache_key = self._cache.make_key(
                provider=self._provider,
                model=self.model,
                messages=messages,
                schema=schema,
                settings=self._cache_settings(),
            )
            hit = cached_lookup(self._cache, cache_key)
            if hit is not None:
                return dataclasses.replace(hit, latency_s=self._clock() - started)
        while True:
            mode = self.json_mode_in_use
            prompt = messages
            if schema is not None and mode != "json_schema":
                prompt = with_schema_instruction(messages, schema)
            request = self._request(prompt, schema, mode)
            try:
                response = call_with_retry(
                    functools.partial(self._attempt, request, started),
                    policy=self._policy,
                    what=self._what,
                    sleep=self._sleep,
                    clock=self._clock,
                    started=started,
                    breaker=self._breaker,
                )
            except _StructuredOutputRejected as exc:
                self._downgrade(mode, str(exc))
                continue
            break
        completion = self._completion(response, self._clock() - started)
        if cache_key is not None:
            cached_store(
                self._cache, cache_key, completion, provider=self._provider, model=self.model
            )
        return completion

    def _cache_settings(self) -> dict[str, Any]:
        """Whatever besides model, messages and schema changes the answer (the cache key's
        ``settings``); never the key or the endpoint. A provider with more such options adds
        them."""
        return {
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "seed": self._seed,
            "json_mode": self._json_mode,
            "extra_body": self._extra_body,
        }

    def _downgrade(self, mode: str, reason: str) -> None:
        new_mode = self._fallbacks.get(mode)
        if self._json_mode != "auto" or new_mode is None:
            raise ProviderError(reason) from None
        with self._lock:
            if self._mode != mode:
                return  # another thread downgraded already
            self._mode = new_mode
        self._log.warning(
            f"{self._what} rejected {self._structured_output_name} {mode!r}; using {new_mode!r} "
            f"from now on (the schema goes into the prompt). {reason}"
        )

    def _attempt(self, request: RequestT, started: float) -> Any:
        """One try for :func:`call_with_retry`: the SDK's exceptions become ours. It ends within
        ``timeout`` seconds and within what is left of ``max_retry_time`` (reading included)."""
        left = self._policy.max_retry_time - (self._clock() - started)
        allowed = max(0.0, min(self._timeout, left))
        with deadline(allowed):
            try:
                return self._send(request)
            except Exception as exc:
                error = self._sdk_error(exc, request)
                if error is None:
                    raise
                raise error from None

    def _attempt_timeout(self) -> float:
        """The seconds the running attempt was allowed (for "timeout after ... s")."""
        allowed = _ALLOWED.get()
        return self._timeout if allowed is None else allowed

    def _status_error(
        self, status: int, text: str, *, structured: bool, retry_after: float | None
    ) -> Exception:
        """The exception for an HTTP error ``status`` with the server's ``text`` (the caller
        raises it).

        Args:
            status: The HTTP status code.
            text: What the server said (redacted here).
            structured: The request asked for structured output, so that in ``auto`` mode a
                rejection naming it means "downgrade" rather than "fail".
            retry_after: The wait the server asked for, in seconds.
        """
        message = redact(text, self._key)
        if structured and rejects_structured_output(status, message):
            # The request's shape was refused, whatever the status says (llama-cpp-python's
            # server answers 500): retrying the same shape cannot succeed.
            said = f"{self._what} rejected the request (HTTP {status}): {shorten(message)}"
            if self._json_mode == "auto":
                return _StructuredOutputRejected(said)
            return ProviderError(
                f"{said} (json_mode={self._json_mode!r} is not accepted here: pass "
                "json_mode='auto' to fall back to the shapes this server takes)"
            )
        return status_error(
            status,
            provider=self._label,
            model=self.model,
            message=message,
            key_hint=self._key_hint,
            retry_after=retry_after,
            base_url=safe_url(self._base_url),
        )

    def _unreadable(self, exc: BaseException) -> ProviderError:
        """The error for a response the SDK could not parse (the caller raises it)."""
        return ProviderError(
            f"{self._what} sent an unreadable response ({type(exc).__name__}: "
            f"{shorten(redact(exc, self._key), 120)})."
        )

    # -- what each provider does its own way ------------------------------------------------------

    @abc.abstractmethod
    def _request(
        self, messages: Sequence[Message], schema: dict[str, Any] | None, mode: str
    ) -> RequestT:
        """The request for structured-output ``mode``. With a ``schema`` and any ``mode`` but
        ``"json_schema"``, ``messages`` already carry the schema as an instruction."""

    @abc.abstractmethod
    def _send(self, request: RequestT) -> Any:
        """Send ``request`` through the SDK once and return its response."""

    @abc.abstractmethod
    def _sdk_error(self, exc: Exception, request: RequestT) -> Exception | None:
        """What :meth:`_send` raising ``exc`` means: a :class:`TransientError` to retry, a
        :class:`ProviderError` (from :meth:`_status_error` for HTTP errors), or None to let
        ``exc`` propagate as it is."""

    @abc.abstractmethod
    def _completion(self, response: Any, latency_s: float) -> Completion:
        """The answer in ``response``, with its usage; :class:`ProviderError` when it holds
        none."""


# -- argument checks and prompt text --------------------------------------------------------------


def check_common_options(
    *,
    model: str,
    base_url: str | None,
    base_url_name: str = "base_url",
    timeout: float,
    temperature: float | None,
    max_tokens: int | None,
    seed: int | None,
    json_mode: str,
) -> None:
    """Validate the constructor arguments both cloud clients share (ValueError naming them)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string, got {model!r}.")
    if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
        raise ValueError(
            f"{base_url_name} must be a non-empty string or None, "
            f"got {redact_url(repr(base_url))}."
        )
    if base_url is not None:
        check_base_url(base_url, name=base_url_name)
    if not _is_number(timeout) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 2):
        raise ValueError(f"temperature must be in [0, 2] or None, got {temperature!r}.")
    if max_tokens is not None and (not _is_int(max_tokens) or max_tokens <= 0):
        raise ValueError(f"max_tokens must be a positive int or None, got {max_tokens!r}.")
    if seed is not None and not _is_int(seed):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    if json_mode not in JSON_MODES:
        raise ValueError(f"json_mode must be one of {JSON_MODES}, got {json_mode!r}.")


def check_messages(messages: Sequence[Message], schema: dict[str, Any] | None) -> None:
    """Validate the arguments of ``complete`` (ValueError naming them)."""
    if isinstance(messages, (str, bytes)) or not messages:
        raise ValueError("messages must be a non-empty sequence of Message.")
    for message in messages:
        if getattr(message, "role", None) not in _ROLES or not isinstance(
            getattr(message, "content", None), str
        ):
            raise ValueError(f"messages must hold Message objects, got {message!r}.")
    if schema is not None and not isinstance(schema, dict):
        raise ValueError(f"schema must be a dict (a JSON schema) or None, got {schema!r}.")


def with_schema_instruction(messages: Sequence[Message], schema: dict[str, Any]) -> list[Message]:
    """Append the schema as an instruction to the last user message (kept at the end so that
    the prompt prefix, and with it the provider's prompt cache, is unchanged)."""
    instruction = (
        "Answer with a single JSON object, and nothing else, that follows this JSON schema:\n"
        + json.dumps(schema, sort_keys=True)
    )
    result = list(messages)
    for i in range(len(result) - 1, -1, -1):
        if result[i].role == "user":
            result[i] = Message("user", f"{result[i].content}\n\n{instruction}")
            return result
    result.append(Message("user", instruction))
    return result


def check_base_url(url: str, *, name: str = "base_url") -> str:
    """``url`` stripped, if it is an ``http(s)`` URL with a valid host and port.

    Anything else would make every call fail (and every trial fall back) with a connection
    error, or be taken by the SDK as a path: better a clear error when the client is built.

    Raises:
        ProviderConfigError: Naming the problem; the URL is shown through :func:`redact_url`.

    Example:
        >>> check_base_url(" http://127.0.0.1:8080/v1 ")
        'http://127.0.0.1:8080/v1'
    """
    text = url.strip()
    problem = None
    if any(char.isspace() or ord(char) < 32 or 127 <= ord(char) < 160 for char in text):
        problem = "contains a space or a control character"
    else:
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            parts = None
        if parts is None:
            problem = "cannot be parsed (is the port a number in 0-65535?)"
        elif parts.scheme.lower() not in ("http", "https"):
            problem = "is not an http:// or https:// URL"
        elif not parts.hostname:
            problem = "names no host"
        elif not _valid_host(parts.hostname, bracketed="[" in parts.netloc):
            problem = "has an invalid host (a non-ASCII name needs its xn-- form)"
    if problem is not None:
        raise ProviderConfigError(
            f"{name}={redact_url(text)!r} {problem}: pass the server's address, e.g. "
            f"{name}='http://127.0.0.1:8080/v1'."
        )
    return text


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    return bool(_HOST.match(host)) and len(host) <= 253


def safe_url(url: str | None) -> str | None:
    """``url`` as messages and reprs show it (:func:`redact_url`: no password, no key-like query
    parameter)."""
    return None if url is None else redact_url(url)


# -- a total deadline under the SDKs' HTTP clients ------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within the block, every network operation of a bounded HTTP client ends by ``seconds``
    from now (or by an enclosing block's deadline, if earlier), or raises the HTTP library's
    timeout error.

    Example:
        >>> with deadline(5.0):
        ...     pass  # client.chat.completions.create(...) ends within 5 s
    """
    end = time.monotonic() + max(0.0, seconds)
    outer = _DEADLINE.get()
    deadline_token = _DEADLINE.set(end if outer is None else min(outer, end))
    allowed_token = _ALLOWED.set(seconds)
    try:
        yield
    finally:
        _ALLOWED.reset(allowed_token)
        _DEADLINE.reset(deadline_token)


def bound_by_deadline(http_client: Any) -> bool:
    """Put the deadline of :func:`deadline` under every connection pool of an ``httpx2`` client
    (its transport and the proxy transports the environment mounted).

    Returns:
        True when at least one pool was bounded; False (with a warning) when the client's
        internals are not the expected ones, so that only the SDK's per-read timeout applies.
    """
    transports = [getattr(http_client, "_transport", None)]
    mounts = getattr(http_client, "_mounts", None)
    if isinstance(mounts, Mapping):
        transports.extend(mounts.values())
    bounded = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            continue
        if not isinstance(backend, _DeadlineBackend):
            pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
        bounded = True
    if not bounded:
        _logger.warning(
            f"Cannot bound calls of {type(http_client).__name__} by a total deadline: only the "
            "per-read timeout applies, so a server that answers very slowly can hold a trial "
            "longer than max_retry_time. Please report your httpx2 version."
        )
    return bounded


def _time_left(operation: str) -> float | None:
    """Seconds left before the running attempt's deadline (None: no deadline); raises the
    HTTP library's timeout error for ``operation`` when none is left."""
    end = _DEADLINE.get()
    if end is None:
        return None
    left = end - time.monotonic()
    if left > 0:
        return left
    import httpcore2

    error = {"connect": httpcore2.ConnectTimeout, "write": httpcore2.WriteTimeout}.get(
        operation, httpcore2.ReadTimeout
    )
    raise error(f"the call's deadline passed ({operation})")


def _clamp(timeout: float | None, operation: str) -> float | None:
    left = _time_left(operation)
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """A network stream whose every read and write ends by the attempt's deadline."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return bytes(self._stream.read(max_bytes, _clamp(timeout, "read")))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout, "write"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> _DeadlineStream:
        stream = self._stream.start_tls(ssl_context, server_hostname, _clamp(timeout, "connect"))
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend:
    """A network backend whose connections (and their streams) keep the attempt's deadline."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _DeadlineStream:
        stream = self._backend.connect_tcp(
            host, port, _clamp(timeout, "connect"), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _DeadlineStream:
        stream = self._backend.connect_unix_socket(
            path, _clamp(timeout, "connect"), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        left = _time_left("connect")
        self._backend.sleep(seconds if left is None else min(seconds, left))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
