from __future__ import annotations

import csv
import json
from pathlib import Path

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection
import pytest

from optuna_llm_sampler._history import estimate_tokens
from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._prompt import answer_examples
from optuna_llm_sampler._prompt import build_context
from optuna_llm_sampler._prompt import CONTEXT_VARIABLES
from optuna_llm_sampler._prompt import feedback_message
from optuna_llm_sampler._prompt import format_number
from optuna_llm_sampler._prompt import format_param
from optuna_llm_sampler._prompt import least_explored
from optuna_llm_sampler._prompt import load_template
from optuna_llm_sampler._prompt import looks_like_path
from optuna_llm_sampler._prompt import render_prompt
from optuna_llm_sampler._prompt import suggested_step
from optuna_llm_sampler._prompt import tried_changes


AB = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}


def _context(rows, **overrides):
    kwargs = dict(
        search_space=AB,
        rows=rows,
        n_rows_total=len(rows),
        direction=StudyDirection.MAXIMIZE,
        step_number=len(rows),
        budget=400,
        search_std=1.0,
        expected_optimum=50,
        task_description=None,
        answer_format="text",
        precision=4,
        history_style="tutorial",  # the rows these tests read (build_context defaults to csv)
    )
    kwargs.update(overrides)
    return build_context(**kwargs)


def test_default_template_is_the_tutorials_prompt() -> None:
    rows = [HistoryEntry(0, {"a": -0.3, "b": 2.9}, -12.345678)]
    [message] = render_prompt(load_template(), _context(rows))
    assert message.role == "user"
    text = message.content
    assert text.startswith("You are an optimization assistant, helping me find the global maximum")
    assert "within a limited number of iterations (400)" in text
    assert "Line 1: a new input 'a: <number>, b: <number>'" in text
    assert "Try to use step size of 1.0" in text
    assert "The expected optimum value should be over 50." in text
    floats = render_prompt(load_template(), _context(rows, expected_optimum=50.0))[0].content
    assert "should be over 50. " in floats and "should be over 12.5. " in (
        render_prompt(load_template(), _context(rows, expected_optimum=12.5))[0].content
    )
    assert "Search between -7 and 7." in text
    assert "a: -0.3; b: 2.9; f(a,b): -12.35" in text
    assert text.endswith(
        "Now you are at iteration 1. Please provide the results in the indicated "
        "format. Do not provide any additional texts."
    )


def test_prefix_is_stable_as_history_grows() -> None:
    rows = [HistoryEntry(i, {"a": float(i) / 3, "b": 1.0}, float(i)) for i in range(30)]
    first = render_prompt(load_template(), _context(rows[:10]))[0].content
    later = render_prompt(load_template(), _context(rows))[0].content
    cut = first.index("Now you are at iteration")
    assert later.startswith(first[:cut].rstrip("\n"))


def test_pending_points_listed_after_the_history() -> None:
    rows = [
        HistoryEntry(0, {"a": 1.0, "b": 1.0}, 3.0),
        HistoryEntry(1, {"a": 2.0, "b": 2.0}, None),
    ]
    text = render_prompt(load_template(), _context(rows))[0].content
    table_end = text.index("a: 1; b: 1; f(a,b): 3")
    pending = text.index("being evaluated right now")
    assert table_end < pending < text.index("a: 2; b: 2; f(a,b): pending")


def test_minimize_json_and_mixed_space() -> None:
    space = {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "layers": IntDistribution(1, 8),
        "opt": CategoricalDistribution(["adam", "sgd"]),
    }
    rows = [HistoryEntry(0, {"lr": 0.001234567, "layers": 3, "opt": "adam"}, 0.5)]
    context = _context(
        rows,
        search_space=space,
        direction=StudyDirection.MINIMIZE,
        answer_format="json",
        expected_optimum=None,
        search_std=None,
        task_description="Training loss of a small MLP.",
    )
    text = render_prompt(load_template(), context)[0].content
    assert "global minimum" in text
    assert '"lr": <number>, "layers": <integer>, "opt": <one of the choices>' in text
    assert "lr: number between 1e-5 and 0.1 (log scale)" in text
    assert "layers: integer between 1 and 8" in text
    assert "opt: one of adam, sgd" in text
    assert "lr: 0.001235; layers: 3; opt: adam; f(lr,layers,opt): 0.5" in text
    assert "What the function is:** Training loss of a small MLP." in text
    assert "step size of" not in text and "expected optimum" not in text


