from __future__ import annotations

import json
import logging
import pickle
import time

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import FloatDistribution
from optuna.samplers import RandomSampler
import pytest

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import Completion
from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import ProviderConfigError
from optuna_llm_sampler import ProviderUnavailableError
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._answer import EXCERPT_CHARS
from optuna_llm_sampler._answer import MAX_ANSWER_CHARS
from optuna_llm_sampler._prompt import format_param
from optuna_llm_sampler.providers import ScriptedClient
from tests._answers import SchemaResponder
from tests.providers.stub_server import StubLLMServer
from tests.test_answer_fuzz import hostile


def quadratic(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1) ** 2) - (b - 5) ** 2


def _study(client: ScriptedClient, **kwargs) -> optuna.Study:
    kwargs.setdefault("n_startup_trials", 3)
    kwargs.setdefault("seed", 0)
    sampler = LLMSampler(model=client, **kwargs)
    return optuna.create_study(direction="maximize", sampler=sampler)


def test_llm_proposals_become_the_trials_params() -> None:
    client = ScriptedClient(["a: 1.25, b: 4.5\nCloser to the best.", "a: 0.5, b: 5.5\nAnd again."])
    study = _study(client)
    study.optimize(quadratic, n_trials=5)
    assert [t.params for t in study.trials[3:]] == [{"a": 1.25, "b": 4.5}, {"a": 0.5, "b": 5.5}]
    assert len(client.calls) == 2
    for trial in study.trials[:3]:
        assert get_llm_record(trial) is None  # startup trials are the independent sampler's
    record = get_llm_record(study.trials[3])
    assert record is not None
    assert record.reasoning == "Closer to the best."
    assert record.attempts == 1 and record.fallback is None
    assert record.model == "scripted"
    assert record.messages[0].content == client.calls[0][0][0].content
    assert record.messages[1].content == "a: 1.25, b: 4.5\nCloser to the best."
    attrs = study.trials[3].user_attrs
    assert set(attrs) == {
        "llm_model",
        "llm_prompt_tokens",
        "llm_completion_tokens",
        "llm_latency_s",
        "llm_attempts",
        "llm_reasoning",
    }
    assert attrs["llm_prompt_tokens"] > 0


def test_prompt_holds_the_history_and_the_step() -> None:
    client = ScriptedClient(["a: 1, b: 2"])
    study = _study(client, prompt=PromptOptions(budget=10))
    study.optimize(quadratic, n_trials=4)
    prompt = client.calls[0][0][0].content
    assert "\na,b,f(a,b)\n" in prompt  # the CSV header, then one row per trial
    for trial in study.trials[:3]:
        a, b = (format_param(trial.params[n], FloatDistribution(-7, 7), 3) for n in "ab")
        assert f"\n{a},{b},{trial.value:.3g}\n" in prompt
    assert "Now you are at iteration 3." in prompt
    assert "iterations (10)" in prompt


def test_invalid_answer_is_re_asked_with_the_error_fed_back() -> None:
    client = ScriptedClient(["I think a: 1", "a: 99, b: 0", "a: 1, b: 2\nFixed."])
    study = _study(client)
    study.optimize(quadratic, n_trials=4)
    assert study.trials[3].params == {"a": 1.0, "b": 2.0}
    second, third = client.calls[1][0], client.calls[2][0]
    assert second[-2].role == "assistant" and second[-2].content == "I think a: 1"
    assert "no value found for b" in second[-1].content
    assert "a=99 is outside its range [-7, 7]" in third[-1].content
    record = get_llm_record(study.trials[3])
    assert record is not None and record.attempts == 3 and record.fallback is None
    assert len(record.messages) == 6


def test_no_usable_answer_falls_back_and_says_why() -> None:
    refusals = iter(range(100))
    client = ScriptedClient(respond=lambda messages, schema: f"I refuse ({next(refusals)}).")
    study = _study(client, max_retries=2)
    study.optimize(quadratic, n_trials=5)
    assert len(study.trials) == 5 and all(t.state.name == "COMPLETE" for t in study.trials)
    for trial in study.trials[3:]:
        record = get_llm_record(trial)
        assert record is not None and record.attempts == 3
        assert record.fallback is not None
        assert record.fallback.startswith("no usable answer after 3 attempts: no value found")
        assert -7 <= trial.params["a"] <= 7
        assert record.proposal == trial.params
    usage = llm_usage(study)
    assert (usage.llm_trials, usage.fallbacks, usage.calls) == (2, 2, 6)
    assert usage.proposal_share == 0.0


def test_the_same_unusable_answer_twice_stops_the_re_asks() -> None:
    """A model that ignores the feedback and answers word for word as before would only spend
    the remaining attempts: the trial falls back at once and says so."""
    client = ScriptedClient(["a: 1, b: 2", "a: 1, b: 2", "a: 1, b: 2", "a: 3, b: 3"])
    study = _study(client, max_retries=5)
    study.optimize(quadratic, n_trials=5)
    record = get_llm_record(study.trials[4])
    assert record is not None and record.attempts == 2
    assert record.fallback is not None
    assert record.fallback.startswith(
        "no usable answer after 2 attempts: the same answer as before, despite the feedback "
        "(the point (a: 1, b: 2) was already evaluated (trial 3)"
    )
    assert [m.role for m in record.messages] == ["user", "assistant", "user", "assistant"]


def test_out_of_range_never_reaches_the_trial() -> None:
    client = ScriptedClient(respond=lambda messages, schema: "a: 8, b: 5")
    study = _study(client, max_retries=0)
    study.optimize(quadratic, n_trials=6)
    for trial in study.trials:
        assert -7 <= trial.params["a"] <= 7
        assert set(trial.params) == {"a", "b"}


def test_clip_moves_values_into_range_and_records_it() -> None:
    client = ScriptedClient(["a: 8, b: 5"])
    study = _study(client, proposal=AbsolutePoints(out_of_range="clip"))
    study.optimize(quadratic, n_trials=4)
    assert study.trials[3].params == {"a": 7.0, "b": 5.0}
    assert study.trials[3].user_attrs["llm_clipped"] == "a"


def test_duplicate_of_a_completed_trial_is_re_asked() -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 1, b: 2", "a: 1.5, b: 2"])
    study = _study(client)
    study.optimize(quadratic, n_trials=5)
    assert study.trials[4].params == {"a": 1.5, "b": 2.0}
    assert "was already evaluated (trial 3)" in client.calls[2][0][-1].content


def test_pending_trial_is_a_duplicate() -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 1, b: 2", "a: 3, b: 4"])
    study = _study(client, history=HistoryOptions(style="tutorial"))
    study.optimize(quadratic, n_trials=3)
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    first = study.ask(space)  # RUNNING, its proposal published to storage
    second = study.ask(space)
    assert first.params == {"a": 1.0, "b": 2.0}
    assert second.params == {"a": 3.0, "b": 4.0}
    assert "is being evaluated right now (trial 3)" in client.calls[2][0][-1].content
    assert "a: 1; b: 2; f(a,b): pending" in client.calls[1][0][0].content


