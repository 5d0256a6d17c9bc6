"""Keys and URLs with credentials (``providers/_keys.py``): checked when a client is built, and
never shown, stored or logged — through the real SDKs against the local stub."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from optuna_llm_sampler.providers import GeminiClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import OpenAIClient
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderError
from optuna_llm_sampler.providers import redact_url
from optuna_llm_sampler.providers._keys import check_api_key
from optuna_llm_sampler.providers._keys import redact
from optuna_llm_sampler.providers._keys import url_secrets
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.conftest import PLANTED_KEY
from tests.providers.stub_server import Fault
from tests.providers.stub_server import StubLLMServer


MESSAGES = [Message("user", "Next a and b?")]
# The loggers of the SDKs and of the HTTP libraries under them.
LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "google_genai")


class Records(logging.Handler):
    """Keeps every record, unformatted (a JSON log handler would serialize all of it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_records() -> Any:
    handler = Records()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *LOGGERS)}
    root.addHandler(handler)
    for name in ("", *LOGGERS):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def everything_in(record: logging.LogRecord) -> str:
    """The record's message and every attribute, as a handler might render them."""
    try:
        message = record.getMessage()
    except Exception:
        message = ""
    return message + repr(record.args) + repr(vars(record))


# -- a key must be one line of printable ASCII ----------------------------------------------------


SAFE = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=20)
BAD = st.sampled_from(["\n", "\r\n", "\t", " ", "\x00", "\x7f", "\u00a0", "é", "\u2028", "—"])


@settings(max_examples=200, deadline=None)
@given(prefix=SAFE, bad=BAD, suffix=SAFE, source=st.sampled_from(["argument", "environment"]))
def test_a_key_with_a_line_break_space_or_non_ascii_is_refused_without_showing_it(
    prefix, bad, suffix, source, monkeypatch_module
):
    if source == "environment" and bad == "\x00":
        bad = "\x01"  # an environment variable cannot hold a NUL
    key = f"sk-{prefix}{bad}{suffix}"
    for cls, variable, options in [
        (OpenAIClient, "OPENAI_API_KEY", {"model": "gpt-4o"}),
        (GeminiClient, "GEMINI_API_KEY", {"model": "gemini-2.0-flash"}),
    ]:
        if source == "environment":
            monkeypatch_module.setenv(variable, key)
        else:
            options = {**options, "api_key": key}
        with pytest.raises(ProviderConfigError) as info:
            cls(**options)
        monkeypatch_module.delenv(variable, raising=False)
        shown = "".join(traceback.format_exception(info.value))
        assert prefix not in shown and suffix not in shown
        where = variable if source == "environment" else "the api_key= argument"
        assert f"API key from {where} contains " in str(info.value)
        assert "copy it again" in str(info.value) and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("sk-abc\ndef", "a line break"),
        ("sk-abc def", "a space"),
        ("sk-abc\u00a0def", "a space"),
        ("sk-abcdéf", "a non-ASCII character"),
        ("sk-abc\x00def", "a control character"),
    ],
)
def test_check_api_key_names_the_problem(key, problem):
    with pytest.raises(ProviderConfigError, match=f"contains {problem};"):
        check_api_key(key, source="X", provider="OpenAI")


def test_surrounding_whitespace_of_a_key_is_not_a_problem(stub_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", stub_server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", f"  {PLANTED_KEY}\n")  # as read from a file
    assert OpenAIClient(model="m").complete(MESSAGES).text


# -- a key is never logged ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_the_key_is_in_no_log_record_even_when_the_server_echoes_it(provider, debug_records):
    key = PLANTED_KEY if provider == "openai" else GEMINI_TEST_KEY
    with StubLLMServer(echo_credentials=True) as server:
        if provider == "openai":
            client: Any = OpenAIClient(model="m", base_url=server.openai_base_url, api_key=key)
        else:
            client = GeminiClient(model="gemini-2.0-flash", base_url=server.url, api_key=key)
        client.complete(MESSAGES)
        server.enqueue(Fault.unauthorized())
        with pytest.raises(ProviderConfigError):
            client.complete(MESSAGES)
    names = {record.name.split(".")[0] for record in debug_records}
    assert {"httpx2", "httpcore2"} <= names  # the HTTP libraries did log at DEBUG
    # httpcore logs the response headers, where the server echoed the key.
    assert any("X-Echo" in record.getMessage() for record in debug_records)
    leaks = [record.name for record in debug_records if key in everything_in(record)]
    assert leaks == []


def test_a_basic_credential_in_a_log_record_is_redacted(debug_records, stub_server):
    OpenAIClient(model="m", base_url=stub_server.openai_base_url, api_key=PLANTED_KEY)
    logging.getLogger("httpcore2.http11").debug(
        "send_request_headers headers=[(b'Authorization', b'Basic dXNlcjpzM2NyZXQ=')]"
    )
    (record,) = [r for r in debug_records if "send_request_headers" in r.getMessage()]
    assert "dXNlcjpzM2NyZXQ=" not in everything_in(record)
    assert "Basic [REDACTED]" in record.getMessage()