def test_custom_template_from_string_and_file(tmp_path: Path) -> None:
    rows = [HistoryEntry(0, {"a": 1.0, "b": 2.0}, 3.0)]
    source = (
        "[system]\nYou tune {{ param_names | join(' and ') }}.\n"
        "[user]\n{{ history_table }}\n{{ note }}"
    )
    messages = render_prompt(load_template(source), _context(rows, extra={"note": "Go."}))
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == "You tune a and b."
    assert messages[1].content == "a: 1; b: 2; f(a,b): 3\nGo."
    path = tmp_path / "mine.j2"
    path.write_text("Iteration {{ step_number }}")
    assert render_prompt(load_template(path), _context(rows))[0].content == "Iteration 1"
    assert render_prompt(load_template(str(path)), _context(rows))[0].content == "Iteration 1"


def test_template_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_template(str(tmp_path / "missing.j2"))
    with pytest.raises(ValueError, match="not valid Jinja"):
        load_template("{% if %}")
    with pytest.raises(ValueError, match="undefined variable.*typo"):
        render_prompt(load_template("{{ typo }}"), _context([]))
    with pytest.raises(ValueError, match="may not redefine"):
        _context([], extra={"budget": 3})


@pytest.mark.parametrize(
    ("value", "precision", "text"),
    [
        (92.123456, 4, "92.12"),
        (1e-7, 4, "1e-7"),
        (-0.30000000000000004, None, "-0.30000000000000004"),
        (12345678.0, 4, "1.235e7"),
        (3, 4, "3"),
    ],
)
def test_format_number(value: float, precision: int | None, text: str) -> None:
    assert format_number(value, precision) == text


def test_csv_history_is_lean_and_keeps_the_prefix_stable() -> None:
    rows = [HistoryEntry(i, {"a": -0.30211 + i, "b": 2.9123}, -12.3456 * i) for i in range(5)]
    context = _context(rows, history_style="csv", precision=3)
    text = render_prompt(load_template(), context)[0].content
    assert "a,b and f(a,b) pairs.\na,b,f(a,b)\n-0.3,2.91,0\n0.7,2.91,-12.3\n" in text
    tutorial = render_prompt(load_template(), _context(rows, precision=3))[0].content
    assert estimate_tokens(text) < estimate_tokens(tutorial)
    later = _context(rows + rows, history_style="csv", precision=3)
    later = render_prompt(load_template(), later)[0].content
    assert later.startswith(text[: text.index("Now you are at iteration")].rstrip("\n"))


@pytest.mark.parametrize(
    ("value", "distribution", "precision", "text"),
    [
        (5.1234, FloatDistribution(-7, 7), 3, "5.12"),
        (-0.30001, FloatDistribution(-7, 7), 3, "-0.3"),
        (-0.001, FloatDistribution(-7, 7), 3, "0"),
        (5.1234, FloatDistribution(-7, 7), 4, "5.123"),
        (123.456, FloatDistribution(0, 1000), 3, "123"),
        (0.0012345, FloatDistribution(1e-5, 1, log=True), 3, "0.00123"),
        (0.35, FloatDistribution(0, 1, step=0.05), 3, "0.35"),
        (5.1234, FloatDistribution(-7, 7), None, "5.1234"),
        (7, IntDistribution(1, 8), 3, "7"),
    ],
)
def test_parameters_keep_digits_relative_to_their_range(value, distribution, precision, text):
    assert format_param(value, distribution, precision) == text


def test_least_explored_slices() -> None:
    rows = [HistoryEntry(i, {"a": -6.9 + i * 0.1, "b": 6.5}, 1.0) for i in range(10)]
    hints = least_explored(rows, AB)
    assert hints == [
        "a between -5 and -3 (0 of 10 points)",
        "b between -7 and -5 (0 of 10 points)",
    ]


