"""No answer, however strange, makes the parser raise anything but AnswerError (a re-ask)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

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
