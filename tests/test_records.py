"""What the sampler writes to a trial and reads back: records, token counts, study totals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import create_trial
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import MAX_TOKENS_PER_CALL
from optuna_llm_sampler._records import token_count
from optuna_llm_sampler._records import usage_of_trials


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=True),
        st.booleans(),
        st.none(),
        st.text(max_size=5),
        st.lists(st.integers(), max_size=2),
    )
)
def test_a_token_count_is_a_sane_integer_or_unknown(value: object) -> None:
    counted = token_count(value)
    assert type(counted) is int and 0 <= counted <= MAX_TOKENS_PER_CALL
    sane = type(value) is int and 0 <= value <= MAX_TOKENS_PER_CALL  # type: ignore[operator]
    assert counted == (value if sane else 0)


@pytest.mark.parametrize(
    "junk", [-(10**9), "12", None, [1], float("nan"), float("inf"), True, -0.5, 2.5]
)
def test_study_totals_read_stored_junk_as_nothing(junk: object) -> None:
    good = create_trial(
        value=1.0,
        user_attrs={"llm_model": "m", "llm_prompt_tokens": 700, "llm_completion_tokens": 300},
    )
    bad = create_trial(
        value=1.0,
        user_attrs={
            "llm_model": "m",
            "llm_prompt_tokens": junk,
            "llm_completion_tokens": junk,
            "llm_attempts": junk,
            "llm_latency_s": junk,
        },
    )
    usage = usage_of_trials([good, bad])
    assert usage.total_tokens == 1000 and usage.llm_trials == 2
    assert usage.calls == 0
    assert usage.latency_s == (2.5 if junk == 2.5 and junk is not True else 0.0)  # seconds: fine


def test_the_answer_cut_is_a_user_attribute_and_reads_back() -> None:
    record = LLMRecord(model="m", attempts=2, answer_cut=236_000)
    attrs = record.user_attrs()
    assert attrs["llm_answer_cut"] == 236_000
    assert "llm_answer_cut" not in LLMRecord(model="m").user_attrs()
    trial = create_trial(value=1.0, user_attrs=attrs)
    restored = get_llm_record(trial)
    assert restored is not None and restored.answer_cut == 236_000
