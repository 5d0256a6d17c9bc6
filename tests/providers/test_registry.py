"""Model strings → providers, and create_client building the cloud clients."""

from __future__ import annotations

import pytest

from optuna_llm_sampler.providers._base import Message
from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._gemini import GeminiClient
from optuna_llm_sampler.providers._openai import OpenAIClient
from optuna_llm_sampler.providers._registry import create_client
from optuna_llm_sampler.providers._registry import parse_model_string
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.conftest import PLANTED_KEY


@pytest.mark.parametrize(
    ("model", "base_url", "expected"),
    [
        ("gpt-4o", None, ("openai", "gpt-4o")),
        ("gpt-4o-mini", None, ("openai", "gpt-4o-mini")),
        ("o3-mini", None, ("openai", "o3-mini")),
        ("o1", None, ("openai", "o1")),
        ("openai:x", None, ("openai", "x")),
        ("OpenAI:x", None, ("openai", "x")),
        ("gemini-2.0-flash", None, ("gemini", "gemini-2.0-flash")),
        ("gemini:x", None, ("gemini", "x")),
        ("google:x", None, ("gemini", "x")),
        ("local", None, ("local", None)),
        ("local:", None, ("local", None)),
        ("local:/p.gguf", None, ("local", "/p.gguf")),
        ("x.gguf", None, ("local", "x.gguf")),
        ("  gpt-4o  ", None, ("openai", "gpt-4o")),
        ("qwen2.5:7b", "http://127.0.0.1:11434/v1", ("openai", "qwen2.5:7b")),
        ("my-model", "http://127.0.0.1:8080/v1", ("openai", "my-model")),
    ],
)
def test_parse_model_string(model, base_url, expected):
    assert parse_model_string(model, base_url=base_url) == expected


@pytest.mark.parametrize("model", ["my-model", "qwen2.5:7b", "", "   ", "openai:"])
def test_unroutable_model_strings_raise_value_error(model):
    with pytest.raises(ValueError, match="model"):
        parse_model_string(model)


def test_create_openai_client_through_the_stub(stub_server):
    client = create_client(
        "openai:stub-model",
        base_url=stub_server.openai_base_url,
        api_key=PLANTED_KEY,
        temperature=0.1,
    )
    assert isinstance(client, OpenAIClient) and client.model == "stub-model"
    assert client.complete([Message("user", "hi")]).text
    assert stub_server.requests[-1].json["temperature"] == 0.1


def test_create_client_for_unknown_name_on_a_local_server(stub_server):
    client = create_client("qwen2.5:7b", base_url=stub_server.openai_base_url)
    assert isinstance(client, OpenAIClient) and client.model == "qwen2.5:7b"
    client.complete([Message("user", "hi")])
    assert stub_server.requests[-1].json["model"] == "qwen2.5:7b"


def test_create_gemini_client(stub_server):
    client = create_client("google:gemini-2.0-flash", base_url=stub_server.url, api_key="k" * 12)
    assert isinstance(client, GeminiClient) and client.model == "gemini-2.0-flash"
    assert client.complete([Message("user", "hi")]).text
    assert stub_server.requests[-1].api == "gemini"


def test_missing_key_fails_at_construction(monkeypatch):
    with pytest.raises(ProviderConfigError, match="set OPENAI_API_KEY"):
        create_client("gpt-4o")
    with pytest.raises(ProviderConfigError, match="set GEMINI_API_KEY or GOOGLE_API_KEY"):
        create_client("gemini-2.0-flash")
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_TEST_KEY)
    assert isinstance(create_client("gemini-2.0-flash"), GeminiClient)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        create_client("gpt-4o", api_key=PLANTED_KEY, temprature=0.2)