def test_parallel_threads_never_propose_the_same_point() -> None:
    # A model that proposes the same point to everyone who sees the same history: without pending
    # trials in the prompt and the duplicate check, threads would collide.
    def respond(messages, schema):
        shown = messages[0].content.count("f(a,b): ")
        retry = sum(m.role == "assistant" for m in messages)
        return f"a: {shown / 10:.2f}, b: {retry / 10:.2f}"

    client = ScriptedClient(respond=respond)
    study = _study(client, max_retries=5, history=HistoryOptions(style="tutorial"))
    study.optimize(quadratic, n_trials=30, n_jobs=2)
    points = [tuple(t.params.values()) for t in study.trials]
    assert len(points) == len(set(points)) == 30
    assert llm_usage(study).fallbacks == 0


def test_provider_outage_falls_back_and_the_study_goes_on(caplog) -> None:
    client = ScriptedClient([ProviderUnavailableError("HTTP 503 after 4 attempts"), "a: 1, b: 2"])
    study = _study(client)
    with caplog.at_level(logging.WARNING):
        study.optimize(quadratic, n_trials=5)
    record = get_llm_record(study.trials[3])
    assert record is not None
    assert record.fallback == "provider error: ProviderUnavailableError: HTTP 503 after 4 attempts"
    assert study.trials[4].params == {"a": 1.0, "b": 2.0}
    assert "the LLM call failed" in caplog.text


def test_a_silent_random_search_is_logged_once_as_an_error(caplog) -> None:
    reason = "OpenAI model 'm' at http://127.0.0.1:9/v1 unavailable: connection error"
    client = ScriptedClient([ProviderUnavailableError(reason)] * 8)
    study = _study(client)
    with caplog.at_level(logging.WARNING):
        study.optimize(quadratic, n_trials=3 + 5)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert "the first 3 LLM trials all fell back" in message
    assert reason in message and "check that the server runs at base_url" in message


def test_no_outage_error_when_an_early_llm_trial_answers(caplog) -> None:
    down = ProviderUnavailableError("down")
    client = ScriptedClient([down, "a: 1, b: 2", down, down, down])
    study = _study(client)
    with caplog.at_level(logging.WARNING):
        study.optimize(quadratic, n_trials=3 + 5)
    assert not [r for r in caplog.records if r.levelno == logging.ERROR]


def test_any_client_exception_is_contained() -> None:
    client = ScriptedClient([RuntimeError("bug in a third-party client")])
    study = _study(client)
    study.optimize(quadratic, n_trials=4)
    assert study.trials[3].user_attrs["llm_fallback"].startswith("provider error: RuntimeError")


def test_on_error_raise_stops_the_study() -> None:
    client = ScriptedClient([ProviderUnavailableError("down")])
    study = _study(client, on_error="raise")
    with pytest.raises(ProviderUnavailableError):
        study.optimize(quadratic, n_trials=4)


def test_configuration_errors_always_raise() -> None:
    client = ScriptedClient([ProviderConfigError("OpenAI rejected the API key (HTTP 401)")])
    study = _study(client)
    with pytest.raises(ProviderConfigError, match="401"):
        study.optimize(quadratic, n_trials=4)


def test_token_budget_falls_back_with_one_warning(caplog) -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 2, b: 2"], tokens_per_char=1)
    study = _study(client, max_total_tokens=1)
    with caplog.at_level(logging.WARNING):
        study.optimize(quadratic, n_trials=7)
    assert study.trials[3].params == {"a": 1.0, "b": 2.0}
    for trial in study.trials[4:]:
        assert trial.user_attrs["llm_fallback"].startswith("token budget spent")
    assert len(client.calls) == 1
    assert caplog.text.count("token budget is spent") == 1


def test_near_duplicates_are_re_asked_with_the_distance_rule() -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 1.05, b: 2.02", "a: 1.5, b: 2\nFar enough."])
    study = _study(client, proposal=AbsolutePoints(min_distance=0.1))
    study.optimize(quadratic, n_trials=5)
    assert study.trials[4].params == {"a": 1.5, "b": 2.0}
    feedback = client.calls[2][0][-1].content
    assert "is only 0.05 away from (a: 1, b: 2) of trial 3" in feedback
    assert "at least 0.1 away" in feedback


def test_hints_name_the_best_point_and_the_least_explored_ranges() -> None:
    client = ScriptedClient(["a: 1, b: 2"])
    study = _study(client, proposal=AbsolutePoints(hints=True), n_startup_trials=0)
    for a, b in [(-6.5, -6.5), (-5.5, -6.0), (-6.0, -5.0)]:
        study.enqueue_trial({"a": a, "b": b})
    study.optimize(quadratic, n_trials=4)
    prompt = client.calls[0][0][0].content
    tail = prompt[prompt.index("Best so far") :]
    assert tail.startswith("Best so far: a: -6; b: -5; f(a,b): -149. Least explored so far: ")
    assert "a between -5 and -3 (0 of 3 points); b between -3 and -1 (0 of 3 points)." in tail


def test_json_answers_with_schema() -> None:
    client = ScriptedClient(respond=SchemaResponder(seed=3), supports_schema=True)
    study = _study(client)
    study.optimize(quadratic, n_trials=5)
    schema = client.calls[0][1]
    assert schema is not None and set(schema["properties"]) == {"a", "b", "reasoning"}
    assert "A JSON object" in client.calls[0][0][0].content
    assert llm_usage(study).proposals == 2


def test_text_format_with_ints_and_categoricals() -> None:
    def objective(trial: optuna.Trial) -> float:
        n = trial.suggest_int("layers", 1, 8)
        opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
        return n + (opt == "adam")

    client = ScriptedClient(["layers: 7, optimizer: Adam\nMore layers."])
    sampler = LLMSampler(
        model=client, n_startup_trials=2, prompt=PromptOptions(answer_format="text"), seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=3)
    assert study.trials[2].params == {"layers": 7, "optimizer": "adam"}
    assert "optimizer: one of adam, sgd" in client.calls[0][0][0].content


def test_dynamic_parameters_outside_the_relative_space_are_independent() -> None:
    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("a", -7, 7)
        if trial.number % 2:
            return a + trial.suggest_float("extra", 0, 1)
        return a

    client = ScriptedClient(respond=lambda m, s: "a: 0.5")
    study = _study(client, max_retries=0)
    study.optimize(objective, n_trials=8)
    assert all(
        "a:" in call[0][0].content and "extra" not in call[0][0].content for call in client.calls
    )
    assert all(0 <= t.params.get("extra", 0) <= 1 for t in study.trials)


def test_minimize_prompt_asks_for_the_minimum() -> None:
    client = ScriptedClient(["a: 1, b: 2"])
    sampler = LLMSampler(model=client, n_startup_trials=1, seed=0)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(quadratic, n_trials=2)
    assert "global minimum" in client.calls[0][0][0].content


