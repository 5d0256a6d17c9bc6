"""The paired statistics of a comparison: the signed-rank p-value (checked against SciPy), the
bootstrap interval of a median (deterministic), the per-seed differences, the failure count."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest

from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler.app._compare_stats import bootstrap_median_interval
from optuna_llm_sampler.app._compare_stats import count_below
from optuna_llm_sampler.app._compare_stats import paired_stats
from optuna_llm_sampler.app._compare_stats import sampler_stats
from optuna_llm_sampler.app._compare_stats import signed_rank_p_value
from optuna_llm_sampler.app._compare_stats import StudyStats


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        # exact: 2 of the 2**5 sign patterns are as extreme as all positive
        ([1.0, 2.0, 3.0, 4.0, 5.0], 2 / 32),
        # R- = 2: the sign patterns with R- <= 2 are {}, {1}, {2}, and as many with R+ <= 2
        ([1.0, -2.0, 3.0, 4.0, 5.0], 6 / 32),
        # a zero is left out: four differences, all positive
        ([0.0, 1.0, 2.0, 3.0, 4.0], 2 / 16),
        ([-3.0], 1.0),
        ([0.0, 0.0], math.nan),
        ([], math.nan),
    ],
)
def test_signed_rank_p_value_known_values(differences, expected):
    p = signed_rank_p_value(differences)
    assert (math.isnan(p) and math.isnan(expected)) or p == pytest.approx(expected)


scipy_stats = pytest.importorskip("scipy.stats")


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(-100, 100, allow_nan=False),
            st.integers(-3, 3).map(float),  # ties and zeros
        ),
        min_size=1,
        max_size=70,
    )
)
def test_signed_rank_p_value_is_scipys(values):
    if all(v == 0 for v in values):
        assert math.isnan(signed_rank_p_value(values))
        return
    expected = scipy_stats.wilcoxon(values).pvalue
    assert signed_rank_p_value(values) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_bootstrap_interval_is_deterministic_and_covers_the_median():
    values = [0.0, 0.0, 91.0, 92.5, 93.0, 93.1, 93.4, 0.0, 92.8, 93.3]
    low, high = bootstrap_median_interval(values)
    assert (low, high) == bootstrap_median_interval(values)
    assert low <= float(np.median(values)) <= high
    assert low < high
    assert bootstrap_median_interval([5.0] * 7) == (5.0, 5.0)
    assert bootstrap_median_interval([None, math.nan]) == (
        pytest.approx(math.nan, nan_ok=True),
        pytest.approx(math.nan, nan_ok=True),
    )
    # a seed that never reached a threshold (inf) stays an observed value, not a mean with inf
    low, high = bootstrap_median_interval([10, 12, math.inf, math.inf])
    assert low in (10, 12, math.inf) and high == math.inf


def _study(
    sampler: str, seed: int, rescored: float | None, to_threshold: int | None
) -> StudyStats:
    return StudyStats(
        sampler=sampler,
        seed=seed,
        study_name=f"{sampler}-{seed}",
        n_complete=60,
        best_so_far=(1.0,) * 60,
        trials_to_threshold=to_threshold,
        rescored=rescored,
        sampler_s=None,
        objective_s=None,
        usage=LLMUsage(),
    )


def test_paired_stats_on_the_seeds_both_have():
    llm = [_study("llm", s, r, t) for s, r, t in [(0, 93.0, 30), (1, 0.0, None), (2, 90.0, 40)]]
    control = [
        _study("llm-control", s, r, t)
        for s, r, t in [(0, 92.0, 25), (1, 0.0, None), (2, 93.0, 50), (3, 93.0, 20)]
    ]
    rescored = paired_stats(llm, control, metric="rescored_best", n_trials=60)
    assert (rescored.sampler, rescored.other, rescored.seeds) == ("llm", "llm-control", (0, 1, 2))
    assert rescored.median == 0.0 and (rescored.higher, rescored.lower) == (1, 1)
    assert rescored.p_value == pytest.approx(signed_rank_p_value([1.0, 0.0, -3.0]))
    assert rescored.low <= 0.0 <= rescored.high
    trials = paired_stats(llm, control, metric="trials_to_threshold", n_trials=60)
    # seed 1 never reached it on either side: 61 - 61
    assert trials.median == 0.0 and (trials.higher, trials.lower) == (1, 1)
    with pytest.raises(ValueError, match="metric"):
        paired_stats(llm, control, metric="best", n_trials=60)


def test_sampler_stats_counts_seeds_below_the_failure_line_with_intervals():
    studies = [
        _study("llm-control", s, r, None) for s, r in enumerate([0.0, 93.0, 92.0, 0.0, 93.5])
    ]
    row = sampler_stats("llm-control", studies, n_trials=60, threshold=90, fail_below=50)
    assert row.below_fail == 2
    assert row.rescored_interval == bootstrap_median_interval([0.0, 93.0, 92.0, 0.0, 93.5])
    assert row.trials_interval == (math.inf, math.inf)
    assert sampler_stats("x", studies, n_trials=60, threshold=None).below_fail is None
    assert count_below([1.0, 2.0, None], 1.5, "minimize") == 1
