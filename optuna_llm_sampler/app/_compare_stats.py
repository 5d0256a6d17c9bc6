"""The numbers of a comparison, computed from trials as the storage holds them (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Literal

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler._records import usage_of_trials
from optuna_llm_sampler.app._compare_worker import OBJECTIVE_S


Direction = Literal["maximize", "minimize"]
#: Best values are reported at these trial counts (those below ``n_trials``), and at ``n_trials``.
CHECKPOINTS = (10, 20, 50, 100)


def checkpoints(n_trials: int) -> list[int]:
    """Trial counts at which the best value is reported.

    Example:
        >>> checkpoints(100), checkpoints(15), checkpoints(400)
        ([10, 20, 50, 100], [10, 15], [10, 20, 50, 100, 400])
    """
    return sorted({c for c in CHECKPOINTS if c < n_trials} | {n_trials})


@dataclass(frozen=True)
class StudyStats:
    """One study (one sampler, one seed) of a comparison.

    Attributes:
        sampler: The sampler's label (``tpe``, ``llm-gpt-4o``...).
        seed: The seed.
        study_name: The study's name in the storage.
        n_complete: Complete trials counted (at most ``n_trials``).
        best_so_far: Best value after each of the first ``n_complete`` complete trials, in trial
            order.
        trials_to_threshold: Complete trials until the value first reached the threshold
            (``>=`` when maximizing, ``<=`` when minimizing); ``None`` if it did not, or no
            threshold was given.
        rescored: The best trial re-scored (the study's ``rescored_best`` user attribute).
        sampler_s: Median over trials of the seconds spent outside the objective (sampling and
            storage): ``datetime_complete - datetime_start - objective_s``, over trials with
            ``objective_s``. The median, so that one-off costs of a fresh worker process
            (imports, the first storage access) do not dominate a short study.
        objective_s: Median over trials of the seconds the objective itself took.
        usage: LLM totals of the counted trials (zero for Optuna's samplers).
        error: ``"ExceptionType: message"`` when the study stopped on an error in this run.
        finished: Whether the study holds ``n_trials`` complete trials and did not stop on an
            error: only then does a threshold it did not reach count as not reached.
    """

    sampler: str
    seed: int
    study_name: str
    n_complete: int
    best_so_far: tuple[float, ...]
    trials_to_threshold: int | None
    rescored: float | None
    sampler_s: float | None
    objective_s: float | None
    usage: LLMUsage
    error: str | None = None
    finished: bool = True

    @property
    def status(self) -> str:
        """``"complete"``, ``"failed"`` (stopped on an error) or ``"incomplete"`` (fewer
        complete trials than asked, e.g. pruned or interrupted).

        Example:
            >>> stats.status  # doctest: +SKIP
            'failed'
        """
        if self.error is not None:
            return "failed"
        return "complete" if self.finished else "incomplete"

    def best_at(self, n: int) -> float:
        """The best value after ``n`` complete trials (NaN if the study has fewer)."""
        return self.best_so_far[n - 1] if 0 < n <= len(self.best_so_far) else math.nan


def study_stats(
    trials: Iterable[FrozenTrial],
    *,
    sampler: str,
    seed: int,
    study_name: str,
    n_trials: int,
    threshold: float | None = None,
    direction: Direction = "maximize",
    rescored: float | None = None,
    error: str | None = None,
) -> StudyStats:
    """Compute a study's :class:`StudyStats` from its trials.

    Only the first ``n_trials`` complete trials (in trial order) count, so a study that ran
    longer compares on equal terms. ``error`` is the error the study stopped on, if it did.

    Example:
        >>> stats = study_stats(study.trials, sampler="tpe", seed=0, study_name=study.study_name,
        ...                     n_trials=100, threshold=90)  # doctest: +SKIP
        >>> stats.best_at(10), stats.trials_to_threshold  # doctest: +SKIP
    """
    complete = sorted(
        (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None),
        key=lambda t: t.number,
    )[:n_trials]
    values = np.array([float(t.value) for t in complete if t.value is not None])
    if direction == "maximize":
        best = np.maximum.accumulate(values) if values.size else values
        reached = values >= threshold if threshold is not None else None
    else:
        best = np.minimum.accumulate(values) if values.size else values
        reached = values <= threshold if threshold is not None else None
    to_threshold = None
    if reached is not None and reached.any():
        to_threshold = int(np.argmax(reached)) + 1

    overheads: list[float] = []
    objectives: list[float] = []
    for t in complete:
        spent = t.user_attrs.get(OBJECTIVE_S)
        if not isinstance(spent, (int, float)) or t.datetime_start is None:
            continue
        if t.datetime_complete is None:
            continue
        duration = (t.datetime_complete - t.datetime_start).total_seconds()
        overheads.append(max(0.0, duration - float(spent)))
        objectives.append(float(spent))
    return StudyStats(
        sampler=sampler,
        seed=seed,
        study_name=study_name,
        n_complete=len(complete),
        best_so_far=tuple(float(v) for v in best),
        trials_to_threshold=to_threshold,
        rescored=rescored,
        sampler_s=float(np.median(overheads)) if overheads else None,
        objective_s=float(np.median(objectives)) if objectives else None,
        usage=usage_of_trials(complete),
        error=error,
        finished=error is None and len(complete) >= n_trials,
    )


@dataclass(frozen=True)
class Spread:
    """Median and spread of one number over seeds.

    Attributes:
        median: The median (NaN without values).
        q1: The first quartile.
        q3: The third quartile.
        min: The smallest value.
        max: The largest value.
        n: Values counted (NaN values are left out).
    """

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None], *, method: str = "linear") -> Spread:
        """The spread of ``values`` (``None`` and NaN left out; ``inf`` kept).

        ``method`` is numpy's percentile method: ``"linear"`` by default, ``"higher"`` for
        counts where a value must be one that was observed (the upper median of an even count).

        Example:
            >>> Spread.of([1, 2, 3, 4, 5]).median
            3.0
        """
        array = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
        if array.size == 0:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
        if np.isinf(array).any():
            method = "higher" if method == "linear" else method  # no interpolation with inf
        q1, median, q3 = np.percentile(array, [25, 50, 75], method=method)  # type: ignore[call-overload]
        return cls(
            float(median), float(q1), float(q3), float(array.min()), float(array.max()), array.size
        )

    def format(self, digits: int = 1, *, above: int | None = None) -> str:
        """``"median [q1, q3]"``; with ``above``, values beyond it print as ``">above"``.

        Example:
            >>> Spread.of([10, 12, 30]).format(0)
            '12 [11, 21]'
        """
        if self.n == 0:
            return "–"

        def number(value: float) -> str:
            if above is not None and value > above:
                return f">{above}"
            text = f"{value:.{digits}f}"
            return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"

        if self.q1 == self.q3:
            return number(self.median)
        return f"{number(self.median)} [{number(self.q1)}, {number(self.q3)}]"


@dataclass(frozen=True)
class SamplerStats:
    """One sampler over all seeds: median and spread of each number.

    Attributes:
        sampler: The sampler's label.
        seeds: The seeds counted.
        best_at: Best value after ``n`` trials, per checkpoint ``n``.
        trials_to_threshold: Trials until the threshold was first reached; seeds that ran all
            their trials without reaching it count as ``inf`` (printed ``"> n_trials"``); seeds
            that failed or stopped short before reaching it are left out (not known).
            ``None`` without a threshold.
        reached: Seeds that reached the threshold.
        rescored: The best trial re-scored, or ``None`` when nothing was re-scored.
        sampler_ms: Milliseconds per trial outside the objective (sampler and storage).
        objective_ms: Milliseconds per trial of the objective.
        llm: For LLM samplers, per-study ``calls``, ``tokens``, ``fallbacks``,
            ``latency_s_per_call``; else ``None``.
        failed: Seeds whose study stopped on an error.
        unfinished: Seeds left out of ``trials_to_threshold``: failed or short, and below the
            threshold when they stopped.
        trials_interval: A bootstrap 95% interval of the median of ``trials_to_threshold``
            (:func:`bootstrap_median_interval`), or ``None``.
        rescored_interval: The same for the median re-scored best, or ``None``.
        below_fail: Seeds whose re-scored best fails the failure line (below it when
            maximizing), or ``None`` without a line or without re-scores.
    """

    sampler: str
    seeds: tuple[int, ...]
    best_at: dict[int, Spread]
    trials_to_threshold: Spread | None
    reached: int
    rescored: Spread | None
    sampler_ms: Spread
    objective_ms: Spread
    llm: dict[str, Spread] | None
    failed: int = 0
    unfinished: int = 0
    trials_interval: tuple[float, float] | None = None
    rescored_interval: tuple[float, float] | None = None
    below_fail: int | None = None


def sampler_stats(
    sampler: str,
    studies: Sequence[StudyStats],
    *,
    n_trials: int,
    threshold: float | None,
    fail_below: float | None = None,
    direction: Direction = "maximize",
) -> SamplerStats:
    """Aggregate one sampler's :class:`StudyStats` over seeds.

    ``fail_below`` is the failure line of the re-scored best (counted in ``below_fail``).
    """
    best_at = {n: Spread.of(s.best_at(n) for s in studies) for n in checkpoints(n_trials)}
    to_threshold = trials_interval = None
    reached = unfinished = 0
    if threshold is not None:
        reached = sum(s.trials_to_threshold is not None for s in studies)
        # "Never reached" only for a seed that ran all its trials: one that failed or stopped
        # short might have reached the threshold later.
        counted = [s for s in studies if s.trials_to_threshold is not None or s.finished]
        unfinished = len(studies) - len(counted)
        counts = [
            math.inf if s.trials_to_threshold is None else s.trials_to_threshold for s in counted
        ]
        to_threshold = Spread.of(counts, method="higher")
        trials_interval = bootstrap_median_interval(counts) if counts else None
    rescored_values = [s.rescored for s in studies if s.rescored is not None]
    llm = None
    if any(s.usage.llm_trials for s in studies):
        llm = {
            "calls": Spread.of(s.usage.calls for s in studies),
            "tokens": Spread.of(s.usage.total_tokens for s in studies),
            "fallbacks": Spread.of(s.usage.fallbacks for s in studies),
            "latency_s_per_call": Spread.of(
                s.usage.latency_s / s.usage.calls if s.usage.calls else None for s in studies
            ),
        }
    return SamplerStats(
        sampler=sampler,
        seeds=tuple(s.seed for s in studies),
        best_at=best_at,
        trials_to_threshold=to_threshold,
        reached=reached,
        rescored=Spread.of(rescored_values) if rescored_values else None,
        sampler_ms=Spread.of(None if s.sampler_s is None else 1000 * s.sampler_s for s in studies),
        objective_ms=Spread.of(
            None if s.objective_s is None else 1000 * s.objective_s for s in studies
        ),
        llm=llm,
        failed=sum(s.error is not None for s in studies),
        unfinished=unfinished,
        trials_interval=trials_interval,
        rescored_interval=bootstrap_median_interval(rescored_values) if rescored_values else None,
        below_fail=(
            count_below(rescored_values, fail_below, direction)
            if fail_below is not None and rescored_values
            else None
        ),
    )


def best_so_far_matrix(studies: Sequence[StudyStats], n_trials: int) -> np.ndarray:
    """Best-so-far curves of ``studies`` as rows of an array ``(len(studies), n_trials)``, NaN
    where a study has fewer trials."""
    matrix = np.full((len(studies), n_trials), np.nan)
    for i, s in enumerate(studies):
        curve = s.best_so_far[:n_trials]
        matrix[i, : len(curve)] = curve
    return matrix


#: Resamples of a bootstrap interval, and the seed of their draws: a fixed seed, so that a
#: summary computed again from the same storage prints the same intervals.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: SciPy's ``wilcoxon(method="auto")`` choice, followed here: the null distribution is exact for
#: up to 50 differences without ties or zeros, and for up to 13 with them (all sign flips); beyond,
#: the normal approximation with the tie correction.
EXACT_SIGNED_RANK_MAX_N = 50
EXACT_WITH_TIES_MAX_N = 13


def bootstrap_median_interval(
    values: Iterable[float | None],
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """A percentile-bootstrap interval of the median of ``values`` (``None`` and NaN left out;
    ``inf``, a seed that never reached a threshold, kept).

    The same values give the same interval: the resamples are drawn from ``seed``. The median of
    a resample of an even count is the upper middle value when ``values`` hold ``inf`` (as
    :meth:`Spread.of` does for counts), else the mean of the two middle values.

    Example:
        >>> bootstrap_median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
        (1.0, 5.0)
        >>> bootstrap_median_interval([])
        (nan, nan)
    """
    array = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = np.sort(array[rng.integers(0, array.size, size=(resamples, array.size))], axis=1)
    n = array.size
    if n % 2 or np.isinf(array).any():
        medians = draws[:, n // 2]
    else:
        medians = (draws[:, n // 2 - 1] + draws[:, n // 2]) / 2
    tail = (1 - level) / 2 * 100
    method = "higher" if np.isinf(array).any() else "linear"
    low, high = np.percentile(medians, [tail, 100 - tail], method=method)  # type: ignore[call-overload]
    return float(low), float(high)


def signed_rank_p_value(differences: Iterable[float]) -> float:
    """The two-sided p-value of Wilcoxon's signed-rank test that ``differences`` are centred
    on 0, as ``scipy.stats.wilcoxon`` computes it by default (``zero_method="wilcox"``: zeros
    are left out of the ranks; no continuity correction; ``method="auto"``): the exact null
    distribution for at most 50 differences without ties or zeros, or at most 13 with them
    (every sign flip of the ranks), else the normal approximation with the tie correction. NaN
    when no difference is non-zero.

    Written with numpy only, so ``compare`` needs no SciPy; checked against SciPy in the tests.

    Example:
        >>> round(signed_rank_p_value([1.0, 2.0, 3.0, 4.0, 5.0]), 4)
        0.0625
    """
    d = np.array([x for x in differences if not math.isnan(x)], dtype=float)
    n_all = d.size
    d = d[d != 0]
    n = d.size
    if n == 0:
        return math.nan
    ranks = _average_ranks(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    ties = np.unique(np.abs(d), return_counts=True)[1]
    plain = n == n_all and bool((ties == 1).all())
    if n_all <= EXACT_SIGNED_RANK_MAX_N and (plain or n_all <= EXACT_WITH_TIES_MAX_N):
        # Average ranks are multiples of 1/2: on the doubled ranks, the counts of sign flips by
        # the sum of the positive ranks are the exact null distribution of R+.
        doubled = np.rint(2 * ranks).astype(int)
        counts = np.zeros(int(doubled.sum()) + 1)
        counts[0] = 1
        for k in doubled:
            counts[k:] = counts[k:] + counts[: counts.size - k].copy()
        total = counts.sum()
        w = int(round(2 * r_plus))
        p_low, p_high = counts[: w + 1].sum() / total, counts[w:].sum() / total
        return float(min(1.0, 2 * min(p_low, p_high)))
    mean = n * (n + 1) / 4
    variance = n * (n + 1) * (2 * n + 1) / 24 - float((ties**3 - ties).sum()) / 48
    if variance <= 0:
        return math.nan
    z = (r_plus - mean) / math.sqrt(variance)
    return float(min(1.0, math.erfc(abs(z) / math.sqrt(2))))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    start = 0
    for end in range(1, values.size + 1):
        if end == values.size or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2
            start = end
    return ranks


@dataclass(frozen=True)
class PairedStats:
    """One sampler against another on the seeds both ran: the per-seed differences.

    Attributes:
        sampler: The sampler compared (``llm-local``...).
        other: The sampler it is compared with (``llm-control``, ``random``...).
        metric: ``"rescored_best"`` or ``"trials_to_threshold"`` (a seed that never reached the
            threshold counts as ``n_trials + 1``, so a difference is always a number).
        seeds: The seeds both have a value for.
        median: The median of ``sampler - other`` over those seeds.
        low: The lower end of the median's bootstrap 95% interval.
        high: The upper end.
        p_value: The signed-rank p-value (:func:`signed_rank_p_value`); NaN when every
            difference is 0.
        higher: Seeds where ``sampler`` has the higher value.
        lower: Seeds where it has the lower value.
    """

    sampler: str
    other: str
    metric: str
    seeds: tuple[int, ...]
    median: float
    low: float
    high: float
    p_value: float
    higher: int
    lower: int


def paired_stats(
    sampler: Sequence[StudyStats],
    other: Sequence[StudyStats],
    *,
    metric: str,
    n_trials: int,
) -> PairedStats:
    """Compare ``sampler``'s studies with ``other``'s, seed by seed, on ``metric``.

    Example:
        >>> paired = paired_stats(llm, control, metric="rescored_best",
        ...                       n_trials=60)  # doctest: +SKIP
        >>> paired.median, (paired.low, paired.high), paired.p_value  # doctest: +SKIP
    """
    mine = {s.seed: _metric(s, metric, n_trials) for s in sampler}
    theirs = {s.seed: _metric(s, metric, n_trials) for s in other}
    seeds = tuple(
        seed
        for seed in sorted(set(mine) & set(theirs))
        if mine[seed] is not None and theirs[seed] is not None
    )
    diffs = np.array([float(mine[s]) - float(theirs[s]) for s in seeds])  # type: ignore[arg-type]
    low, high = bootstrap_median_interval(diffs.tolist())
    return PairedStats(
        sampler=sampler[0].sampler if sampler else "",
        other=other[0].sampler if other else "",
        metric=metric,
        seeds=seeds,
        median=float(np.median(diffs)) if diffs.size else math.nan,
        low=low,
        high=high,
        p_value=signed_rank_p_value(diffs.tolist()),
        higher=int((diffs > 0).sum()),
        lower=int((diffs < 0).sum()),
    )


def _metric(study: StudyStats, metric: str, n_trials: int) -> float | None:
    if metric == "rescored_best":
        return study.rescored
    if metric == "trials_to_threshold":
        if study.trials_to_threshold is not None:
            return float(study.trials_to_threshold)
        return float(n_trials + 1) if study.finished else None
    raise ValueError(f"metric must be 'rescored_best' or 'trials_to_threshold', got {metric!r}.")


def count_below(values: Iterable[float | None], line: float, direction: Direction) -> int:
    """Seeds whose value fails the line: below it when maximizing, above when minimizing.

    Example:
        >>> count_below([0.0, 93.1, 49.9, None], 50, "maximize")
        2
    """
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(v < line if direction == "maximize" else v > line for v in kept)