def test_multi_objective_is_a_clear_error() -> None:
    sampler = LLMSampler(model=ScriptedClient(), n_startup_trials=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    with pytest.raises(ValueError, match="multi-objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)


def test_records_survive_an_rdb_storage_and_long_prompts_are_chunked(tmp_path) -> None:
    client = ScriptedClient(respond=lambda m, s: "a: 0.25, b: 0.75\n" + "Because " * 50)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sampler = LLMSampler(
        model=client, n_startup_trials=30, seed=0, prompt=PromptOptions(precision=None)
    )
    study = optuna.create_study(
        direction="maximize", sampler=sampler, storage=storage, study_name="s"
    )
    study.optimize(quadratic, n_trials=31)
    reloaded = optuna.load_study(study_name="s", storage=storage)
    trial = reloaded.trials[-1]
    assert trial.system_attrs["llm:conversation:n"] >= 2  # the prompt is longer than 2045 chars
    assert all(len(str(v)) <= 2045 for v in trial.system_attrs.values())
    record = get_llm_record(trial)
    assert record is not None
    assert [m.content for m in record.messages] == [
        client.calls[0][0][0].content,
        "a: 0.25, b: 0.75\n" + "Because " * 50,
    ]
    assert len(trial.user_attrs["llm_reasoning"]) <= 300


def test_reseed_rng_reseeds_the_independent_sampler() -> None:
    independent = RandomSampler(seed=0)
    sampler = LLMSampler(model=ScriptedClient(), independent_sampler=independent)
    before = independent._rng.rng.get_state()[1].copy()
    sampler.reseed_rng()
    assert (independent._rng.rng.get_state()[1] != before).any()


def test_seed_makes_startup_reproducible() -> None:
    def run() -> list[dict]:
        study = _study(ScriptedClient(respond=lambda m, s: "a: 1, b: 1"), seed=42)
        study.optimize(quadratic, n_trials=3)
        return [t.params for t in study.trials]

    assert run() == run()


def _sampler(**kwargs) -> LLMSampler:
    return LLMSampler(model=ScriptedClient(), **kwargs)


# Each bad value, and the name its error must say. The option groups validate their own fields
# (the old flat keyword arguments became fields of PromptOptions, HistoryOptions and the
# proposal kinds); the sampler validates the rest.
@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: _sampler(n_startup_trials=-1), "n_startup_trials must be non-negative"),
        (lambda: PromptOptions(search_std=0), "search_std must be positive"),
        (lambda: PromptOptions(budget=0), "budget must be an integer >= 1"),
        (lambda: PromptOptions(answer_format="xml"), "answer_format must be"),
        (lambda: HistoryOptions(mode="best"), "mode must be"),
        (lambda: HistoryOptions(best_k=-1), "best_k must be an integer >= 0"),
        (lambda: HistoryOptions(mode="best_recent", best_k=0, recent_k=0), "needs"),
        (lambda: HistoryOptions(max_tokens=0), "max_tokens must be an integer >= 1"),
        (lambda: PromptOptions(precision=0), "precision must be between"),
        (lambda: HistoryOptions(style="table"), "style must be one of 'csv', 'tutorial'"),
        (lambda: AbsolutePoints(min_distance=0), "min_distance must be positive"),
        (lambda: AbsolutePoints(n_candidates=0), "n_candidates must be an integer >= 1"),
        (lambda: AbsolutePoints(out_of_range="wrap"), "out_of_range must be"),
        (lambda: _sampler(max_retries=-1), "max_retries must be non-negative"),
        (lambda: _sampler(max_total_tokens=0), "max_total_tokens must be positive"),
        (lambda: _sampler(on_error="ignore"), "on_error must be"),
        (lambda: _sampler(base_url="http://127.0.0.1:1/v1"), "apply to model strings only"),
    ],
)
def test_bad_arguments_name_the_argument(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="matches no provider"):
        LLMSampler(model="my-model")
    with pytest.raises(ValueError, match="model must be"):
        LLMSampler(model=42)  # type: ignore[arg-type]


def test_several_candidates_the_best_scored_usable_one_is_evaluated() -> None:
    answer = (
        "a: 1, b: 2\n"  # repeats trial 3 below: dropped
        "a: 9, b: 9\n"  # out of range: dropped
        "a: 1.5, b: 0.5\n"  # usable, beside the worst startup point (1.44, 0.63)
        "a: 0.9, b: 4.8\n"  # usable, next to the best: chosen
        "Mix exploration and exploitation."
    )
    client = ScriptedClient(["a: 1, b: 2", answer])
    study = _study(client, proposal=AbsolutePoints(n_candidates=4))
    study.enqueue_trial({"a": 1.0, "b": 5.0})
    study.optimize(quadratic, n_trials=5)
    assert "Lines 1 to 4: 4 different new inputs" in client.calls[1][0][0].content
    trial = study.trials[4]
    assert trial.params == {"a": 0.9, "b": 4.8}
    record = get_llm_record(trial)
    assert record is not None and record.candidates == 2 and record.attempts == 1
    assert record.reasoning == "Mix exploration and exploitation."
    assert trial.user_attrs["llm_candidates"] == 2


def test_candidates_all_unusable_are_re_asked_with_every_reason() -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 1, b: 2\na: 8, b: 0", "a: 2, b: 2\na: 3, b: 3"])
    study = _study(client, proposal=AbsolutePoints(n_candidates=2))
    study.optimize(quadratic, n_trials=5)
    feedback = client.calls[2][0][-1].content
    assert "a=8 is outside its range" in feedback and "was already evaluated (trial 3)" in feedback
    assert "lines 1 to 2 each 'a: <number>, b: <number>'" in feedback
    assert study.trials[4].params in ({"a": 2.0, "b": 2.0}, {"a": 3.0, "b": 3.0})


def test_candidates_with_json_schema() -> None:
    def respond(messages, schema):
        assert schema is not None and schema["properties"]["candidates"]["minItems"] == 3
        points = '[{"a": 1, "b": 5}, {"a": 2, "b": 3}, {"a": -3, "b": 0}]'
        return f'{{"candidates": {points}, "reasoning": "r"}}'

    client = ScriptedClient(respond=respond, supports_schema=True)
    study = _study(client, proposal=AbsolutePoints(n_candidates=3))
    study.optimize(quadratic, n_trials=4)
    assert get_llm_record(study.trials[3]).candidates == 3  # type: ignore[union-attr]


def test_consecutive_prompts_share_their_prefix() -> None:
    # Prompt caches (llama.cpp, OpenAI, Gemini) reuse an unchanged prefix: each call's prompt must
    # start with the previous call's prompt up to the end of its history table.
    answers = iter(f"a: {x / 10}, b: {x / 7}" for x in range(1, 50))
    client = ScriptedClient(respond=lambda m, s: next(answers))
    study = _study(client, n_startup_trials=3, proposal=AbsolutePoints(hints=True))
    study.optimize(quadratic, n_trials=12)
    prompts = [call[0][0].content for call in client.calls]
    for before, after in zip(prompts, prompts[1:], strict=False):
        table_end = before.rindex("\n", 0, before.index("\n\nBest so far"))
        assert after.startswith(before[:table_end])


def test_feedback_shows_numbers_as_the_prompt_does() -> None:
    # A small model copies what it reads: feedback quoting a tried point at full precision made
    # the embedded model repeat that point digit for digit until it fell back.
    client = ScriptedClient(["a: -4.598482771025129, b: 2.267376562030762", "a: 1, b: 1"])
    study = _study(client, n_startup_trials=1)
    study.enqueue_trial({"a": -4.598482771025129, "b": 2.267376562030762})
    study.optimize(quadratic, n_trials=2)
    feedback = client.calls[1][0][-1].content
    assert "the point (a: -4.6, b: 2.27) was already evaluated (trial 0)" in feedback
    assert "4.598482771025129" not in feedback


