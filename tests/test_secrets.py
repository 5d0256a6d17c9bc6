"""An API key never reaches storage, logs, records or exception texts — after whole studies.

The real openai and google-genai SDKs talk to a local stub of both APIs; the stub echoes the key
back in error bodies (as some servers do) to prove the redaction, and faults are mixed in so that
every path that writes text (answers, fallbacks, errors) runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
import traceback

import optuna
import pytest

from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import ProviderConfigError
from tests.providers.stub_server import Fault
from tests.providers.stub_server import StubLLMServer


PLANTED = "sk-test-PLANTED-9f8e7d6c5b4a39281706"
GEMINI_PLANTED = "AIza-test-PLANTED-00aa11bb22cc33dd44"


def objective(trial: optuna.Trial) -> float:
    return -((trial.suggest_float("a", -7, 7) - 1) ** 2) - trial.suggest_float("b", -7, 7) ** 2


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_planted_key_is_nowhere_after_a_study(
    provider: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    key = PLANTED if provider == "openai" else GEMINI_PLANTED
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    answers = iter(f'{{"a": {x}, "b": 0.5, "reasoning": "step {x}"}}' for x in range(1, 99))
    with StubLLMServer(responder=lambda body: next(answers)) as server:
        server.enqueue(
            Fault.server_error(500),  # retried, then succeeds
            Fault.bad_request(f"Invalid request from key {key}"),  # a fallback, text recorded
            Fault.garbage(),
        )
        url = server.openai_base_url if provider == "openai" else server.url
        model = "openai:stub-model" if provider == "openai" else "gemini:gemini-stub"
        sampler = LLMSampler(
            model=model,
            base_url=url,
            api_key=key,
            provider_options={"max_retries": 1, "timeout": 5.0},
            n_startup_trials=2,
            seed=0,
        )
        storage = f"sqlite:///{tmp_path / 'study.db'}"
        study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
        with caplog.at_level(logging.DEBUG):
            study.optimize(objective, n_trials=8)
            assert any("llm_fallback" in t.user_attrs for t in study.trials)
            server.enqueue(Fault.unauthorized(message=f"Incorrect API key provided: {key}"))
            with pytest.raises(ProviderConfigError) as info:
                study.optimize(objective, n_trials=1)
    assert key not in "".join(traceback.format_exception(info.value))
    assert key not in repr(sampler.client)
    assert key not in caplog.text
    for trial in study.trials:
        assert key not in repr(trial.user_attrs) + repr(trial.system_attrs)
    assert key.encode() not in (tmp_path / "study.db").read_bytes()
    assert all(key not in str(request.headers) for request in server.requests)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_keys_from_the_environment_never_reach_another_host_in_a_study(
    provider: str, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The environment holds real-looking keys; the study talks to a server that is not the
    provider's (as with ``run --base-url``), which records and echoes every credential."""
    for name in ("OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_PLANTED)
    monkeypatch.setenv("GOOGLE_API_KEY", GEMINI_PLANTED + "-google")
    answers = iter(f'{{"a": {x / 7}, "b": 0.5, "reasoning": "step"}}' for x in range(1, 99))
    with StubLLMServer(
        responder=lambda body: next(answers), capture_credentials=True, echo_credentials=True
    ) as server:
        url = server.openai_base_url if provider == "openai" else server.url
        model = "openai:stub-model" if provider == "openai" else "gemini:gemini-stub"
        sampler = LLMSampler(model=model, base_url=url, n_startup_trials=1, seed=0)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        with caplog.at_level(logging.DEBUG):
            for name in ("httpx2", "httpcore2", "openai", "google_genai"):
                caplog.set_level(logging.DEBUG, logger=name)
            study.optimize(objective, n_trials=4)
    sent = [request.credentials for request in server.requests]
    assert len(sent) >= 3 and all(sent)  # every call carried a (placeholder) credential
    for key in (PLANTED, GEMINI_PLANTED):
        assert all(key not in repr(credentials) for credentials in sent)
        assert key not in caplog.text
    assert all("llm_fallback" not in trial.user_attrs for trial in study.trials[1:])
