"""The option groups: frozen, self-validating (a ValueError naming the field), documented once."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from optuna_llm_sampler import AbsolutePoints
from optuna_llm_sampler import HistoryOptions
from optuna_llm_sampler import PRESETS
from optuna_llm_sampler import PromptOptions
from optuna_llm_sampler import StepsFromBest
from optuna_llm_sampler._options import convert_proposal
from optuna_llm_sampler._options import option_docs
from optuna_llm_sampler._options import Preset
from optuna_llm_sampler._options import preset_proposal
from optuna_llm_sampler._options import resolve_preset


GROUPS = (PromptOptions, HistoryOptions, AbsolutePoints, StepsFromBest)
PROPOSALS = (AbsolutePoints, StepsFromBest)

# Values of the wrong type for any field: each one must be refused by a typed field.
not_numbers = st.one_of(
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
not_ints = st.one_of(not_numbers, st.floats(allow_nan=True, allow_infinity=True))


def _rejects(cls: type, name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        cls(**{name: value})


# --------------------------------------------------------------------------- integer fields

# (group, field, least value, None allowed)
INT_FIELDS = [
    (PromptOptions, "budget", 1, True),
    (HistoryOptions, "best_k", 0, False),
    (HistoryOptions, "recent_k", 0, False),
    (HistoryOptions, "max_tokens", 1, True),
    *((cls, "n_candidates", 1, False) for cls in PROPOSALS),
    (StepsFromBest, "n_tried_changes", 0, False),
    (StepsFromBest, "widen_after", 1, True),
]


@pytest.mark.parametrize(("cls", "name", "least", "none"), INT_FIELDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_integer_fields_take_integers_from_their_least_value(
    cls: type, name: str, least: int, none: bool, data: st.DataObject
) -> None:
    good = data.draw(st.integers(min_value=least, max_value=10**6))
    assert getattr(cls(**{name: good}), name) == good
    _rejects(cls, name, data.draw(st.integers(max_value=least - 1)))
    _rejects(cls, name, data.draw(not_ints))
    if none:
        assert getattr(cls(**{name: None}), name) is None
    else:
        _rejects(cls, name, None)


# --------------------------------------------------------------------------- positive numbers


@pytest.mark.parametrize(
    ("cls", "name"),
    [(PromptOptions, "search_std"), *((cls, "min_distance") for cls in PROPOSALS)],
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_positive_fields_take_finite_positive_numbers_or_none(
    cls: type, name: str, data: st.DataObject
) -> None:
    good = data.draw(
        st.one_of(
            st.floats(min_value=1e-300, max_value=1e300), st.integers(min_value=1, max_value=10**9)
        )
    )
    assert getattr(cls(**{name: good}), name) == good
    assert getattr(cls(**{name: None}), name) is None
    bad = data.draw(
        st.one_of(
            st.floats(max_value=0),
            st.integers(max_value=0),
            st.sampled_from([math.nan, math.inf, -math.inf]),
            not_numbers,
        )
    )
    _rejects(cls, name, bad)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.floats(), not_numbers, st.none()))
def test_precision_is_1_to_17_digits_or_none(value: Any) -> None:
    ok = value is None or (type(value) is int and 1 <= value <= 17)
    if ok:
        assert PromptOptions(precision=value).precision == value
    else:
        with pytest.raises(ValueError, match="^precision must be between 1 and 17 or None"):
            PromptOptions(precision=value)


@settings(max_examples=60, deadline=None)
@given(
    good=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.none()),
    bad=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), not_numbers),
)
def test_expected_optimum_is_a_finite_number_or_none(good: Any, bad: Any) -> None:
    """The prompt says "should be over {expected_optimum}": a text, a bool or NaN there would
    only fail (or read "over nan") at the first LLM trial, mid-study."""
    assert PromptOptions(expected_optimum=good).expected_optimum == good
    _rejects(PromptOptions, "expected_optimum", bad)


# --------------------------------------------------------------------------- choices and flags

CHOICE_FIELDS = [
    (PromptOptions, "answer_format", ("auto", "json", "text")),
    (HistoryOptions, "mode", ("all", "best_recent")),
    (HistoryOptions, "style", ("csv", "tutorial")),
    *((cls, "out_of_range", ("reject", "clip")) for cls in PROPOSALS),
]


@pytest.mark.parametrize(("cls", "name", "allowed"), CHOICE_FIELDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_choice_fields_take_one_of_their_choices(
    cls: type, name: str, allowed: tuple[str, ...], data: st.DataObject
) -> None:
    good = data.draw(st.sampled_from(allowed))
    assert getattr(cls(**{name: good}), name) == good
    bad = data.draw(st.one_of(st.text(max_size=12), not_numbers, st.none()))
    if bad in allowed:
        return
    with pytest.raises(ValueError, match=rf"^{name} must be one of ") as info:
        cls(**{name: bad})
    assert all(repr(choice) in str(info.value) for choice in allowed)


@pytest.mark.parametrize("cls", PROPOSALS)
@settings(max_examples=30, deadline=None)
@given(bad=st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.none()))
def test_hints_is_true_or_false(cls: type, bad: Any) -> None:
    assert cls(hints=True).hints is True and cls(hints=False).hints is False
    _rejects(cls, "hints", bad)


@settings(max_examples=30, deadline=None)
@given(good=st.one_of(st.text(), st.none()), bad=st.one_of(st.integers(), st.floats(), not_ints))
def test_task_description_is_a_string_or_none(good: Any, bad: Any) -> None:
    assert PromptOptions(task_description=good).task_description == good
    if isinstance(bad, str):
        return
    _rejects(PromptOptions, "task_description", bad)


def test_template_vars_must_be_a_mapping() -> None:
    _rejects(PromptOptions, "template_vars", 5)
    _rejects(PromptOptions, "template_vars", ["note"])


def test_best_recent_needs_something_to_show() -> None:
    with pytest.raises(ValueError, match="mode='best_recent' needs best_k or recent_k > 0"):
        HistoryOptions(mode="best_recent", best_k=0, recent_k=0)
    assert HistoryOptions(mode="best_recent", best_k=0, recent_k=1).recent_k == 1
    assert HistoryOptions(mode="all", best_k=0, recent_k=0).mode == "all"


# --------------------------------------------------------------------------- frozen values


option_values = {
    PromptOptions: st.builds(
        PromptOptions,
        template_vars=st.dictionaries(
            st.sampled_from(["note", "goal"]), st.integers(), max_size=2
        ),
        answer_format=st.sampled_from(["auto", "json", "text"]),
        search_std=st.one_of(st.none(), st.floats(min_value=0.01, max_value=10)),
        expected_optimum=st.one_of(st.none(), st.integers(-100, 100)),
        task_description=st.one_of(st.none(), st.text(max_size=20)),
        budget=st.one_of(st.none(), st.integers(1, 1000)),
        precision=st.one_of(st.none(), st.integers(1, 17)),
    ),
    HistoryOptions: st.builds(
        HistoryOptions,
        best_k=st.integers(1, 50),
        recent_k=st.integers(0, 50),
        max_tokens=st.one_of(st.none(), st.integers(1, 10**5)),
        mode=st.sampled_from(["all", "best_recent"]),
        style=st.sampled_from(["csv", "tutorial"]),
    ),
    **{
        cls: st.builds(
            cls,
            n_candidates=st.integers(1, 8),
            min_distance=st.one_of(st.none(), st.floats(min_value=0.001, max_value=5)),
            out_of_range=st.sampled_from(["reject", "clip"]),
            hints=st.booleans(),
        )
        for cls in PROPOSALS
    },
}


@pytest.mark.parametrize("cls", GROUPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_options_are_frozen_values_that_pickle(cls: type, data: st.DataObject) -> None:
    options = data.draw(option_values[cls])
    assert pickle.loads(pickle.dumps(options)) == options
    assert dataclasses.replace(options) == options
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(options, name, getattr(options, name))


def test_template_vars_are_a_read_only_copy() -> None:
    given_vars = {"note": "Go."}
    options = PromptOptions(template_vars=given_vars)
    given_vars["note"] = "changed later"
    assert options.template_vars["note"] == "Go."
    with pytest.raises(TypeError):
        options.template_vars["note"] = "x"  # type: ignore[index]
    restored = pickle.loads(pickle.dumps(options))
    assert restored == options and dict(restored.template_vars) == {"note": "Go."}
    with pytest.raises(TypeError):
        restored.template_vars["note"] = "x"  # type: ignore[index]


# --------------------------------------------------------------------------- presets


def test_presets_and_auto() -> None:
    assert preset_proposal("tutorial", runs_locally=True) == AbsolutePoints()
    assert preset_proposal("guided", runs_locally=False) == PRESETS["guided"].proposal
    assert preset_proposal("auto", runs_locally=True) == PRESETS["guided"].proposal
    assert preset_proposal("auto", runs_locally=False) == PRESETS["tutorial"].proposal
    assert preset_proposal("advised", runs_locally=True) == dataclasses.replace(
        PRESETS["guided"].proposal, stall_after=5
    )
    assert resolve_preset("auto", runs_locally=True) == "guided"
    assert resolve_preset("advised", runs_locally=False) == "advised"
    with pytest.raises(ValueError, match="preset must be one of 'auto', 'tutorial', 'guided'"):
        resolve_preset("local", runs_locally=True)
    with pytest.raises(TypeError):
        PRESETS["mine"] = Preset(AbsolutePoints())  # type: ignore[index]


def test_presets_say_who_samples_the_other_trials() -> None:
    assert (PRESETS["tutorial"].base_sampler, PRESETS["tutorial"].llm_share) == (None, 1.0)
    assert (PRESETS["guided"].base_sampler, PRESETS["guided"].llm_share) == (None, 1.0)
    assert (PRESETS["advised"].base_sampler, PRESETS["advised"].llm_share) == ("gp", 0.3)
    assert PRESETS["guided"].proposal.stall_after == 10  # type: ignore[union-attr]


@pytest.mark.parametrize("share", [0, -0.1, 1.5, float("nan"), True, "0.3"])
def test_a_share_outside_zero_to_one_is_refused(share: object) -> None:
    with pytest.raises(ValueError, match="llm_share must be a number in"):
        Preset(AbsolutePoints(), llm_share=share)  # type: ignore[arg-type]


def test_stall_after_must_be_positive_or_none() -> None:
    assert StepsFromBest(stall_after=None).stall_after is None
    with pytest.raises(ValueError, match="stall_after must be an integer >= 1"):
        StepsFromBest(stall_after=0)


@settings(max_examples=40, deadline=None)
@given(option_values[AbsolutePoints])
def test_converting_a_proposal_keeps_the_shared_settings(points: AbsolutePoints) -> None:
    steps = convert_proposal(points, StepsFromBest)
    assert isinstance(steps, StepsFromBest)
    assert steps.n_tried_changes == 8 and steps.widen_after is None  # the kind's own defaults
    back = convert_proposal(steps, AbsolutePoints)
    assert back == points and type(back) is AbsolutePoints
    assert convert_proposal(points, AbsolutePoints) is points


# --------------------------------------------------------------------------- documentation


@pytest.mark.parametrize("cls", GROUPS)
def test_every_option_is_documented(cls: type) -> None:
    docs = option_docs(cls)
    assert list(docs) == [f.name for f in dataclasses.fields(cls)]
    for name, text in docs.items():
        assert len(text) > 15 and text.endswith("."), (name, text)
        assert "  " not in text, (name, text)  # continuation lines joined with one space


def test_option_docs_join_continuation_lines() -> None:
    text = option_docs(StepsFromBest)["n_tried_changes"]
    assert text.startswith("How many tried points nearest the best the prompt lists")
    assert text.endswith("``0`` lists none.")
    assert option_docs(type("Bare", (), {})) == {}
