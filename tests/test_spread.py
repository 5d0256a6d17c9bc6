"""A random point far from every tried one: the stalled local search's way off a plateau."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_llm_sampler._spread import farthest_draw


BOX = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}


def _nearest(point: dict[str, float], tried: list[dict[str, float]]) -> float:
    return min(np.hypot(point["a"] - t["a"], point["b"] - t["b"]) for t in tried)


def test_the_draw_avoids_a_crowded_corner() -> None:
    rng = np.random.default_rng(0)
    tried = [{"a": float(a), "b": float(b)} for a in range(-7, 1) for b in range(-7, 1)]
    point = farthest_draw(BOX, tried, rng)
    assert point["a"] > 1 or point["b"] > 1
    assert _nearest(point, tried) > 3


def test_the_farthest_of_many_draws_beats_a_uniform_draw() -> None:
    tried = [{"a": 0.0, "b": -6.5}, {"a": 0.2, "b": -6.8}, {"a": -0.1, "b": -6.0}]
    uniform = np.random.default_rng(1).uniform(-7, 7, size=(2000, 2))
    uniform_gaps = [_nearest({"a": a, "b": b}, tried) for a, b in uniform]
    gaps = [
        _nearest(farthest_draw(BOX, tried, np.random.default_rng(k)), tried) for k in range(50)
    ]
    assert np.median(gaps) > np.quantile(uniform_gaps, 0.9)


def test_the_same_stream_gives_the_same_point() -> None:
    tried = [{"a": 1.0, "b": 2.0}]
    first = farthest_draw(BOX, tried, np.random.default_rng(7))
    assert farthest_draw(BOX, tried, np.random.default_rng(7)) == first
    assert farthest_draw(BOX, tried, np.random.default_rng(8)) != first


def test_points_without_the_spaces_parameters_are_left_out() -> None:
    point = farthest_draw(BOX, [{"a": 0.0}, {"c": 1.0}], np.random.default_rng(0))
    assert set(point) == {"a", "b"}


def test_values_of_another_distribution_are_left_out() -> None:
    space = {"c": CategoricalDistribution(["x", "y"]), "a": FloatDistribution(0, 1)}
    point = farthest_draw(
        space, [{"c": "z", "a": 0.5}, {"c": "x", "a": 0.0}], np.random.default_rng(0)
    )
    assert point["c"] in ("x", "y") and 0 <= point["a"] <= 1


def test_n_draws_below_one_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="n_draws must be at least 1"):
        farthest_draw(BOX, [], np.random.default_rng(0), n_draws=0)


MIXED = {
    "f": FloatDistribution(-1, 1, step=0.25),
    "i": IntDistribution(2, 9, step=1),
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "c": CategoricalDistribution(["relu", "tanh", None]),
}


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_tried=st.integers(0, 30))
def test_every_draw_is_a_value_of_each_distribution(seed: int, n_tried: int) -> None:
    rng = np.random.default_rng(seed)
    tried: list[dict[str, Any]] = [farthest_draw(MIXED, [], rng) for _ in range(n_tried)]
    point = farthest_draw(MIXED, tried, rng)
    assert set(point) == set(MIXED)
    for name, dist in MIXED.items():
        assert dist._contains(dist.to_internal_repr(point[name])), (name, point[name])
