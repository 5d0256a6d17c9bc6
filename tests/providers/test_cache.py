"""ResponseCache: keys, round trips, sharing between threads and processes, client replay."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
import threading

import pytest

from optuna_llm_sampler.providers._base import Completion
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._cache import ResponseCache
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.conftest import PLANTED_KEY
from tests.providers.stub_server import Fault


MESSAGES = [Message("system", "Propose."), Message("user", "a, b?")]
SCHEMA = {"type": "object", "properties": {"a": {"type": "number"}}}


def _key(**overrides):
    request = {
        "provider": "openai",
        "model": "gpt-4o",
        "messages": MESSAGES,
        "schema": SCHEMA,
        "settings": {"temperature": 0.5},
    }
    request.update(overrides)
    return ResponseCache.make_key(**request)


def test_key_is_stable_and_sensitive_to_every_part():
    key = _key()
    assert key == _key() and len(key) == 64
    variants = [
        _key(provider="gemini"),
        _key(model="gpt-4o-mini"),
        _key(messages=[Message("system", "Propose."), Message("user", "a, b? ")]),
        _key(messages=[Message("user", "Propose."), Message("user", "a, b?")]),
        _key(schema=None),
        _key(settings={"temperature": 0.6}),
        _key(settings={"temperature": 0.5, "seed": 1}),
    ]
    assert len({key, *variants}) == len(variants) + 1
    # dict order does not matter
    assert _key(settings={"a": 1, "b": 2}) == _key(settings={"b": 2, "a": 1})


def test_round_trip_and_first_answer_wins(tmp_path):
    cache = ResponseCache(tmp_path / "sub" / "cache.sqlite")
    assert cache.get("k") is None and len(cache) == 0
    cache.put("k", Completion("one", "gpt-4o", 10, 3, 1.5), provider="openai", model="gpt-4o")
    cache.put("k", Completion("two", "gpt-4o", 10, 3, 1.5), provider="openai", model="gpt-4o")
    hit = ResponseCache(tmp_path / "sub" / "cache.sqlite").get("k")  # persisted
    assert hit == Completion("one", "gpt-4o", 10, 3, 0.0, cached=True)
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0
    assert repr(cache) == f"ResponseCache({str(tmp_path / 'sub' / 'cache.sqlite')!r})"


def test_bad_paths_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="path"):
        ResponseCache(":memory:")
    not_a_db = tmp_path / "text.sqlite"
    not_a_db.write_text("this is not a database, just text " * 100)
    with pytest.raises(ValueError, match="not a usable response cache"):
        ResponseCache(not_a_db)


def test_threads_share_one_file(tmp_path):
    path = tmp_path / "cache.sqlite"

    def writer(worker: int) -> None:
        cache = ResponseCache(path)
        for i in range(20):
            cache.put(f"{worker}-{i}", Completion(f"t{i}", "m"), provider="openai", model="m")
            assert cache.get(f"{worker}-{i}") is not None

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ResponseCache(path)) == 80


def _process_writer(path: str, worker: int) -> None:
    cache = ResponseCache(path)
    for i in range(15):
        cache.put(f"{worker}-{i}", Completion(f"t{i}", "m"), provider="openai", model="m")


def test_processes_share_one_file(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    ResponseCache(path)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_writer, args=(path, w)) for w in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(ResponseCache(path)) == 45


def _cache_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_openai_client_replays_from_cache(openai_client, stub_server, tmp_path):
    path = tmp_path / "responses.sqlite"
    stub_server.enqueue("first answer", Fault.server_error(500))
    client = openai_client(cache=path, temperature=0.5)

    miss = client.complete(MESSAGES, schema=SCHEMA)
    hit = client.complete(MESSAGES, schema=SCHEMA)

    assert miss.text == hit.text == "first answer"
    assert not miss.cached and hit.cached
    assert hit.prompt_tokens == miss.prompt_tokens  # the original counts are kept
    assert hit.latency_s < 0.5
    assert len(stub_server.requests) == 1  # the hit never reached the server
    # A new client (a re-run) replays from the same file.
    again = openai_client(cache=ResponseCache(path), temperature=0.5)
    assert again.complete(MESSAGES, schema=SCHEMA).cached
    # Other settings, other entry.
    stub_server.clear()
    openai_client(cache=path, temperature=0.9).complete(MESSAGES, schema=SCHEMA)
    assert len(stub_server.requests) == 1
    assert PLANTED_KEY.encode() not in _cache_bytes(path)
    assert b"not-needed" not in _cache_bytes(path)


def test_failures_are_not_cached(openai_client, stub_server, tmp_path):
    client = openai_client(cache=tmp_path / "c.sqlite")
    stub_server.enqueue(Fault.bad_request("nope"), "answer")
    with pytest.raises(Exception, match="nope"):
        client.complete(MESSAGES)
    assert client.complete(MESSAGES).text == "answer"
    assert client.complete(MESSAGES).cached
    assert len(stub_server.requests) == 2


def test_gemini_client_replays_from_cache(gemini_client, stub_server, tmp_path):
    path = tmp_path / "responses.sqlite"
    client = gemini_client(cache=str(path))
    assert not client.complete(MESSAGES).cached
    assert client.complete(MESSAGES).cached
    assert len(stub_server.requests) == 1
    assert GEMINI_TEST_KEY.encode() not in _cache_bytes(path)
    # Same messages, other provider: no cross-talk.
    assert not openai_client_free_key(stub_server, path).complete(MESSAGES).cached


def openai_client_free_key(stub_server, path):
    from optuna_llm_sampler.providers._openai import OpenAIClient

    return OpenAIClient(model="gemini-2.0-flash", base_url=stub_server.openai_base_url, cache=path)
