"""ProPS warmup files (``warmup_rollout_N.txt``): read them into a study, and write them.

A warmup file holds, in order (both parts optional, as in the ProPS code):

* the policy weights, one line per state row of comma-separated floats (``-1.2, 0.3`` or ``6.0``),
  closed by a line containing ``parameter ends``;
* episode logs as the tutorial's ``rollout_episode`` writes them: a ``state | action | reward``
  header, one such line per step, and ``Total reward: <x>`` per episode.

The weights are the lines before ``parameter ends`` (the whole file without that line) that are
nothing but comma-separated floats, as in the tutorial's ``EpisodeRewardBufferNoBias.load``; the
file's reward is the mean of its ``Total reward`` lines. Rollout-only files, which the tutorial's
own ``random_warmup`` writes, carry no weights and cannot become trials.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from pathlib import Path
import re
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    import optuna

    from optuna_llm_sampler.rl._evaluate import Rollout


_FILE_PATTERN = re.compile(r"^warmup_rollout_(\d+)\.txt$")
_MARKER = "parameter ends"
_TOTAL = "Total reward"


def _parse_float_row(line: str) -> list[float] | None:
    """The floats of a line of comma-separated floats, or ``None`` for any other line."""
    fields = line.strip().split(",")
    if fields and fields[-1].strip() == "":
        fields = fields[:-1]  # a trailing comma, as "-1.2, 0.3," is tolerated
    try:
        return [float(f) for f in fields] if fields else None
    except ValueError:
        return None


def read_warmup_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Read one warmup file: ``(weights (rows, columns), mean of its Total reward lines)``.

    Raises:
        ValueError: If the file has no weight lines, ragged or non-finite weights, or no
            ``Total reward`` line; the message names the file.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    rows: list[list[float]] = []
    for line in lines:
        if _MARKER in line:
            break
        row = _parse_float_row(line)
        if row is not None:
            rows.append(row)
    if not rows:
        raise ValueError(
            f"warmup file {str(path)!r} has no weight lines (comma-separated floats before "
            f"'{_MARKER}'); write it with write_warmup_file."
        )
    if len({len(r) for r in rows}) != 1:
        raise ValueError(
            f"warmup file {str(path)!r} has weight rows of different lengths: {rows}."
        )
    weights = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"warmup file {str(path)!r} has non-finite weights: {rows}.")

    rewards: list[float] = []
    for line in lines:
        if _TOTAL in line:
            try:
                rewards.append(float(line.split()[-1]))
            except (ValueError, IndexError):
                continue
    if not rewards:
        raise ValueError(f"warmup file {str(path)!r} has no '{_TOTAL}: <number>' line.")
    return weights, float(np.mean(rewards))


def _warmup_files(folder: str | os.PathLike[str]) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder must be an existing directory, got {str(folder)!r}.")
    numbered = []
    for p in folder.iterdir():
        m = _FILE_PATTERN.match(p.name)
        if m and p.is_file():
            numbered.append((int(m.group(1)), p))
    return [p for _, p in sorted(numbered)]


def load_warmup_folder(folder: str | os.PathLike[str]) -> list[tuple[np.ndarray, float]]:
    """Read every ``warmup_rollout_N.txt`` of ``folder``, sorted by ``N`` (other files ignored).

    Args:
        folder: The ProPS warmup directory.

    Returns:
        ``(weights, mean reward)`` per file; ``weights`` has one row per weight line.

    Raises:
        ValueError: If ``folder`` is not a directory or a file is malformed (named in the
            message).

    Example:
        .. code-block:: python

            for weights, reward in load_warmup_folder("logs/warmup"):
                print(weights.ravel(), reward)
    """
    return [read_warmup_file(p) for p in _warmup_files(folder)]


def add_warmup_trials(
    study: optuna.Study,
    folder: str | os.PathLike[str],
    *,
    param_names: Sequence[str] = ("a", "b"),
    low: float = -7.0,
    high: float = 7.0,
) -> list[optuna.trial.FrozenTrial]:
    """Add the warmup files of ``folder`` to ``study`` as completed trials.

    Each file becomes one trial whose parameters are its weights read row-major into
    ``param_names``, each with ``FloatDistribution(low, high)`` (the distribution
    :func:`linear_policy_objective` suggests from, so samplers treat them like their own trials),
    and whose value is the file's mean ``Total reward``. The file name is kept in the user
    attribute ``warmup_file``. All files are checked before any trial is added.

    Args:
        study: A single-objective study with ``direction="maximize"``.
        folder: The warmup directory.
        param_names: One name per weight, row-major.
        low: Lower bound of every weight.
        high: Upper bound of every weight.

    Returns:
        The added trials, in file order.

    Raises:
        ValueError: If a file is malformed, has the wrong number of weights or a weight
            outside ``[low, high]`` (the message names the file), or the study does not maximize.

    Example:
        .. code-block:: python

            study = optuna.create_study(direction="maximize", sampler=LLMSampler(...))
            add_warmup_trials(study, "logs/warmup")
            study.optimize(linear_policy_objective(), n_trials=100)
    """
    import optuna

    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(
            "study must be a single-objective study with direction='maximize' (warmup values "
            f"are rewards), got directions {[d.name for d in study.directions]}."
        )
    if isinstance(param_names, str) or len(set(param_names)) != len(param_names):
        raise ValueError(f"param_names must be distinct names, got {param_names!r}.")
    names = tuple(param_names)
    low, high = float(low), float(high)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"low must be below high (both finite), got low={low}, high={high}.")

    distribution = optuna.distributions.FloatDistribution(low, high)
    trials = []
    for path in _warmup_files(folder):
        weights, reward = read_warmup_file(path)
        values = weights.ravel()
        if values.size != len(names):
            raise ValueError(
                f"warmup file {str(path)!r} has {values.size} weights {values.tolist()}, but "
                f"param_names has {len(names)} names {list(names)}."
            )
        params = dict(zip(names, values.tolist(), strict=True))
        outside = [(n, v) for n, v in params.items() if not low <= v <= high]
        if outside:
            raise ValueError(
                f"warmup file {str(path)!r} has weights outside [low, high] = [{low}, {high}]: "
                f"{outside}; widen low/high (they must match the objective's) or drop the file."
            )
        trials.append(
            optuna.trial.create_trial(
                params=params,
                distributions={n: distribution for n in names},
                value=reward,
                user_attrs={"warmup_file": path.name},
            )
        )
    for trial in trials:
        study.add_trial(trial)
    return trials


def _array_text(x: np.ndarray) -> str:
    """``[-0.5  0. ]``, numpy's print of an array, kept on one line."""
    return np.array2string(np.asarray(x), max_line_width=10**6)


