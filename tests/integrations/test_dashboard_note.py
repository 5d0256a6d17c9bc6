"""The optuna-dashboard note of each LLM trial: its Markdown, and TrialNoteCallback writing it
after each trial (the sampler itself writes none)."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
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
from tests._notes import answer_near_the_optimum
from tests._notes import note_of
from tests._notes import quadratic
from tests._notes import REASONING


optuna_dashboard = pytest.importorskip("optuna_dashboard")


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


def test_notes_are_written_without_optuna_dashboard_and_it_reads_them_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The note writer has no optional dependency: a study run where optuna-dashboard cannot be
    imported gets its notes, and optuna-dashboard, installed afterwards, shows them."""
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    for name in [m for m in sys.modules if m.startswith("optuna_dashboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    study = _llm_study()
    assert write_study_note(study, "## Written without optuna-dashboard")
    assert write_trial_note(study, study.trials[-1], _record())
    monkeypatch.undo()  # "installed later"
    assert note_of(study) == "## Written without optuna-dashboard"
    notes = [note_of(study, t) for t in study.trials]
    assert notes[:3] == ["", "", ""]
    for trial, note in zip(study.trials[3:-1], notes[3:-1], strict=True):
        assert note.startswith(f"#### Trial {trial.number}: proposed by `scripted`")
        assert REASONING in note
    assert notes[-1] == trial_note_markdown(study.trials[-1].number, _record())


class _TrialOf:
    """What ``optuna_dashboard.save_note`` reads from a trial: its storage, study and id."""

    def __init__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.storage = study._storage
        self.study = study
        self._trial_id = trial._trial_id


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.booleans(), st.sampled_from([None, 0, 1]), st.text(max_size=5000)),
        min_size=1,
        max_size=6,
    ),
    padding=st.integers(min_value=0, max_value=3 * _dashboard_note.NOTE_CHUNK_CHARS),
)
def test_optuna_dashboard_reads_every_note_written_in_its_format(writes, padding) -> None:
    """Any body, of any length (one chunk, several, then a shorter one), written by this module
    or by optuna-dashboard's own save_note in any order, reads back as the latest body, with
    optuna-dashboard's version counting every write."""
    from optuna_dashboard._note import get_note_from_system_attrs

    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trials = study.get_trials(deepcopy=False)
    latest: dict[int | None, tuple[str, int]] = {}
    for ours, which, text in writes:
        body = text + "x" * (padding if len(latest) % 2 else 0)
        trial = None if which is None else trials[which]
        if ours:
            trial_id = None if trial is None else trial._trial_id
            _dashboard_note.save_note_attrs(study._storage, study._study_id, trial_id, body)
        else:
            optuna_dashboard.save_note(study if trial is None else _TrialOf(study, trial), body)
        key = None if trial is None else trial._trial_id
        latest[key] = (body, latest.get(key, ("", 0))[1] + 1)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for trial_id, (body, version) in latest.items():
        assert get_note_from_system_attrs(attrs, trial_id) == {"version": version, "body": body}


def test_a_failing_note_never_fails_a_trial(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("storage is read-only")

    monkeypatch.setattr(_dashboard_note, "save_note_attrs", broken)
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


# --------------------------------------------------------------------------- model text is inert

# What Markdown itself produces from a note; anything else in the HTML came from the model.
_MARKDOWN_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "blockquote", "table", "thead", "tbody", "tr",
    "th", "td", "strong", "em", "code", "pre", "ul", "ol", "li", "hr", "br",
}  # fmt: skip
HOSTILE = [
    "<img src=http://x>",
    "![](http://x)",
    "![alt][r]\n\n[r]: http://x",
    '<a href="http://x">x</a>',
    "<script>fetch('http://x')</script>",
    "[click](javascript:alert(1))",
    "<http://x>",
    "&lt;img src=http://x&gt;",
    "\\<img src=http://x>",
    "`<img src=http://x>`",
    "```\n<img src=http://x>\n```",
    "<!-- x --><iframe src=http://x>",
    "| a |\n| --- |\n| <img src=http://x> |",
]


def _html(note: str) -> str:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML on, as optuna-dashboard renders notes (rehype-raw), and tables.
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(note)


def _assert_inert(note: str) -> None:
    html = _html(note)
    # Text is escaped in the HTML (&lt;), so every "<" starts a real element.
    for tag, attributes in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)([^>]*)>", html):
        assert tag.lower() in _MARKDOWN_TAGS, (tag, note)
        assert not re.search(r"\b(src|href|on\w+)\s*=", attributes, re.I), (attributes, note)
    assert "<!--" not in html, note


model_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300))


@settings(max_examples=300, deadline=None)
@given(
    reasoning=model_text,
    answer=model_text,
    feedback=model_text,
    prompt=model_text,
    fallback=st.one_of(st.none(), model_text),
    model=model_text,
    name=model_text,
    choice=model_text,
)
def test_whatever_the_model_says_the_note_renders_no_html_image_or_link(
    reasoning, answer, feedback, prompt, fallback, model, name, choice
) -> None:
    """Reasoning, answers, feedback, the prompt, the fallback reason, the model's name, a
    parameter's name and a categorical choice: for any text, the rendered note holds only the
    markup the note itself makes, so the dashboard page loads nothing the model names."""
    record = LLMRecord(
        model=model or "m",
        attempts=2,
        reasoning=reasoning,
        fallback=fallback,
        messages=[
            Message("user", prompt),
            Message("assistant", answer),
            Message("user", feedback),
            Message("assistant", answer + reasoning),
        ],
        proposal={name or "a": choice, "b": 1.5},
        clipped=[name or "a"],
    )
    _assert_inert(trial_note_markdown(7, record))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_reasoning_is_shown_as_its_text(text: str) -> None:
    """Inert, and still readable: the quote renders as the model's words."""
    note = trial_note_markdown(1, _record(reasoning=text))
    _assert_inert(note)
    quote = _html(note).split("<blockquote>", 1)[1].split("</blockquote>", 1)[0]
    import html as html_module

    plain = html_module.unescape(re.sub(r"<[^>]+>", "", quote))
    # Pipes may still make a table (harmless): compare the words.
    assert re.sub(r"[\s|-]+", " ", plain).strip() == re.sub(r"[\s|-]+", " ", text).strip()
