"""The optuna-dashboard note of each LLM trial: its Markdown, and TrialNoteCallback writing it
after each trial (the sampler itself writes none)."""

from __future__ import annotations

import logging
import random
import sys
from typing import Any

import optuna
import pytest

from optuna_llm_sampler import LLMRecord
from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler import Message
from optuna_llm_sampler.integrations import _dashboard_note
from optuna_llm_sampler.integrations import trial_note_markdown
from optuna_llm_sampler.integrations import TrialNoteCallback
from optuna_llm_sampler.integrations import write_study_note
from optuna_llm_sampler.integrations import write_trial_note
from optuna_llm_sampler.providers import ScriptedClient
from tests._notes import note_of


optuna_dashboard = pytest.importorskip("optuna_dashboard")

# A sentence only the scripted answers contain.
REASONING = "The car must swing back first, so b grows while a stays near zero."


def quadratic(trial: optuna.Trial) -> float:
    a = trial.suggest_float("a", -7, 7)
    b = trial.suggest_float("b", -7, 7)
    return -((a - 1) ** 2) - (b - 5) ** 2


def answer_near_the_optimum(seed: int = 0):
    rng = random.Random(seed)

    def respond(messages: Any, schema: Any) -> str:
        return f"a: {rng.uniform(-0.5, 2):.4f}, b: {rng.uniform(3, 7):.4f}\n{REASONING}"

    return respond


# --------------------------------------------------------------------------- the trial note


def _record(**changes: Any) -> LLMRecord:
    prompt = "\n".join(
        [f"prompt line {i}" for i in range(40)]
        + ["x" * 250, "Now you are at iteration 30. Please provide the results."]
    )
    record = LLMRecord(
        model="gpt-4o",
        attempts=2,
        prompt_tokens=1200,
        completion_tokens=40,
        latency_s=2.345,
        reasoning="Step towards the best point | carefully.",
        messages=[
            Message("user", prompt),
            Message("assistant", "a: 99, b: 2\n```nested fence```"),
            Message("user", "Your answer could not be used: a is out of range."),
            Message("assistant", "a: 1.5, b: 2\n" + REASONING),
        ],
        proposal={"a": 1.5, "b": 2.0},
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def test_trial_note_shows_reasoning_proposal_costs_answers_and_the_end_of_the_prompt() -> None:
    note = trial_note_markdown(30, _record())
    assert note.startswith("#### Trial 30: proposed by `gpt-4o`\n")
    assert "> Step towards the best point | carefully." in note
    assert "| a | b |\n| --- | --- |\n| 1.5 | 2 |" in note
    assert "attempts **2** · tokens **1200** prompt + **40** completion" in note
    assert "latency **2.35 s**" in note
    # Both answers and the feedback between them, in order; a fence inside cannot close ours.
    assert note.index("**Answer 1:**") < note.index("**Feedback:**") < note.index("**Answer 2:**")
    assert "````text\na: 99, b: 2\n```nested fence```\n````" in note
    # The last 25 prompt lines only; long lines wrapped, so the page does not widen.
    assert "its last 25 of 42 lines" in note
    assert "prompt line 17\n" in note and "prompt line 16\n" not in note
    assert "Now you are at iteration 30." in note
    assert max(len(line) for line in note.splitlines()) <= 92
    assert "Fallback" not in note


def test_fallback_note_names_the_reason_and_the_independent_sampler() -> None:
    record = _record(fallback="no usable answer after 4 attempts: a is out of range")
    record.reasoning = ""
    note = trial_note_markdown(3, record)
    assert note.startswith("#### Trial 3: independent sampler (fallback from `gpt-4o`)")
    assert "**Fallback:** no usable answer after 4 attempts: a is out of range" in note
    # A provider that never answered: no messages, still a short, valid note.
    bare = trial_note_markdown(4, LLMRecord(model="m", attempts=1, fallback="provider error: X"))
    assert "Prompt" not in bare and "Answer" not in bare and "provider error: X" in bare


def test_clipped_values_are_marked() -> None:
    note = trial_note_markdown(1, _record(clipped=["a"]))
    assert "| 1.5 (clipped) | 2 |" in note


# --------------------------------------------------------------------------- after each trial


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write warns once per process: each test starts as a fresh process would."""
    monkeypatch.setattr(_dashboard_note, "_warned", set())


def _llm_study(*, notes: bool = True, **sampler_options: Any) -> optuna.Study:
    client = ScriptedClient(respond=answer_near_the_optimum())
    sampler = LLMSampler(model=client, n_startup_trials=3, seed=0, **sampler_options)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    callbacks = [TrialNoteCallback()] if notes else []
    study.optimize(quadratic, n_trials=6, callbacks=callbacks)
    return study


def test_the_callback_writes_a_note_per_llm_trial() -> None:
    study = _llm_study()
    notes = [note_of(study, t) for t in study.trials]
    assert notes[:3] == ["", "", ""]  # startup trials: no LLM, no note
    for trial, note in zip(study.trials[3:], notes[3:], strict=True):
        assert f"#### Trial {trial.number}: proposed by `scripted`" in note
        assert REASONING in note
        assert f"Now you are at iteration {trial.number}." in note


def test_notes_can_be_turned_off() -> None:
    """Without the callback no note is written: the sampler writes none itself."""
    study = _llm_study(notes=False)
    assert all(note_of(study, t) == "" for t in study.trials)
    assert "llm_model" in study.trials[-1].user_attrs


def test_a_fallback_gets_its_note_and_an_enqueued_trial_none() -> None:
    client = ScriptedClient(["no answer here", "a: 1.5, b: 4\nNear."])
    sampler = LLMSampler(model=client, n_startup_trials=1, max_retries=0, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"a": 0.0, "b": 0.0})
    study.optimize(quadratic, n_trials=1, callbacks=[TrialNoteCallback()])
    study.optimize(quadratic, n_trials=2, callbacks=[TrialNoteCallback()])
    enqueued, fallback, proposed = (note_of(study, t) for t in study.trials)
    assert enqueued == ""
    assert fallback.startswith("#### Trial 1: independent sampler (fallback from `scripted`)")
    assert "**Fallback:** no usable answer after 1 attempts" in fallback
    assert proposed.startswith("#### Trial 2: proposed by `scripted`") and "> Near." in proposed


def test_without_optuna_dashboard_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    study = _llm_study()
    monkeypatch.delitem(sys.modules, "optuna_dashboard")
    assert all(note_of(study, t) == "" for t in study.trials)
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    assert not write_trial_note(study, study.trials[-1], _record())
    assert not write_study_note(study, "text")


def test_a_failing_note_never_fails_a_trial(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("storage is read-only")

    monkeypatch.setattr(optuna_dashboard, "save_note", broken)
    with caplog.at_level(logging.WARNING):
        study = _llm_study()
    assert len(study.trials) == 6 and all(t.value is not None for t in study.trials)
    warnings = [r for r in caplog.records if "could not write the dashboard note" in r.message]
    assert len(warnings) == 1  # once per process, not once per trial
    assert "storage is read-only" in warnings[0].message


def test_write_study_note_replaces_the_note() -> None:
    study = optuna.create_study()
    assert write_study_note(study, "## First")
    assert write_study_note(study, "## Second\nmore")
    assert note_of(study) == "## Second\nmore"
