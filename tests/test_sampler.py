from __future__ import annotations

import logging

import optuna
from optuna.distributions import FloatDistribution
from optuna.samplers import RandomSampler
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import ProviderConfigError
from optuna_llm_sampler import ProviderUnavailableError
from optuna_llm_sampler import ScriptedClient
from optuna_llm_sampler._prompt import format_param
from tests._answers import SchemaResponder


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
    study = _study(client, budget=10)
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
    study = _study(client, out_of_range="clip")
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
    study = _study(client, history_style="tutorial")
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
    study = _study(client, max_retries=5, history_style="tutorial")
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
    study = _study(client, min_distance=0.1)
    study.optimize(quadratic, n_trials=5)
    assert study.trials[4].params == {"a": 1.5, "b": 2.0}
    feedback = client.calls[2][0][-1].content
    assert "is only 0.05 away from (a: 1, b: 2) of trial 3" in feedback
    assert "at least 0.1 away" in feedback


def test_hints_name_the_best_point_and_the_least_explored_ranges() -> None:
    client = ScriptedClient(["a: 1, b: 2"])
    study = _study(client, hints=True, n_startup_trials=0)
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
    sampler = LLMSampler(model=client, n_startup_trials=2, answer_format="text", seed=0)
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
    sampler = LLMSampler(model=client, n_startup_trials=30, seed=0, precision=None)
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


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_startup_trials": -1}, "n_startup_trials must be non-negative"),
        ({"search_std": 0}, "search_std must be positive"),
        ({"budget": 0}, "budget must be positive"),
        ({"answer_format": "xml"}, "answer_format must be"),
        ({"history": "best"}, "history must be"),
        ({"history_best_k": -1}, "history_best_k and history_recent_k"),
        ({"history": "best_recent", "history_best_k": 0, "history_recent_k": 0}, "needs"),
        ({"max_history_tokens": 0}, "max_history_tokens must be positive"),
        ({"precision": 0}, "precision must be between"),
        ({"history_style": "table"}, "history_style must be one of csv, tutorial"),
        ({"min_distance": 0}, "min_distance must be positive"),
        ({"n_candidates": 0}, "n_candidates must be at least 1"),
        ({"out_of_range": "wrap"}, "out_of_range must be"),
        ({"max_retries": -1}, "max_retries must be non-negative"),
        ({"max_total_tokens": 0}, "max_total_tokens must be positive"),
        ({"on_error": "ignore"}, "on_error must be"),
        ({"base_url": "http://127.0.0.1:1/v1"}, "apply to model strings only"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LLMSampler(model=ScriptedClient(), **kwargs)


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
    study = _study(client, n_candidates=4)
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
    study = _study(client, n_candidates=2)
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
    study = _study(client, n_candidates=3)
    study.optimize(quadratic, n_trials=4)
    assert get_llm_record(study.trials[3]).candidates == 3  # type: ignore[union-attr]


def test_consecutive_prompts_share_their_prefix() -> None:
    # Prompt caches (llama.cpp, OpenAI, Gemini) reuse an unchanged prefix: each call's prompt must
    # start with the previous call's prompt up to the end of its history table.
    answers = iter(f"a: {x / 10}, b: {x / 7}" for x in range(1, 50))
    client = ScriptedClient(respond=lambda m, s: next(answers))
    study = _study(client, n_startup_trials=3, hints=True)
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
    study = _study(client, steps_from_best=True, n_startup_trials=3)
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
    study = _study(client, steps_from_best=True, n_startup_trials=3)
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

    study = _study(ScriptedClient(["change_lr: 0, change_x: 0"]), steps_from_best=True)
    with pytest.raises(ValueError, match="steps_from_best needs linear numeric parameters.*'lr'"):
        study.optimize(objective, n_trials=4)


def test_steps_from_best_lists_the_changes_already_tried_from_the_best() -> None:
    client = ScriptedClient(["change_a: 1, change_b: 0", "change_a: 0, change_b: 1"])
    study = _study(client, steps_from_best=True, n_startup_trials=1, n_tried_changes=4)
    study.enqueue_trial({"a": 1.0, "b": 4.0})  # stays the best: quadratic peaks at (1, 5)
    study.optimize(quadratic, n_trials=3)
    second = client.calls[1][0][0].content
    assert "nearest first (do not repeat them):\nchange_a: 1; change_b: 0; f(a,b): -2\n" in second
    assert "Changes already tried" not in client.calls[0][0][0].content  # nothing tried yet
    with pytest.raises(ValueError, match="n_tried_changes must be non-negative"):
        LLMSampler(model=client, n_tried_changes=-1)


def test_steps_from_best_widens_the_suggested_step_after_trials_without_a_new_best() -> None:
    client = ScriptedClient(
        ["change_a: 0, change_b: 1", "change_a: 0, change_b: -1", "change_a: 0.5, change_b: 0"]
    )
    study = _study(client, steps_from_best=True, n_startup_trials=1, widen_steps_after=2)
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the optimum: no trial ever beats it
    study.optimize(quadratic, n_trials=4)
    assert len(client.calls) == 3
    ends = [calls[0][0].content.rsplit("Answer with changes", 1)[1] for calls in client.calls]
    assert "Use steps of about 1.0 in different directions." in ends[0]  # 0 trials since
    assert "Use steps of about 1.0 in different directions." in ends[1]  # 1 trial since
    assert "about 2.0 in different directions: the last 2 trials found nothing better" in ends[2]
    with pytest.raises(ValueError, match="widen_steps_after must be at least 1"):
        LLMSampler(model=client, widen_steps_after=0)
    with pytest.raises(ValueError, match="widen_steps_after needs a search_std"):
        LLMSampler(model=client, widen_steps_after=3, search_std=None)


def test_steps_from_best_feedback_speaks_in_changes() -> None:
    # The embedded model, told "b=12.56 is outside its range" or "the point (a: 0.73, b: 5.48)
    # was already evaluated", answered with absolute values in its change_ fields.
    client = ScriptedClient(["change_a: 0, change_b: 6", "change_a: 0, change_b: 0.5"])
    study = _study(client, steps_from_best=True, n_startup_trials=1)
    study.enqueue_trial({"a": 1.0, "b": 4.5})
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the best point from here on
    study.optimize(quadratic, n_trials=3)
    feedback = client.calls[1][0][-1].content
    assert (
        "change_b=6 takes b to 11, outside its range [-7, 7]: "
        "change_b must be between -12 and 2." in feedback
    )
    client = ScriptedClient(["change_a: 0, change_b: -0.5", "change_a: 0.1, change_b: 0.1"])
    study = _study(client, steps_from_best=True, n_startup_trials=2, min_distance=0.25)
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
    study = _study(client, steps_from_best=True, n_startup_trials=2, out_of_range="clip")
    study.enqueue_trial({"a": 1.0, "b": 7.0})
    study.enqueue_trial({"a": 1.0, "b": 5.0})  # the best point
    study.optimize(quadratic, n_trials=3)
    feedback = client.calls[1][0][-1].content
    assert (
        "the changes (change_a: 0, change_b: 4) lead to the point (a: 1, b: 7, stopped at the "
        "edge of the range for b), which was already evaluated (trial 0)" in feedback
    )
    assert study.trials[2].params == {"a": 1.5, "b": 5.0}
