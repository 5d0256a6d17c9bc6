"""Choosing among several LLM candidates with a cheap model of the history (LLAMBO-style).

Pure functions. The LLM stays in charge: the chosen point is always one of its candidates; the
history only ranks them, by a kernel-smoothed estimate of the objective plus a bonus for being far
from every point tried so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection

from optuna_llm_sampler._history import HistoryEntry


def _unit(params: Mapping[str, Any], search_space: Mapping[str, BaseDistribution]) -> list[float]:
    """A point in the unit cube; each categorical becomes one 0/1 coordinate per choice."""
    coords: list[float] = []
    for name, dist in search_space.items():
        value = params[name]
        if isinstance(dist, CategoricalDistribution):
            coords.extend(1.0 if value == choice else 0.0 for choice in dist.choices)
            continue
        low, high, x = float(dist.low), float(dist.high), float(value)  # type: ignore[attr-defined]
        if getattr(dist, "log", False):
            low, high, x = math.log(low), math.log(high), math.log(x)
        coords.append(0.0 if high == low else (x - low) / (high - low))
    return coords


def score_candidates(
    candidates: Sequence[Mapping[str, Any]],
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    *,
    direction: StudyDirection,
    bandwidth: float = 0.1,
    exploration: float = 0.5,
) -> list[float]:
    """A score per candidate, higher is better.

    ``mean(x)`` is the Nadaraya–Watson estimate of the objective at ``x`` (Gaussian kernel,
    ``bandwidth`` in unit-cube coordinates) over the completed rows; ``novelty(x)`` is the distance
    to the nearest tried point (completed or pending) over ``bandwidth``, capped at 1. The score is
    ``mean + exploration * std(values) * novelty``, with values negated when minimizing.

    Example:
        >>> scores = score_candidates([{"a": 1.0}, {"a": 6.0}], rows, space,
        ...                           direction=StudyDirection.MAXIMIZE)
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}.")
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    done = [row for row in rows if not row.pending]
    points = np.array([_unit(c, search_space) for c in candidates], dtype=float)
    if not done:
        return [0.0] * len(candidates)
    seen = np.array([_unit(row.params, search_space) for row in rows], dtype=float)
    observed = np.array([_unit(row.params, search_space) for row in done], dtype=float)
    values = sign * np.array([row.value for row in done], dtype=float)
    d2 = ((points[:, None, :] - observed[None, :, :]) ** 2).sum(axis=2)
    log_w = -d2 / (2 * bandwidth**2)
    log_w -= log_w.max(axis=1, keepdims=True)
    weights = np.exp(log_w)
    mean = (weights * values).sum(axis=1) / weights.sum(axis=1)
    nearest = np.sqrt(((points[:, None, :] - seen[None, :, :]) ** 2).sum(axis=2).min(axis=1))
    novelty = np.minimum(1.0, nearest / bandwidth)
    spread = float(values.std()) if len(values) > 1 else 0.0
    return [float(s) for s in mean + exploration * spread * novelty]