def test_steps_from_best_evaluates_the_best_point_plus_the_change() -> None:
    client = ScriptedClient(["change_a: 0.5, change_b: -1\nA step from the best."])
    study = _study(client, proposal=StepsFromBest(), n_startup_trials=3)
    study.optimize(quadratic, n_trials=4)
    best = max(study.trials[:3], key=lambda t: t.value).params
    assert study.trials[3].params == pytest.approx({"a": best["a"] + 0.5, "b": best["b"] - 1})
    prompt = client.calls[0][0][0].content
    assert "'change_a: <number>, change_b: <number>'" in prompt
    assert "Each change_<name> is added to the best input so far" in prompt
    shown = f"a: {best['a']:.2f}, b: {best['b']:.2f}".replace(".00", "")
    assert f"Answer with changes to add to the best point so far ({shown})" in prompt
    record = get_llm_record(study.trials[3])
    assert record is not None and record.proposal == study.trials[3].params


def test_steps_from_best_with_a_schema_and_a_change_that_leaves_the_box() -> None:
    answers = iter(['{"change_a": 30, "change_b": 0, "reasoning": "far"}', None])

    def respond(messages, schema):
        assert set(schema["properties"]) == {"change_a", "change_b", "reasoning"}
        assert schema["properties"]["change_a"]["maximum"] == 14.0
        return next(answers) or '{"change_a": -0.25, "change_b": 0.5, "reasoning": "near"}'

    client = ScriptedClient(respond=respond, supports_schema=True)
    study = _study(client, proposal=StepsFromBest(), n_startup_trials=3)
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the optimum of quadratic: the best point
    study.optimize(quadratic, n_trials=4)
    assert study.trials[3].params == pytest.approx({"a": 0.75, "b": 5.5})
    record = get_llm_record(study.trials[3])
    assert record is not None and record.attempts == 2
    assert "outside its range" in record.messages[2].content


def test_steps_from_best_needs_linear_numeric_parameters() -> None:
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 1e-4, 1, log=True)
        return trial.suggest_float("x", 0, 1)

    study = _study(ScriptedClient(["change_lr: 0, change_x: 0"]), proposal=StepsFromBest())
    with pytest.raises(ValueError, match="StepsFromBest needs linear numeric parameters.*'lr'"):
        study.optimize(objective, n_trials=4)


def test_steps_from_best_lists_the_changes_already_tried_from_the_best() -> None:
    client = ScriptedClient(["change_a: 1, change_b: 0", "change_a: 0, change_b: 1"])
    study = _study(client, proposal=StepsFromBest(n_tried_changes=4), n_startup_trials=1)
    study.enqueue_trial({"a": 1.0, "b": 4.0})  # stays the best: quadratic peaks at (1, 5)
    study.optimize(quadratic, n_trials=3)
    second = client.calls[1][0][0].content
    assert "nearest first (do not repeat them):\nchange_a: 1; change_b: 0; f(a,b): -2\n" in second
    assert "Changes already tried" not in client.calls[0][0][0].content  # nothing tried yet
    with pytest.raises(ValueError, match="n_tried_changes must be an integer >= 0"):
        LLMSampler(model=client, proposal=StepsFromBest(n_tried_changes=-1))


def test_steps_from_best_widens_the_suggested_step_after_trials_without_a_new_best() -> None:
    client = ScriptedClient(
        ["change_a: 0, change_b: 1", "change_a: 0, change_b: -1", "change_a: 0.5, change_b: 0"]
    )
    study = _study(client, proposal=StepsFromBest(widen_after=2), n_startup_trials=1)
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the optimum: no trial ever beats it
    study.optimize(quadratic, n_trials=4)
    assert len(client.calls) == 3
    ends = [calls[0][0].content.rsplit("Answer with changes", 1)[1] for calls in client.calls]
    assert "Use steps of about 1.0 in different directions." in ends[0]  # 0 trials since
    assert "Use steps of about 1.0 in different directions." in ends[1]  # 1 trial since
    assert "about 2.0 in different directions: the last 2 trials found nothing better" in ends[2]
    with pytest.raises(ValueError, match="widen_after must be an integer >= 1"):
        LLMSampler(model=client, proposal=StepsFromBest(widen_after=0))
    with pytest.raises(ValueError, match="needs a step to widen"):
        LLMSampler(
            model=client,
            proposal=StepsFromBest(widen_after=3),
            prompt=PromptOptions(search_std=None),
        )


def test_steps_from_best_feedback_speaks_in_changes() -> None:
    # The embedded model, told "b=12.56 is outside its range" or "the point (a: 0.73, b: 5.48)
    # was already evaluated", answered with absolute values in its change_ fields.
    client = ScriptedClient(["change_a: 0, change_b: 6", "change_a: 0, change_b: 0.5"])
    study = _study(client, proposal=StepsFromBest(), n_startup_trials=1)
    study.enqueue_trial({"a": 1.0, "b": 4.5})
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the best point from here on
    study.optimize(quadratic, n_trials=3)
    feedback = client.calls[1][0][-1].content
    assert (
        "change_b=6 takes b to 11, outside its range [-7, 7]: "
        "change_b must be between -12 and 2." in feedback
    )
    client = ScriptedClient(["change_a: 0, change_b: -0.5", "change_a: 0.1, change_b: 0.1"])
    study = _study(client, proposal=StepsFromBest(min_distance=0.25), n_startup_trials=2)
    study.enqueue_trial({"a": 1.0, "b": 4.5})
    study.enqueue_trial({"a": 1.0, "b": 5.0})
    study.optimize(quadratic, n_trials=3)
    first, second = (client.calls[k][0][-1].content for k in (1, 2))
    assert (
        "the changes (change_a: 0, change_b: -0.5) lead to the point (a: 1, b: 4.5), which was "
        "already evaluated (trial 0)" in first
    )
    assert (
        "the changes (change_a: 0.1, change_b: 0.1) lead to the point (a: 1.1, b: 5.1), "
        "which is only 0.1 away from (a: 1, b: 5) of trial 1" in second
    )


def test_clipped_step_feedback_quotes_the_models_changes() -> None:
    # change_b: 4 from b = 5 stops at the edge, b = 7, which was tried: the feedback must quote
    # the 4 the model wrote (not the 2 the sampler applied) and say the edge moved the point.
    client = ScriptedClient(["change_a: 0, change_b: 4", "change_a: 0.5, change_b: 0"])
    study = _study(client, proposal=StepsFromBest(out_of_range="clip"), n_startup_trials=2)
    study.enqueue_trial({"a": 1.0, "b": 7.0})
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the best point
    study.optimize(quadratic, n_trials=3)
    feedback = client.calls[1][0][-1].content
    assert (
        "the changes (change_a: 0, change_b: 4) lead to the point (a: 1, b: 7, stopped at the "
        "edge of the range for b), which was already evaluated (trial 0)" in feedback
    )
    assert study.trials[2].params == {"a": 1.5, "b": 5.0}


