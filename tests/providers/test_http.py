"""What both cloud clients share (``providers/_http.py``), through the real ``openai`` and
``google-genai`` SDKs against the local stub: a total deadline on every call, the cool-down of a
provider that keeps failing, ``base_url`` checks, and where a key from the environment may go."""

from __future__ import annotations

from collections.abc import Callable
import socket
import time
from typing import Any

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import optuna
import pytest

from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.providers import GeminiClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import OpenAIClient
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderUnavailableError
from optuna_llm_sampler.providers._http import bound_by_deadline
from optuna_llm_sampler.providers._http import check_base_url
from optuna_llm_sampler.providers._keys import env_key_allowed
from optuna_llm_sampler.providers._keys import OPENAI_HOSTS
from tests.providers.conftest import FakeClock
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.conftest import PLANTED_KEY
from tests.providers.stub_server import Fault
from tests.providers.stub_server import StubLLMServer
from tests.providers.stub_server import Trickle


MESSAGES = [Message("system", "You propose points."), Message("user", "Next a and b?")]
PROVIDERS = ["openai", "gemini"]
# Scheduling noise on a loaded 2-core machine, on top of the configured limit.
MARGIN_S = 1.0


def make_client(provider: str, server: StubLLMServer, **options: Any) -> Any:
    """A client of ``provider`` pointed at ``server``, with the test key unless overridden."""
    if provider == "openai":
        settings_ = {"model": "stub-model", "base_url": server.openai_base_url}
        settings_["api_key"] = PLANTED_KEY
        cls: Callable[..., Any] = OpenAIClient
    else:
        settings_ = {"model": "gemini-2.0-flash", "base_url": server.url}
        settings_["api_key"] = GEMINI_TEST_KEY
        cls = GeminiClient
    settings_.update(options)
    return cls(**settings_)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a total deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("headers", [True, False], ids=["whole-reply-trickles", "body-trickles"])
def test_trickling_server_cannot_hold_a_call_past_max_retry_time(provider, headers):
    trickle = Trickle(headers=headers)
    # Each read gets a byte in time, so a per-read timeout never fires: the answer would take
    # this long without a total deadline.
    assert (len(trickle.text) + trickle.padding) * trickle.interval > 40
    with StubLLMServer(responder=lambda body: trickle) as server:
        client = make_client(provider, server, timeout=0.6, max_retries=5, max_retry_time=1.5)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailableError, match="timeout after") as info:
            client.complete(MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5 + MARGIN_S, f"the call took {elapsed:.1f} s: {info.value}"
    assert server.requests  # the server was asked, and cut off


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_attempt_ends_within_timeout_reading_included(provider):
    with StubLLMServer(responder=lambda body: Trickle(headers=False)) as server:
        client = make_client(provider, server, timeout=0.5, max_retries=0, max_retry_time=600)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailableError, match=r"timeout after 0\.5 s \(1 attempt"):
            client.complete(MESSAGES)
    assert time.monotonic() - started < 0.5 + MARGIN_S


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_deadline_leaves_normal_answers_and_reused_connections_alone(provider, stub_server):
    client = make_client(provider, stub_server, timeout=5.0)
    for _ in range(3):  # the second and third calls reuse the pooled connection
        assert client.complete(MESSAGES).text
    assert len(stub_server.requests) == 3


def test_every_sdk_http_client_is_bounded(stub_server):
    openai_client = make_client("openai", stub_server)
    gemini_client = make_client("gemini", stub_server)
    # The clients' HTTP layers carry the deadline (if httpx2's internals change, this fails
    # instead of calls silently losing their bound).
    assert bound_by_deadline(openai_client._sdk._client)
    assert bound_by_deadline(gemini_client._sdk._api_client._httpx_client)


def test_a_trial_with_a_trickling_server_falls_back_within_the_limit(tmp_path):
    with StubLLMServer(responder=lambda body: Trickle()) as server:
        sampler = LLMSampler(
            model="openai:stub-model",
            base_url=server.openai_base_url,
            api_key=PLANTED_KEY,
            provider_options={"timeout": 0.5, "max_retry_time": 1.0, "max_retries": 3},
            n_startup_trials=0,
            seed=0,
        )
        study = optuna.create_study(sampler=sampler)
        started = time.monotonic()
        study.optimize(lambda t: t.suggest_float("a", -7, 7) ** 2, n_trials=2)
    # Trial 0 has no history to show the LLM; trial 1 asks it, and is cut off in time.
    assert time.monotonic() - started < 1.0 + MARGIN_S
    assert "timeout after" in study.trials[1].user_attrs["llm_fallback"]


