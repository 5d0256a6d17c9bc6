"""Gemini models through the ``google-genai`` SDK (not the end-of-life ``google.generativeai``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import threading
import time
from typing import Any

import optuna

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._cache import as_cache
from optuna_llm_sampler.providers._cache import cached_lookup
from optuna_llm_sampler.providers._cache import cached_store
from optuna_llm_sampler.providers._cache import CacheLike
from optuna_llm_sampler.providers._cache import ResponseCache
from optuna_llm_sampler.providers._keys import GEMINI_ENV_VARS
from optuna_llm_sampler.providers._keys import key_hint
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._keys import resolve_api_key
from optuna_llm_sampler.providers._openai import check_common_options
from optuna_llm_sampler.providers._openai import check_messages
from optuna_llm_sampler.providers._openai import JsonMode
from optuna_llm_sampler.providers._openai import safe_url
from optuna_llm_sampler.providers._openai import with_schema_instruction
from optuna_llm_sampler.providers._retry import call_with_retry
from optuna_llm_sampler.providers._retry import parse_retry_after
from optuna_llm_sampler.providers._retry import rejects_structured_output
from optuna_llm_sampler.providers._retry import retry_after_from_headers
from optuna_llm_sampler.providers._retry import RetryPolicy
from optuna_llm_sampler.providers._retry import shorten
from optuna_llm_sampler.providers._retry import status_error
from optuna_llm_sampler.providers._retry import timeout_reason
from optuna_llm_sampler.providers._retry import TransientError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")
_DOWNGRADE = {"json_schema": "json_object", "json_object": "off"}
# HTTP client libraries whose exceptions mean "the request did not complete".
_TRANSPORT_MODULES = ("httpx", "httpx2", "httpcore", "requests", "urllib3", "aiohttp")
_CONNECTION_ERRORS = frozenset(
    {
        "NetworkError",  # httpx: ConnectError, ReadError, WriteError, CloseError
        "RemoteProtocolError",
        "ConnectionError",  # requests
        "ProtocolError",  # urllib3
        "ClientConnectorError",  # aiohttp
        "ClientOSError",
        "ServerDisconnectedError",
    }
)


class _StructuredOutputRejected(ProviderError):
    """The endpoint rejected ``response_json_schema``; ``auto`` mode downgrades."""


class GeminiClient:
    """An :class:`~optuna_llm_sampler.providers.LLMClient` for Gemini models (Gemini Developer
    API, through ``google-genai``).

    Messages map to ``contents`` with the roles ``user`` / ``model``; system messages become the
    ``system_instruction``. With a ``schema`` the request asks for
    ``response_mime_type="application/json"`` and ``response_json_schema=schema`` (JSON Schema,
    ``minimum`` / ``maximum`` included). With ``json_mode="auto"`` an endpoint that rejects the
    schema is remembered and served with JSON mime type only, then plain text, the schema going
    into the prompt. Usage comes from ``usage_metadata``: ``prompt_token_count``, and
    ``candidates_token_count`` plus ``thoughts_token_count`` (thinking tokens are paid as output).

    Faults are handled as in :class:`OpenAIClient`: the SDK's own retries are disabled
    (``HttpRetryOptions(attempts=1)``) and ours apply, honouring ``Retry-After`` headers and
    Google's ``RetryInfo.retryDelay``.

    Args:
        model: The model name, e.g. ``"gemini-2.0-flash"``.
        api_key: The key; default ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``.
        base_url: Another endpoint (a proxy, a test server); the SDK appends
            ``/{version}/models/{model}:generateContent``.
        timeout: Seconds allowed for one HTTP request (sent to the SDK in milliseconds).
        max_retries: Retries of transient faults after the first attempt.
        max_retry_time: Upper bound in seconds on one :meth:`complete` call, waits included.
        temperature: Sampling temperature.
        max_tokens: Sent as ``max_output_tokens``.
        seed: Sent as ``seed``.
        json_mode: ``"auto"``, ``"json_schema"``, ``"json_object"`` (JSON mime type, schema in
            the prompt) or ``"off"`` (plain text; ``supports_schema`` is then False).
        cache: A :class:`ResponseCache` or a path: identical requests replay stored answers.
        extra_body: Extra JSON fields merged into every request body.
        sleep: Waits between retries (tests inject a fake).
        clock: Monotonic seconds for ``max_retry_time`` and ``latency_s`` (tests inject a fake).

    Attributes:
        model: The model name.
        supports_schema: True unless ``json_mode="off"``.

    Example:
        .. code-block:: python

            client = GeminiClient(model="gemini-2.0-flash", temperature=0.7)
            answer = client.complete(
                [Message("system", "You propose policies."), Message("user", "Next a, b?")]
            )
    """

    _provider = "gemini"
    _label = "Gemini"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_time: float = 120.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        json_mode: JsonMode = "auto",
        cache: CacheLike | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        check_common_options(
            model=model,
            base_url=base_url,
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
        self._base_url = base_url
        self._timeout = float(timeout)
        self._policy = RetryPolicy(max_retries=max_retries, max_retry_time=max_retry_time)
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._seed = seed
        self._json_mode = json_mode
        self._extra_body = dict(extra_body) if extra_body else None
        self._cache: ResponseCache | None = as_cache(cache)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._mode: str = "json_schema" if json_mode == "auto" else json_mode

        genai, types, errors = _import_sdk(model)
        self._types = types
        self._errors = errors
        key = resolve_api_key(api_key, env_vars=GEMINI_ENV_VARS, provider="Gemini", model=model)
        self._key = str(key)
        self._key_hint = key_hint(api_key, GEMINI_ENV_VARS)
        http_options = types.HttpOptions(
            base_url=base_url,
            timeout=max(1, round(self._timeout * 1000)),
            retry_options=types.HttpRetryOptions(attempts=1),
            extra_body=self._extra_body,
        )
        try:
            self._sdk = genai.Client(api_key=self._key, vertexai=False, http_options=http_options)
        except Exception as exc:  # the SDK raises ValueError and friends for bad settings
            raise ProviderConfigError(
                f"Cannot create the Gemini client for model {model!r}: {redact(exc, self._key)}"
            ) from None

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
            ProviderError: Any other failure (bad request, unreadable, blocked or empty answer).
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
                settings={
                    "temperature": self._temperature,
                    "max_tokens": self._max_tokens,
                    "seed": self._seed,
                    "json_mode": self._json_mode,
                    "extra_body": self._extra_body,
                },
            )
            hit = cached_lookup(self._cache, cache_key)
            if hit is not None:
                return dataclasses.replace(hit, latency_s=self._clock() - started)
        while True:
            mode = self.json_mode_in_use
            contents, config = self._request(messages, schema, mode)
            try:
                response = call_with_retry(
                    functools.partial(
                        self._attempt, contents, config, structured=schema is not None
                    ),
                    policy=self._policy,
                    what=self._what,
                    sleep=self._sleep,
                    clock=self._clock,
                    started=started,
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

    # -- request ------------------------------------------------------------------------------

    def _request(
        self, messages: Sequence[Message], schema: dict[str, Any] | None, mode: str
    ) -> tuple[list[Any], Any]:
        types = self._types
        if schema is not None and mode != "json_schema":
            messages = with_schema_instruction(messages, schema)
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[types.Part(text=m.content)],
            )
            for m in messages
            if m.role != "system"
        ]
        if not contents:  # only system text: the API needs at least one user turn
            contents = [types.Content(role="user", parts=[types.Part(text=system)])]
            system = ""
        settings: dict[str, Any] = {}
        if system:
            settings["system_instruction"] = system
        if self._temperature is not None:
            settings["temperature"] = self._temperature
        if self._max_tokens is not None:
            settings["max_output_tokens"] = self._max_tokens
        if self._seed is not None:
            settings["seed"] = self._seed
        if schema is not None and mode in ("json_schema", "json_object"):
            settings["response_mime_type"] = "application/json"
            if mode == "json_schema":
                settings["response_json_schema"] = schema
        return contents, types.GenerateContentConfig(**settings)

    def _downgrade(self, mode: str, reason: str) -> None:
        new_mode = _DOWNGRADE.get(mode)
        if self._json_mode != "auto" or new_mode is None:
            raise ProviderError(reason) from None
        with self._lock:
            if self._mode != mode:
                return
            self._mode = new_mode
        _logger.warning(
            f"{self._what} rejected structured output {mode!r}; using {new_mode!r} from now on "
            f"(the schema goes into the prompt). {reason}"
        )

    # -- one attempt ----------------------------------------------------------------------------

    def _attempt(self, contents: list[Any], config: Any, *, structured: bool) -> Any:
        try:
            return self._sdk.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except self._errors.APIError as exc:
            raise self._status_error(exc, structured=structured) from None
        except Exception as exc:
            kind = _transport_kind(exc)
            if kind == "timeout":
                raise TransientError(timeout_reason(self._timeout)) from None
            if kind == "connection":
                raise TransientError(f"connection error ({type(exc).__name__})") from None
            if isinstance(exc, ValueError):
                raise ProviderError(
                    f"{self._what} sent an unreadable response ({type(exc).__name__}: "
                    f"{shorten(redact(exc, self._key), 120)})."
                ) from None
            raise ProviderError(
                f"{self._what} failed: {type(exc).__name__}: {shorten(redact(exc, self._key))}"
            ) from None

    def _status_error(self, exc: Any, *, structured: bool) -> Exception:
        status = int(getattr(exc, "code", 0) or 0)
        message = redact(getattr(exc, "message", None) or "", self._key)
        if structured and self._json_mode == "auto" and rejects_structured_output(status, message):
            return _StructuredOutputRejected(
                f"{self._what} rejected the request (HTTP {status}): {shorten(message)}"
            )
        response = getattr(exc, "response", None)
        retry_after = retry_after_from_headers(getattr(response, "headers", None))
        if retry_after is None:
            retry_after = _retry_delay(getattr(exc, "details", None))
        return status_error(
            status,
            provider=self._label,
            model=self.model,
            message=message,
            key_hint=self._key_hint,
            retry_after=retry_after,
            base_url=safe_url(self._base_url),
        )

    def _completion(self, response: Any, latency_s: float) -> Completion:
        candidates = getattr(response, "candidates", None) or []
        parts = []
        finish_reason = None
        if candidates:
            finish_reason = getattr(candidates[0], "finish_reason", None)
            content = getattr(candidates[0], "content", None)
            parts = list(getattr(content, "parts", None) or [])
        text = "".join(
            p.text for p in parts if isinstance(getattr(p, "text", None), str) and not p.thought
        )
        if not text.strip():
            feedback = getattr(response, "prompt_feedback", None)
            blocked = getattr(feedback, "block_reason", None)
            if blocked:
                raise ProviderError(f"{self._what} blocked the prompt ({blocked}).")
            raise ProviderError(
                f"{self._what} returned an empty answer (finish_reason={finish_reason})."
            )
        usage = getattr(response, "usage_metadata", None)
        prompt_tokens = getattr(usage, "prompt_token_count", None)
        answer_tokens = getattr(usage, "candidates_token_count", None)
        thought_tokens = getattr(usage, "thoughts_token_count", None)
        completion_tokens = None
        if isinstance(answer_tokens, int) or isinstance(thought_tokens, int):
            completion_tokens = int(answer_tokens or 0) + int(thought_tokens or 0)
        return Completion(
            text=text,
            model=str(getattr(response, "model_version", None) or self.model),
            prompt_tokens=int(prompt_tokens) if isinstance(prompt_tokens, int) else None,
            completion_tokens=completion_tokens,
            latency_s=latency_s,
        )


def _import_sdk(model: str) -> tuple[Any, Any, Any]:
    try:
        from google import genai
        from google.genai import errors
        from google.genai import types
    except ImportError:
        raise ProviderConfigError(
            f"Gemini model {model!r} needs the google-genai package: "
            'pip install "optuna-llm-sampler[gemini]"'
        ) from None
    return genai, types, errors


def _transport_kind(exc: BaseException) -> str | None:
    """``"timeout"`` / ``"connection"`` for an HTTP library's transport failure, else None."""
    for cls in type(exc).__mro__:
        if cls.__module__.split(".")[0] not in _TRANSPORT_MODULES:
            continue
        if "Timeout" in cls.__name__:
            return "timeout"
        if cls.__name__ in _CONNECTION_ERRORS:
            return "connection"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection"
    return None


def _retry_delay(details: Any) -> float | None:
    """Google's ``RetryInfo.retryDelay`` (``"23s"``) from an error body, in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    for item in items if isinstance(items, list) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            return parse_retry_after(delay[:-1])
    return None
