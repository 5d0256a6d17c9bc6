"""GeminiClient through the real ``google-genai`` SDK against the local stub server."""

from __future__ import annotations

import json
import logging
import sys
import traceback

import pytest

from optuna_llm_sampler.providers._base import LLMClient
from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import ProviderUnavailableError
from optuna_llm_sampler.providers._gemini import GeminiClient
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.stub_server import Fault
from tests.providers.stub_server import Reply


MESSAGES = [
    Message("system", "You propose points."),
    Message("user", "Next a and b?"),
    Message("assistant", "a: 1, b: 2"),
    Message("user", "Again."),
]
SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "number", "minimum": -7, "maximum": 7}},
    "required": ["a"],
}


def test_answer_usage_and_request_shape(gemini_client, stub_server):
    stub_server.enqueue(Reply("a: 3, b: 4", prompt_tokens=21, completion_tokens=5))
    client = gemini_client(temperature=0.4, max_tokens=80, seed=3, extra_body={"labels": {}})
    assert isinstance(client, LLMClient) and client.supports_schema

    completion = client.complete(MESSAGES)

    assert completion.text == "a: 3, b: 4"
    assert (completion.prompt_tokens, completion.completion_tokens) == (21, 5)
    assert completion.model == "gemini-2.0-flash" and not completion.cached
    (request,) = stub_server.requests
    assert request.api == "gemini" and request.model == "gemini-2.0-flash"
    assert request.path.endswith("/models/gemini-2.0-flash:generateContent")
    body = request.json
    assert body["systemInstruction"]["parts"] == [{"text": "You propose points."}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "a: 1, b: 2"}]
    config = body["generationConfig"]
    assert config["temperature"] == 0.4
    assert config["maxOutputTokens"] == 80
    assert config["seed"] == 3
    assert "responseMimeType" not in config
    assert body["labels"] == {}  # extra_body is merged into the request
    assert request.had_credentials and "x-goog-api-key" not in request.headers


def test_thinking_tokens_count_as_completion_tokens(gemini_client, stub_server):
    payload = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "thinking...", "thought": True}, {"text": "a: 1"}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 30,
        },
    }
    stub_server.enqueue(Fault(200, body=json.dumps(payload)))
    completion = gemini_client().complete(MESSAGES)
    assert completion.text == "a: 1"
    assert (completion.prompt_tokens, completion.completion_tokens) == (10, 34)


def test_schema_in_the_request(gemini_client, stub_server):
    gemini_client().complete(MESSAGES, schema=SCHEMA)
    config = stub_server.requests[-1].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA


def test_json_object_mode_puts_schema_in_prompt(gemini_client, stub_server):
    gemini_client(json_mode="json_object").complete(MESSAGES, schema=SCHEMA)
    body = stub_server.requests[-1].json
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert "responseJsonSchema" not in body["generationConfig"]
    assert '"maximum": 7' in body["contents"][-1]["parts"][0]["text"]


def test_schema_rejection_falls_back(gemini_client, stub_server):
    client = gemini_client()
    stub_server.enqueue(Fault.bad_request("Unknown name 'responseJsonSchema'"), "{}", "{}")
    client.complete(MESSAGES, schema=SCHEMA)
    client.complete(MESSAGES, schema=SCHEMA)
    configs = [r.json.get("generationConfig", {}) for r in stub_server.requests]
    assert "responseJsonSchema" in configs[0]
    assert "responseJsonSchema" not in configs[1] and "responseJsonSchema" not in configs[2]
    assert client.json_mode_in_use == "json_object"


def test_429_retry_after_is_honoured(gemini_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.rate_limited(retry_after=5), "a: 1")
    completion = gemini_client().complete(MESSAGES)
    assert completion.text == "a: 1"
    assert fake_clock.sleeps == [5.0]
    assert completion.latency_s >= 5.0
    assert len(stub_server.requests) == 2


def test_429_retry_info_in_body_is_honoured(gemini_client, stub_server, fake_clock):
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
            ],
        }
    }
    stub_server.enqueue(Fault(429, body=json.dumps(error)), "ok")
    assert gemini_client().complete(MESSAGES).text == "ok"
    assert fake_clock.sleeps == [12.0]


def test_500_then_success(gemini_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.server_error(500), "ok")
    assert gemini_client().complete(MESSAGES).text == "ok"
    assert len(fake_clock.sleeps) == 1


def test_sdk_retries_are_disabled(gemini_client, stub_server):
    stub_server.enqueue(Fault.server_error(503), Fault.server_error(503))
    with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
        gemini_client(max_retries=0).complete(MESSAGES)
    assert len(stub_server.requests) == 1  # the SDK did not retry behind our back


def test_timeout_is_retried_then_unavailable(gemini_client, stub_server):
    stub_server.enqueue(Fault.slow(3.0), Fault.slow(3.0))
    with pytest.raises(ProviderUnavailableError, match=r"timeout after 0\.2 s \(2 attempts"):
        gemini_client(timeout=0.2, max_retries=1).complete(MESSAGES)


