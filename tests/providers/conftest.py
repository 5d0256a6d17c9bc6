"""Fixtures for provider tests: a started stub server, a fake clock, and a clean environment."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from tests.providers.stub_server import StubLLMServer


PLANTED_KEY = "sk-test-PLANTED-0123456789abcdef"
GEMINI_TEST_KEY = "AIza-test-PLANTED-0123456789abcdef"


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called: tests never wait.

    Attributes:
        sleeps: Every duration passed to :meth:`sleep`, in order.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real keys, endpoints or proxies leak into provider tests."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_ADMIN_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_GENAI_API_VERSION",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def stub_server() -> Iterator[StubLLMServer]:
    """A started :class:`StubLLMServer`, stopped after the test."""
    with StubLLMServer() as server:
        yield server


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def openai_client(stub_server: StubLLMServer, fake_clock: FakeClock) -> Callable[..., Any]:
    """A factory of OpenAIClient bound to the stub, with the fake clock and short timeouts."""
    from optuna_llm_sampler.providers._openai import OpenAIClient

    def make(**options: Any) -> OpenAIClient:
        settings: dict[str, Any] = {
            "model": "stub-model",
            "api_key": PLANTED_KEY,
            "base_url": stub_server.openai_base_url,
            "timeout": 2.0,
            "sleep": fake_clock.sleep,
            "clock": fake_clock,
        }
        settings.update(options)
        return OpenAIClient(**settings)

    return make


@pytest.fixture
def gemini_client(stub_server: StubLLMServer, fake_clock: FakeClock) -> Callable[..., Any]:
    """A factory of GeminiClient bound to the stub, with the fake clock and short timeouts."""
    from optuna_llm_sampler.providers._gemini import GeminiClient

    def make(**options: Any) -> GeminiClient:
        settings: dict[str, Any] = {
            "model": "gemini-2.0-flash",
            "api_key": GEMINI_TEST_KEY,
            "base_url": stub_server.url,
            "timeout": 2.0,
            "sleep": fake_clock.sleep,
            "clock": fake_clock,
        }
        settings.update(options)
        return GeminiClient(**settings)

    return make
