"""API keys: where they come from, and how they are kept out of messages, logs and reprs.

A key is taken from the ``api_key=`` argument, else from the provider's environment variables
(``OPENAI_API_KEY``; ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``). It is never logged, never put in
an exception message or a ``repr``, and never written to the response cache: every text that
comes back from an SDK or a server goes through :func:`redact` before it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
import re


OPENAI_ENV_VARS = ("OPENAI_API_KEY",)
GEMINI_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
# What an OpenAI-compatible local server gets when no key is needed (llama.cpp, vLLM, Ollama).
PLACEHOLDER_KEY = "not-needed"
REDACTED = "[REDACTED]"

# Key-shaped tokens redacted even when they are not the client's own key (a server may echo a
# different one): OpenAI-style ``sk-...`` and Google API keys ``AIza...``.
_KEY_PATTERNS = re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}|\bAIza[0-9A-Za-z_\-]{20,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")


def resolve_api_key(
    api_key: str | None,
    *,
    env_vars: Sequence[str],
    provider: str,
    model: str,
    required: bool = True,
) -> str | None:
    """Return the key from ``api_key`` or the first non-empty variable of ``env_vars``.

    Args:
        api_key: The key passed by the user; wins when non-empty.
        env_vars: Environment variables to read, in order.
        provider: The provider's display name, for the error message (``"OpenAI"``).
        model: The model name, for the error message.
        required: When False a missing key returns ``None`` instead of raising.

    Returns:
        The key, stripped of surrounding whitespace, or ``None`` when missing and not required.

    Raises:
        ProviderConfigError: The key is missing and required. The message names the variable.

    Example:
        >>> resolve_api_key("sk-abc", env_vars=["OPENAI_API_KEY"], provider="OpenAI", model="m")
        'sk-abc'
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError(f"api_key must be a string or None, got {type(api_key).__name__}.")
    if api_key is not None and api_key.strip():
        return api_key.strip()
    for name in env_vars:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if not required:
        return None
    from optuna_llm_sampler.providers._base import ProviderConfigError

    variables = " or ".join(env_vars)
    raise ProviderConfigError(
        f"No API key for {provider} model {model!r}: set {variables} or pass api_key=."
    )


def redact(text: object, *keys: str | None) -> str:
    """Return ``str(text)`` with every occurrence of the ``keys`` (and any key-shaped token or
    ``Bearer`` credential) replaced by ``[REDACTED]``.

    Example:
        >>> redact("bad key sk-test-123456789012345 (401)", "sk-test-123456789012345")
        'bad key [REDACTED] (401)'
    """
    result = str(text)
    for key in keys:
        # Very short "keys" (placeholders like "x") would shred ordinary text; they are no secret.
        if key and len(key) >= 8 and key != PLACEHOLDER_KEY:
            result = result.replace(key, REDACTED)
    result = _KEY_PATTERNS.sub(REDACTED, result)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, result)


_SECRET_QUERY = re.compile(
    r"([?&](?:api[_-]?key|key|token|access[_-]?token|password|secret|sig)=)[^&#\s]*", re.I
)


def redact_url(url: str) -> str:
    """``url`` as it may be shown or stored: no password after ``user:``, no key-like query
    parameter, no key-shaped token. One helper for every place a URL is printed or stored.

    Example:
        >>> redact_url("postgresql://me:secret@db:5432/x")
        'postgresql://me:***@db:5432/x'
        >>> redact_url("http://127.0.0.1:8080/v1?api_key=abc&x=1")
        'http://127.0.0.1:8080/v1?api_key=***&x=1'
    """
    text = str(url)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        authority, sep, path = rest.partition("/")
        if "@" in authority:
            credentials, host = authority.rsplit("@", 1)
            user = credentials.split(":", 1)[0]
            authority = f"{user}:***@{host}" if ":" in credentials else f"***@{host}"
        text = f"{scheme}://{authority}{sep}{path}"
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + "***", text)
    return _KEY_PATTERNS.sub(REDACTED, text)


def key_hint(api_key: str | None, env_vars: Sequence[str]) -> str:
    """Where the key in use came from, as a fix for error messages: ``"check OPENAI_API_KEY"``.

    Example:
        >>> key_hint(None, ["OPENAI_API_KEY"])
        'check OPENAI_API_KEY'
    """
    if api_key is not None and api_key.strip():
        return "check the api_key= argument"
    for name in env_vars:
        if os.environ.get(name, "").strip():
            return f"check {name}"
    return "check " + " / ".join(env_vars)
