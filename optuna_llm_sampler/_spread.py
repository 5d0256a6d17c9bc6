"""A random point far from every tried one: how a stalled local search leaves its plateau.

Pure, given the random generator. Uniform random search finds a small good region slowly: on
MountainCar the region where the car reaches the flag is a few per cent of the box, so dozens of
uniform draws can miss it while they land, again and again, on the do-nothing plateau the local
search is stuck on. Of :data:`SPREAD_DRAWS` uniform draws, the one farthest from every tried
point goes where nothing has been looked at yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import BaseDistribution


#: Uniform draws per spread point. Measured with the guided set-up's no-LLM control on
#: MountainCar at 60 trials (the third of the trials handed over on a stall): this function left
#: 2 of 50 tuning seeds (100-149) and 2 of 50 fresh ones (150-199) below 50, uniform random search
#: 6 and 11; in a first trial of the idea, 10 draws did no better than 50 on the tuning seeds.
SPREAD_DRAWS = 50


def farthest_draw(
    search_space: Mapping[str, BaseDistribution],
    tried: Sequence[Mapping[str, Any]],
    rng: np.random.Generator,
    *,
    n_draws: int = SPREAD_DRAWS,
) -> dict[str, Any]:
    """Of ``n_draws`` uniform points of ``search_space``, the farthest from every ``tried`` one.

    Distances are Euclidean in the unit cube of Optuna's own search-space transform (log scale
    for log parameters, one coordinate per choice of a categorical), so every parameter weighs
    alike. A tried point that lacks a parameter of the space, or holds a value the space's
    distribution cannot (a categorical choice it does not list), is left out.

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"a": FloatDistribution(0, 1)}
        >>> point = farthest_draw(space, [{"a": 0.0}], np.random.default_rng(0))
        >>> point["a"] > 0.5
        True
    """
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws!r}.")
    space = dict(search_space)
    unit = _SearchSpaceTransform(space, transform_0_1=True)
    draws = rng.uniform(unit.bounds[:, 0], unit.bounds[:, 1], size=(n_draws, len(unit.bounds)))
    points = []
    for params in tried:
        if all(name in params for name in space):
            try:
                points.append(unit.transform({name: params[name] for name in space}))
            except (ValueError, TypeError):
                continue  # a value of another distribution (a failed trial's other choices)
    if points:
        seen = np.asarray(points, dtype=float)
        # |d - s|^2 expanded, so a 1,000-trial study of 100 parameters needs no 3-D array.
        squared = (draws**2).sum(axis=1)[:, None] + (seen**2).sum(axis=1)[None, :]
        squared -= 2.0 * draws @ seen.T
        chosen = draws[int(np.argmax(squared.min(axis=1)))]
    else:
        chosen = draws[0]
    return unit.untransform(chosen)