def test_tried_changes_are_nearest_first_and_rounded() -> None:
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    base = {"a": 0.1, "b": 5.1}
    rows = [
        HistoryEntry(0, {"a": -3.0, "b": 1.0}, 10.0),
        HistoryEntry(1, {"a": 0.1, "b": 5.1}, 90.0),  # the base itself: not a change
        HistoryEntry(2, {"a": 0.1, "b": 6.1}, 80.123456),  # 6.1 - 5.1 is 0.9999999999999996
        HistoryEntry(3, {"a": -0.4, "b": 5.1}, None),
        HistoryEntry(4, {"a": 1.1, "b": 4.1}, 60.0),
    ]
    lines = tried_changes(rows, space, base, limit=3, precision=3, function="f(a,b)")
    assert lines == [
        "change_a: -0.5; change_b: 0; f(a,b): pending",
        "change_a: 0; change_b: 1; f(a,b): 80.1",
        "change_a: 1; change_b: -1; f(a,b): 60",
    ]
    full = tried_changes(rows, space, base, limit=8, precision=None, function="f")
    assert full[1] == "change_a: 0; change_b: 1.0; f: 80.123456"  # as repr, not 0.99999…
    assert len(full) == 4
    assert tried_changes(rows, space, base, limit=0, precision=3, function="f") == []


def _step_context_kwargs(space, rows, base) -> dict:
    """build_context's arguments for a steps-from-best prompt after ``rows``."""
    return dict(
        search_space=space,
        rows=rows,
        n_rows_total=len(rows),
        direction=StudyDirection.MAXIMIZE,
        step_number=len(rows),
        budget=None,
        search_std=1.0,
        expected_optimum=None,
        task_description=None,
        answer_format="text",
        precision=3,
        step_base=base,
        history_style="tutorial",
    )


def test_suggested_step_doubles_with_trials_since_the_best_up_to_half_the_range() -> None:
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(0, 2)}

    def rows(best_at: int, n: int) -> list[HistoryEntry]:
        return [
            HistoryEntry(k, {"a": 0.0, "b": 1.0}, -1.0 if k == best_at else 0.0) for k in range(n)
        ] + [HistoryEntry(n, {"a": 1.0, "b": 1.0}, None)]  # a running trial does not count

    def step(best_at: int, n: int, widen_after: int | None = 4) -> tuple[float, int]:
        return suggested_step(
            rows(best_at, n),
            space,
            direction=StudyDirection.MINIMIZE,
            search_std=0.5,
            widen_after=widen_after,
        )

    assert step(9, 10) == (0.5, 0)  # the last trial is the best
    assert step(6, 10) == (0.5, 3)
    assert step(5, 10) == (1.0, 4)
    assert step(1, 10) == (2.0, 8)
    assert step(0, 40) == (7.0, 39)  # capped at half the widest range, [-7, 7]
    assert step(0, 40, widen_after=None) == (0.5, 39)
    none_done = [HistoryEntry(0, {"a": 0.0, "b": 1.0}, None)]
    assert suggested_step(
        none_done, space, direction=StudyDirection.MINIMIZE, search_std=0.5, widen_after=4
    ) == (0.5, 0)


def test_a_widened_step_is_said_at_the_prompt_end_and_the_prefix_stays() -> None:
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    rows = [HistoryEntry(k, {"a": 0.0, "b": float(k)}, 1.0 - k) for k in range(6)]
    kwargs = _step_context_kwargs(space, rows, {"a": 0.0, "b": 0.0})
    plain = render_prompt(load_template(), build_context(**kwargs))[0].content
    wide = render_prompt(
        load_template(), build_context(**kwargs, step_size=4.0, step_since_best=5)
    )[0].content
    assert plain.endswith(
        "Answer with changes to add to the best point so far (a: 0, b: 0). "
        "Use steps of about 1.0 in different directions.\n\n"
        "Now you are at iteration 6. Please provide the results in the indicated format. "
        "Do not provide any additional texts."
    )
    assert (
        "Use steps of about 4.0 in different directions: the last 5 trials found nothing "
        "better, so look further away." in wide
    )
    cut = plain.index("Answer with changes")
    assert wide[:cut] == plain[:cut]  # only the per-call end changes: the cached prefix holds


def test_tried_changes_render_before_the_answer_request() -> None:
    space = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
    rows = [
        HistoryEntry(0, {"a": 0.0, "b": 5.0}, 90.0),
        HistoryEntry(1, {"a": 0.0, "b": 4.0}, 70.0),
    ]
    base = {"a": 0.0, "b": 5.0}
    kwargs = _step_context_kwargs(space, rows, base)
    tried = tried_changes(rows, space, base, limit=8, precision=3, function="f(a,b)")
    text = render_prompt(load_template(), build_context(**kwargs, step_tried=tried))[0].content
    listing = (
        "Changes already tried from the best point, nearest first (do not repeat them):\n"
        "change_a: 0; change_b: -1; f(a,b): 70\n\nAnswer with changes"
    )
    assert listing in text
    plain = render_prompt(load_template(), build_context(**kwargs))[0].content
    assert "Changes already tried" not in plain
    assert "\n\nAnswer with changes" in plain


