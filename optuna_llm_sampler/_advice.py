"""Whose trial is it, the LLM's or the base sampler's? Pure rules every worker agrees on.

:class:`~optuna_llm_sampler.LLMSampler` lets a base sampler (random search by default, or any of
Optuna's) sample every trial the LLM does not propose. The rules here decide which trials those
are, from the trial's number and the study's completed values only, so that workers in other
threads or processes that look at the same trial reach the same answer without talking.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
import math
import statistics

import optuna
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection


#: The base samplers known by name (``LLMSampler(base_sampler="gp")``, ``--base-sampler``).
BASE_SAMPLER_NAMES = ("gp", "tpe", "cmaes", "random")

#: An improvement of the best value counts when it exceeds this share of the spread of the values
#: seen (best minus median): smaller ones are noise of the objective (MountainCar's best on its
#: do-nothing plateau creeps from -0.3 to -0.1 and back while nothing is learned). The median,
#: not the worst value, so that a few disastrous trials (MountainCar's -3000) do not make every
#: real gain look like noise.
NOISE_SHARE = 0.01

#: While the best stalls, this share of the LLM's trials (by number) goes to a point far from every
#: tried one (a base sampler in control takes them all). With the no-LLM control on MountainCar at
#: 60 trials, a third of them to uniform random search left 6 of 50 seeds on the do-nothing
#: plateau, shares from 0.4 to 0.67 between 1 and 8 of 50 (noise, not a trend), all of them 2 of
#: 50 but a lower median (90.8 instead of 93.0): the farthest of 50 draws, not a larger share, is
#: what left the plateau (see :mod:`optuna_llm_sampler._spread`).
HANDOFF_SHARE = 1 / 3

# Startup of a base sampler that does not say its own (random search has none; the LLM still
# needs a few points to look at).
_DEFAULT_STARTUP = 10


def make_base_sampler(name: str, *, seed: int | None) -> BaseSampler:
    """One of Optuna's samplers by name, with its own defaults and ``seed``.

    Example:
        >>> type(make_base_sampler("tpe", seed=0)).__name__
        'TPESampler'

    Raises:
        ValueError: Unknown name; the message lists the known ones.
    """
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(
        f"base_sampler must be a sampler object or one of {', '.join(BASE_SAMPLER_NAMES)}, "
        f"got {name!r}."
    )


def base_startup(sampler: BaseSampler) -> int:
    """The completed trials ``sampler`` samples at random before its model takes over: its
    ``n_startup_trials`` (GP and TPE: 10, CMA-ES: 1), else 10.

    Example:
        >>> base_startup(optuna.samplers.CmaEsSampler(seed=0))
        1
    """
    startup = getattr(sampler, "_n_startup_trials", None)
    if isinstance(startup, int) and not isinstance(startup, bool) and startup >= 0:
        return startup
    return _DEFAULT_STARTUP


def share_picks(number: int, share: float) -> bool:
    """Whether trial ``number`` is one of the ``share`` of trials the LLM proposes.

    Trial ``n`` is picked when ``floor((n + 1) * share)`` exceeds ``floor(n * share)``: the picks
    are spread evenly (share 0.3: trials 3, 6, 9, 13, 16, 19, ...) and every run of ``k``
    consecutive numbers holds ``floor(k * share)`` or one more. The share is taken as a fraction
    with a denominator up to 1000, so rounding of the float cannot move a pick.

    Example:
        >>> [n for n in range(10) if share_picks(n, 0.3)]
        [3, 6, 9]
    """
    if share >= 1:
        return True
    exact = Fraction(share).limit_denominator(1000)
    return math.floor((number + 1) * exact) > math.floor(number * exact)


def llm_owns(
    number: int,
    *,
    n_complete: int,
    n_startup_trials: int,
    llm_share: float,
    llm_startup_trials: int,
) -> bool:
    """Whether the LLM proposes trial ``number`` (else the base sampler samples it).

    The first ``llm_startup_trials`` trials (by number) are the LLM's, zero-shot. Then the base
    sampler runs its startup: no trial is the LLM's while fewer than ``n_startup_trials`` trials
    are complete. After that the LLM proposes the ``llm_share`` of trials :func:`share_picks`
    names by number. A plateau may still hand an LLM trial back (:func:`since_moved`).

    Example:
        >>> [n for n in range(14) if llm_owns(n, n_complete=n, n_startup_trials=10,
        ...                                     llm_share=0.3, llm_startup_trials=2)]
        [0, 1, 13]
    """
    if number < llm_startup_trials:
        return True
    if n_complete < n_startup_trials:
        return False
    return share_picks(number, llm_share)


def since_moved(values: Sequence[float], direction: StudyDirection) -> int:
    """Completed trials since the best value last moved beyond the noise.

    ``values`` are the completed trials' values in trial order. The best moves when a value beats
    the best at its last move by more than :data:`NOISE_SHARE` of the best minus the median of all
    ``values`` (so a creep of small gains counts once it adds up); when all are equal nothing moves
    after the first. A local search that keeps this count growing is stuck on a plateau or at an
    optimum it cannot refine.

    Example:
        >>> since_moved([-100.0, -50.0, 0.0, -20.0, 0.05, -30.0, 0.1], StudyDirection.MAXIMIZE)
        4
        >>> since_moved([0.0, -0.2, 90.0, 91.0], StudyDirection.MAXIMIZE)
        0
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    signed = sorted(sign * v for v in finite)
    tolerance = NOISE_SHARE * (signed[-1] - statistics.median(signed))
    anchor: float | None = None
    moved_at = 0
    for index, value in enumerate(values):
        if math.isfinite(value) and (anchor is None or sign * value > anchor + tolerance):
            anchor, moved_at = sign * value, index
    return len(values) - 1 - moved_at