# --------------------------------------------------------------------------- repeats at precision


@pytest.mark.parametrize(
    ("precision", "repeat"),
    [(3, True), (4, False), (None, False)],  # 1.23 twice at 3 digits; 1.234 vs 1.235 at 4
)
def test_a_rounded_copy_of_a_tried_row_is_a_repeat(precision: int | None, repeat: bool) -> None:
    """The model reads 1.23 for a = 1.2349 and, copying the row, answers 1.2341: a different
    float, but the same point as the prompt shows it, so it is re-asked."""
    client = ScriptedClient(["a: 1.2341, b: 2", "a: 1.5, b: 2"])
    study = _study(client, n_startup_trials=1, prompt=PromptOptions(precision=precision))
    study.enqueue_trial({"a": 1.2349, "b": 2.0})
    study.optimize(quadratic, n_trials=2)
    record = get_llm_record(study.trials[1])
    assert record is not None and record.fallback is None
    if repeat:
        assert study.trials[1].params == {"a": 1.5, "b": 2.0}
        assert record.attempts == 2
        feedback = client.calls[1][0][-1].content
        assert "the point (a: 1.23, b: 2) was already evaluated (trial 0)" in feedback
    else:
        assert study.trials[1].params == {"a": 1.2341, "b": 2.0}
        assert record.attempts == 1 and len(client.calls) == 1


def test_a_rounded_copy_of_a_running_trial_is_a_repeat() -> None:
    client = ScriptedClient(["a: 3.001, b: 4", "a: 3.004, b: 4", "a: 3.5, b: 4"])
    study = _study(client)
    study.optimize(quadratic, n_trials=3)
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    first = study.ask(space)  # RUNNING, its proposal published
    second = study.ask(space)
    assert first.params == {"a": 3.001, "b": 4.0}
    assert second.params == {"a": 3.5, "b": 4.0}
    feedback = client.calls[2][0][-1].content
    assert "the point (a: 3, b: 4) is being evaluated right now (trial 3)" in feedback


# --------------------------------------------------------------------------- presets


GUIDED = StepsFromBest(
    n_candidates=2, min_distance=0.1, out_of_range="reflect", hints=True, stall_after=10
)


def _local_client(*answers: str) -> ScriptedClient:
    """A scripted client that says it runs in-process, as LlamaCppClient does."""
    client = ScriptedClient(answers)
    client.runs_locally = True  # type: ignore[attr-defined]
    return client


def test_presets_name_a_proposal_and_auto_follows_where_the_model_runs() -> None:
    assert PRESETS["guided"].proposal == GUIDED
    assert PRESETS["tutorial"].proposal == AbsolutePoints()
    remote, local = ScriptedClient(), _local_client()
    assert LLMSampler(model=remote, preset="guided").proposal == GUIDED
    assert LLMSampler(model=local, preset="tutorial").proposal == AbsolutePoints()
    assert LLMSampler(model=remote, preset="auto").proposal == AbsolutePoints()
    assert LLMSampler(model=local, preset="auto").proposal == GUIDED
    assert LLMSampler(model=remote).proposal == AbsolutePoints()  # "auto" is the default
    assert LLMSampler(model=local).proposal == GUIDED
    with pytest.raises(
        ValueError, match="preset must be one of .auto., .tutorial., .guided., .advised."
    ):
        LLMSampler(model=remote, preset="fast")  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", ["auto", "tutorial", "guided"])
def test_an_explicit_proposal_wins_over_the_preset(preset: str) -> None:
    mine = AbsolutePoints(n_candidates=2, out_of_range="clip")
    assert LLMSampler(model=_local_client(), preset=preset, proposal=mine).proposal == mine
    steps = StepsFromBest(n_tried_changes=0)
    assert LLMSampler(model=ScriptedClient(), preset=preset, proposal=steps).proposal == steps


def test_the_guided_preset_asks_for_two_steps_from_the_best_point() -> None:
    answer = "change_a: 0.5, change_b: 0\nchange_a: 0, change_b: 9"
    client = _local_client(answer)
    study = _study(client, n_startup_trials=3)
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the best point: every change starts here
    study.optimize(quadratic, n_trials=4)
    prompt = client.calls[0][0][0].content
    assert "Lines 1 to 2: 2 different new inputs" in prompt
    assert "Answer with changes to add to the best point so far (a: 1, b: 5)" in prompt
    assert "Least explored so far" in prompt  # the hints
    record = get_llm_record(study.trials[3])
    assert record is not None and record.attempts == 1 and record.candidates == 2
    assert study.trials[3].params in (
        {"a": 1.5, "b": 5.0},
        {"a": 1.0, "b": 0.0},  # b = 14 reflected at the edge 7
    )
    tutorial = ScriptedClient(["a: 1, b: 2"])
    _study(tutorial, preset="guided", proposal=AbsolutePoints()).optimize(quadratic, n_trials=4)
    assert "Answer with changes" not in tutorial.calls[0][0][0].content


# --------------------------------------------------------------------------- option groups


KINDS = {
    "prompt": "PromptOptions",
    "history": "HistoryOptions",
    "proposal": "AbsolutePoints or StepsFromBest",
}


@pytest.mark.parametrize(
    ("group", "value"),
    [
        ("prompt", {"search_std": 1}),
        ("history", {"mode": "all"}),
        ("proposal", {"n_candidates": 3}),
        ("proposal", "guided"),
        ("prompt", HistoryOptions()),
        ("history", PromptOptions()),
    ],
)
def test_a_dict_or_a_wrong_object_for_an_option_group_is_a_clear_error(group, value) -> None:
    with pytest.raises(ValueError) as info:
        LLMSampler(model=ScriptedClient(), **{group: value})
    message = str(info.value)
    assert message.startswith(
        f"{group} must be {KINDS[group]} or None, got {type(value).__name__}"
    )
    example = KINDS[group].split()[0]
    assert f"for example {group}={example}(...)" in message


def test_template_vars_that_redefine_a_prompt_variable_fail_at_construction() -> None:
    """Not at the first LLM trial, after the startup trials ran."""
    with pytest.raises(ValueError, match=r"template_vars may not redefine \['budget'\]"):
        LLMSampler(model=ScriptedClient(), prompt=PromptOptions(template_vars={"budget": 3}))


# --------------------------------------------------------------------------- pickling