def test_context_variables_name_every_variable_a_template_can_use() -> None:
    # The sampler rejects a clashing template_vars key at construction from this set alone.
    assert set(_context([])) == CONTEXT_VARIABLES


@pytest.mark.parametrize(
    "template",
    ["prompts/mine.j2", "mine.txt", "MINE.TXT", "./mine", "a/b", "mine.jinja2", " mine.j2 "],
)
def test_a_template_that_looks_like_a_path_but_names_no_file_is_an_error(
    template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert looks_like_path(template)
    with pytest.raises(ValueError, match="does not exist; pass an existing file, or the"):
        load_template(template)


@pytest.mark.parametrize(
    "template",
    ["Propose {{ param_names | join('/') }}", "{{ history_table }} in a/b.txt", "Plain words"],
)
def test_jinja_sources_and_plain_text_are_templates(template: str) -> None:
    assert not looks_like_path(template)
    load_template(template)


def test_a_txt_template_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("Iteration {{ step_number }}")
    assert render_prompt(load_template(str(path)), _context([]))[0].content == "Iteration 0"


@pytest.mark.parametrize(
    "template", ["{{ budget + 'x' }}", "{{ history | first | attr('nope') | int + none }}"]
)
def test_a_template_that_fails_to_render_is_a_value_error(template: str) -> None:
    with pytest.raises(ValueError, match="fails to render|undefined variable"):
        render_prompt(load_template(template), _context([HistoryEntry(0, {"a": 1, "b": 2}, 3)]))


NASTY = ["x, y", 'say "hi"', "line\nbreak", "a: b", "semi;colon", " padded ", "", "plain"]


@pytest.mark.parametrize("style", ["csv", "tutorial"])
def test_names_and_choices_that_hold_delimiters_are_quoted_in_the_history(style: str) -> None:
    space = {"a,b": FloatDistribution(-7, 7), "opt\n": CategoricalDistribution(NASTY)}
    rows = [HistoryEntry(i, {"a,b": i / 4, "opt\n": choice}, i) for i, choice in enumerate(NASTY)]
    context = _context(rows, search_space=space, history_style=style, precision=3)
    table = context["history_table"].split("\n")
    assert len(table) == len(NASTY)  # one line per row
    for row, line in zip(rows, table, strict=True):
        choice = row.params["opt\n"]
        shown = choice if choice == "plain" else json.dumps(choice)
        a = format_param(row.params["a,b"], space["a,b"], 3)
        if style == "csv":
            assert line == f"{a},{shown},{row.number}"
            # Every field comes back with a CSV reader that knows the quoting.
            fields = next(csv.reader([line.replace('\\"', '""')], skipinitialspace=False))
            assert len(fields) == 3
        else:
            assert line == f'"a,b": {a}; "opt\\n": {shown}; f: {row.number}'
    header = '"a,b","opt\\n",f' if style == "csv" else ""
    assert context["history_header"] == header
    assert context["function"] == "f"
    text_example, json_example = answer_examples(space)
    assert json.loads(json_example.replace("<number>", "1").replace("<one of the choices>", "1"))
    assert '"x, y"' in text_example and '"line\\nbreak"' in text_example


def test_the_reasoning_key_follows_the_names_in_the_examples_and_the_prompt() -> None:
    space = {"reasoning": FloatDistribution(0, 1)}
    context = _context([], search_space=space, answer_format="json")
    assert context["reasoning_key"] == "reason"
    assert context["json_example"] == '{"reasoning": <number>, "reason": "<one sentence>"}'
    text = render_prompt(load_template(), context)[0].content
    assert '"reason" is a brief (one sentence) explanation' in text
    many = _context([], search_space=space, answer_format="json", n_candidates=2)
    assert many["json_example"].endswith('"reason": "<one sentence>"}')


def test_feedback_quotes_a_bounded_excerpt_of_the_problems() -> None:
    context = _context([])
    message = feedback_message("problem. " * 10_000, context)
    assert len(message.content) < 1700 and "…" in message.content
