"""A real study with the embedded offline model (llama.cpp, Qwen2.5-Coder-1.5B): no mocks.

At least 10 trials are sampled by the LLM on a 2-parameter objective; every answer is either
used (in range, not a repeat, recorded) or recorded as a fallback with its reason.
"""

from __future__ import annotations

import optuna
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler


llama_cpp = pytest.importorskip("llama_cpp", reason="needs the [local] extra")


def objective(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1.5) ** 2) - (b - 4.0) ** 2


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_study_driven_by_the_embedded_model(tmp_path) -> None:
    from optuna_llm_sampler.providers._embedded import check_embedded_model

    try:
        check_embedded_model()
    except Exception as error:  # the part packages are not installed
        pytest.skip(f"embedded model unavailable: {error}")
    sampler = LLMSampler(
        model="local",
        # One thread: llama.cpp slows badly when its threads share the 2 cores with anything.
        provider_options={"n_threads": 1, "max_tokens": 160},
        n_startup_trials=5,
        search_std=1.0,
        seed=0,
        dashboard_notes=False,
    )
    storage = f"sqlite:///{tmp_path / 'local.db'}"
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    study.optimize(objective, n_trials=16)

    llm_trials = [t for t in study.trials if get_llm_record(t) is not None]
    assert len(llm_trials) >= 10
    usage = llm_usage(study)
    assert usage.llm_trials == len(llm_trials) == 11
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    for trial in llm_trials:
        record = get_llm_record(trial)
        assert record is not None
        assert record.model == "local:qwen2.5-coder-1.5b-instruct-q4_k_m"
        assert record.proposal == trial.params
        assert all(-7 <= v <= 7 for v in trial.params.values())
        if record.fallback is None:
            assert record.messages[-1].role == "assistant"  # the answer that was used
        else:
            assert record.fallback  # the reason is recorded
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(points) == len(set(points))
    # The model is asked for JSON under a grammar: its proposals are its own most of the time.
    assert usage.proposals >= 8
