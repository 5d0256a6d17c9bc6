"""The shared retry loop, Retry-After parsing, status mapping, and key redaction."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given
from hypothesis import strategies as st
import pytest

from optuna_llm_sampler.providers._base import ProviderConfigError
from optuna_llm_sampler.providers._base import ProviderError
from optuna_llm_sampler.providers._base import ProviderUnavailableError
from optuna_llm_sampler.providers._keys import key_hint
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._keys import resolve_api_key
from optuna_llm_sampler.providers._retry import backoff_delay
from optuna_llm_sampler.providers._retry import call_with_retry
from optuna_llm_sampler.providers._retry import CircuitBreaker
from optuna_llm_sampler.providers._retry import parse_retry_after
from optuna_llm_sampler.providers._retry import rejects_structured_output
from optuna_llm_sampler.providers._retry import retry_after_from_headers
from optuna_llm_sampler.providers._retry import RetryPolicy
from optuna_llm_sampler.providers._retry import status_error
from optuna_llm_sampler.providers._retry import TransientError
from tests.providers.conftest import FakeClock


# -- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("2.5", 2.5),
        (" 10 ", 10.0),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:05 GMT", 5.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=1445412480.0) == expected


def test_retry_after_from_headers_prefers_milliseconds():
    assert retry_after_from_headers({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_from_headers({"retry-after": "9"}) == 9.0
    assert retry_after_from_headers({}) is None
    assert retry_after_from_headers(None) is None


# -- backoff -------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_capped_ceiling():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    for retry, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0), (500, 8.0)]:
        draws = [backoff_delay(retry, policy, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # jitter spans the range
        assert min(draws) < ceiling * 0.2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"max_retries": True},
        {"max_retry_time": -1.0},
        {"base_delay": float("nan")},
        {"max_delay": float("inf")},
    ],
)
def test_retry_policy_validates(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)


# -- the loop ------------------------------------------------------------------------------------


class Flaky:
    """Fails with the given exceptions, then returns "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def _run(attempt, clock, **policy):
    return call_with_retry(
        attempt,
        policy=RetryPolicy(**policy),
        what="Test model 'm'",
        sleep=clock.sleep,
        clock=clock,
    )


def test_success_needs_no_sleep():
    clock = FakeClock()
    assert _run(Flaky(), clock) == "ok"
    assert clock.sleeps == []


def test_transient_faults_are_retried_with_retry_after():
    clock = FakeClock()
    attempt = Flaky(TransientError("HTTP 429", retry_after=3.0), TransientError("HTTP 503"))
    assert _run(attempt, clock, base_delay=0.5) == "ok"
    assert attempt.calls == 3
    assert clock.sleeps[0] == 3.0 and 0.0 <= clock.sleeps[1] <= 1.0


def test_exhausted_retries_raise_unavailable_with_reason():
    clock = FakeClock()
    attempt = Flaky(*[TransientError("timeout after 5.0 s")] * 5)
    with pytest.raises(ProviderUnavailableError) as info:
        _run(attempt, clock, max_retries=2)
    assert str(info.value).startswith(
        "Test model 'm' unavailable: timeout after 5.0 s (3 attempts in "
    )
    assert attempt.calls == 3 and len(clock.sleeps) == 2
    assert info.value.__suppress_context__


def test_zero_retries_means_one_attempt():
    clock = FakeClock()
    attempt = Flaky(TransientError("HTTP 500"))
    with pytest.raises(ProviderUnavailableError, match=r"\(1 attempt in"):
        _run(attempt, clock, max_retries=0)
    assert attempt.calls == 1


def test_max_retry_time_counts_attempt_time_too():
    clock = FakeClock()

    def slow_failure() -> str:
        clock.now += 4.0  # each attempt takes 4 s (a timeout)
        raise TransientError("timeout after 4.0 s", retry_after=1.0)

    with pytest.raises(ProviderUnavailableError, match="max_retry_time=9.5 s"):
        _run(slow_failure, clock, max_retries=10, max_retry_time=9.5)
    assert clock.sleeps == [1.0]  # 4 s + 1 s wait + 4 s = 9 s; one more wait passes 9.5 s


