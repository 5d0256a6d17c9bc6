"""API keys: where they come from, where they may go, and how they are kept out of messages,
logs and reprs.

A key is taken from the ``api_key=`` argument, else from the provider's environment variables
(``OPENAI_API_KEY``; ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``). A key from the environment goes
only to the provider it belongs to: to the provider's own host, or to the endpoint the user
named next to it in the SDK's own variable (``OPENAI_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``). Any
other ``base_url`` gets the ``api_key=`` argument or a placeholder.

A key is checked when the client is built (one line of printable ASCII), never logged, never put
in an exception message or a ``repr``, and never written to the response cache: every text that
comes back from an SDK or a server goes through :func:`redact` before it is shown, and the HTTP
libraries' loggers pass their records through :func:`protect_logs`'s filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import logging
import os
import re
import threading
from urllib.parse import parse_qsl
from urllib.parse import urlsplit


OPENAI_ENV_VARS = ("OPENAI_API_KEY",)
GEMINI_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
# The SDKs' own variables for another endpoint: a key from the environment may go there, since
# the user set both (the SDKs pair them the same way).
OPENAI_BASE_URL_VAR = "OPENAI_BASE_URL"
GEMINI_BASE_URL_VAR = "GOOGLE_GEMINI_BASE_URL"
# The hosts a key from the environment is sent to without being asked (https only).
OPENAI_HOSTS = ("api.openai.com",)
GEMINI_HOSTS = ("generativelanguage.googleapis.com",)
# What an OpenAI-compatible local server gets when no key is needed (llama.cpp, vLLM, Ollama).
PLACEHOLDER_KEY = "not-needed"
REDACTED = "[REDACTED]"

# Key-shaped tokens redacted even when they are not the client's own key (a server may echo a
# different one): OpenAI-style ``sk-...`` and Google API keys ``AIza...``.
_KEY_PATTERNS = re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}|\bAIza[0-9A-Za-z_\-]{20,}")
# Credentials after an HTTP auth scheme, as in an Authorization header or its repr.
_AUTH_SCHEME = re.compile(r"(?i)\b((?:bearer|basic|digest)\s+)(?!\[REDACTED\])[^\s'\",}\]]+")
# Headers that carry a key as their whole value (``x-goog-api-key: AIza...``).
_KEY_HEADER = re.compile(
    r"(?i)\b((?:x-goog-api-key|x-api-key|api-key|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[REDACTED\]|bearer\b|basic\b|digest\b)[^\s'\",}\]]+"
)
# Query parameters whose names say they hold a secret (``?key=``, ``&access_token=``...); the
# value ends at the next parameter (in a URL alone) or also at a quote or bracket (in text).
_SECRET_NAME = (
    r"(?i)([?&](?:[a-z0-9_.\-]*(?:key|token|secret|passw(?:or)?d|pwd|sig|signature|auth"
    r"|credential)s?[a-z0-9_.\-]*)=)"
)
_SECRET_QUERY = re.compile(_SECRET_NAME + r"[^&#\s]*")
_SECRET_QUERY_IN_TEXT = re.compile(_SECRET_NAME + r"[^&#\s'\"<>]*")
_SCHEME = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://")
_END_OF_AUTHORITY = re.compile(r"[/?#]")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# The loggers whose records may carry request lines, headers or URLs.
_PROTECTED_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "google_genai",
    "google",
    "urllib3",
    "requests",
    "h11",
    "h2",
    "hpack",
)


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
        ProviderConfigError: The key is missing and required, or it cannot be sent in an HTTP
            header (see :func:`check_api_key`). The message names the variable, never the key.

    Example:
        >>> resolve_api_key("sk-abc", env_vars=["OPENAI_API_KEY"], provider="OpenAI", model="m")
        'sk-abc'
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError(f"api_key must be a string or None, got {type(api_key).__name__}.")
    if api_key is not None and api_key.strip():
        return check_api_key(api_key.strip(), source="the api_key= argument", provider=provider)
    for name in env_vars:
        value = os.environ.get(name, "").strip()
        if value:
            return check_api_key(value, source=name, provider=provider)
    if not required:
        return None
    from optuna_llm_sampler.providers._base import ProviderConfigError

    variables = " or ".join(env_vars)
    raise ProviderConfigError(
        f"No API key for {provider} model {model!r}: set {variables} or pass api_key=."
    )


def check_api_key(key: str, *, source: str, provider: str) -> str:
    """``key`` if it can go in an HTTP header: one line of printable ASCII without spaces.

    A key pasted with a line break, a non-breaking space or "smart" characters would otherwise
    fail at the first call, deep inside the HTTP library (whose error may quote it), or be cut.

    Raises:
        ProviderConfigError: Naming what is wrong and where the key came from, never the key.

    Example:
        >>> check_api_key("sk-abc", source="OPENAI_API_KEY", provider="OpenAI")
        'sk-abc'
    """
    problem = None
    for char in key:
        if char in "\r\n":
            problem = "a line break"
        elif char in " \t" or char.isspace():
            problem = "a space"
        elif ord(char) > 126:
            problem = "a non-ASCII character"
        elif ord(char) < 33 or ord(char) == 127:
            problem = "a control character"
        if problem:
            break
    if problem is None:
        return key
    from optuna_llm_sampler.providers._base import ProviderConfigError

    raise ProviderConfigError(
        f"The {provider} API key from {source} contains {problem}; a key is one line of "
        "printable ASCII: copy it again, without line breaks, spaces or quotes around it."
    )


def env_key_allowed(base_url: str | None, *, official_hosts: Sequence[str], paired: str) -> bool:
    """Whether a key from the environment may be sent to ``base_url``.

    It may when ``base_url`` is None (the SDK's default endpoint), an ``https`` URL of one of
    ``official_hosts`` (or a subdomain), or the endpoint the environment variable ``paired``
    names (``OPENAI_BASE_URL``: the user set key and endpoint together).

    Example:
        >>> env_key_allowed("http://10.0.0.5:8000/v1", official_hosts=["api.openai.com"],
        ...                 paired="NO_SUCH_VARIABLE")
        False
    """
    if base_url is None:
        return True
    parts = _split(base_url)
    if parts is None:
        return False
    scheme, host, _, _ = parts
    if scheme == "https" and any(host == h or host.endswith("." + h) for h in official_hosts):
        return True
    named = os.environ.get(paired, "").strip()
    return bool(named) and same_endpoint(base_url, named)


def same_endpoint(a: str, b: str) -> bool:
    """Whether two URLs name the same endpoint: scheme, host, port and path (no trailing ``/``).

    Example:
        >>> same_endpoint("http://Host:80/v1/", "http://host/v1")
        True
    """
    first, second = _split(a), _split(b)
    return first is not None and first == second


def _split(url: str) -> tuple[str, str, int, str] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, host, port if port is not None else (default or 0), parts.path.rstrip("/")


def redact(text: object, *keys: str | None) -> str:
    """Return ``str(text)`` with every occurrence of the ``keys`` (and any key-shaped token,
    ``Bearer`` / ``Basic`` credential, key header, URL password or key-like query parameter)
    replaced by ``[REDACTED]`` (``***`` inside URLs).

    Example:
        >>> redact("bad key sk-test-123456789012345 (401)", "sk-test-123456789012345")
        'bad key [REDACTED] (401)'
        >>> redact("Authorization: Basic dXNlcjpwdw==")
        'Authorization: Basic [REDACTED]'
    """
    result = str(text)
    with _secrets_lock:
        registered = sorted(_secrets, key=len, reverse=True)
    for key in [*keys, *registered]:
        # Very short "keys" (placeholders like "x") would shred ordinary text; they are no secret.
        if key and len(key) >= 8 and key != PLACEHOLDER_KEY:
            result = result.replace(key, REDACTED)
    result = _redact_urls(result, in_text=True)
    result = _KEY_PATTERNS.sub(REDACTED, result)
    result = _AUTH_SCHEME.sub(lambda m: m.group(1) + REDACTED, result)
    return _KEY_HEADER.sub(lambda m: m.group(1) + REDACTED, result)


def redact_url(url: str) -> str:
    """``url`` as it may be shown or stored: no password after ``user:``, no key-like query
    parameter, no key-shaped token. One helper for every place a URL is printed or stored.

    It never fails and errs on the side of hiding: text that is not a well-formed URL (a
    password with ``/`` or ``?`` in it) loses everything between ``user:`` and the last ``@``.

    Example:
        >>> redact_url("postgresql://me:secret@db:5432/x")
        'postgresql://me:***@db:5432/x'
        >>> redact_url("http://127.0.0.1:8080/v1?api_key=abc&x=1")
        'http://127.0.0.1:8080/v1?api_key=***&x=1'
    """
    return _KEY_PATTERNS.sub(REDACTED, _redact_urls(str(url)))


def _redact_urls(text: str, *, in_text: bool = False) -> str:
    """Every ``scheme://`` in ``text`` without its credentials, and no secret query value."""
    pieces: list[str] = []
    position = 0
    for match in _SCHEME.finditer(text):
        if match.start() < position:
            continue  # inside the credentials already masked
        start = match.end()
        end = start
        while end < len(text) and not text[end].isspace():
            end += 1
        token = text[start:end]
        authority = _END_OF_AUTHORITY.split(token, 1)[0]
        masked = None
        if "@" in authority:
            credentials, rest = token[: len(authority)].rsplit("@", 1)
            masked = _mask(credentials) + "@" + rest + token[len(authority) :]
        elif ":" in authority and "@" in token and _looks_like_userinfo(authority, token):
            # ``user:pa/ss@host``: not well formed, but the part after ``user:`` is a secret.
            credentials, rest = token.rsplit("@", 1)
            masked = _mask(credentials) + "@" + rest
        if masked is not None:
            pieces.append(text[position:start] + masked)
            position = end
    pieces.append(text[position:])
    query = _SECRET_QUERY_IN_TEXT if in_text else _SECRET_QUERY
    return query.sub(lambda m: m.group(1) + "***", "".join(pieces))


def _looks_like_userinfo(authority: str, token: str) -> bool:
    """Whether ``user:...@`` in a malformed URL is user info rather than ``host:port`` followed
    by an ``@`` in the path (before the query) or the query (``?q=a@b``, after a port)."""
    after_colon = authority.split(":", 1)[1]
    if not after_colon.isdigit():
        return True
    head = re.split(r"[?#]", token, maxsplit=1)[0]
    return "@" in head


def _mask(credentials: str) -> str:
    user, colon, _ = credentials.partition(":")
    return f"{user}:***" if colon else "***"


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries: the password of its user info and the values of key-like
    query parameters (so that they are redacted wherever the URL appears in other forms).

    Example:
        >>> url_secrets("http://me:pw-123456@h/v1?api_key=abcdefgh&x=1")
        ['pw-123456', 'abcdefgh']
    """
    if not url:
        return []
    found: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        query = parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:
        return found
    for name, value in query:
        if _SECRET_QUERY.match(f"?{name}=x"):
            found.append(value)
    return found


def protect_logs(secrets: Iterable[str | None] = ()) -> None:
    """Redact ``secrets`` (and anything :func:`redact` hides) in the HTTP libraries' log records.

    httpx logs every request URL at INFO (user info and query included) and httpcore logs
    response headers at DEBUG, where a server that echoes ``Authorization`` puts the key; the
    SDKs log request options at DEBUG. A filter on each of their loggers rewrites such records.
    Called when a client is built, after its SDK (and so its loggers) was imported.

    Example:
        >>> protect_logs(["sk-test-planted-0123456789"])
    """
    with _secrets_lock:
        _secrets.update(s for s in secrets if s and len(s) >= 8 and s != PLACEHOLDER_KEY)
    manager = logging.Logger.manager
    names = [*_PROTECTED_LOGGERS, *list(manager.loggerDict)]
    for name in names:
        if name.split(".")[0] not in _PROTECTED_LOGGERS:
            continue
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_FILTER)


class _RedactingFilter(logging.Filter):
    """Rewrites a record whose text holds a secret; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTER = _RedactingFilter()


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
