"""What the sampler writes to a trial and reads back: records, token counts, study totals."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import create_trial
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler._records import LLMRecord
from optuna_llm_sampler._records import MAX_TOKENS_PER_CALL
from optuna_llm_sampler._records import provider_outage
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


def _llm_trial(number: int, fallback: str | None) -> object:
    attrs = {"llm_model": "m"} | ({"llm_fallback": fallback} if fallback else {})
    trial = create_trial(value=0.0, user_attrs=attrs)
    trial.number = number
    return trial


UNAVAILABLE = "provider error: ProviderUnavailableError: OpenAI model 'm' unavailable: HTTP 503"
REJECTED = "provider error: ProviderError: OpenAI rejected the request for model 'm' (HTTP 400)"


def test_an_outage_is_the_first_llm_trials_failing_for_one_provider_reason() -> None:
    startup = create_trial(value=1.0)  # no LLM record: not counted
    trials = [startup, *(_llm_trial(n, f"{UNAVAILABLE} ({n} attempts)") for n in (3, 1, 2))]
    outage = provider_outage(trials)
    assert outage is not None
    assert outage.trials == (1, 2, 3) and outage.error == "ProviderUnavailableError"
    assert outage.reason == f"{UNAVAILABLE} (1 attempts)"  # the first trial's
    assert "the first 3 LLM trials all fell back" in outage.message()
    assert "check that the server runs at base_url" in outage.message()
    ended = provider_outage(
        [_llm_trial(n, f"{UNAVAILABLE} (5 attempts in 9.1 s).") for n in (0, 1, 2)]
    )
    assert ended is not None and "9.1 s). Fix:" in ended.message()  # one full stop
    rejected = provider_outage([_llm_trial(n, REJECTED) for n in range(3)])
    assert rejected is not None and "answer_format='text'" in rejected.fix


@pytest.mark.parametrize(
    "fallbacks",
    [
        [UNAVAILABLE, UNAVAILABLE],  # too few LLM trials yet
        [UNAVAILABLE, None, UNAVAILABLE],  # one LLM answer
        [UNAVAILABLE, REJECTED, UNAVAILABLE],  # two reasons
        [UNAVAILABLE, "no usable answer after 4 attempts: x", UNAVAILABLE],  # the model's fault
        ["token budget spent (10 >= 5)"] * 3,
    ],
)
def test_no_outage_unless_every_first_llm_trial_failed_alike(fallbacks: list) -> None:
    trials = [_llm_trial(n, f) for n, f in enumerate(fallbacks)]
    assert provider_outage(trials) is None
    # later failures do not make the first trials an outage
    later = [_llm_trial(n, UNAVAILABLE) for n in range(10, 20)]
    assert provider_outage([*trials, *later]) is None or len(fallbacks) < 3


def test_an_outage_of_fewer_trials_when_asked() -> None:
    assert provider_outage([_llm_trial(0, UNAVAILABLE)], first=1) is not None
    with pytest.raises(ValueError, match="first must be at least 1"):
        provider_outage([], first=0)