def test_retry_after_is_capped():
    clock = FakeClock()
    assert _run(Flaky(TransientError("HTTP 429", retry_after=900.0)), clock) == "ok"
    assert clock.sleeps == [60.0]


def test_permanent_errors_propagate_at_once():
    clock = FakeClock()
    attempt = Flaky(ProviderConfigError("bad key"))
    with pytest.raises(ProviderConfigError, match="bad key"):
        _run(attempt, clock)
    assert attempt.calls == 1 and clock.sleeps == []


# -- status mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ProviderError),
        (422, ProviderError),
        (401, ProviderConfigError),
        (403, ProviderConfigError),
        (404, ProviderConfigError),
        (408, TransientError),
        (409, TransientError),
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (529, TransientError),
    ],
)
def test_status_mapping(status, expected):
    error = status_error(
        status, provider="OpenAI", model="gpt-4o", message="boom", key_hint="check OPENAI_API_KEY"
    )
    assert type(error) is expected


def test_status_messages_say_how_to_fix():
    auth = status_error(401, provider="OpenAI", model="gpt-4o", message="", key_hint="check X")
    assert str(auth) == "OpenAI rejected the API key for model 'gpt-4o' (HTTP 401): check X."
    missing = status_error(404, provider="OpenAI", model="gpt-5x", message="", key_hint="")
    assert str(missing) == "OpenAI model 'gpt-5x' not found (HTTP 404): check the model name."
    local = status_error(
        404, provider="OpenAI", model="m", message="", key_hint="", base_url="http://h:1/v1"
    )
    assert "check the model name and base_url='http://h:1/v1'" in str(local)
    limited = status_error(
        429, provider="OpenAI", model="m", message="", key_hint="", retry_after=2
    )
    assert isinstance(limited, TransientError)
    assert limited.reason == "HTTP 429 (rate limited)" and limited.retry_after == 2


def test_rejects_structured_output():
    assert rejects_structured_output(400, "response_format json_schema is not supported")
    assert rejects_structured_output(400, "Unknown name 'responseJsonSchema'")
    assert not rejects_structured_output(400, "context length exceeded")
    assert rejects_structured_output(422, '{"detail": [{"loc": ["body", "response_format"]}]}')
    # HTTP 500 only when it names response_format (llama-cpp-python's server, old llama-server)
    assert rejects_structured_output(500, "loc: ('body', 'response_format', 'type')")
    assert rejects_structured_output(500, 'response_format type must be one of "text"')
    assert not rejects_structured_output(500, "json_schema backend crashed")
    assert not rejects_structured_output(503, "response_format")  # overloaded: transient
    assert not rejects_structured_output(500, "The server had an error")


@given(status=st.integers(100, 599), message=st.text(max_size=300))
def test_a_server_message_decides_a_rejection_but_never_crashes(status, message) -> None:
    # A server's text is hostile input: any of it is read without error, and only a 400, 422,
    # 500 or 501 can be a rejection of the request's shape (an overloaded 502-504 is transient).
    rejected = rejects_structured_output(status, message)
    assert isinstance(rejected, bool)
    if status not in (400, 422, 500, 501):
        assert not rejected
    if status == 500:
        assert rejected == ("response_format" in message.lower())


# -- keys ----------------------------------------------------------------------------------------


def test_redact_removes_the_key_and_key_shaped_tokens():
    key = "sk-test-PLANTED-abcdefghijklmnop"
    text = f"bad key {key}; other sk-proj-ZZZZZZZZZZZZZZZZZZ; Authorization: Bearer tok.en-1"
    redacted = redact(text, key)
    assert key not in redacted and "sk-proj-ZZZZ" not in redacted and "tok.en-1" not in redacted
    assert redacted.startswith("bad key [REDACTED]")
    google = "AIzaSyA-1234567890abcdefghijklmnopqrstu"
    assert google not in redact(f"key={google}")
    assert redact("short key ab", "ab") == "short key ab"  # too short to be a secret
    assert redact(ValueError("x"), None) == "x"