def test_401_is_a_config_error_with_the_fix(gemini_client, stub_server, fake_clock):
    stub_server.enqueue(Fault.unauthorized(message="API key not valid. Please pass a valid key."))
    with pytest.raises(ProviderConfigError) as info:
        gemini_client().complete(MESSAGES)
    assert str(info.value).startswith(
        "Gemini rejected the API key for model 'gemini-2.0-flash' (HTTP 401): "
        "check the api_key= argument."
    )
    assert len(stub_server.requests) == 1 and fake_clock.sleeps == []


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GEMINI_API_KEY": "g" * 20}, "GEMINI_API_KEY"),
        ({"GOOGLE_API_KEY": "o" * 20}, "GOOGLE_API_KEY"),
        ({"GEMINI_API_KEY": "g" * 20, "GOOGLE_API_KEY": "o" * 20}, "GEMINI_API_KEY"),
    ],
)
def test_key_from_environment_and_hint(gemini_client, stub_server, monkeypatch, env, variable):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", stub_server.url)  # the key may go there
    stub_server.enqueue(Fault.unauthorized(403))
    with pytest.raises(ProviderConfigError, match=rf"\(HTTP 403\): check {variable}\."):
        gemini_client(api_key=None).complete(MESSAGES)


def test_404_names_the_model(gemini_client, stub_server):
    stub_server.enqueue(Fault.not_found("models/gemini-9 is not found for API version v1beta"))
    with pytest.raises(ProviderConfigError, match="model 'gemini-9' not found \\(HTTP 404\\)"):
        gemini_client(model="gemini-9").complete(MESSAGES)


def test_400_is_a_provider_error(gemini_client, stub_server):
    stub_server.enqueue(Fault.bad_request("Request contains an invalid argument."))
    with pytest.raises(ProviderError) as info:
        gemini_client().complete(MESSAGES)
    assert type(info.value) is ProviderError and "HTTP 400" in str(info.value)


def test_garbage_body_is_a_provider_error(gemini_client, stub_server):
    stub_server.enqueue(Fault.garbage())
    with pytest.raises(ProviderError, match="unreadable response") as info:
        gemini_client().complete(MESSAGES)
    assert type(info.value) is ProviderError
    assert len(stub_server.requests) == 1


def test_empty_answer_is_a_provider_error(gemini_client, stub_server):
    stub_server.enqueue(Reply(None))
    with pytest.raises(ProviderError, match="empty answer"):
        gemini_client().complete(MESSAGES)


def test_blocked_prompt_is_a_provider_error(gemini_client, stub_server):
    stub_server.enqueue(Fault(200, body='{"promptFeedback": {"blockReason": "SAFETY"}}'))
    with pytest.raises(ProviderError, match="blocked the prompt"):
        gemini_client().complete(MESSAGES)


def test_missing_key_names_the_variables():
    with pytest.raises(ProviderConfigError) as info:
        GeminiClient(model="gemini-2.0-flash")
    assert str(info.value) == (
        "No API key for Gemini model 'gemini-2.0-flash': set GEMINI_API_KEY or GOOGLE_API_KEY "
        "or pass api_key=."
    )


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.genai", None)
    with pytest.raises(
        ProviderConfigError,
        match=r'pip install "\.\[gemini\]" \(from the optuna-llm-sampler checkout\)',
    ):
        GeminiClient(model="gemini-2.0-flash", api_key=GEMINI_TEST_KEY)


def test_never_imports_google_generativeai(gemini_client):
    gemini_client()
    assert "google.generativeai" not in sys.modules


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="timeout"):
        GeminiClient(model="gemini-2.0-flash", api_key=GEMINI_TEST_KEY, timeout=-1)
    with pytest.raises(ValueError, match="json_mode"):
        GeminiClient(model="gemini-2.0-flash", api_key=GEMINI_TEST_KEY, json_mode="yaml")


def test_planted_key_never_leaks(gemini_client, stub_server, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("google_genai", "httpx2", "httpcore2", "optuna"):
        caplog.set_level(logging.DEBUG, logger=name)
    echo = f"API key not valid: {GEMINI_TEST_KEY}"
    client = gemini_client(max_retries=1)
    errors = []
    for script in (
        [Fault.unauthorized(400 + 3, echo)],
        [Fault.bad_request(echo)],
        [Fault(500, echo), Fault(500, echo)],
        [Fault.garbage(f"oops {GEMINI_TEST_KEY}")],
    ):
        stub_server.enqueue(*script)
        with pytest.raises(ProviderError) as info:
            client.complete(MESSAGES)
        errors.append(info.value)
    for exc in errors:
        shown = "".join(traceback.format_exception(exc)) + repr(exc)
        assert GEMINI_TEST_KEY not in shown
    assert GEMINI_TEST_KEY not in repr(client)
    assert caplog.records
    assert all(GEMINI_TEST_KEY not in r.getMessage() for r in caplog.records)
