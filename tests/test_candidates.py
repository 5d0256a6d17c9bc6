from __future__ import annotations

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection

from optuna_llm_sampler._candidates import score_candidates
from optuna_llm_sampler._history import HistoryEntry


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


def test_an_untried_region_beats_a_known_poor_point() -> None:
    tried = {"a": 5.0, "b": 0.0}  # exactly a tried point worth 0
    untried = {"a": -6.0, "b": 0.0}  # far from everything: uncertain, so worth a look
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
    assert score_candidates([], rows, space, direction=StudyDirection.MAXIMIZE) == []


def test_a_running_point_lowers_the_score_near_it() -> None:
    unexplored = {"a": -6.0, "b": -6.0}
    alone = score_candidates([unexplored], ROWS, SPACE, direction=StudyDirection.MAXIMIZE)
    running = [*ROWS, HistoryEntry(3, {"a": -5.9, "b": -5.9}, None)]
    shadowed = score_candidates([unexplored], running, SPACE, direction=StudyDirection.MAXIMIZE)
    assert shadowed[0] < alone[0]


def test_the_model_learns_a_smooth_objective() -> None:
    """On 40 noisy points of a bump, the candidate at the bump beats one at the far corner
    and one beside the worst point, and long histories are trimmed, not slow."""
    rng = np.random.default_rng(0)
    rows = []
    for number in range(400):
        a, b = rng.uniform(-7, 7, size=2)
        value = 90 * np.exp(-((a + 0.3) ** 2 + (b - 6) ** 2) / 8) + rng.normal(0, 3)
        rows.append(HistoryEntry(number, {"a": float(a), "b": float(b)}, float(value)))
    bump, corner = {"a": -0.3, "b": 6.0}, {"a": 6.5, "b": -6.5}
    for history in (rows[:40], rows):
        scores = score_candidates(
            [corner, bump], history, SPACE, direction=StudyDirection.MAXIMIZE
        )
        assert scores[1] > scores[0]
