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
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import PromptOptions


llama_cpp = pytest.importorskip("llama_cpp", reason="needs the [local] extra")


def objective(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1.5) ** 2) - (b - 4.0) ** 2


def _require_embedded_model() -> None:
    from optuna_llm_sampler.providers._embedded import check_embedded_model

    try:
        check_embedded_model()
    except Exception as error:  # the part packages are not installed
        pytest.skip(f"embedded model unavailable: {error}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_study_driven_by_the_embedded_model(tmp_path) -> None:
    _require_embedded_model()
    sampler = LLMSampler(
        model="local",
        # One thread: llama.cpp slows badly when its threads share the 2 cores with anything.
        provider_options={"n_threads": 1, "max_tokens": 160},
        # The tutorial's loop (absolute points), not the guided set-up "auto" picks for "local".
        preset="tutorial",
        prompt=PromptOptions(search_std=1.0),
        n_startup_trials=5,
        seed=0,
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


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_embedded_model_answers_steps_from_the_best_point(tmp_path) -> None:
    """The set-up ``run --guidance auto`` uses for local models, with the real model: every own
    proposal is the best point so far plus one of the changes the model wrote, clipped to the
    box."""
    import json

    from optuna_llm_sampler._answer import parse_candidates
    from optuna_llm_sampler._space import step_space

    _require_embedded_model()
    sampler = LLMSampler(
        model="local",
        provider_options={"n_threads": 1, "max_tokens": 200},
        prompt=PromptOptions(search_std=1.0),
        n_startup_trials=5,
        seed=1,
    )
    assert sampler.proposal == PRESETS["guided"].proposal  # preset="auto" for a local model
    storage = f"sqlite:///{tmp_path / 'steps.db'}"
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    study.optimize(objective, n_trials=9)

    own = 0
    space = study.trials[-1].distributions
    for trial in study.trials[5:]:
        record = get_llm_record(trial)
        assert record is not None and record.proposal == trial.params
        if record.fallback is not None:
            continue
        own += 1
        prompt = next(m.content for m in record.messages if m.role == "user")
        # The compact format, a local model's default: the changes alone, by position.
        assert "different changes [change_a, change_b] to add to the best point so far" in prompt
        earlier = [t for t in study.trials[: trial.number] if t.value is not None]
        best = max(earlier, key=lambda t: t.value).params
        answer = record.messages[-1].content
        changes = parse_candidates(answer, step_space(space), positional=True)
        reachable = [
            {n: min(7.0, max(-7.0, best[n] + float(c.values["change_" + n]))) for n in best}
            for c in changes
        ]
        assert any(
            all(abs(point[n] - trial.params[n]) < 1e-6 for n in best) for point in reachable
        ), (json.dumps(trial.params), answer)
        assert record.candidates >= 1
    assert own >= 2  # the model answers in changes under the grammar, not only fallbacks
