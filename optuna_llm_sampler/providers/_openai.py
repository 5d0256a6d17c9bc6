"""OpenAI chat models, reasoning models, and any OpenAI-compatible server, through the ``openai``
SDK."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import os
import re
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
from optuna_llm_sampler.providers._keys import env_key_allowed
from optuna_llm_sampler.providers._keys import OPENAI_BASE_URL_VAR
from optuna_llm_sampler.providers._keys import OPENAI_ENV_VARS
from optuna_llm_sampler.providers._keys import OPENAI_HOSTS
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._retry import retry_after_from_headers
from optuna_llm_sampler.providers._retry import shorten
from optuna_llm_sampler.providers._retry import timeout_reason
from optuna_llm_sampler.providers._retry import TransientError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

_REASONING_MODEL = re.compile(r"^(o\d|gpt-5(?!-chat))")
_NO_SYSTEM_MODEL = re.compile(r"^o1-(preview|mini)")

# The structured-output shapes OpenAI-compatible servers take, tried in this order by
# json_mode="auto" (each one after the previous was rejected; the choice is kept per client):
#
# * "json_schema": ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.
#   OpenAI; vLLM (its OpenAI server, 0.6 and later: xgrammar / guidance enforce it); Ollama 0.5
#   and later (a llama.cpp grammar; older versions ignore the type and answer free text); LM
#   Studio 0.3 and later (the only shape it takes besides "text"); llama.cpp's llama-server
#   since the September 2024 builds (PR 9527), which before answered 500 "response_format type
#   must be one of "text" or "json_object", but got: json_schema".
# * "json_object_schema": ``{"type": "json_object", "schema": schema}``. llama-cpp-python's
#   server (0.2.x, 0.3.x: its request model allows only "text" / "json_object", answering
#   json_schema with HTTP 500 and a validation error naming response_format); llama-server
#   also takes it.
# * "json_object": ``{"type": "json_object"}``, JSON of any shape (OpenAI's JSON mode, older
#   Ollama and vLLM).
# * "off": no response_format; the schema is asked for in the prompt only.
#
# From "json_object_schema" on, the schema is also written into the last user message, so the
# model is told what the grammar (if any) enforces and the prompt prefix stays the same.
_FALLBACKS = {
    "json_schema": "json_object_schema",
    "json_object_schema": "json_object",
    "json_object": "off",
}


class OpenAIClient(HTTPClient[dict[str, Any]]):
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
    rejects ``json_schema`` (HTTP 400, 422, or 500 naming ``response_format``...) is detected
    once and remembered: the client then asks for ``{"type": "json_object", "schema": ...}``
    (llama-cpp-python's server), then ``json_object``, then plain text; from the second shape on
    the schema is also appended to the last user message as an instruction. A rejected shape is
    never retried as a transient fault.

    ``base_url`` serves OpenAI-compatible servers: llama-cpp-python's server (tested against the
    real one), llama.cpp's ``llama-server``, vLLM, Ollama and LM Studio (each takes one of the
    shapes above; see docs/servers.md); there a missing key is allowed (a placeholder is sent).
    ``OPENAI_API_KEY`` goes only to ``https://api.openai.com``, or to the endpoint
    ``OPENAI_BASE_URL`` names (the SDK's pair of variables: set both to send the key there);
    another ``base_url`` gets ``api_key=`` or the placeholder. ``OPENAI_ORG_ID`` /
    ``OPENAI_PROJECT_ID`` are not sent there either.

    Faults: timeouts, connection errors, HTTP 408 / 409 / 429 / 5xx are retried with exponential
    backoff and full jitter, honouring ``Retry-After``, at most ``max_retries`` times and
    ``max_retry_time`` seconds, then :class:`ProviderUnavailableError`; HTTP 401 / 403 / 404 raise
    :class:`ProviderConfigError`; other failures :class:`ProviderError`. The SDK's own retries
    are off. Each attempt ends within ``timeout`` seconds and the whole call within
    ``max_retry_time``, reading included (a server that trickles its answer is cut off). After
    ``cooldown_after`` calls in a row ended unavailable, calls fail at once for ``cooldown_time``
    seconds. The API key never appears in messages, logs or the ``repr``; neither do a password
    or key-like query parameter of ``base_url``.

    Args:
        model: The model name, e.g. ``"gpt-4o-mini"``, ``"o3-mini"``, ``"qwen2.5:7b"``.
        api_key: The key; default ``OPENAI_API_KEY`` (for OpenAI's endpoint, or the
            ``OPENAI_BASE_URL`` set with it). Required unless another endpoint is used.
        base_url: An OpenAI-compatible endpoint, e.g. ``"http://127.0.0.1:8080/v1"``; default
            ``OPENAI_BASE_URL``, else OpenAI's. Must be an http(s) URL with a host.
        timeout: Seconds allowed for one HTTP attempt, from connecting to the last byte read.
        max_retries: Retries of transient faults after the first attempt.
        max_retry_time: Upper bound in seconds on one :meth:`complete` call, waits and reading
            included.
        cooldown_after: Calls in a row that ended unavailable before the client cools down
            (fails at once, sending nothing); 0 never cools down.
        cooldown_time: Seconds a cool-down lasts; the next call after it tries the server again.
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
    _structured_output_name = "response_format"
    _log = _logger
    _fallbacks = _FALLBACKS

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
        strict_schema: bool = False,
        reasoning: bool | None = None,
        reasoning_effort: str | None = None,
        cache: CacheLike | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from_env = base_url is None and bool(os.environ.get(OPENAI_BASE_URL_VAR, "").strip())
        super().__init__(
            model=model,
            base_url=os.environ[OPENAI_BASE_URL_VAR] if from_env else base_url,
            base_url_name=OPENAI_BASE_URL_VAR if from_env else "base_url",
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
        self._reasoning = (
            bool(_REASONING_MODEL.match(_bare(model))) if reasoning is None else reasoning
        )
        self._fold_system = self._reasoning and bool(_NO_SYSTEM_MODEL.match(_bare(model)))
        if self._reasoning and temperature is not None:
            _logger.warning(
                f"Reasoning model {model!r} accepts no temperature; temperature={temperature} "
                "is ignored."
            )
            self._temperature = None
        self._strict = bool(strict_schema)
        self._reasoning_effort = reasoning_effort
        self._cache = as_cache(cache)

        openai = _import_sdk(model)
        self._openai = openai
        self._use_key(
            api_key, OPENAI_ENV_VARS, hosts=OPENAI_HOSTS, base_url_var=OPENAI_BASE_URL_VAR
        )
        headers: dict[str, Any] = {}
        if not env_key_allowed(
            self._base_url, official_hosts=OPENAI_HOSTS, paired=OPENAI_BASE_URL_VAR
        ):
            # The SDK would send the environment's organization and project to any endpoint.
            headers = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
        try:
            http_client = openai.DefaultHttpxClient()
            bound_by_deadline(http_client)
            self._sdk = openai.OpenAI(
                api_key=self._key,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=0,
                default_headers=headers or None,
                http_client=http_client,
            )
        except openai.OpenAIError as exc:
            raise self._cannot_create(exc) from None

    # -- request ------------------------------------------------------------------------------

    def _cache_settings(self) -> dict[str, Any]:
        return {
            **super()._cache_settings(),
            "strict": self._strict,
            "reasoning_effort": self._reasoning_effort,
        }

    def _request(
        self, messages: Sequence[Message], schema: dict[str, Any] | None, mode: str
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": self._messages(messages)}
        if schema is not None and mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "proposal", "schema": schema, "strict": self._strict},
            }
        elif schema is not None and mode == "json_object_schema":
            request["response_format"] = {"type": "json_object", "schema": schema}
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

    # -- one attempt ----------------------------------------------------------------------------

    def _send(self, request: dict[str, Any]) -> Any:
        return self._sdk.chat.completions.create(**request)

    def _sdk_error(self, exc: Exception, request: dict[str, Any]) -> Exception | None:
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return TransientError(timeout_reason(self._attempt_timeout()))
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "unknown"
            return TransientError(f"connection error ({cause})")
        if isinstance(exc, openai.APIStatusError):
            body = exc.body
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                text = body["message"]
            elif isinstance(body, str):
                text = body
            elif isinstance(body, (dict, list)):
                # FastAPI's {"detail": [...]} (a 422): what it names decides the fallback.
                text = json.dumps(body, default=str)[:2000]
            else:
                text = str(getattr(exc, "message", "") or "")
            return self._status_error(
                int(exc.status_code),
                text,
                structured="response_format" in request,
                retry_after=retry_after_from_headers(exc.response.headers),
            )
        if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
            return self._unreadable(exc)
        if isinstance(exc, openai.OpenAIError):
            return ProviderError(f"{self._what} failed: {redact(exc, self._key)}")
        return None

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
            prompt_tokens=token_count(getattr(usage, "prompt_tokens", None)),
            completion_tokens=token_count(getattr(usage, "completion_tokens", None)),
            latency_s=latency_s,
        )


def _import_sdk(model: str) -> Any:
    try:
        import openai
    except ImportError:
        raise ProviderConfigError(
            f"OpenAI model {model!r} needs the openai package: "
            'pip install ".[openai]" (from the optuna-llm-sampler checkout)'
        ) from None
    return openai


def _bare(model: str) -> str:
    """``"openai/o3-mini"`` → ``"o3-mini"``, lower-cased (routing by model family)."""
    return model.lower().rsplit("/", 1)[-1]