def test_a_pickled_sampler_resumes_the_study(tmp_path) -> None:
    client = ScriptedClient(["a: 1, b: 2", "a: 1.5, b: 4\nOn.", "a: 0.5, b: 5\nAgain."])
    sampler = LLMSampler(
        model=client,
        prompt=PromptOptions(budget=8, template_vars={"unused": 1}),
        history=HistoryOptions(style="tutorial"),
        proposal=AbsolutePoints(min_distance=0.1),
        n_startup_trials=3,
        seed=0,
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        direction="maximize", sampler=sampler, storage=storage, study_name="s"
    )
    study.optimize(quadratic, n_trials=4)
    before = [t.params for t in study.trials]

    restored = pickle.loads(pickle.dumps(sampler))
    assert restored.proposal == sampler.proposal
    assert restored.client is not client and restored.client.model == "scripted"
    resumed = optuna.load_study(study_name="s", storage=storage, sampler=restored)
    resumed.optimize(quadratic, n_trials=2)
    trials = resumed.trials
    assert [t.params for t in trials[:4]] == before
    # The rest of the script answered: it was pickled with the client.
    assert [t.params for t in trials[4:]] == [{"a": 1.5, "b": 4.0}, {"a": 0.5, "b": 5.0}]
    assert [get_llm_record(t).reasoning for t in trials[4:]] == ["On.", "Again."]  # type: ignore[union-attr]
    assert len(client.calls) == 1  # the original is untouched
    prompt = restored.client.calls[-1][0][0].content
    assert "a: 1.5; b: 4; f(a,b): -1.25" in prompt  # the options survived: tutorial rows...
    assert "iterations (8)" in prompt  # ...the budget
    assert "Now you are at iteration 5." in prompt


def test_a_pickled_sampler_keeps_its_random_stream() -> None:
    """Without a seed the stream is drawn once, at construction: a pickled copy (a worker
    process) draws the same point for each trial number, so it never repeats another's."""
    sampler = LLMSampler(model=ScriptedClient(), n_startup_trials=10)
    copy = pickle.loads(pickle.dumps(sampler))
    points = []
    for each in (sampler, copy):
        study = optuna.create_study(sampler=each)
        study.optimize(quadratic, n_trials=4)
        points.append([t.params for t in study.trials])
    assert points[0] == points[1]
    assert len({tuple(p.values()) for p in points[0]}) == 4


EXPLICIT_KEY = "sk-test-EXPLICIT-5a4b3c2d1e0f9a8b7c6d"
ENV_KEY = "sk-test-FROMENV-0f1e2d3c4b5a69788796"


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "GOOGLE_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", ENV_KEY.replace("sk-", "AIza-"))


@pytest.mark.parametrize(
    ("model", "base_url"),
    [("NAME", "http://127.0.0.1:9/v1"), ("gemini:NAME", "http://127.0.0.1:9")],
)
def test_a_sampler_built_from_a_model_string_pickles_without_its_key(
    provider_env: None, model: str, base_url: str
) -> None:
    sampler = LLMSampler(
        model=model,
        base_url=base_url,
        api_key=EXPLICIT_KEY,
        provider_options={"timeout": 5.0},
        proposal=StepsFromBest(n_candidates=2),
        seed=3,
    )
    data = pickle.dumps(sampler)
    assert EXPLICIT_KEY.encode() not in data
    assert EXPLICIT_KEY[8:].encode() not in data  # not even its secret part
    restored = pickle.loads(data)
    assert type(restored.client) is type(sampler.client)
    assert repr(restored.client) == repr(sampler.client)  # model, endpoint and JSON mode
    assert restored.proposal == StepsFromBest(n_candidates=2)
    assert EXPLICIT_KEY not in repr(restored.__dict__)


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_a_pickled_model_string_sampler_resumes_through_the_sdk(
    provider_env: None, provider: str, tmp_path
) -> None:
    answers = iter(f'{{"a": {x / 4}, "b": 0.5, "reasoning": "step {x}"}}' for x in range(1, 99))
    with StubLLMServer(responder=lambda body: next(answers)) as server:
        url = server.openai_base_url if provider == "openai" else server.url
        model = "openai:stub-model" if provider == "openai" else "gemini:gemini-stub"
        sampler = LLMSampler(
            model=model,
            base_url=url,
            api_key=EXPLICIT_KEY,
            provider_options={"max_retries": 0, "timeout": 5.0},
            n_startup_trials=2,
            seed=0,
        )
        storage = f"sqlite:///{tmp_path / 'study.db'}"
        study = optuna.create_study(
            direction="maximize", sampler=sampler, storage=storage, study_name="s"
        )
        study.optimize(quadratic, n_trials=3)
        data = pickle.dumps(sampler)
        resumed = optuna.load_study(study_name="s", storage=storage, sampler=pickle.loads(data))
        resumed.optimize(quadratic, n_trials=2)
    assert EXPLICIT_KEY.encode() not in data
    records = [get_llm_record(t) for t in resumed.trials]
    assert [r is not None for r in records] == [False, False, True, True, True]
    assert all(r.fallback is None for r in records[2:])  # type: ignore[union-attr]
    assert [t.params["a"] for t in resumed.trials[2:]] == [0.25, 0.5, 0.75]
    # The restored client reads its key from the environment (the explicit one was not kept).
    assert len(server.requests) == 3 and all(r.had_credentials for r in server.requests)


# --------------------------------------------------------------------------- workers


def test_workers_sharing_a_seed_never_repeat_each_others_random_points() -> None:
    """Two samplers with one seed take turns on one study, as two workers do: the default
    independent sampler draws per trial number, so trials 0..9 get ten different points.
    ``RandomSampler(seed)`` in each worker would draw the same sequence twice."""

    def alternate(make) -> list[tuple[float, ...]]:
        storage = optuna.storages.InMemoryStorage()
        workers = [
            optuna.create_study(storage=storage, study_name="shared", sampler=make()),
            optuna.load_study(storage=storage, study_name="shared", sampler=make()),
        ]
        for number in range(10):
            workers[number % 2].optimize(quadratic, n_trials=1)
        return [tuple(t.params.values()) for t in workers[0].trials]

    default = alternate(lambda: LLMSampler(model=ScriptedClient(), n_startup_trials=10, seed=7))
    assert len(default) == len(set(default)) == 10
    again = alternate(lambda: LLMSampler(model=ScriptedClient(), n_startup_trials=10, seed=7))
    assert again == default  # reproducible from the seed
    shared = alternate(
        lambda: LLMSampler(
            model=ScriptedClient(), n_startup_trials=10, independent_sampler=RandomSampler(7)
        )
    )
    assert shared[0] == shared[1]  # what per-trial streams prevent