def test_resolve_api_key_order(monkeypatch):
    env = ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert resolve_api_key(None, env_vars=env, provider="Gemini", model="g") == "google-key"
    assert key_hint(None, env) == "check GOOGLE_API_KEY"
    monkeypatch.setenv("GEMINI_API_KEY", " gemini-key ")
    assert resolve_api_key(None, env_vars=env, provider="Gemini", model="g") == "gemini-key"
    assert resolve_api_key("arg-key", env_vars=env, provider="Gemini", model="g") == "arg-key"
    assert key_hint("arg-key", env) == "check the api_key= argument"
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY")
    assert resolve_api_key("  ", env_vars=env, provider="G", model="g", required=False) is None
    with pytest.raises(ProviderConfigError, match="set GEMINI_API_KEY or GOOGLE_API_KEY"):
        resolve_api_key("", env_vars=env, provider="Gemini", model="g")
    with pytest.raises(ValueError, match="api_key"):
        resolve_api_key(123, env_vars=env, provider="Gemini", model="g")  # type: ignore[arg-type]


# -- the cool-down -------------------------------------------------------------------------------


def _breaker_run(attempt, clock, breaker, **policy):
    return call_with_retry(
        attempt,
        policy=RetryPolicy(**policy),
        what="Test model 'm'",
        sleep=clock.sleep,
        clock=clock,
        breaker=breaker,
    )


def test_breaker_opens_after_n_unavailable_calls_and_fails_at_once():
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown_after=3, cooldown_time=50.0, clock=clock)
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
            _breaker_run(Flaky(TransientError("HTTP 500")), clock, breaker, max_retries=0)
    attempt = Flaky()
    clock.now += 20.0
    with pytest.raises(ProviderUnavailableError) as info:
        _breaker_run(attempt, clock, breaker)
    assert attempt.calls == 0  # nothing was sent
    assert str(info.value) == (
        "Test model 'm' unavailable: cooling down for 30 s after 3 failed calls in a row: "
        "HTTP 500 (1 attempt in 0.0 s) (no request sent; cooldown_after=0 disables the "
        "cool-down)."
    )
    clock.now += 30.0
    assert _breaker_run(attempt, clock, breaker) == "ok" and attempt.calls == 1
    assert breaker.failures == 0


def test_breaker_counts_only_calls_in_a_row_and_any_answer_resets_it():
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown_after=2, cooldown_time=50.0, clock=clock)
    down = TransientError("HTTP 503")
    for outcome in [down, None, down, ProviderError("HTTP 400"), down]:
        attempt = Flaky(outcome) if outcome is not None else Flaky()
        with contextlib.suppress(ProviderError):
            _breaker_run(attempt, clock, breaker, max_retries=0)
        assert attempt.calls == 1  # never two failures in a row: never cooling down
    assert breaker.failures == 1


def test_breaker_counts_retry_time_exhaustion_too():
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown_after=1, cooldown_time=5.0, clock=clock)
    with pytest.raises(ProviderUnavailableError, match="max_retry_time"):
        _breaker_run(
            Flaky(TransientError("HTTP 429", retry_after=30.0)), clock, breaker, max_retry_time=10
        )
    with pytest.raises(ProviderUnavailableError, match="cooling down for 5 s"):
        _breaker_run(Flaky(), clock, breaker)


def test_breaker_zero_never_cools_down():
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown_after=0, clock=clock)
    for _ in range(10):
        attempt = Flaky(TransientError("HTTP 500"))
        with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
            _breaker_run(attempt, clock, breaker, max_retries=0)
        assert attempt.calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cooldown_after": -1},
        {"cooldown_after": 2.0},
        {"cooldown_after": True},
        {"cooldown_time": -1.0},
        {"cooldown_time": float("inf")},
        {"cooldown_time": "60"},
    ],
)
def test_breaker_validates(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CircuitBreaker(**kwargs)
