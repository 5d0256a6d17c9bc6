"""No answer, however strange, makes the parser raise anything but AnswerError (a re-ask)."""

from __future__ import annotations

import contextlib
import time

from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._answer import AnswerError
from optuna_llm_sampler._answer import parse_answer
from optuna_llm_sampler._answer import parse_candidates
from optuna_llm_sampler._space import snap_params


SPACE = {
    "a": FloatDistribution(-7, 7),
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "n": IntDistribution(1, 9, step=2),
    "opt": CategoricalDistribution(["adam", "sgd", 3, None]),
}

pieces = st.sampled_from(
    [
        "a",
        "lr",
        "n",
        "opt",
        ":",
        "=",
        ",",
        ";",
        "\n",
        "{",
        "}",
        "[",
        "]",
        '"',
        "```",
        "<think>",
        "</think>",
        "1e309",
        "-",
        "+",
        ".",
        "nan",
        "inf",
        "adam",
        "None",
        " ",
        "**",
        "candidates",
    ]
)
answers = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(pieces, st.floats().map(str), st.integers().map(str)), max_size=40).map(
        "".join
    ),
)


@settings(max_examples=400, deadline=None)
@given(answers)
def test_any_text_is_a_proposal_or_an_answer_error(text: str) -> None:
    for parse in (parse_answer, parse_candidates):
        try:
            parsed = parse(text, SPACE)
        except AnswerError:
            continue
        for answer in parsed if isinstance(parsed, list) else [parsed]:
            try:
                params, _ = snap_params(answer.values, SPACE, out_of_range="clip")
            except AnswerError:
                continue
            for name, dist in SPACE.items():
                assert dist._contains(dist.to_internal_repr(params[name]))


# -- hostile answers: huge numbers, deep nesting, binary junk, giant <think> blocks ---------------

hostile_pieces = st.one_of(
    pieces,
    st.integers(300, 6000).map(lambda n: "1" * n),  # past float's range, past int()'s 4300 digits
    st.integers(300, 6000).map(lambda n: "9" * n + ".5e7"),
    st.integers(50, 3000).map(lambda n: "[" * n),  # deeper than the JSON decoder recurses
    st.integers(50, 3000).map(lambda n: '{"a":' * n),
    st.integers(50, 3000).map(lambda n: "{" * n + "}" * n),
    st.integers(10, 2000).map(lambda n: "<think>" * n),
    st.integers(10, 2000).map(lambda n: "<think>" + "x" * n * 10 + "</think>"),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.sampled_from(['"a": ', '"lr": ', '"candidates": [', "\\", '\\"', "\x00", "1,5", "−"]),
)
hostile = st.lists(hostile_pieces, max_size=12).map("".join)


HUGE_AND_DEEP = {
    # The three shapes that made study.optimize raise, and their relatives.
    "float overflow": '{"a": 1' + "0" * 400 + ', "lr": 0.01, "n": 3, "opt": "adam"}',
    "int past 4300 digits": '{"a": ' + "1" * 5000 + ', "lr": 0.01, "n": 3, "opt": "adam"}',
    "infinite float": '{"a": -1e999, "lr": 0.01, "n": 3, "opt": "adam"}',
    "long text number": "a: " + "1" * 5000 + ", lr: 0.01, n: 3, opt: adam",
    "deep brackets": "[" * 100_000,
    "deep value": '{"a": ' + "[" * 100_000,
    "deep balanced": "{" * 50_000 + "}" * 50_000,
    "deep candidates": '{"candidates": ' + "[" * 5000 + "]" * 5000 + "}",
}


@settings(max_examples=300, deadline=None)
@given(hostile)
@example(HUGE_AND_DEEP["float overflow"])
@example(HUGE_AND_DEEP["int past 4300 digits"])
@example(HUGE_AND_DEEP["deep brackets"])
@example("<think>" * 20_000 + "a: 1, lr: 0.01, n: 3, opt: adam")
def test_any_hostile_text_is_values_or_an_answer_error(text: str) -> None:
    _values_or_answer_error(text)


def _values_or_answer_error(text: str) -> None:
    for parse in (parse_answer, parse_candidates):
        try:
            parsed = parse(text, SPACE)
        except AnswerError:
            continue
        for answer in parsed if isinstance(parsed, list) else [parsed]:
            for out_of_range in ("clip", "reject"):
                try:
                    params, _ = snap_params(answer.values, SPACE, out_of_range=out_of_range)
                except AnswerError:
                    continue
                for name, dist in SPACE.items():
                    assert dist._contains(dist.to_internal_repr(params[name]))


