from __future__ import annotations

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
import pytest

from optuna_llm_sampler._history import HistoryEntry
from optuna_llm_sampler._select import score_candidates


SPACE = {"a": FloatDistribution(-7, 7), "b": FloatDistribution(-7, 7)}
ROWS = [
    HistoryEntry(0, {"a": 0.0, "b": 6.0}, 90.0),
    HistoryEntry(1, {"a": 0.0, "b": -6.0}, -20.0),
    HistoryEntry(2, {"a": 5.0, "b": 0.0}, 0.0),
]


def test_near_the_best_scores_higher_than_near_the_worst() -> None:
    near_best, near_worst = {"a": 0.3, "b": 5.7}, {"a": 0.3, "b": -5.7}
    scores = score_candidates(
        [near_best, near_worst], ROWS, SPACE, direction=StudyDirection.MAXIMIZE
    )
    assert scores[0] > scores[1]
    flipped = score_candidates(
        [near_best, near_worst], ROWS, SPACE, direction=StudyDirection.MINIMIZE
    )
    assert flipped[1] > flipped[0]


def test_an_untried_region_gets_a_novelty_bonus() -> None:
    tried = {"a": 5.0, "b": 0.0}  # exactly a tried point worth 0
    untried = {"a": -6.0, "b": 0.0}  # far from everything, estimated near the neighbours' values
    scores = score_candidates([tried, untried], ROWS, SPACE, direction=StudyDirection.MAXIMIZE)
    assert scores[1] > scores[0]


def test_categoricals_and_no_history() -> None:
    space = {"x": FloatDistribution(0, 1), "c": CategoricalDistribution(["p", "q"])}
    rows = [HistoryEntry(0, {"x": 0.5, "c": "p"}, 1.0), HistoryEntry(1, {"x": 0.5, "c": "q"}, 0.0)]
    scores = score_candidates(
        [{"x": 0.5, "c": "p"}, {"x": 0.5, "c": "q"}],
        rows,
        space,
        direction=StudyDirection.MAXIMIZE,
    )
    assert scores[0] > scores[1]
    assert score_candidates(
        [{"x": 0.1, "c": "p"}], [], space, direction=StudyDirection.MAXIMIZE
    ) == [0.0]
    with pytest.raises(ValueError, match="bandwidth"):
        score_candidates([], rows, space, direction=StudyDirection.MAXIMIZE, bandwidth=0)
