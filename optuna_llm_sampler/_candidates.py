"""Choosing among several LLM candidates with a cheap model of the history (LLAMBO-style).

Pure functions. The LLM stays in charge: the chosen point is always one of its candidates; the
history only ranks them, by the expected improvement of a small Gaussian-process model fitted to
the trials so far (the same acquisition Optuna's ``GPSampler`` maximizes over the whole space,
here only compared across the LLM's few proposals).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from statistics import NormalDist
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.study import StudyDirection

from optuna_llm_sampler._history import HistoryEntry


# Hyperparameters are chosen by marginal likelihood on this small grid (unit-cube length scales,
# noise as a share of the standardized variance): 25 Cholesky factorizations of at most
# _MAX_POINTS points, about 10 ms. Keep _MAX_POINTS under ~100: OpenBLAS runs larger
# factorizations multi-threaded, and with the cores busy (a local LLM, parallel trials) that made
# one call take 5-13 s instead of 40 ms, measured on this project's 2-core machine.
_LENGTH_SCALES = (0.05, 0.1, 0.2, 0.4, 0.8)
_NOISES = (1e-4, 1e-2, 0.05, 0.2, 0.5)
_MAX_POINTS = 96


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


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2), 0.0))


def _matern52(r: np.ndarray, length_scale: float) -> np.ndarray:
    s = math.sqrt(5.0) * r / length_scale
    return (1.0 + s + s * s / 3.0) * np.exp(-s)


def _cho_solve(chol: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``K⁻¹ y`` from the lower Cholesky factor of ``K``."""
    return np.linalg.solve(chol.T, np.linalg.solve(chol, y))


class _GaussianProcess:
    """Zero-mean GP on standardized values, Matern-5/2 kernel, unit signal variance."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        length_scale: float,
        noise: float,
        kernel: np.ndarray | None = None,
    ) -> None:
        self.x, self.length_scale, self.noise = x, length_scale, noise
        if kernel is None:
            kernel = _matern52(_distances(x, x), length_scale)
        k = kernel + (noise + 1e-8) * np.eye(len(x))
        self.chol = np.linalg.cholesky(k)
        self.alpha = _cho_solve(self.chol, y)
        self.log_likelihood = float(
            -0.5 * y @ self.alpha
            - np.log(np.diag(self.chol)).sum()
            - 0.5 * len(y) * math.log(2 * math.pi)
        )

    def mean(self, points: np.ndarray) -> np.ndarray:
        return _matern52(_distances(points, self.x), self.length_scale) @ self.alpha

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k_star = _matern52(_distances(points, self.x), self.length_scale)
        mean = k_star @ self.alpha
        v = np.linalg.solve(self.chol, k_star.T)
        var = np.maximum(1.0 - (v * v).sum(axis=0), 1e-12)
        return mean, np.sqrt(var)


def _fit(x: np.ndarray, y: np.ndarray) -> _GaussianProcess:
    best: _GaussianProcess | None = None
    r = _distances(x, x)
    for length_scale in _LENGTH_SCALES:
        kernel = _matern52(r, length_scale)
        for noise in _NOISES:
            try:
                gp = _GaussianProcess(x, y, length_scale, noise, kernel)
            except np.linalg.LinAlgError:
                continue
            if best is None or gp.log_likelihood > best.log_likelihood:
                best = gp
    assert best is not None  # the largest noise keeps the matrix positive definite
    return best


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Values replaced by the standard normal quantiles of their ranks (ties share the mean rank).

    Objective values are often heavy-tailed (on MountainCar a few policies score -3,000 while the
    good ones differ by 10 around 90); a model fitted to the raw values would spend itself on the
    tail. Ranks keep the order, which is all the choice among candidates needs.
    """
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    normal = NormalDist()
    return np.array([normal.inv_cdf((r + 0.5) / len(values)) for r in ranks])


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    z = (mean - best) / std
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return (mean - best) * cdf + std * pdf


def score_candidates(
    candidates: Sequence[Mapping[str, Any]],
    rows: Sequence[HistoryEntry],
    search_space: Mapping[str, BaseDistribution],
    *,
    direction: StudyDirection,
) -> list[float]:
    """A score per candidate, higher is better: its expected improvement.

    A Gaussian process (Matern-5/2 kernel on unit-cube coordinates, length scale and noise chosen
    by marginal likelihood) is fitted to the completed rows, values negated when minimizing and
    replaced by the normal quantiles of their ranks (robust to heavy tails). Running (pending)
    rows are added at the model's own prediction ("kriging believer"), so they lower the
    uncertainty near them without pretending to know their value.
    The score is the expected improvement over the best predicted value at a completed point:
    high where the model expects a good value, or where it knows little. With more than 96
    completed rows, the 48 best and the 48 latest are used.

    Example:
        >>> scores = score_candidates([{"a": 1.0}, {"a": 6.0}], rows, space,
        ...                           direction=StudyDirection.MAXIMIZE)
    """
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    done = [row for row in rows if not row.pending and math.isfinite(float(row.value or 0.0))]
    if not candidates or not done:
        return [0.0] * len(candidates)
    if len(done) > _MAX_POINTS:
        by_value = sorted(done, key=lambda row: sign * float(row.value or 0.0), reverse=True)
        latest = sorted(done, key=lambda row: row.number)[-_MAX_POINTS // 2 :]
        kept = {row.number: row for row in by_value[: _MAX_POINTS // 2] + latest}
        done = list(kept.values())
    x = np.array([_unit(row.params, search_space) for row in done], dtype=float)
    values = sign * np.array([float(row.value or 0.0) for row in done], dtype=float)
    y = _normal_scores(values)
    gp = _fit(x, y)
    pending = [row for row in rows if row.pending]
    if pending:
        x_pending = np.array([_unit(row.params, search_space) for row in pending], dtype=float)
        believed = gp.mean(x_pending)
        gp = _GaussianProcess(
            np.vstack([x, x_pending]), np.concatenate([y, believed]), gp.length_scale, gp.noise
        )
    points = np.array([_unit(c, search_space) for c in candidates], dtype=float)
    mean, std = gp.predict(points)
    incumbent = float(gp.mean(x).max())
    return [float(s) for s in _expected_improvement(mean, std, incumbent)]