def write_warmup_file(
    path: str | os.PathLike[str],
    weights: ArrayLike,
    rollout: Rollout | Sequence[Rollout],
) -> Path:
    """Write a warmup file: weight rows, ``parameter ends``, then the episode logs.

    The episode part is the tutorial's ``rollout_episode`` log: ``state | action | reward``,
    one line per step, and ``Total reward: <return>``; with several rollouts, their logs follow
    one another and the file's reward is their mean.

    Args:
        path: File to write, e.g. ``folder / "warmup_rollout_0.txt"``.
        weights: Weight matrix ``(state_dim, action_dim)``; one line per row.
        rollout: The episode(s) those weights played (see :func:`rollout_episode`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        .. code-block:: python

            w = [[0.0], [7.0]]
            write_warmup_file(folder / "warmup_rollout_0.txt", w, rollout_episode(w, seed=0))
    """
    w = np.array(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w.reshape(-1, 1)
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 2-D matrix, got shape {w.shape}.")
    rollouts = [rollout] if not isinstance(rollout, Sequence) else list(rollout)
    if not rollouts:
        raise ValueError("rollout must hold at least one Rollout, got an empty sequence.")
    lines = [", ".join(repr(float(x)) for x in row) for row in w]
    lines.append(_MARKER)
    for r in rollouts:
        lines.append("state | action | reward")
        for state, action, reward in zip(r.states, r.actions, r.rewards, strict=True):
            lines.append(f"{_array_text(state)} | {_array_text(action)} | {float(reward)!r}")
        lines.append(f"{_TOTAL}: {float(r.total_return)!r}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path