# -- credentials in a base_url --------------------------------------------------------------------


def test_base_url_credentials_are_in_no_repr_error_or_log(debug_records):
    with StubLLMServer() as server:
        host = server.url.split("://", 1)[1]
        url = f"http://user:pw-PLANTED-42@{host}/v1?api_key=q-PLANTED-43&x=1"
        client = OpenAIClient(model="m", base_url=url, max_retries=0)
        errors: list[BaseException] = []
        for fault in (Fault.not_found(), Fault.server_error(503), Fault.bad_request()):
            server.enqueue(fault)
            with pytest.raises(ProviderError) as info:
                client.complete(MESSAGES)
            errors.append(info.value)
    shown = repr(client) + "".join("".join(traceback.format_exception(e)) for e in errors)
    shown += "".join(everything_in(record) for record in debug_records)
    assert "http://user:***@" in repr(client) and "api_key=***&x=1" in repr(client)
    assert "PLANTED" not in shown


# -- redact and redact_url, for any URL -----------------------------------------------------------


HOST = st.from_regex(r"[a-z0-9\-]{1,12}(\.[a-z0-9\-]{1,8}){0,2}(:[0-9]{1,5})?", fullmatch=True)
PATH = st.from_regex(r"(/[a-zA-Z0-9_.\-]{0,8}){0,3}", fullmatch=True)
# Passwords may hold anything but white space, "~" marks them (no host or path has one).
PASSWORD = st.builds(
    lambda a, b: f"{a}~{b}",
    st.text(st.characters(blacklist_categories=["Z", "C"]), max_size=8),
    st.text(st.characters(blacklist_categories=["Z", "C"]), max_size=8),
)
USER = st.from_regex(r"[a-zA-Z0-9_.\-]{0,8}", fullmatch=True)
SCHEME = st.sampled_from(["http", "https", "postgresql+psycopg2", "mysql", "redis"])
SECRET_PARAM = st.sampled_from(
    ["api_key", "key", "token", "access_token", "X-Goog-Api-Key", "sig"]
)


@settings(max_examples=500, deadline=None)
@given(scheme=SCHEME, user=USER, password=PASSWORD, host=HOST, path=PATH)
def test_redact_url_never_shows_a_password(scheme, user, password, host, path):
    url = f"{scheme}://{user}:{password}@{host}{path}"
    shown = redact_url(url)
    assert "~" not in shown
    assert shown.startswith(f"{scheme}://")
    assert "~" not in redact(f"could not reach {url} (timeout)")


@settings(max_examples=300, deadline=None)
@given(scheme=SCHEME, host=HOST, path=PATH, name=SECRET_PARAM, value=PASSWORD)
def test_redact_url_never_shows_a_key_like_query_parameter(scheme, host, path, name, value):
    value = value.replace("&", "").replace("#", "")  # what ends a query value in a URL
    url = f"{scheme}://{host}{path}?x=1&{name}={value}&y=2"
    shown = redact_url(url)
    assert "~" not in shown and shown.endswith(f"&{name}=***&y=2")
    assert "x=1" in shown  # other parameters stay readable


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:secret@db:5432/x", "postgresql://me:***@db:5432/x"),
        ("http://token@host/v1", "http://***@host/v1"),
        ("http://u:p@ss@host/v1", "http://u:***@host/v1"),
        ("http://u:pa/ss@host/v1", "http://u:***@host/v1"),
        ("sqlite:////tmp/a@b/study.db", "sqlite:////tmp/a@b/study.db"),
        ("journal:/tmp/x.log", "journal:/tmp/x.log"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_redact_url_examples(url, shown):
    assert redact_url(url) == shown


def test_redact_hides_every_kind_of_credential():
    text = (
        "Authorization: Basic dXNlcjpwdw== | authorization: Bearer tok.en-1 | "
        "x-goog-api-key: custom-key-1 | api-key=custom-key-2 | sk-proj-ZZZZZZZZZZZZZZZZZZ | "
        "see https://me:pw123@proxy/v1?key=k-3"
    )
    shown = redact(text)
    for secret in ("dXNlcjpwdw==", "tok.en-1", "custom-key-1", "custom-key-2", "ZZZZ", "pw123"):
        assert secret not in shown
    assert "k-3" not in shown and "https://me:***@proxy/v1?key=***" in shown


def test_url_secrets():
    assert url_secrets("http://me:pw-123456@h/v1?api_key=abcdefgh&x=1") == [
        "pw-123456",
        "abcdefgh",
    ]
    assert url_secrets(None) == [] and url_secrets("http://h/v1?x=1") == []
