"""A response cache on disk, for reproducible and free re-runs.

With ``cache="responses.sqlite"`` on :class:`OpenAIClient` or :class:`GeminiClient`, every
answer is stored under a hash of the request (provider, model, messages, schema, sampling
settings). Asking the same thing again replays the stored answer (``Completion.cached`` is True,
no tokens are paid and no network is used). Re-running a seeded study against a filled cache
therefore replays the same LLM answers, which makes LLM-driven studies reproducible and lets tests
and demos run offline. Identical requests get identical answers, by design.

The cache is one SQLite file (stdlib :mod:`sqlite3`) in WAL mode; every read or write is one short
transaction on its own connection, so threads (``n_jobs``) and processes sharing the file are
safe. It stores the request hash and the answer only: never the API key, the endpoint or the
messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import hashlib
import json
import os
from pathlib import Path
import sqlite3
import time
from typing import Any
from typing import Union

import optuna

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message


_logger = optuna.logging.get_logger(f"optuna.{__name__}")
_KEY_VERSION = "optuna-llm-sampler/response-cache/v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    response_model TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL
)
"""

CacheLike = Union["ResponseCache", str, "os.PathLike[str]"]


class ResponseCache:
    """Stores LLM answers in a SQLite file, keyed by a hash of the request.

    Args:
        path: The SQLite file; created (with its directory) if missing.
        timeout: Seconds to wait for a lock held by another writer.

    Example:
        .. code-block:: python

            cache = ResponseCache("runs/llm-cache.sqlite")
            client = OpenAIClient(model="gpt-4o-mini", cache=cache)
            first = client.complete(messages)   # asks the model, stores the answer
            again = client.complete(messages)   # replayed: again.cached is True
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path) or str(path) == ":memory:":
            raise ValueError(f"path must be a file path, got {path!r}.")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}.")
        self._path = Path(path).expanduser()
        self._timeout = float(timeout)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"path {str(path)!r} is not a usable response cache: {exc}."
            ) from None

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def __repr__(self) -> str:
        return f"ResponseCache({str(self._path)!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(str(self._path), timeout=self._timeout, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def make_key(
        *,
        provider: str,
        model: str,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        settings: Mapping[str, Any],
    ) -> str:
        """The sha256 hex digest of a canonical JSON of the request.

        Args:
            provider: ``"openai"`` or ``"gemini"``.
            model: The model asked for.
            messages: The chat messages.
            schema: The JSON schema for structured output, if any.
            settings: Whatever else changes the answer (temperature, max_tokens, seed...). Not
                the API key, not the endpoint.
        """
        payload = {
            "v": _KEY_VERSION,
            "provider": provider,
            "model": model,
            "messages": [[m.role, m.content] for m in messages],
            "schema": schema,
            "settings": dict(settings),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Completion | None:
        """The stored answer for ``key`` (``cached=True``), or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT text, response_model, prompt_tokens, completion_tokens, latency_s "
                "FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        text, response_model, prompt_tokens, completion_tokens, _ = row
        return Completion(
            text=text,
            model=response_model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=0.0,
            cached=True,
        )

    def put(self, key: str, completion: Completion, *, provider: str, model: str) -> None:
        """Store ``completion`` under ``key``; an existing entry is kept (first answer wins)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO responses (key, provider, model, text, response_model, "
                "prompt_tokens, completion_tokens, latency_s, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    provider,
                    model,
                    completion.text,
                    completion.model,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    float(completion.latency_s),
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._connect() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def clear(self) -> None:
        """Delete every stored answer."""
        with self._connect() as conn:
            conn.execute("DELETE FROM responses")


def as_cache(cache: CacheLike | None) -> ResponseCache | None:
    """Accept a :class:`ResponseCache`, a path, or None (the ``cache=`` argument of clients)."""
    if cache is None or isinstance(cache, ResponseCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return ResponseCache(cache)
    raise ValueError(f"cache must be a path, a ResponseCache or None, got {cache!r}.")


def cached_lookup(cache: ResponseCache | None, key: str) -> Completion | None:
    """The stored answer for ``key``, or None; a broken cache file is logged, not raised."""
    if cache is None:
        return None
    try:
        return cache.get(key)
    except sqlite3.Error as exc:
        _logger.warning(
            f"Response cache {cache.path} could not be read ({exc}); asking the model."
        )
        return None


def cached_store(
    cache: ResponseCache | None, key: str, completion: Completion, *, provider: str, model: str
) -> None:
    """Store an answer; a broken cache file is logged, not raised."""
    if cache is None:
        return
    try:
        cache.put(key, completion, provider=provider, model=model)
    except sqlite3.Error as exc:
        _logger.warning(f"Response cache {cache.path} could not be written ({exc}).")
