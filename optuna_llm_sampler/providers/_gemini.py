"""Gemini models through the ``google-genai`` SDK (not the end-of-life ``google.generativeai``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import os
from typing import Any

import optuna

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import token_count
from optuna_llm_sampler.providers._cache import as_cache
from optuna_llm_sampler.providers._cache import CacheLike
from optuna_llm_sampler.providers._http import bound_by_deadline
from optuna_llm_sampler.providers._http import HTTPClient
from optuna_llm_sampler.providers._http import JsonMode
from optuna_llm_sampler.providers._keys import GEMINI_BASE_URL_VAR
from optuna_llm_sampler.providers._keys import GEMINI_ENV_VARS
from optuna_llm_sampler.providers._keys import GEMINI_HOSTS
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._retry import parse_retry_after
from optuna_llm_sampler.providers._retry import retry_after_from_headers
from optuna_llm_sampler.providers._retry import shorten
from optuna_llm_sampler.providers._retry import timeout_reason
from optuna_llm_sampler.providers._retry import TransientError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")
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


@dataclasses.dataclass(frozen=True)
class _Request:
    """One ``generate_content`` call; ``structured``: a schema was asked for (in any mode)."""

    contents: list[Any]
    config: Any
    structured: bool


class GeminiClient(HTTPClient[_Request]):
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
    Google's ``RetryInfo.retryDelay``; every attempt and call keeps its total deadline, and a
    provider that keeps failing cools down.

    Keys: ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` go only to
    ``https://generativelanguage.googleapis.com``, or to the endpoint ``GOOGLE_GEMINI_BASE_URL``
    names (the SDK's pair: set both to send the key there); another ``base_url`` gets
    ``api_key=`` or a placeholder.

    Args:
        model: The model name, e.g. ``"gemini-2.0-flash"``.
        api_key: The key; default ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY`` (for Google's
            endpoint or the ``GOOGLE_GEMINI_BASE_URL`` set with them).
        base_url: Another endpoint (a proxy, a test server); the SDK appends
            ``/{version}/models/{model}:generateContent``. Default ``GOOGLE_GEMINI_BASE_URL``,
            else Google's. Must be an http(s) URL with a host.
        timeout: Seconds allowed for one HTTP attempt, from connecting to the last byte read.
        max_retries: Retries of transient faults after the first attempt.
        max_retry_time: Upper bound in seconds on one :meth:`complete` call, waits and reading
            included.
        cooldown_after: Calls in a row that ended unavailable before the client cools down
            (fails at once, sending nothing); 0 never cools down.
        cooldown_time: Seconds a cool-down lasts; the next call after it tries the server again.
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
    _structured_output_name = "structured output"
    _log = _logger

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_time: float = 120.0,
        cooldown_after: int = 3,
        cooldown_time: float = 60.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        json_mode: JsonMode = "auto",
        cache: CacheLike | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from_env = base_url is None and bool(os.environ.get(GEMINI_BASE_URL_VAR, "").strip())
        super().__init__(
            model=model,
            base_url=os.environ[GEMINI_BASE_URL_VAR] if from_env else base_url,
            base_url_name=GEMINI_BASE_URL_VAR if from_env else "base_url",
            timeout=timeout,
            max_retries=max_retries,
            max_retry_time=max_retry_time,
            cooldown_after=cooldown_after,
            cooldown_time=cooldown_time,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            json_mode=json_mode,
            extra_body=extra_body,
            sleep=sleep,
            clock=clock,
        )
        self._cache = as_cache(cache)
        genai, types, errors = _import_sdk(model)
        self._types = types
        self._errors = errors
        self._use_key(
            api_key, GEMINI_ENV_VARS, hosts=GEMINI_HOSTS, base_url_var=GEMINI_BASE_URL_VAR
        )
        try:
            http_options = types.HttpOptions(
                base_url=self._base_url,
                timeout=max(1, round(self._timeout * 1000)),
                retry_options=types.HttpRetryOptions(attempts=1),
                extra_body=self._extra_body,
                httpx_client=_http_client(),
            )
            self._sdk = genai.Client(api_key=self._key, vertexai=False, http_options=http_options)
        except Exception as exc:  # the SDK raises ValueError and friends for bad settings
            raise self._cannot_create(exc) from None

    # -- request ------------------------------------------------------------------------------

    def _request(
        self, messages: Sequence[Message], schema: dict[str, Any] | None, mode: str
    ) -> _Request:
        types = self._types
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
        return _Request(
            contents, types.GenerateContentConfig(**settings), structured=schema is not None
        )

    # -- one attempt ----------------------------------------------------------------------------

    def _send(self, request: _Request) -> Any:
        return self._sdk.models.generate_content(
            model=self.model, contents=request.contents, config=request.config
        )

    def _sdk_error(self, exc: Exception, request: _Request) -> Exception | None:
        if isinstance(exc, self._errors.APIError):
            response = getattr(exc, "response", None)
            retry_after = retry_after_from_headers(getattr(response, "headers", None))
            if retry_after is None:
                retry_after = _retry_delay(getattr(exc, "details", None))
            return self._status_error(
                int(getattr(exc, "code", 0) or 0),
                getattr(exc, "message", None) or "",
                structured=request.structured,
                retry_after=retry_after,
            )
        kind = _transport_kind(exc)
        if kind == "timeout":
            return TransientError(timeout_reason(self._attempt_timeout()))
        if kind == "connection":
            return TransientError(f"connection error ({type(exc).__name__})")
        if isinstance(exc, ValueError):
            return self._unreadable(exc)
        return ProviderError(
            f"{self._what} failed: {type(exc).__name__}: {shorten(redact(exc, self._key))}"
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
        answer_tokens = token_count(getattr(usage, "candidates_token_count", None))
        thought_tokens = token_count(getattr(usage, "thoughts_token_count", None))
        completion_tokens = None
        if answer_tokens is not None or thought_tokens is not None:
            completion_tokens = (answer_tokens or 0) + (thought_tokens or 0)
        return Completion(
            text=text,
            model=str(getattr(response, "model_version", None) or self.model),
            prompt_tokens=token_count(getattr(usage, "prompt_token_count", None)),
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
            'pip install ".[gemini]" (from the optuna-llm-sampler checkout)'
        ) from None
    return genai, types, errors


def _http_client() -> Any:
    """The ``httpx2`` client the SDK would build (redirects followed, the system's certificates,
    no client-side total timeout), with the attempt's deadline under its connections."""
    import ssl

    import httpx2

    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        verify: Any = ssl.create_default_context(
            cafile=os.environ.get("SSL_CERT_FILE"), capath=os.environ.get("SSL_CERT_DIR")
        )
    else:
        verify = httpx2.create_ssl_context()
    client = httpx2.Client(follow_redirects=True, timeout=None, verify=verify)
    bound_by_deadline(client)
    return client


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
