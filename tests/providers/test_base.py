"""The interface's value types (``providers/_base.py``): token counts a server reports are
checked where every provider builds its answer."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
import pytest

from optuna_llm_sampler.providers import Completion
from optuna_llm_sampler.providers import GeminiClient
from optuna_llm_sampler.providers import Message
from optuna_llm_sampler.providers import OpenAIClient
from optuna_llm_sampler.providers._base import MAX_TOKENS_PER_CALL
from tests.providers.conftest import GEMINI_TEST_KEY
from tests.providers.conftest import PLANTED_KEY
from tests.providers.stub_server import Fault


ANY_COUNT = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@given(prompt=ANY_COUNT, completion=ANY_COUNT)
def test_a_completion_keeps_only_plausible_token_counts(prompt, completion):
    answer = Completion(text="a: 1", model="m", prompt_tokens=prompt, completion_tokens=completion)
    for given_, kept in [(prompt, answer.prompt_tokens), (completion, answer.completion_tokens)]:
        plausible = (
            isinstance(given_, int)
            and not isinstance(given_, bool)
            and 0 <= given_ <= MAX_TOKENS_PER_CALL
        )
        assert kept == (given_ if plausible else None)
        assert kept is None or type(kept) is int


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [
        (-5, 7, (None, 7)),
        (10**12, 3, (None, 3)),
        (12, MAX_TOKENS_PER_CALL + 1, (12, None)),
        (12.5, "9", (None, None)),
        (0, MAX_TOKENS_PER_CALL, (0, MAX_TOKENS_PER_CALL)),
    ],
)
def test_usage_from_an_openai_server_is_validated(stub_server, prompt, completion, expected):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "a: 1"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 1},
    }
    stub_server.enqueue(Fault(200, body=json.dumps(body)))
    client = OpenAIClient(
        model="stub-model", base_url=stub_server.openai_base_url, api_key=PLANTED_KEY
    )
    answer = client.complete([Message("user", "next?")])
    assert (answer.prompt_tokens, answer.completion_tokens) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"promptTokenCount": -1, "candidatesTokenCount": 4, "thoughtsTokenCount": -30},
            (None, 4),
        ),
        ({"promptTokenCount": 10**13, "candidatesTokenCount": 10**13}, (None, None)),
        ({"promptTokenCount": 8, "candidatesTokenCount": 4, "thoughtsTokenCount": 30}, (8, 34)),
    ],
)
def test_usage_from_a_gemini_server_is_validated(stub_server, usage, expected):
    body = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "a: 1"}]}}],
        "usageMetadata": usage,
    }
    stub_server.enqueue(Fault(200, body=json.dumps(body)))
    client = GeminiClient(
        model="gemini-2.0-flash", base_url=stub_server.url, api_key=GEMINI_TEST_KEY
    )
    answer = client.complete([Message("user", "next?")])
    assert (answer.prompt_tokens, answer.completion_tokens) == expected