@pytest.mark.parametrize("kind", list(HUGE_AND_DEEP))
def test_numbers_of_every_size_and_any_depth_are_answer_errors(kind: str) -> None:
    text = HUGE_AND_DEEP[kind]
    _values_or_answer_error(text)
    with pytest.raises(AnswerError, match="not a finite number|no value found|no complete"):
        for parse in (parse_answer, parse_candidates):
            parsed = parse(text, SPACE)
            for answer in parsed if isinstance(parsed, list) else [parsed]:
                snap_params(answer.values, SPACE)


# -- linear work -------------------------------------------------------------------------------


def _repeat(piece: str, size: int) -> str:
    return (piece * (size // len(piece) + 1))[:size]


# Answers that made the parser quadratic (or that would, written naively): unclosed tags, fences
# and brackets, runs that regular expressions backtrack over, many mentions of a name.
ADVERSARIAL = {
    "think tags": lambda n: _repeat("<think>", n),
    "think blocks": lambda n: _repeat("<think>x</think>", n),
    "stray closers": lambda n: _repeat("</think>a", n),
    "open braces": lambda n: _repeat("{", n),
    "open brackets": lambda n: _repeat("[", n),
    "nested objects": lambda n: _repeat('{"a":', n),
    "wide lists": lambda n: _repeat("[0,0,0,0,0,0,0,0,0,", n),
    "balanced braces": lambda n: "{" * (n // 2) + "}" * (n // 2),
    "stars": lambda n: _repeat("*", n),
    "digits": lambda n: "a: " + "1" * n + "x",
    "exponent digits": lambda n: "a: 1e" + "1" * n + "x",
    "spaces": lambda n: " " * n + "a",
    "mentions": lambda n: _repeat("a:*", n),
    "fence": lambda n: "```" + "a" * n,
    "fences": lambda n: _repeat("```", n),
    "words": lambda n: "a: " + _repeat("x ", n),
    "open strings": lambda n: _repeat('"a": "', n),
    "escapes": lambda n: '{"a": "' + _repeat("\\", n),
    "objects": lambda n: _repeat('{"a": 1, "b": 2}', n),
    "lines": lambda n: _repeat("a: 1\n", n),
    "decimal commas": lambda n: "a: 1" + _repeat(",5", n),
    "quoted values": lambda n: _repeat('a: "', n),
    "big integer": lambda n: '{"a": ' + "1" * n + ', "b": 1}',
}


def _cpu_seconds(text: str, repeats: int = 1) -> float:
    """The least CPU time over ``repeats`` runs of both parsers (CPU, not wall-clock: the other
    processes on a busy machine do not count)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for parse in (parse_answer, parse_candidates):
            with contextlib.suppress(AnswerError):
                parse(text, ["a", "b"])
        best = min(best, time.process_time() - started)
    return best


@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_a_300_kb_adversarial_answer_parses_in_bounded_time(kind: str) -> None:
    # The quadratic parser took minutes on several of these (180 s of CPU for one trial); the
    # linear one takes well under a second here.
    assert _cpu_seconds(ADVERSARIAL[kind](300_000)) < 5.0


def test_parsing_work_grows_linearly_with_the_answer() -> None:
    """Four times the text costs about four times the CPU (quadratic: sixteen), measured side by
    side in one run; the least of three runs each, so a busy machine's noise does not count."""
    ratios = {}
    for kind, make in ADVERSARIAL.items():
        small, large = make(25_000), make(100_000)
        # 2 ms of slack: a fast parse is timer noise, not growth.
        ratios[kind] = _cpu_seconds(large, 3) / max(_cpu_seconds(small, 3), 0.002)
    assert max(ratios.values()) < 8.0, ratios


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n" * 13_000,  # no line mentions a name
        "x1: 1\n" * 13_000,  # every line mentions one
        "".join(f"x{i}: 1\n" for i in range(100)) * 130,  # spread over lines, every one given
        "x1" * 32_000 + ":",
    ],
    ids=["no names", "one name", "spread", "one long line"],
)
def test_the_work_per_line_does_not_grow_with_the_number_of_parameters(text: str) -> None:
    names = [f"x{i}" for i in range(100)]
    assert _cpu_seconds_for(text, names) < 3.0  # 0.4 s here; 12 s when every name was searched


def _cpu_seconds_for(text: str, names: list[str]) -> float:
    started = time.process_time()
    for parse in (parse_answer, parse_candidates):
        with contextlib.suppress(AnswerError):
            parse(text, names)
    return time.process_time() - started