def test_a_presets_steps_become_absolute_points_where_a_parameter_has_no_step() -> None:
    """A categorical parameter has no step from the best point: the guided preset asks for
    absolute points there with its other settings; an explicit StepsFromBest still raises."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        return x + (trial.suggest_categorical("opt", ["adam", "sgd"]) == "adam")

    client = _local_client("x: 0.5, opt: adam\nx: 0.25, opt: sgd")
    sampler = LLMSampler(model=client, n_startup_trials=2, seed=0)
    assert sampler.proposal == GUIDED
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=3)
    prompt = client.calls[0][0][0].content
    assert "Answer with changes" not in prompt and "Lines 1 to 2" in prompt
    record = get_llm_record(study.trials[2])
    assert record is not None and record.fallback is None and record.candidates == 2


# --------------------------------------------------------------------------- hostile answers

SPACE_AB = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
HOSTILE = [
    '{"a": 1' + "0" * 400 + ', "b": 1}',  # float() overflows
    '{"a": ' + "1" * 5000 + ', "b": 1}',  # int() refuses more than 4300 digits
    "[" * 100_000,  # the JSON decoder recurses
    '{"a": ' + "[" * 100_000,
    "<think>" * 40_000,
    "*" * 300_000,
    "a: " + "1" * 300_000 + "x",
    "\x00\xff\ud7ff" * 1000,
]


def _all_complete(study: optuna.Study, n: int) -> None:
    assert len(study.trials) == n
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        assert SPACE_AB["a"]._contains(trial.params["a"])


@pytest.mark.parametrize("schema", [False, True])
def test_hostile_answers_never_crash_or_stall_a_study(schema: bool) -> None:
    answers = iter(HOSTILE * 2)
    client = ScriptedClient(respond=lambda m, s: next(answers), supports_schema=schema)
    study = _study(client, n_startup_trials=1, max_retries=1)
    started = time.process_time()
    study.optimize(quadratic, n_trials=1 + len(HOSTILE))
    assert time.process_time() - started < 30  # quadratic parsing took minutes per answer
    _all_complete(study, 1 + len(HOSTILE))
    for trial in study.trials[1:]:
        record = get_llm_record(trial)
        assert record is not None and record.fallback is not None
        assert record.fallback.startswith("no usable answer after 2 attempts")
        assert record.proposal == trial.params


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(hostile, min_size=1, max_size=4), st.booleans())
def test_a_study_answered_with_any_hostile_text_completes_every_trial(texts, schema) -> None:
    answers = iter(texts * 10)
    client = ScriptedClient(respond=lambda m, s: next(answers), supports_schema=schema)
    study = _study(client, n_startup_trials=1, max_retries=1)
    study.optimize(quadratic, n_trials=3)
    _all_complete(study, 3)
    for trial in study.trials[1:]:
        record = get_llm_record(trial)
        assert record is not None and record.proposal == trial.params


def test_hostile_answers_through_the_openai_sdk_end_in_fallbacks(monkeypatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("OPENAI_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    answers = iter(HOSTILE[:4] * 2)
    with StubLLMServer(responder=lambda body: next(answers)) as server:
        sampler = LLMSampler(
            model="openai:stub-model",
            base_url=server.openai_base_url,
            api_key=EXPLICIT_KEY,
            provider_options={"max_retries": 0, "timeout": 20.0},
            n_startup_trials=1,
            max_retries=1,
            seed=0,
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(quadratic, n_trials=5)
        assert len(server.requests) == 8
    _all_complete(study, 5)
    fallbacks = [get_llm_record(t).fallback for t in study.trials[1:]]  # type: ignore[union-attr]
    assert all(f is not None and f.startswith("no usable answer") for f in fallbacks), fallbacks
    assert "not a finite number" in fallbacks[0]  # the 401-digit number: overflow, re-asked


def test_a_huge_answer_is_cut_recorded_and_sent_back_as_an_excerpt(tmp_path) -> None:
    huge = "<think>" + "hmm " * 100_000 + "</think>\nI need more time."
    client = ScriptedClient([huge, "a: 1, b: 2\nDone."])
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        direction="maximize",
        sampler=LLMSampler(model=client, n_startup_trials=1, seed=0),
        storage=storage,
    )
    study.optimize(quadratic, n_trials=2)
    assert study.trials[1].params == {"a": 1.0, "b": 2.0}
    resent = client.calls[1][0][-2]  # the answer as the re-ask quotes it
    assert resent.role == "assistant" and len(resent.content) < EXCERPT_CHARS + 60
    assert f"[… {len(huge) - EXCERPT_CHARS} characters left out …]" in resent.content
    assert resent.content.endswith("I need more time.")
    trial = study.trials[1]
    assert trial.user_attrs["llm_answer_cut"] == len(huge) - MAX_ANSWER_CHARS
    record = get_llm_record(trial)
    assert record is not None and record.answer_cut == len(huge) - MAX_ANSWER_CHARS
    assert record.messages[1].content == resent.content  # stored once, as the same excerpt
    stored = sum(len(str(v)) for v in trial.system_attrs.values())
    assert stored < 3 * EXCERPT_CHARS + len(record.messages[0].content) * 2


def test_the_feedback_quotes_at_most_a_bounded_list_of_problems() -> None:
    many = "\n".join(f"a: {8 + i / 1000:.3f}, b: 1" for i in range(3000))
    client = ScriptedClient([many, "a: 1, b: 1\na: 2, b: 2\na: 3, b: 3"])
    study = _study(client, n_startup_trials=1, proposal=AbsolutePoints(n_candidates=3))
    study.optimize(quadratic, n_trials=2)
    feedback = client.calls[1][0][-1].content
    assert len(feedback) < 2000 and "outside its range" in feedback
    assert study.trials[1].user_attrs["llm_attempts"] == 2


def test_an_answer_that_is_no_text_is_an_unusable_answer() -> None:
    client = ScriptedClient([Completion(text=None, model="m"), "a: 1, b: 2"])  # type: ignore[arg-type]
    study = _study(client, n_startup_trials=1)
    study.optimize(quadratic, n_trials=2)
    assert study.trials[1].params == {"a": 1.0, "b": 2.0}
    assert "the answer was empty" in client.calls[1][0][-1].content


@pytest.mark.parametrize(
    "text", ["a: 1,5, b: 2,5", "a: 1,5; b: 2", '{"a": "1,5", "b": 2}', "a = -0,3\nb = 2"]
)
def test_a_decimal_comma_is_re_asked_with_the_reason(text: str) -> None:
    client = ScriptedClient([text, "a: 1.5, b: 2.5"])
    study = _study(client, n_startup_trials=1)
    study.optimize(quadratic, n_trials=2)
    assert study.trials[1].params == {"a": 1.5, "b": 2.5}
    assert "write numbers with a decimal point" in client.calls[1][0][-1].content


# --------------------------------------------------------------------------- token counts


@pytest.mark.parametrize(
    ("prompt_tokens", "completion_tokens", "counted"),
    [
        (-(10**9), 5, (0, 5)),
        (10**12, -1, (0, 0)),
        (2.5, True, (0, 0)),
        ("12", None, (0, 0)),
        (10_000_001, 10_000_000, (0, 10_000_000)),
    ],
)
def test_invalid_token_counts_are_unknown_and_cannot_defeat_the_budget(
    prompt_tokens, completion_tokens, counted
) -> None:
    answers = iter(["a: 1, b: 1", "a: 2, b: 2", "a: 3, b: 3", "a: 4, b: 4"])
    bad = Completion("a: 0.5, b: 0.5", "m", prompt_tokens, completion_tokens)  # type: ignore[arg-type]
    fine = Completion("a: 1, b: 1", "m", 600, 500)
    client = ScriptedClient([bad, fine, bad], respond=lambda m, s: next(answers))
    budget = 1000 + sum(counted)
    study = _study(client, n_startup_trials=1, max_total_tokens=budget)
    study.optimize(quadratic, n_trials=5)
    attrs = [t.user_attrs for t in study.trials[1:]]
    assert (attrs[0]["llm_prompt_tokens"], attrs[0]["llm_completion_tokens"]) == counted
    assert (attrs[1]["llm_prompt_tokens"], attrs[1]["llm_completion_tokens"]) == (600, 500)
    # 1100 valid tokens on top: whatever the bad counts said, the rest falls back on the budget.
    spent = f"token budget spent ({1100 + sum(counted)} >= {budget})"
    assert all(a["llm_fallback"].startswith(spent) for a in attrs[2:])
    assert len(client.calls) == 2


# --------------------------------------------------------------------------- enqueued trials


def test_an_enqueued_partial_point_is_recorded_as_evaluated() -> None:
    client = ScriptedClient(["a: 3, b: 4\nStep.", "a: 5, b: -1"])
    study = _study(client, n_startup_trials=1)
    study.optimize(quadratic, n_trials=1)
    study.enqueue_trial({"a": 1.5})
    study.enqueue_trial({"a": 2, "b": 3})  # all of it: nothing to ask
    study.optimize(quadratic, n_trials=3)
    assert [t.params for t in study.trials[1:]] == [
        {"a": 1.5, "b": 4.0},
        {"a": 2.0, "b": 3.0},
        {"a": 5.0, "b": -1.0},
    ]
    record = get_llm_record(study.trials[1])
    assert record is not None and record.proposal == {"a": 1.5, "b": 4.0}
    assert get_llm_record(study.trials[2]) is None
    assert len(client.calls) == 2


def test_an_enqueued_partial_point_that_falls_back_is_recorded_as_evaluated() -> None:
    client = ScriptedClient(respond=lambda m, s: "no idea")
    study = _study(client, n_startup_trials=1, max_retries=0)
    study.optimize(quadratic, n_trials=1)
    study.enqueue_trial({"b": -2.5})
    study.optimize(quadratic, n_trials=1)
    trial = study.trials[1]
    record = get_llm_record(trial)
    assert record is not None and record.fallback is not None
    assert trial.params["b"] == -2.5 and record.proposal == trial.params


def test_a_waiting_enqueued_point_is_a_repeat() -> None:
    study: optuna.Study

    def respond(messages, schema):
        if len(messages) == 1:  # while this trial is sampled, someone enqueues (1, 2)
            study.enqueue_trial({"a": 1, "b": 2})
            return "a: 1, b: 2"
        return "a: 3, b: 4"

    client = ScriptedClient(respond=respond)
    study = _study(client, n_startup_trials=1, history=HistoryOptions(style="tutorial"))
    study.optimize(quadratic, n_trials=3)
    assert [t.params for t in study.trials[1:]] == [{"a": 3.0, "b": 4.0}, {"a": 1.0, "b": 2.0}]
    feedback = client.calls[1][0][-1].content
    assert "the point (a: 1, b: 2) is being evaluated right now (trial 2)" in feedback
    record = get_llm_record(study.trials[1])
    assert record is not None and record.attempts == 2 and record.fallback is None
    assert len(client.calls) == 2  # the enqueued trial itself asked nothing


# --------------------------------------------------------------------------- names and templates


def test_a_parameter_named_reasoning_works_in_json_and_text() -> None:
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("reasoning", 0, 1) + trial.suggest_float("b", 0, 1)

    client = ScriptedClient(respond=SchemaResponder(seed=1), supports_schema=True)
    study = optuna.create_study(
        direction="maximize", sampler=LLMSampler(model=client, n_startup_trials=2, seed=0)
    )
    study.optimize(objective, n_trials=4)
    schema = client.calls[0][1]
    assert schema is not None and schema["required"] == ["b", "reasoning", "reason"]
    prompt = client.calls[0][0][0].content
    assert '{"b": <number>, "reasoning": <number>, "reason": "<one sentence>"}' in prompt
    assert '"reason" is a brief (one sentence) explanation' in prompt
    assert llm_usage(study).proposals == 2
    assert study.trials[2].user_attrs["llm_reasoning"] == "A random point of the search space."

    text = ScriptedClient(["reasoning: 0.25, b: 0.75\nA sentence."])
    study = optuna.create_study(
        direction="maximize", sampler=LLMSampler(model=text, n_startup_trials=2, seed=0)
    )
    study.optimize(objective, n_trials=3)
    assert study.trials[2].params == {"reasoning": 0.25, "b": 0.75}
    assert study.trials[2].user_attrs["llm_reasoning"] == "A sentence."


def test_names_and_choices_with_commas_quotes_and_newlines_keep_the_history_readable() -> None:
    choices = ["x, y", 'say "hi"', "line\nbreak", "plain"]

    def objective(trial: optuna.Trial) -> float:
        a = trial.suggest_float("a,b: c", -7, 7)
        return a + choices.index(trial.suggest_categorical("opt", choices))

    answers = iter([json.dumps({"a,b: c": x / 4, "opt": "x, y"}) for x in range(20)])
    client = ScriptedClient(respond=lambda m, s: next(answers))  # a text client
    study = optuna.create_study(
        direction="maximize", sampler=LLMSampler(model=client, n_startup_trials=4, seed=0)
    )
    study.optimize(objective, n_trials=5)
    assert study.trials[4].params == {"a,b: c": 0.0, "opt": "x, y"}
    prompt = client.calls[0][0][0].content
    assert "A JSON object" in prompt  # the text format cannot carry the name
    assert client.calls[0][1] is None  # a text client gets no schema
    header = prompt.index('"a,b: c",opt,f\n')
    table = prompt[header:].split("\n\n")[0].splitlines()[1:]
    assert len(table) == 4  # one line per trial, whatever the choices hold
    for trial, line in zip(study.trials[:4], table, strict=True):
        shown = json.dumps(trial.params["opt"]) if trial.params["opt"] != "plain" else "plain"
        assert line.split(",", 1)[1].startswith(shown)
    assert '"line\\nbreak"' in prompt


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{{ history_table }} {{ typo }}", "undefined variable.*typo"),
        ("{% if %}", "not valid Jinja"),
        ("{{ history_table }} {{ budget + 'x' }}", "fails to render"),
        ("{{ history_table | nonexistent_filter }}", "not valid Jinja"),
        ("prompts/mine.txt", "does not exist"),
        ("mine.txt", "does not exist"),
        ("mine.jinja", "does not exist"),
        ("templates/props", "does not exist"),
    ],
)
def test_a_broken_template_fails_when_the_sampler_is_built(template: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LLMSampler(model=ScriptedClient(), prompt=PromptOptions(template=template, budget=9))


def test_a_template_failing_without_history_fails_at_once_when_the_llm_starts_at_once() -> None:
    template = "Best: {{ best.line }}. {{ history_table }}"
    LLMSampler(model=ScriptedClient(), prompt=PromptOptions(template=template))
    with pytest.raises(ValueError, match="PromptOptions.template: .*undefined"):
        LLMSampler(
            model=ScriptedClient(), prompt=PromptOptions(template=template), n_startup_trials=0
        )


def test_template_vars_and_steps_are_in_the_rendered_check() -> None:
    template = "{{ step_base_line }} {{ note }} {{ history_table }}"
    with pytest.raises(ValueError, match="undefined variable.*note"):
        LLMSampler(model=ScriptedClient(), prompt=PromptOptions(template=template))
    LLMSampler(
        model=ScriptedClient(),
        prompt=PromptOptions(template=template, template_vars={"note": "Go."}),
        proposal=StepsFromBest(),
    )