# -- the cool-down of a provider that keeps failing ---------------------------------------------


FAILURES: dict[str, Callable[[], list[Fault]]] = {
    "never-answers": lambda: [Fault.slow(30.0)] * 2,
    "429-long-retry-after": lambda: [Fault.rate_limited(retry_after=3600)] * 2,
    "500": lambda: [Fault.server_error(500)] * 2,
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("failure", [*FAILURES, "refused"])
def test_repeated_failures_cool_down_then_a_success_resets(provider, failure, stub_server):
    clock = FakeClock()
    options: dict[str, Any] = {
        "timeout": 0.3,
        "max_retries": 1,
        "cooldown_after": 2,
        "cooldown_time": 30.0,
        "sleep": clock.sleep,
        "clock": clock,
    }
    if failure == "refused":
        url = f"http://127.0.0.1:{closed_port()}"
        options["base_url"] = url + "/v1" if provider == "openai" else url
    client = make_client(provider, stub_server, **options)

    for _ in range(2):
        if failure != "refused":
            stub_server.enqueue(*FAILURES[failure]())
        with pytest.raises(ProviderUnavailableError) as info:
            client.complete(MESSAGES)
        assert "cooling down" not in str(info.value)
    last = str(info.value).split(" unavailable: ", 1)[1].rstrip(".")
    asked, slept = len(stub_server.requests), list(clock.sleeps)

    started = time.monotonic()
    for _ in range(5):  # every trial in the cool-down falls back at once, asking nothing
        with pytest.raises(ProviderUnavailableError, match="cooling down for 30 s after") as info:
            client.complete(MESSAGES)
    assert time.monotonic() - started < 0.5
    assert len(stub_server.requests) == asked and clock.sleeps == slept
    # The last real reason is kept, and the way out is named.
    assert f"after 2 failed calls in a row: {last} (no request sent; " in str(info.value)
    assert "cooldown_after=0" in str(info.value)

    clock.now += 30.0  # after the cool-down the provider is asked again
    if failure == "refused":
        with pytest.raises(ProviderUnavailableError, match="connection error"):
            client.complete(MESSAGES)
        return
    assert client.complete(MESSAGES).text
    stub_server.enqueue(*FAILURES["500"]())
    with pytest.raises(ProviderUnavailableError) as info:
        client.complete(MESSAGES)
    assert "cooling down" not in str(info.value)  # the success reset the count


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failure_after_the_cool_down_starts_another(provider, stub_server):
    clock = FakeClock()
    client = make_client(
        provider,
        stub_server,
        max_retries=0,
        cooldown_after=2,
        cooldown_time=10.0,
        sleep=clock.sleep,
        clock=clock,
    )
    stub_server.enqueue(*[Fault.server_error(503)] * 3)
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
            client.complete(MESSAGES)
    clock.now += 10.0
    with pytest.raises(ProviderUnavailableError, match="HTTP 503"):  # tried again: still down
        client.complete(MESSAGES)
    with pytest.raises(ProviderUnavailableError, match="after 3 failed calls in a row"):
        client.complete(MESSAGES)
    assert len(stub_server.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cooldown_after_zero_always_asks(provider, stub_server):
    client = make_client(provider, stub_server, max_retries=0, cooldown_after=0)
    stub_server.enqueue(*[Fault.server_error(500)] * 6)
    for _ in range(6):
        with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
            client.complete(MESSAGES)
    assert len(stub_server.requests) == 6


def test_a_rejected_request_is_not_a_provider_failure(stub_server):
    client = make_client("openai", stub_server, max_retries=0, cooldown_after=2)
    stub_server.enqueue(Fault.server_error(500), Fault.bad_request(), Fault.server_error(500))
    for _ in range(3):
        with pytest.raises(Exception, match="HTTP") as info:
            client.complete(MESSAGES)
        assert "cooling down" not in str(info.value)


def test_a_study_on_a_dead_provider_stops_asking_for_the_cool_down():
    with StubLLMServer(responder=lambda body: Fault.server_error(503)) as server:
        sampler = LLMSampler(
            model="openai:stub-model",
            base_url=server.openai_base_url,
            api_key=PLANTED_KEY,
            provider_options={"max_retries": 0, "cooldown_after": 2, "cooldown_time": 600.0},
            n_startup_trials=0,
            seed=0,
        )
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("a", -7, 7) ** 2, n_trials=7)
        asked = len(server.requests)
    reasons = [t.user_attrs["llm_fallback"] for t in study.trials[1:]]  # trial 0: no history
    assert asked == 2
    assert all("HTTP 503" in reason for reason in reasons[:2])
    assert all("cooling down" in reason and "HTTP 503" in reason for reason in reasons[2:])


@pytest.mark.parametrize(
    ("option", "value"),
    [("cooldown_after", -1), ("cooldown_after", 1.5), ("cooldown_time", -1.0)],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_cooldown_settings_raise_value_error_naming_them(provider, option, value, stub_server):
    with pytest.raises(ValueError, match=option):
        make_client(provider, stub_server, **{option: value})


# -- base_url -------------------------------------------------------------------------------------


BAD_URLS = [
    "not a url",
    "localhost:8080",
    "127.0.0.1:8080/v1",
    "ftp://example.com/v1",
    "file:///etc/passwd",
    "http://",
    "http:///v1",
    "http://:8080/v1",
    "http://user:pw@/v1",
    "http://example.com:99999/v1",
    "http://example.com:port/v1",
    "http://exa mple.com/v1",
    "http://example.com/v1\n/chat",
    "http://example.com/\x00v1",
    "http://bücher.example/v1",
    "http://[not-ipv6]/v1",
    "http://a..b/v1",
]
GOOD_URLS = [
    "http://127.0.0.1:8080/v1",
    "https://api.openai.com/v1",
    "http://localhost/v1/",
    "http://[::1]:8080/v1",
    "http://my-host.internal:11434/v1",
    "https://user:pw@proxy.example.com/v1?api_key=x",
    "  http://127.0.0.1:8080/v1  ",
    "HTTP://EXAMPLE.COM/V1",
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("url", BAD_URLS)
def test_a_base_url_that_is_no_http_url_with_a_host_is_refused_when_built(
    provider, url, stub_server
):
    with pytest.raises(ProviderConfigError) as info:
        make_client(provider, stub_server, base_url=url)
    message = str(info.value)
    assert (
        message.startswith("base_url=") and "e.g. base_url='http://127.0.0.1:8080/v1'" in message
    )
    assert "\n" not in message and "pw" not in message


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_base_urls_are_accepted(url):
    assert check_base_url(url) == url.strip()
    assert OpenAIClient(model="m", base_url=url, api_key=PLANTED_KEY).model == "m"
    GeminiClient(model="gemini-2.0-flash", base_url=url, api_key=GEMINI_TEST_KEY)


def test_the_base_url_variable_is_checked_and_named(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "not a url")
    with pytest.raises(ProviderConfigError, match=r"^OPENAI_BASE_URL='not a url' contains"):
        OpenAIClient(model="m")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "nowhere")
    with pytest.raises(ProviderConfigError, match=r"^GOOGLE_GEMINI_BASE_URL='nowhere' is not"):
        GeminiClient(model="gemini-2.0-flash", api_key=GEMINI_TEST_KEY)


def test_the_sampler_refuses_a_bad_base_url_when_built():
    with pytest.raises(ProviderConfigError, match="base_url='not a url'"):
        LLMSampler(model="openai:m", base_url="not a url")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40) | st.builds("http://{}".format, st.text(max_size=30)))
