"""OpenAIClient through the real ``openai`` SDK against the local stub server."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import traceback

import pytest

from optuna_llm_sampler.providers._base import LLMClient
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import ProviderUnavailableError
from optuna_llm_sampler.providers._openai import OpenAIClient
from tests.providers.conftest import PLANTED_KEY
from tests.providers.stub_server import Fault
from tests.providers.stub_server import Reply


MESSAGES = [Message("system", "You propose points."), Message("user", "Next a and b?")]
SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number", "minimum": -7, "maximum": 7}},
    "required": ["a"],
}


def _error_type(exc: BaseException) -> type[BaseException]:
    return type(exc)


# -- normal answers and request shapes ----------------------------------------------------------


def test_answer_usage_and_recorded_request(openai_client, stub_server):
    stub_server.enqueue(Reply("a: 1.0, b: 2.0", prompt_tokens=11, completion_tokens=7))
    client = openai_client()
    assert isinstance(client, LLMClient)
    assert client.model == "stub-model" and client.supports_schema

    completion = client.complete(MESSAGES)

    assert completion.text == "a: 1.0, b: 2.0"
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 7)
    assert completion.model == "stub-model"
    assert not completion.cached and completion.latency_s >= 0
    (request,) = stub_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "stub-model"
    assert request.json["messages"] == [
        {"role": "system", "content": "You propose points."},
        {"role": "user", "content": "Next a and b?"},
    ]
    assert "response_format" not in request.json
    assert request.had_credentials and "authorization" not in request.headers


def test_chat_model_sampling_settings(openai_client, stub_server):
    client = openai_client(temperature=0.3, max_tokens=64, seed=7, extra_body={"top_k": 20})
    client.complete(MESSAGES)
    body = stub_server.requests[-1].json
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 64
    assert body["seed"] == 7
    assert body["top_k"] == 20
    assert "max_completion_tokens" not in body


def test_reasoning_model_request_shape(openai_client, stub_server, caplog):
    with caplog.at_level(logging.WARNING):
        client = openai_client(model="o3-mini", temperature=0.5, max_tokens=100)
    assert "accepts no temperature" in caplog.text
    client.complete([*MESSAGES, Message("assistant", "a: 0"), Message("user", "again")])
    body = stub_server.requests[-1].json
    assert [m["role"] for m in body["messages"]] == ["developer", "user", "assistant", "user"]
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body and "temperature" not in body


@pytest.mark.parametrize("model", ["o1-mini", "o1-preview-2024-09-12"])
def test_o1_mini_and_preview_fold_system_into_user(openai_client, stub_server, model):
    openai_client(model=model).complete(MESSAGES)
    messages = stub_server.requests[-1].json["messages"]
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"] == "You propose points.\n\nNext a and b?"


def test_reasoning_flag_overrides_name(openai_client, stub_server):
    openai_client(model="my-reasoner", reasoning=True, reasoning_effort="low").complete(MESSAGES)
    body = stub_server.requests[-1].json
    assert body["messages"][0]["role"] == "developer"
    assert body["reasoning_effort"] == "low"
    openai_client(model="o3-mini", reasoning=False, temperature=0.2).complete(MESSAGES)
    body = stub_server.requests[-1].json
    assert body["messages"][0]["role"] == "system" and body["temperature"] == 0.2


def test_json_schema_request_body(openai_client, stub_server):
    openai_client().complete(MESSAGES, schema=SCHEMA)
    body = stub_server.requests[-1].json
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "proposal", "schema": SCHEMA, "strict": False},
    }
    assert body["messages"][-1]["content"] == "Next a and b?"  # the schema is not in the prompt
    openai_client(strict_schema=True).complete(MESSAGES, schema=SCHEMA)
    assert stub_server.requests[-1].json["response_format"]["json_schema"]["strict"] is True


def test_server_rejecting_every_shape_falls_back_in_order_and_remembers(
    openai_client, stub_server, fake_clock, caplog
):
    client = openai_client()
    stub_server.enqueue(
        Fault.schema_rejected(),
        Fault.bad_request("'response_format.schema' is not supported"),
        Fault.bad_request("'response_format.type' must be 'text'; json_object is not supported"),
        '{"a": 1}',
    )
    with caplog.at_level(logging.WARNING):
        completion = client.complete(MESSAGES, schema=SCHEMA)

    assert completion.text == '{"a": 1}'
    bodies = [r.json for r in stub_server.requests]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[1]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert bodies[2]["response_format"] == {"type": "json_object"}
    assert "response_format" not in bodies[3]
    assert '"maximum": 7' in bodies[3]["messages"][-1]["content"]  # schema moved into the prompt
    assert client.json_mode_in_use == "off"
    assert fake_clock.sleeps == []  # a rejection is not a transient fault
    assert caplog.text.count("rejected response_format") == 3

    client.complete(MESSAGES, schema=SCHEMA)  # remembered: straight to plain text
    assert len(stub_server.requests) == 5
    assert "response_format" not in stub_server.requests[-1].json


def test_json_object_with_schema_fallback_is_remembered(openai_client, stub_server):
    client = openai_client()
    stub_server.enqueue(Fault.schema_rejected(), "{}", "{}")
    client.complete(MESSAGES, schema=SCHEMA)
    client.complete(MESSAGES, schema=SCHEMA)
    formats = [r.json.get("response_format") for r in stub_server.requests]
    assert formats[0]["type"] == "json_schema"
    assert formats[1:] == [{"type": "json_object", "schema": SCHEMA}] * 2
    assert "JSON schema" in stub_server.requests[-1].json["messages"][-1]["content"]
    assert client.json_mode_in_use == "json_object_schema"


# What each real server family answers a shape it does not take (tests/providers/stub_server.py
# SERVER_FAMILIES), and the shape the client settles on: the first one the server takes.
@pytest.mark.parametrize(
    ("family", "status", "settled"),
    [
        ("llama-cpp-python", 500, "json_object_schema"),
        ("llama-server-2024", 500, "json_object_schema"),
        ("no-structured-output", 422, "off"),
    ],
)
def test_each_server_family_settles_on_the_shape_it_takes(
    family, status, settled, stub_server, fake_clock, caplog
):
    from tests.providers.stub_server import SERVER_FAMILIES
    from tests.providers.stub_server import StubLLMServer

    with StubLLMServer(rejects=SERVER_FAMILIES[family]) as server:
        client = OpenAIClient(
            model="m",
            base_url=server.openai_base_url,
            timeout=2.0,
            sleep=fake_clock.sleep,
            clock=fake_clock,
        )
        with caplog.at_level(logging.WARNING):
            first = client.complete(MESSAGES, schema=SCHEMA)
            second = client.complete(MESSAGES, schema=SCHEMA)
        requests = server.requests

    assert first.text and second.text
    assert client.json_mode_in_use == settled
    assert f"HTTP {status}" in caplog.text
    assert fake_clock.sleeps == []  # never retried as a transient fault
    rejected = len(requests) - 2
    assert rejected == {"json_object_schema": 1, "off": 3}[settled]  # detected once, then kept
    assert requests[-1].json.get("response_format") == requests[-2].json.get("response_format")


def test_lm_studio_takes_json_schema_at_once(fake_clock):
    from tests.providers.stub_server import SERVER_FAMILIES
    from tests.providers.stub_server import StubLLMServer

    with StubLLMServer(rejects=SERVER_FAMILIES["lm-studio"]) as server:
        client = OpenAIClient(model="m", base_url=server.openai_base_url, clock=fake_clock)
        client.complete(MESSAGES, schema=SCHEMA)
        (request,) = server.requests
    assert request.json["response_format"]["type"] == "json_schema"
    assert client.json_mode_in_use == "json_schema"


def test_lm_studio_rejects_json_object_by_a_bare_string_error(fake_clock):
    from tests.providers.stub_server import SERVER_FAMILIES
    from tests.providers.stub_server import StubLLMServer

    with StubLLMServer(rejects=SERVER_FAMILIES["lm-studio"]) as server:
        client = OpenAIClient(
            model="m", base_url=server.openai_base_url, json_mode="json_object", clock=fake_clock
        )
        with pytest.raises(ProviderError) as info:
            client.complete(MESSAGES, schema=SCHEMA)
    assert type(info.value) is ProviderError
    assert "must be 'json_schema' or 'text'" in str(info.value)
    assert "json_mode='auto'" in str(info.value)


def test_explicit_json_schema_mode_rejected_with_500_is_not_retried(fake_clock):
    from tests.providers.stub_server import SERVER_FAMILIES
    from tests.providers.stub_server import StubLLMServer

    with StubLLMServer(rejects=SERVER_FAMILIES["llama-cpp-python"]) as server:
        client = OpenAIClient(
            model="m",
            base_url=server.openai_base_url,
            json_mode="json_schema",
            sleep=fake_clock.sleep,
            clock=fake_clock,
        )
        with pytest.raises(ProviderError) as info:
            client.complete(MESSAGES, schema=SCHEMA)
        assert len(server.requests) == 1
    assert not isinstance(info.value, ProviderUnavailableError)
    assert "HTTP 500" in str(info.value) and "Input should be 'text' or 'json_object'" in str(
        info.value
    )
    assert fake_clock.sleeps == []


def test_a_500_not_naming_response_format_is_still_transient(openai_client, stub_server):
    stub_server.enqueue(Fault.server_error(500), '{"a": 1}')
    client = openai_client()
    assert client.complete(MESSAGES, schema=SCHEMA).text == '{"a": 1}'
    assert client.json_mode_in_use == "json_schema"
    assert len(stub_server.requests) == 2


def test_explicit_json_schema_mode_does_not_fall_back(openai_client, stub_server):
    stub_server.enqueue(Fault.schema_rejected())
    with pytest.raises(ProviderError) as info:
        openai_client(json_mode="json_schema").complete(MESSAGES, schema=SCHEMA)
    assert type(info.value) is ProviderError
    assert "HTTP 400" in str(info.value)
    assert len(stub_server.requests) == 1


def test_json_mode_off_asks_for_text(openai_client, stub_server):
    client = openai_client(json_mode="off")
    assert not client.supports_schema
    client.complete(MESSAGES)
    client.complete(MESSAGES, schema=SCHEMA)
    assert all("response_format" not in r.json for r in stub_server.requests)
    assert stub_server.requests[0].json["messages"][-1]["content"] == "Next a and b?"


# -- transient faults ----------------------------------------------------------------------------


def test_429_retry_after_is_honoured(openai_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.rate_limited(retry_after=7), "a: 1")
    completion = openai_client().complete(MESSAGES)
    assert completion.text == "a: 1"
    assert fake_clock.sleeps == [7.0]
    assert completion.latency_s >= 7.0  # latency covers the retries
    assert len(stub_server.requests) == 2


def test_429_retry_after_http_date(openai_client, stub_server, fake_clock):
    from email.utils import formatdate
    import time

    stub_server.enqueue(Fault.rate_limited(retry_after=formatdate(time.time() + 30, usegmt=True)))
    openai_client().complete(MESSAGES)
    (slept,) = fake_clock.sleeps
    assert 27 <= slept <= 31


def test_retry_after_is_capped(openai_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.rate_limited(retry_after=3600))
    openai_client().complete(MESSAGES)
    assert fake_clock.sleeps == [60.0]


def test_500_then_success(openai_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.server_error(500), "a: 2")
    assert openai_client().complete(MESSAGES).text == "a: 2"
    (slept,) = fake_clock.sleeps
    assert 0.0 <= slept <= 1.0  # full jitter under the first backoff ceiling


def test_5xx_exhausts_retries(openai_client, stub_server, fake_clock):
    stub_server.enqueue(*[Fault.server_error(503)] * 3)
    with pytest.raises(ProviderUnavailableError) as info:
        openai_client(max_retries=2).complete(MESSAGES)
    message = str(info.value)
    assert "HTTP 503" in message and "3 attempts" in message
    assert len(stub_server.requests) == 3 and len(fake_clock.sleeps) == 2


def test_max_retry_time_bounds_the_call(openai_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.rate_limited(4), Fault.rate_limited(4), "late")
    with pytest.raises(ProviderUnavailableError, match="max_retry_time=5 s"):
        openai_client(max_retry_time=5.0).complete(MESSAGES)
    assert fake_clock.sleeps == [4.0]
    assert len(stub_server.requests) == 2


def test_slow_answer_times_out_is_retried_then_unavailable(openai_client, stub_server):
    stub_server.enqueue(Fault.slow(3.0), Fault.slow(3.0))
    with pytest.raises(ProviderUnavailableError) as info:
        openai_client(timeout=0.2, max_retries=1).complete(MESSAGES)
    assert "timeout after 0.2 s" in str(info.value)
    assert "2 attempts" in str(info.value)
    assert len(stub_server.requests) == 2


def test_timeout_then_success(openai_client, stub_server):
    stub_server.enqueue(Fault.slow(3.0), "quick")
    assert openai_client(timeout=0.2).complete(MESSAGES).text == "quick"


def test_connection_refused_is_transient(openai_client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = openai_client(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ProviderUnavailableError, match="connection error"):
        client.complete(MESSAGES)


def test_5xx_with_garbage_body_is_retried(openai_client, stub_server):
    stub_server.enqueue(Fault.garbage(b"<html>bad gateway</html>", status=502), "ok")
    assert openai_client().complete(MESSAGES).text == "ok"


# -- permanent faults ----------------------------------------------------------------------------


def test_401_is_a_config_error_with_the_fix_and_not_retried(
    openai_client, stub_server, fake_clock
):
    stub_server.enqueue(Fault.unauthorized())
    with pytest.raises(ProviderConfigError) as info:
        openai_client().complete(MESSAGES)
    assert str(info.value).startswith(
        "OpenAI rejected the API key for model 'stub-model' (HTTP 401): "
        "check the api_key= argument."
    )
    assert len(stub_server.requests) == 1 and fake_clock.sleeps == []


def test_401_names_the_env_variable(openai_client, stub_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", stub_server.openai_base_url)  # the key may go there
    stub_server.enqueue(Fault.unauthorized(403))
    with pytest.raises(ProviderConfigError, match=r"\(HTTP 403\): check OPENAI_API_KEY"):
        openai_client(api_key=None).complete(MESSAGES)


def test_404_names_the_model(openai_client, stub_server):
    stub_server.enqueue(Fault.not_found())
    with pytest.raises(ProviderConfigError) as info:
        openai_client(model="gpt-5x").complete(MESSAGES)
    assert "model 'gpt-5x' not found (HTTP 404): check the model name" in str(info.value)
    assert len(stub_server.requests) == 1


def test_400_is_a_provider_error_not_retried(openai_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.bad_request("maximum context length exceeded"))
    with pytest.raises(ProviderError) as info:
        openai_client().complete(MESSAGES)
    assert _error_type(info.value) is ProviderError
    assert "HTTP 400" in str(info.value) and "maximum context length" in str(info.value)
    assert fake_clock.sleeps == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"<html>\x00 not json", "unreadable response"), (b'{"foo": 1}', "no choices")],
)
def test_garbage_body_is_a_provider_error(openai_client, stub_server, body, expected):
    stub_server.enqueue(Fault.garbage(body))
    with pytest.raises(ProviderError, match=expected) as info:
        openai_client().complete(MESSAGES)
    assert not isinstance(info.value, (ProviderConfigError, ProviderUnavailableError))
    assert len(stub_server.requests) == 1


def test_empty_answer_is_a_provider_error(openai_client, stub_server):
    stub_server.enqueue(Reply(None, finish_reason="length"))
    with pytest.raises(ProviderError, match=r"empty answer \(finish_reason=length\)"):
        openai_client().complete(MESSAGES)


# -- keys, SDK, arguments -------------------------------------------------------------------------


def test_missing_key_names_the_variable():
    with pytest.raises(ProviderConfigError) as info:
        OpenAIClient(model="gpt-4o")
    assert str(info.value) == (
        "No API key for OpenAI model 'gpt-4o': set OPENAI_API_KEY or pass api_key=."
    )


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    assert OpenAIClient(model="gpt-4o").model == "gpt-4o"


def test_local_server_needs_no_key(stub_server):
    client = OpenAIClient(model="qwen2.5:7b", base_url=stub_server.openai_base_url)
    assert client.complete(MESSAGES).text
    assert stub_server.requests[-1].had_credentials  # a placeholder bearer is sent


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(
        ProviderConfigError,
        match=r'pip install "\.\[openai\]" \(from the optuna-llm-sampler checkout\)',
    ):
        OpenAIClient(model="gpt-4o", api_key=PLANTED_KEY)


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ({"timeout": 0}, "timeout"),
        ({"json_mode": "xml"}, "json_mode"),
        ({"temperature": -1.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retry_time": -1.0}, "max_retry_time"),
        ({"seed": 1.5}, "seed"),
        ({"cache": 42}, "cache"),
        ({"extra_body": [1]}, "extra_body"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(option, name):
    settings = {"model": "gpt-4o", "api_key": PLANTED_KEY, **option}
    with pytest.raises(ValueError, match=name):
        OpenAIClient(**settings)


def test_bad_messages_raise_value_error(openai_client):
    client = openai_client()
    with pytest.raises(ValueError, match="messages"):
        client.complete([])
    with pytest.raises(ValueError, match="messages"):
        client.complete([{"role": "user", "content": "hi"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="schema"):
        client.complete(MESSAGES, schema="{}")  # type: ignore[arg-type]


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        OpenAIClient("gpt-4o")  # type: ignore[misc]


# -- secrets --------------------------------------------------------------------------------------


def test_planted_key_never_leaks(openai_client, stub_server, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx2", "httpcore2", "optuna"):
        caplog.set_level(logging.DEBUG, logger=name)
    echo = f"Incorrect API key provided: {PLANTED_KEY}. Bearer {PLANTED_KEY}"
    client = openai_client(max_retries=1)
    scripts = [
        [Fault.unauthorized(message=echo)],
        [Fault.bad_request(echo)],
        [Fault(503, echo), Fault(503, echo)],
        [Fault.garbage(f"<html>{PLANTED_KEY}</html>")],
        [Fault.not_found(echo)],
    ]
    errors = []
    for script in scripts:
        stub_server.enqueue(*script)
        with pytest.raises(ProviderError) as info:
            client.complete(MESSAGES)
        errors.append(info.value)

    for exc in errors:
        shown = "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)
        assert PLANTED_KEY not in shown
        assert exc.__cause__ is None and exc.__suppress_context__
    assert "[REDACTED]" in str(errors[0])
    assert PLANTED_KEY not in repr(client) and PLANTED_KEY not in str(client)
    assert caplog.records  # the loggers did run
    for record in caplog.records:
        assert PLANTED_KEY not in record.getMessage()
    assert all(PLANTED_KEY not in str(r.headers) for r in stub_server.requests)


def test_concurrent_calls(openai_client, stub_server):
    client = openai_client()
    results: list[str] = []

    def call() -> None:
        results.append(client.complete(MESSAGES).text)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(stub_server.requests) == 4


# -- the stub server itself (other modules' tests rely on it) ------------------------------------


def test_stub_server_routes_scripts_and_stops_promptly():
    import json
    import time
    import urllib.error
    import urllib.request

    from tests.providers.stub_server import StubLLMServer

    server = StubLLMServer(responder=lambda body: Fault.server_error(502)).start()
    try:
        with urllib.request.urlopen(server.openai_base_url + "/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "stub-model"
        request = urllib.request.Request(server.url + "/nowhere", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 404
        client = OpenAIClient(
            model="stub-model", base_url=server.openai_base_url, max_retries=0, timeout=5.0
        )
        with pytest.raises(ProviderUnavailableError, match="HTTP 502"):
            client.complete(MESSAGES)  # the responder's fault
        assert [r.api for r in server.requests] == ["other", "openai"]
        assert server.requests_for("openai")[0].model == "stub-model"
        server.enqueue(Fault.slow(30.0))
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                client.complete(MESSAGES)
            except ProviderError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while server.pending:
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        server.stop()
        server.stop()  # idempotent
    assert time.monotonic() - started < 3.0  # the slow answer did not hold the stop
    caller.join(timeout=5)
    assert not caller.is_alive()
    assert isinstance(outcome[0], ProviderUnavailableError)  # dropped, not answered
