"""OpenAI chat models, reasoning models, and any OpenAI-compatible server, through the ``openai``
SDK."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import json
import math
import os
import re
import threading
import time
from typing import Any
from typing import Literal
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

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
from optuna_llm_sampler.providers._keys import key_hint
from optuna_llm_sampler.providers._keys import OPENAI_ENV_VARS
from optuna_llm_sampler.providers._keys import PLACEHOLDER_KEY
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._keys import resolve_api_key
from optuna_llm_sampler.providers._retry import call_with_retry
from optuna_llm_sampler.providers._retry import rejects_structured_output
from optuna_llm_sampler.providers._retry import retry_after_from_headers
from optuna_llm_sampler.providers._retry import RetryPolicy
from optuna_llm_sampler.providers._retry import shorten
from optuna_llm_sampler.providers._retry import status_error
from optuna_llm_sampler.providers._retry import timeout_reason
from optuna_llm_sampler.providers._retry import TransientError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

JsonMode = Literal["auto", "json_schema", "json_object", "off"]
JSON_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "off")
# What "auto" falls back to when a server rejects a structured-output request.
_DOWNGRADE = {"json_schema": "json_object", "json_object": "off"}
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5(?!-chat))")
_NO_SYSTEM_MODEL = re.compile(r"^o1-(preview|mini)")
_ROLES = ("system", "user", "assistant")


class _StructuredOutputRejected(ProviderError):
    """The server rejected the requested ``response_format``; ``auto`` mode downgrades."""


class OpenAIClient:
    """An :class:`~optuna_llm_sampler.providers.LLMClient` for OpenAI and OpenAI-compatible
    servers.

    Chat models (``gpt-4o``...) and reasoning models (``o1``, ``o3``, ``o4``, ``gpt-5``
    families) are both served: for reasoning models the request has no ``temperature``, uses
    ``max_completion_tokens`` instead of ``max_tokens`` and the ``developer`` role instead of
    ``system`` (``o1-preview`` / ``o1-mini`` accept neither, so system text is folded into the
    first user message).

    Structured output: with a ``schema`` the request carries ``response_format={"type":
    "json_schema", "json_schema": {"name": "proposal", "schema": schema, "strict": False}}``.
    Strict mode is off by default because it demands every property be required, forbids
    ``additionalProperties`` and, depending on the API version, rejects ``minimum`` / ``maximum``;
    the sampler validates and snaps every value anyway. With ``json_mode="auto"`` a server that
    rejects ``json_schema`` (HTTP 400 naming ``response_format``...) is detected once and
    remembered: the client then asks for ``json_object`` and, if that is rejected too, for plain
    text; in both cases the schema is appended to the last user message as an instruction.

    ``base_url`` serves any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, LM Studio);
    there a missing key is allowed (a placeholder is sent).

    Faults: timeouts, connection errors, HTTP 408 / 409 / 429 / 5xx are retried with exponential
    backoff and full jitter, honouring ``Retry-After``, at most ``max_retries`` times and
    ``max_retry_time`` seconds, then :class:`ProviderUnavailableError`; HTTP 401 / 403 / 404 raise
    :class:`ProviderConfigError`; other failures :class:`ProviderError`. The SDK's own retries
    are off. The API key never appears in messages, logs or the ``repr``.

    Args:
        model: The model name, e.g. ``"gpt-4o-mini"``, ``"o3-mini"``, ``"qwen2.5:7b"``.
        api_key: The key; default ``OPENAI_API_KEY``. Required unless ``base_url`` is set.
        base_url: An OpenAI-compatible endpoint, e.g. ``"http://127.0.0.1:8080/v1"``.
        timeout: Seconds allowed for one HTTP request.
        max_retries: Retries of transient faults after the first attempt.
        max_retry_time: Upper bound in seconds on one :meth:`complete` call, waits included.
        temperature: Sampling temperature (ignored, with a warning, for reasoning models).
        max_tokens: Answer token limit (sent as ``max_completion_tokens`` to reasoning models).
        seed: Sent as ``seed`` (best-effort determinism where the server supports it).
        json_mode: ``"auto"`` (``json_schema``, falling back as above), ``"json_schema"``,
            ``"json_object"`` or ``"off"`` (plain text; ``supports_schema`` is then False).
        strict_schema: Send ``"strict": True`` with the schema.
        reasoning: Force reasoning-model request shape on or off; default: by model name.
        reasoning_effort: ``"low"`` / ``"medium"`` / ``"high"`` for reasoning models.
        cache: A :class:`ResponseCache` or a path: identical requests replay stored answers.
        extra_body: Extra JSON fields merged into every request body (server-specific options).
        sleep: Waits between retries (tests inject a fake).
        clock: Monotonic seconds for ``max_retry_time`` and ``latency_s`` (tests inject a fake).

    Attributes:
        model: The model name.
        supports_schema: True unless ``json_mode="off"``.

    Example:
        .. code-block:: python

            client = OpenAIClient(model="gpt-4o-mini", temperature=0.7, cache="llm.sqlite")
            answer = client.complete([Message("user", "Propose a and b.")])
            print(answer.text, answer.prompt_tokens, answer.completion_tokens)

            local = OpenAIClient(model="qwen2.5:7b", base_url="http://127.0.0.1:11434/v1")
    """

    _provider = "openai"
    _label = "OpenAI"

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
        strict_schema: bool = False,
        reasoning: bool | None = None,
        reasoning_effort: str | None = None,
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
        self._reasoning = (
            bool(_REASONING_MODEL.match(_bare(model))) if reasoning is None else reasoning
        )
        self._fold_system = self._reasoning and bool(_NO_SYSTEM_MODEL.match(_bare(model)))
        if self._reasoning and temperature is not None:
            _logger.warning(
                f"Reasoning model {model!r} accepts no temperature; temperature={temperature} "
                "is ignored."
            )
            temperature = None
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._seed = seed
        self._json_mode = json_mode
        self._strict = bool(strict_schema)
        self._reasoning_effort = reasoning_effort
        self._extra_body = dict(extra_body) if extra_body else None
        self._cache: ResponseCache | None = as_cache(cache)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        # The structured-output mode in use; "auto" starts with json_schema and may downgrade.
        self._mode: str = "json_schema" if json_mode == "auto" else json_mode

        openai = _import_sdk(model)
        self._openai = openai
        local = base_url is not None or bool(os.environ.get("OPENAI_BASE_URL"))
        key = resolve_api_key(
            api_key, env_vars=OPENAI_ENV_VARS, provider="OpenAI", model=model, required=not local
        )
        self._key = key or PLACEHOLDER_KEY
        self._key_hint = key_hint(api_key, OPENAI_ENV_VARS)
        try:
            self._sdk = openai.OpenAI(
                api_key=self._key, base_url=base_url, timeout=self._timeout, max_retries=0
            )
        except openai.OpenAIError as exc:
            raise ProviderConfigError(
                f"Cannot create the OpenAI client for model {model!r}: {redact(exc, self._key)}"
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
            ProviderError: Any other failure (bad request, unreadable or empty answer).
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
            request = self._request(messages, schema, mode)
            try:
                response = call_with_retry(
                    functools.partial(self._attempt, request),
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

    def _cache_settings(self) -> dict[str, Any]:
        return {
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "seed": self._seed,
            "json_mode": self._json_mode,
            "strict": self._strict,
            "reasoning_effort": self._reasoning_effort,
            "extra_body": self._extra_body,
        }

    def _request(
        self, messages: Sequence[Message], schema: dict[str, Any] | None, mode: str
    ) -> dict[str, Any]:
        if schema is not None and mode != "json_schema":
            messages = with_schema_instruction(messages, schema)
        request: dict[str, Any] = {"model": self.model, "messages": self._messages(messages)}
        if schema is not None and mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "proposal", "schema": schema, "strict": self._strict},
            }
        elif schema is not None and mode == "json_object":
            request["response_format"] = {"type": "json_object"}
        if self._max_tokens is not None:
            token_field = "max_completion_tokens" if self._reasoning else "max_tokens"
            request[token_field] = self._max_tokens
        if self._temperature is not None:
            request["temperature"] = self._temperature
        if self._seed is not None:
            request["seed"] = self._seed
        if self._reasoning and self._reasoning_effort is not None:
            request["reasoning_effort"] = self._reasoning_effort
        if self._extra_body:
            request["extra_body"] = self._extra_body
        return request

    def _messages(self, messages: Sequence[Message]) -> list[dict[str, str]]:
        if self._fold_system:
            system = "\n\n".join(m.content for m in messages if m.role == "system")
            rest = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
            if system:
                first_user = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
                if first_user is None:
                    rest.insert(0, {"role": "user", "content": system})
                else:
                    content = rest[first_user]["content"]
                    rest[first_user] = {"role": "user", "content": f"{system}\n\n{content}"}
            return rest
        system_role = "developer" if self._reasoning else "system"
        return [
            {"role": system_role if m.role == "system" else m.role, "content": m.content}
            for m in messages
        ]

    def _downgrade(self, mode: str, reason: str) -> None:
        new_mode = _DOWNGRADE.get(mode)
        if self._json_mode != "auto" or new_mode is None:
            raise ProviderError(reason) from None
        with self._lock:
            if self._mode != mode:
                return  # another thread downgraded already
            self._mode = new_mode
        _logger.warning(
            f"{self._what} rejected response_format {mode!r}; using {new_mode!r} from now on "
            f"(the schema goes into the prompt). {reason}"
        )

    # -- one attempt ----------------------------------------------------------------------------

    def _attempt(self, request: dict[str, Any]) -> Any:
        openai = self._openai
        try:
            return self._sdk.chat.completions.create(**request)
        except openai.APITimeoutError:
            raise TransientError(timeout_reason(self._timeout)) from None
        except openai.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "unknown"
            raise TransientError(f"connection error ({cause})") from None
        except openai.APIStatusError as exc:
            structured = "response_format" in request and self._json_mode == "auto"
            raise self._status_error(exc, structured=structured) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise ProviderError(
                f"{self._what} sent an unreadable response ({type(exc).__name__}: "
                f"{shorten(redact(exc, self._key), 120)})."
            ) from None
        except openai.OpenAIError as exc:
            raise ProviderError(f"{self._what} failed: {redact(exc, self._key)}") from None

    def _status_error(self, exc: Any, *, structured: bool) -> Exception:
        status = int(exc.status_code)
        body = exc.body
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            text = body["message"]
        elif isinstance(body, str):
            text = body
        else:
            text = str(getattr(exc, "message", "") or "")
        message = redact(text, self._key)
        if structured and rejects_structured_output(status, message):
            return _StructuredOutputRejected(
                f"{self._what} rejected the request (HTTP {status}): {shorten(message)}"
            )
        return status_error(
            status,
            provider=self._label,
            model=self.model,
            message=message,
            key_hint=self._key_hint,
            retry_after=retry_after_from_headers(exc.response.headers),
            base_url=safe_url(self._base_url),
        )

    def _completion(self, response: Any, latency_s: float) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise ProviderError(f"{self._what} sent an unreadable response (no choices).")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if not isinstance(text, str) or not text.strip():
            refusal = getattr(message, "refusal", None)
            if refusal:
                raise ProviderError(f"{self._what} refused: {shorten(redact(refusal, self._key))}")
            reason = getattr(choice, "finish_reason", None)
            raise ProviderError(f"{self._what} returned an empty answer (finish_reason={reason}).")
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=str(getattr(response, "model", None) or self.model),
            prompt_tokens=_int_or_none(getattr(usage, "prompt_tokens", None)),
            completion_tokens=_int_or_none(getattr(usage, "completion_tokens", None)),
            latency_s=latency_s,
        )


# -- helpers shared with the Gemini client -------------------------------------------------------


def check_common_options(
    *,
    model: str,
    base_url: str | None,
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
        raise ValueError(f"base_url must be a non-empty string or None, got {base_url!r}.")
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


def safe_url(url: str | None) -> str | None:
    """``url`` without user info, query or fragment (which may carry credentials)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _import_sdk(model: str) -> Any:
    try:
        import openai
    except ImportError:
        raise ProviderConfigError(
            f"OpenAI model {model!r} needs the openai package: "
            'pip install "optuna-llm-sampler[openai]"'
        ) from None
    return openai


def _bare(model: str) -> str:
    """``"openai/o3-mini"`` → ``"o3-mini"``, lower-cased (routing by model family)."""
    return model.lower().rsplit("/", 1)[-1]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