def test_any_base_url_is_accepted_as_an_http_url_or_refused_with_a_config_error(url):
    import httpx2

    try:
        accepted = check_base_url(url)
    except ProviderConfigError as error:
        assert "\n" not in str(error)
        return
    parsed = httpx2.URL(accepted)  # what the SDKs will do with it must work
    assert parsed.scheme in ("http", "https") and parsed.host


# -- where a key from the environment goes --------------------------------------------------------


def authorization(server: StubLLMServer) -> str:
    return server.requests[-1].credentials.get("authorization", "")


@pytest.fixture
def capture() -> Any:
    with StubLLMServer(capture_credentials=True) as server:
        yield server


def test_openai_key_from_the_environment_is_not_sent_to_another_host(capture, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-PLANTED")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-PLANTED")
    OpenAIClient(model="m", base_url=capture.openai_base_url).complete(MESSAGES)
    assert authorization(capture) == "Bearer not-needed"
    headers = capture.requests[-1].headers
    assert "openai-organization" not in headers and "openai-project" not in headers
    # Another variable that names a different endpoint does not opt this one in.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    OpenAIClient(model="m", base_url=capture.openai_base_url).complete(MESSAGES)
    assert authorization(capture) == "Bearer not-needed"


@pytest.mark.parametrize("explicit", [False, True], ids=["from-variable", "same-as-variable"])
def test_openai_key_goes_to_the_base_url_set_with_it(capture, monkeypatch, explicit):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", capture.openai_base_url + "/")
    base_url = capture.openai_base_url if explicit else None
    OpenAIClient(model="m", base_url=base_url).complete(MESSAGES)
    assert authorization(capture) == f"Bearer {PLANTED_KEY}"


def test_an_explicit_key_goes_where_it_is_told(capture, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-NOT-THIS-ONE-0123456789")
    OpenAIClient(model="m", base_url=capture.openai_base_url, api_key=PLANTED_KEY).complete(
        MESSAGES
    )
    assert authorization(capture) == f"Bearer {PLANTED_KEY}"


def test_gemini_key_from_the_environment_is_not_sent_to_another_host(capture, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_TEST_KEY)
    monkeypatch.setenv("GOOGLE_API_KEY", GEMINI_TEST_KEY + "-2")
    GeminiClient(model="gemini-2.0-flash", base_url=capture.url).complete(MESSAGES)
    assert capture.requests[-1].credentials.get("x-goog-api-key") == "not-needed"
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", capture.url)
    GeminiClient(model="gemini-2.0-flash").complete(MESSAGES)
    assert capture.requests[-1].credentials.get("x-goog-api-key") == GEMINI_TEST_KEY


def test_the_hint_of_a_rejected_placeholder_says_how_to_send_a_key(capture, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    capture.enqueue(Fault.unauthorized())
    with pytest.raises(ProviderConfigError, match=r"\(HTTP 401\): pass api_key= \(the env"):
        OpenAIClient(model="m", base_url=capture.openai_base_url).complete(MESSAGES)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (None, True),
        ("https://api.openai.com/v1", True),
        ("https://API.OpenAI.com:443/v1/", True),
        ("https://eu.api.openai.com/v1", True),
        ("http://api.openai.com/v1", False),  # never in clear text
        ("https://api.openai.com.evil.example/v1", False),
        ("https://evil.example/api.openai.com/v1", False),
        ("https://api.openai.com@evil.example/v1", False),
        ("https://evilapi.openai.com/v1", False),
        ("http://127.0.0.1:8080/v1", False),
    ],
)
def test_env_key_allowed_only_for_the_providers_own_https_host(url, allowed):
    assert env_key_allowed(url, official_hosts=OPENAI_HOSTS, paired="NO_SUCH_VAR") is allowed


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.from_regex(r"[a-z0-9.\-]{1,30}", fullmatch=True),
    userinfo=st.sampled_from(["", "u@", "u:p@", "api.openai.com@", "api.openai.com:443@"]),
    path=st.from_regex(r"(/[a-z0-9.@:]{0,10}){0,3}", fullmatch=True),
)
def test_env_key_never_goes_to_a_host_that_is_not_the_providers(scheme, host, userinfo, path):
    import httpx2

    url = f"{scheme}://{userinfo}{host}{path}"
    if env_key_allowed(url, official_hosts=OPENAI_HOSTS, paired="NO_SUCH_VAR"):
        target = httpx2.URL(url)  # where the HTTP library really connects
        assert target.scheme == "https"
        assert target.host == "api.openai.com" or target.host.endswith(".api.openai.com")
