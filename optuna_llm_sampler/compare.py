"""Compare samplers on one objective: every (sampler, seed) is one study in one storage.

:func:`compare` runs the studies in parallel worker processes, resumes where an earlier run
stopped, and writes a summary computed from the storage alone: ``summary.md``,
``summary.csv`` (per sampler: median and spread over seeds), ``studies.csv`` (per seed) and
``best_so_far.png``. The studies stay in the storage, so ``optuna-dashboard STORAGE`` shows
each of them.

Example:
    .. code-block:: python

        from optuna_llm_sampler.compare import compare
        from optuna_llm_sampler.compare import LinearPolicyFactory
        from optuna_llm_sampler.compare import LinearPolicyRescore

        result = compare(
            LinearPolicyFactory("MountainCarContinuous-v0"),
            name="MountainCarContinuous-v0",
            samplers=("tpe", "random"),
            seeds=5,
            n_trials=100,
            threshold=90,
            rescore=LinearPolicyRescore("MountainCarContinuous-v0"),
            out="compare",
        )
        print(result.table())

A custom objective: pass a *module-level* function ``factory(seed) -> objective`` (worker
processes import it by name, so lambdas and nested functions do not work with ``n_jobs > 1``;
``n_jobs=1`` runs everything in this process and takes any callable):

.. code-block:: python

    def factory(seed):
        def objective(trial):
            x = trial.suggest_float("x", -5, 5)
            return (x - 1) ** 2

        return objective


    compare(factory, name="quadratic", samplers=("random", "tpe"), direction="minimize")
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
from dataclasses import dataclass
from dataclasses import field
import math
import multiprocessing
import os
from pathlib import Path
import pickle
import sys
import time
from typing import Any
from typing import TYPE_CHECKING

from optuna_llm_sampler._compare_report import plot_best_so_far
from optuna_llm_sampler._compare_report import summary_table
from optuna_llm_sampler._compare_report import write_studies_csv
from optuna_llm_sampler._compare_report import write_summary_csv
from optuna_llm_sampler._compare_report import write_summary_md
from optuna_llm_sampler._compare_stats import Direction
from optuna_llm_sampler._compare_stats import sampler_stats
from optuna_llm_sampler._compare_stats import SamplerStats
from optuna_llm_sampler._compare_stats import Spread
from optuna_llm_sampler._compare_stats import study_stats
from optuna_llm_sampler._compare_stats import StudyStats
from optuna_llm_sampler._compare_worker import absolute_storage_url
from optuna_llm_sampler._compare_worker import dashboard_command
from optuna_llm_sampler._compare_worker import init_worker
from optuna_llm_sampler._compare_worker import MODEL_ATTR
from optuna_llm_sampler._compare_worker import OBJECTIVE_ATTR
from optuna_llm_sampler._compare_worker import OBJECTIVE_S
from optuna_llm_sampler._compare_worker import ObjectiveFactory
from optuna_llm_sampler._compare_worker import open_compare_storage
from optuna_llm_sampler._compare_worker import quiet_optuna
from optuna_llm_sampler._compare_worker import Rescore
from optuna_llm_sampler._compare_worker import RESCORED_ATTR
from optuna_llm_sampler._compare_worker import RESCORED_TRIAL_ATTR
from optuna_llm_sampler._compare_worker import run_task
from optuna_llm_sampler._compare_worker import run_task_in_worker
from optuna_llm_sampler._compare_worker import SAMPLER_ATTR
from optuna_llm_sampler._compare_worker import SEED_ATTR
from optuna_llm_sampler._compare_worker import StudyTask
from optuna_llm_sampler._compare_worker import TaskResult
from optuna_llm_sampler._samplers import default_model
from optuna_llm_sampler._samplers import make_sampler
from optuna_llm_sampler._samplers import SAMPLER_NAMES


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage


__all__ = [
    "DEFAULT_SAMPLERS",
    "OBJECTIVE_S",
    "ComparisonResult",
    "LinearPolicyFactory",
    "LinearPolicyRescore",
    "SamplerStats",
    "Spread",
    "StudyStats",
    "add_compare_parser",
    "compare",
]

DEFAULT_SAMPLERS = ("llm", "tpe", "cmaes", "gp", "qmc", "random")
MOUNTAINCAR = "MountainCarContinuous-v0"
#: ``--threshold`` default per environment: MountainCarContinuous counts as solved at 90.
DEFAULT_THRESHOLDS = {MOUNTAINCAR: 90.0}
_POLL_S = 1.0


# Seed s plays episodes from s * EPISODE_SEED_STRIDE on, so studies of different seeds never share
# an episode (a study uses n_trials * n_eval_episodes of them: 2,000 for 100 x 20).
EPISODE_SEED_STRIDE = 1_000_000


@dataclass(frozen=True)
class LinearPolicyFactory:
    """``factory(seed)``: the linear-policy objective of ``env_id`` for the study of ``seed``:
    fresh evaluation episodes per trial (see
    :func:`~optuna_llm_sampler.rl.linear_policy_objective`), starting at reset seed
    ``seed * 1,000,000`` so that studies of different seeds play different episodes. Picklable,
    for worker processes. Seeds must be below 2,147.

    Example:
        >>> objective = LinearPolicyFactory("Pendulum-v1", n_eval_episodes=5)(seed=0)
    """

    env_id: str = MOUNTAINCAR
    n_eval_episodes: int = 20
    max_steps: int = 1000
    low: float = -7.0
    high: float = 7.0
    bias: bool = False

    def __call__(self, seed: int) -> Callable[[optuna.Trial], float]:
        from optuna_llm_sampler.rl import linear_policy_objective

        return linear_policy_objective(
            self.env_id,
            n_eval_episodes=self.n_eval_episodes,
            max_steps=self.max_steps,
            low=self.low,
            high=self.high,
            bias=self.bias,
            seed=seed * EPISODE_SEED_STRIDE,
        )


@dataclass(frozen=True)
class LinearPolicyRescore:
    """``rescore(study)``: the mean return of the study's best policy on ``n_episodes`` fresh
    episodes (:func:`~optuna_llm_sampler.rl.evaluate_best`; the same episodes for every study).

    Example:
        >>> LinearPolicyRescore("MountainCarContinuous-v0")(study)  # doctest: +SKIP
        92.4
    """

    env_id: str = MOUNTAINCAR
    n_episodes: int = 100
    max_steps: int = 1000
    bias: bool = False

    def __call__(self, study: optuna.Study) -> float:
        from optuna_llm_sampler.rl import evaluate_best

        result = evaluate_best(
            study,
            n_episodes=self.n_episodes,
            env_id=self.env_id,
            max_steps=self.max_steps,
            bias=self.bias,
        )
        return result.mean


@dataclass(frozen=True)
class ComparisonResult:
    """What :func:`compare` found, computed from the storage.

    Attributes:
        name: The objective's name in the study names.
        storage: The storage URL.
        out: The folder of the summary files.
        n_trials: Trials per study.
        threshold: The threshold, or ``None``.
        direction: ``"maximize"`` or ``"minimize"``.
        samplers: Per sampler, median and spread over seeds (in the order asked).
        studies: Per study (sampler and seed).
        summary_md: ``summary.md``.
        summary_csv: ``summary.csv`` (one row per sampler).
        studies_csv: ``studies.csv`` (one row per study).
        plot: ``best_so_far.png``, or ``None`` when not drawn.
        elapsed_s: Wall-clock seconds of this call.
        errors: ``"study: error"`` for each study that stopped on an error.
    """

    name: str
    storage: str
    out: Path
    n_trials: int
    threshold: float | None
    direction: Direction
    samplers: tuple[SamplerStats, ...]
    studies: tuple[StudyStats, ...]
    summary_md: Path
    summary_csv: Path
    studies_csv: Path
    plot: Path | None
    elapsed_s: float
    errors: tuple[str, ...] = field(default=())

    def table(self) -> str:
        """The main table in Markdown (as in ``summary.md``)."""
        return summary_table(self.samplers, n_trials=self.n_trials, threshold=self.threshold)

    def sampler(self, label: str) -> SamplerStats:
        """One sampler's numbers, by label (``"tpe"``, ``"llm-gpt-4o"``...).

        Raises:
            ValueError: No sampler has that label.
        """
        for row in self.samplers:
            if row.sampler == label:
                return row
        labels = ", ".join(r.sampler for r in self.samplers)
        raise ValueError(f"label must be one of {labels}, got {label!r}.")


def sampler_label(sampler: str, llm_options: Mapping[str, Any] | None = None) -> str:
    """The name a sampler has in study names and tables: ``llm-MODEL`` for the LLM sampler, so
    that comparisons of several models can share one storage.

    Example:
        >>> sampler_label("llm", {"model": "openai:gpt-4o-mini"}), sampler_label("tpe")
        ('llm-openai_gpt-4o-mini', 'tpe')
    """
    if sampler != "llm":
        return sampler
    model = (llm_options or {}).get("model") or default_model()
    name = model if isinstance(model, str) else str(getattr(model, "model", type(model).__name__))
    for char in "/:\\ ":
        name = name.replace(char, "_")
    return f"llm-{name}"


def study_name(name: str, label: str, seed: int) -> str:
    """``compare-{name}-{label}-seed{seed}``."""
    return f"compare-{name}-{label}-seed{seed}"


def compare(
    objective_factory: ObjectiveFactory,
    *,
    name: str | None = None,
    samplers: Sequence[str] = DEFAULT_SAMPLERS,
    seeds: int | Sequence[int] = 5,
    n_trials: int = 100,
    storage: str | None = None,
    out: str | os.PathLike[str] = "compare",
    llm_options: Mapping[str, Any] | None = None,
    n_startup_trials: int = 20,
    n_jobs: int | None = None,
    threshold: float | None = None,
    rescore: Rescore | None = None,
    direction: Direction = "maximize",
    plot: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> ComparisonResult:
    """Run every sampler with every seed on one objective, or finish an earlier run, then write
    the summary.

    Each (sampler, seed) is one study, named ``compare-{name}-{sampler}-seed{seed}``, in the one
    ``storage``: ``optuna-dashboard STORAGE`` shows them all. The sampler is seeded with
    ``seed`` and the objective is ``objective_factory(seed)``. The studies run in ``n_jobs``
    worker processes (``spawn``), each opening the storage itself; each study runs in one
    process, so a seed reproduces its study.

    Resume: a study that holds ``n_trials`` complete trials is not run again (only its best trial
    is re-scored if that is missing); a partial one runs the missing trials (trials an
    interrupted run left RUNNING are marked FAIL first: the comparison assumes it is the only
    writer of its studies). The summary is computed from the storage, so running the same call
    again after an interruption, or with nothing left to do, rewrites it in full.

    Per trial, the objective's own time (without ``suggest_*``, where samplers sample) is
    recorded in the user attribute ``objective_s``; the summary's sampler time per trial is
    ``datetime_complete - datetime_start - objective_s``.

    Args:
        objective_factory: ``factory(seed) -> objective``. With ``n_jobs > 1`` it must be
            picklable: a module-level function or an instance of a module-level class (such
            as :class:`LinearPolicyFactory`), not a lambda or a nested function.
        name: The objective's name in study names and titles; default: the factory's
            ``env_id`` or ``__name__``.
        samplers: Names among ``llm``, ``tpe``, ``cmaes``, ``gp``, ``qmc``, ``random``
            (Optuna's samplers with their defaults and ``seed``; ``gp`` needs PyTorch).
        seeds: A number of seeds (``5`` means 0-4) or the seeds themselves.
        n_trials: Complete trials per study.
        storage: Optuna storage URL (``sqlite:///path.db``, ``postgresql+psycopg2://...``) or
            ``journal:PATH``; default ``sqlite:///{out}/compare.db``. SQLite is opened with a
            60 s lock timeout, since several processes write to it.
        out: Folder of ``summary.md``, ``summary.csv``, ``studies.csv`` and ``best_so_far.png``.
        llm_options: Keyword arguments of :class:`~optuna_llm_sampler.LLMSampler` for the
            ``llm`` sampler: ``model`` (default ``gpt-4o`` with ``OPENAI_API_KEY``, else the
            embedded model), ``base_url``, ``search_std``... ``budget`` defaults to ``n_trials``.
        n_startup_trials: Trials sampled at random before the LLM is asked (``llm`` only).
        n_jobs: Worker processes; default ``min(2, os.cpu_count())``. ``1`` runs everything in
            this process (any callable works then).
        threshold: A value counted as "solved": the summary reports how many trials each seed
            needed to reach it. ``None`` leaves it out.
        rescore: ``rescore(study) -> float``: the best trial evaluated afresh (e.g.
            :class:`LinearPolicyRescore`), stored in the study's user attribute
            ``rescored_best``. Picklable like the factory. ``None`` leaves it out.
        direction: ``"maximize"`` or ``"minimize"``.
        plot: Draw ``best_so_far.png`` (needs matplotlib).
        progress: Show a progress bar of trials (tqdm, on stderr).
        echo: Where the line per finished study goes.

    Returns:
        The :class:`ComparisonResult`.

    Raises:
        ValueError: An invalid argument (the message names it), a sampler that cannot be built
            (e.g. ``gp`` without PyTorch), or a storage that cannot be opened.
        ProviderConfigError: The LLM cannot be used (missing API key or extra).

    Example:
        .. code-block:: python

            result = compare(factory, name="quadratic", samplers=("random", "tpe"), seeds=3,
                             n_trials=50, direction="minimize", out="cmp")
            print(result.table())
    """
    import optuna

    started = time.perf_counter()
    if not callable(objective_factory):
        raise ValueError(
            "objective_factory must be a callable factory(seed) -> objective, "
            f"got {type(objective_factory).__name__}."
        )
    if rescore is not None and not callable(rescore):
        raise ValueError(f"rescore must be a callable or None, got {type(rescore).__name__}.")
    labels, sampler_names = _check_samplers(samplers, llm_options)
    seed_list = _check_seeds(seeds)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}.")
    if n_jobs is None:
        n_jobs = min(2, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}.")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}.")
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}.")
    if isinstance(n_startup_trials, bool) or n_startup_trials < 0:
        raise ValueError(f"n_startup_trials must be non-negative, got {n_startup_trials!r}.")
    if name is None:
        name = str(
            getattr(objective_factory, "env_id", None)
            or getattr(objective_factory, "__name__", "objective")
        )
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"name must be a non-empty word without spaces, got {name!r}.")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if storage is None:
        storage = f"journal:{out_dir / 'compare.log'}"
    if not isinstance(storage, str):
        raise ValueError(
            "storage must be a URL string (sqlite:///compare.db, journal:./compare.log, ...), "
            f"which every worker process opens itself; got {type(storage).__name__}."
        )
    worker_url = absolute_storage_url(storage)
    options = dict(llm_options or {})
    options.setdefault("budget", n_trials)

    opened = open_compare_storage(worker_url)
    tasks: list[StudyTask] = []
    keys: list[tuple[str, int, str]] = []
    todo: list[StudyTask] = []
    study_ids: dict[str, int] = {}
    with quiet_optuna():
        for label, sampler in zip(labels, sampler_names, strict=True):
            for seed in seed_list:
                name_ = study_name(name, label, seed)
                study = optuna.create_study(
                    storage=opened, study_name=name_, direction=direction, load_if_exists=True
                )
                if study.direction.name.lower() != direction:
                    raise ValueError(
                        f"direction {direction!r} does not match the existing study {name_!r} "
                        f"({study.direction.name.lower()}); use another storage or name."
                    )
                _remember(study, label=label, seed=seed, objective=name, llm_options=options)
                study_ids[name_] = study._study_id
                task = StudyTask(
                    storage=worker_url,
                    study_name=name_,
                    sampler=sampler,
                    seed=seed,
                    n_trials=n_trials,
                    objective_factory=objective_factory,
                    rescore=rescore,
                    n_startup_trials=n_startup_trials,
                    llm_options=options if sampler == "llm" else {},
                )
                tasks.append(task)
                keys.append((label, seed, name_))
                if _needs_work(study, n_trials, rescore is not None):
                    todo.append(task)

        if len(todo) < len(tasks):
            echo(f"{len(tasks) - len(todo)} of {len(tasks)} studies already done, not run again")
        for sampler in sorted({t.sampler for t in todo}):
            # Fail early, in this process, with a clear message (missing PyTorch or API key).
            make_sampler(sampler, seed=0, n_startup_trials=n_startup_trials, llm_options=options)

    workers = min(n_jobs, len(todo))
    model = options.get("model") or default_model()
    if (
        workers > 1
        and isinstance(model, str)
        and model.startswith("local")
        and any(t.sampler == "llm" for t in todo)
    ):
        echo(
            f"note: {workers} processes each load the local model and share the CPU cores; "
            "llama.cpp slows badly then: n_jobs=1 is usually faster."
        )
    if workers > 1:
        _check_picklable(next((t for t in todo if t.sampler == "llm"), todo[0]))
    results = _run_tasks(
        todo,
        workers=workers,
        storage=opened,
        study_ids=study_ids,
        progress=progress,
        echo=echo,
    )
    errors = tuple(f"{r.study_name}: {r.error}" for r in results if r.error)
    return _summarize(
        opened,
        keys,
        name=name,
        url=storage,
        out=out_dir,
        n_trials=n_trials,
        threshold=threshold,
        direction=direction,
        plot=plot,
        errors=errors,
        started=started,
    )


def _check_samplers(
    samplers: Sequence[str], llm_options: Mapping[str, Any] | None
) -> tuple[list[str], list[str]]:
    if isinstance(samplers, str) or not samplers:
        raise ValueError(
            f"samplers must be a non-empty sequence of names such as ('tpe', 'random'), "
            f"got {samplers!r}."
        )
    names = list(samplers)
    unknown = [s for s in names if s not in SAMPLER_NAMES]
    if unknown:
        raise ValueError(
            f"samplers must be among {', '.join(SAMPLER_NAMES)}, got unknown {unknown}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"samplers must not repeat a name, got {names}.")
    if llm_options is not None and not isinstance(llm_options, Mapping):
        raise ValueError(f"llm_options must be a mapping, got {type(llm_options).__name__}.")
    return [sampler_label(s, llm_options) for s in names], names


def _check_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a count or a sequence of seeds, got {seeds!r}.")
    if isinstance(seeds, int):
        if seeds <= 0:
            raise ValueError(f"seeds must be positive, got {seeds}.")
        return list(range(seeds))
    seed_list = list(seeds)
    if (
        not seed_list
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seed_list)
        or len(set(seed_list)) != len(seed_list)
    ):
        raise ValueError(
            f"seeds must be a positive count or distinct non-negative integers, got {seeds!r}."
        )
    return seed_list


def _check_picklable(task: StudyTask) -> None:
    for what, value in (
        ("objective_factory", task.objective_factory),
        ("rescore", task.rescore),
        ("llm_options", task.llm_options),
    ):
        try:
            pickle.dumps(value)
        except Exception as error:
            raise ValueError(
                f"{what} must be picklable to run in worker processes (n_jobs > 1): use a "
                "module-level function or an instance of a module-level class, not a lambda "
                f"or a nested function; or pass n_jobs=1. ({type(error).__name__}: {error})"
            ) from None


def _remember(
    study: optuna.Study,
    *,
    label: str,
    seed: int,
    objective: str,
    llm_options: Mapping[str, Any],
) -> None:
    """The study's place in the comparison, in user attributes the dashboard shows."""
    setup: dict[str, Any] = {SAMPLER_ATTR: label, SEED_ATTR: seed, OBJECTIVE_ATTR: objective}
    if label.startswith("llm-"):
        model = llm_options.get("model") or default_model()
        setup[MODEL_ATTR] = model if isinstance(model, str) else str(getattr(model, "model", ""))
    attrs = study.user_attrs
    for key, value in setup.items():
        if attrs.get(key) != value:
            study.set_user_attr(key, value)


def _needs_work(study: optuna.Study, n_trials: int, rescore: bool) -> bool:
    from optuna.trial import TrialState

    complete = study._storage.get_n_trials(study._study_id, TrialState.COMPLETE)
    if complete < n_trials:
        return True
    if not rescore:
        return False
    attrs = study.user_attrs
    return RESCORED_ATTR not in attrs or attrs.get(RESCORED_TRIAL_ATTR) != study.best_trial.number


def _run_tasks(
    tasks: Sequence[StudyTask],
    *,
    workers: int,
    storage: BaseStorage,
    study_ids: Mapping[str, int],
    progress: bool,
    echo: Callable[[str], None],
) -> list[TaskResult]:
    """Run ``tasks`` (in this process when ``workers <= 1``), with a trial progress bar and a
    line per finished study."""
    from optuna.trial import TrialState

    if not tasks:
        return []
    start_counts = {
        t.study_name: storage.get_n_trials(study_ids[t.study_name], TrialState.COMPLETE)
        for t in tasks
    }
    total = sum(max(0, t.n_trials - start_counts[t.study_name]) for t in tasks)
    bar = _progress_bar(total, workers) if progress else None
    results: list[TaskResult] = []

    def report(task: StudyTask, result: TaskResult) -> None:
        results.append(result)
        line = _finished_line(task, result, storage, len(results), len(tasks))
        if bar is not None:
            with bar.external_write_mode():
                echo(line)
        else:
            echo(line)

    try:
        if workers <= 1:
            for task in tasks:
                tick = (lambda: bar.update(1)) if bar is not None else None
                report(task, run_task(task, on_trial=tick))
            return results
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // workers)
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=init_worker, initargs=(threads,)
        ) as executor:
            futures = {executor.submit(run_task_in_worker, task): task for task in tasks}
            pending = set(futures)
            counts = {task.study_name: 0 for task in tasks}  # complete trials run by this call
            try:
                while pending:
                    finished, pending = concurrent.futures.wait(
                        pending, timeout=_POLL_S, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in finished:
                        task = futures[future]
                        try:
                            result = future.result()
                        except Exception as error:  # a worker process died
                            result = TaskResult(
                                task.study_name, 0, 0.0, f"{type(error).__name__}: {error}"
                            )
                        report(task, result)
                    if bar is not None:  # poll the storage for the studies still running
                        for future in pending:
                            task = futures[future]
                            now = storage.get_n_trials(
                                study_ids[task.study_name], TrialState.COMPLETE
                            )
                            counts[task.study_name] = now - start_counts[task.study_name]
                        bar.update(max(0, sum(counts.values()) - bar.n))
            except BaseException:
                executor.shutdown(wait=False, cancel_futures=True)
                raise
        return results
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total: int, workers: int) -> Any:
    from tqdm.auto import tqdm

    unit = "process" if workers == 1 else "processes"
    return tqdm(total=total, unit="trial", desc=f"compare ({workers} {unit})", file=sys.stderr)


def _finished_line(
    task: StudyTask,
    result: TaskResult,
    storage: BaseStorage,
    index: int,
    count: int,
) -> str:
    import optuna

    study = optuna.load_study(study_name=task.study_name, storage=storage)
    label = study.user_attrs.get(SAMPLER_ATTR, task.sampler)
    head = f"[{index}/{count}] {label} seed {task.seed}"
    if result.error:
        return f"{head}: stopped after {result.ran} trials: {result.error}"
    n = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    parts = [f"{head}: {n} trials ({result.ran} run now)"]
    if n:
        parts.append(f"best {study.best_value:.4g}")
    if RESCORED_ATTR in study.user_attrs:
        parts.append(f"re-scored {study.user_attrs[RESCORED_ATTR]:.4g}")
    parts.append(f"{result.elapsed_s:.1f} s")
    return ", ".join(parts)


def _summarize(
    storage: BaseStorage,
    keys: Sequence[tuple[str, int, str]],
    *,
    name: str,
    url: str,
    out: Path,
    n_trials: int,
    threshold: float | None,
    direction: Direction,
    plot: bool,
    errors: Sequence[str],
    started: float,
) -> ComparisonResult:
    """Every number from the storage: per study, per sampler, then the files."""
    import optuna

    studies: list[StudyStats] = []
    by_label: dict[str, Sequence[StudyStats]] = {}
    for label, seed, name_ in keys:
        study = optuna.load_study(study_name=name_, storage=storage)
        rescored = study.user_attrs.get(RESCORED_ATTR)
        stats = study_stats(
            study.get_trials(deepcopy=False),
            sampler=label,
            seed=seed,
            study_name=name_,
            n_trials=n_trials,
            threshold=threshold,
            direction=direction,
            rescored=float(rescored) if isinstance(rescored, (int, float)) else None,
        )
        studies.append(stats)
        by_label[label] = (*by_label.get(label, ()), stats)
    rows = tuple(
        sampler_stats(label, group, n_trials=n_trials, threshold=threshold)
        for label, group in by_label.items()
    )
    plot_path = None
    if plot:
        plot_path = plot_best_so_far(
            out / "best_so_far.png",
            by_label,
            n_trials=n_trials,
            threshold=threshold,
            direction=direction,
            title=name,
        )
    summary_md = write_summary_md(
        out / "summary.md",
        rows,
        studies,
        title=name,
        storage=url,
        n_trials=n_trials,
        threshold=threshold,
        direction=direction,
        plot=plot_path.name if plot_path is not None else None,
        errors=errors,
    )
    return ComparisonResult(
        name=name,
        storage=url,
        out=out,
        n_trials=n_trials,
        threshold=threshold,
        direction=direction,
        samplers=rows,
        studies=tuple(studies),
        summary_md=summary_md,
        summary_csv=write_summary_csv(
            out / "summary.csv", rows, n_trials=n_trials, threshold=threshold
        ),
        studies_csv=write_studies_csv(out / "studies.csv", studies, n_trials=n_trials),
        plot=plot_path,
        elapsed_s=time.perf_counter() - started,
        errors=tuple(errors),
    )


def add_compare_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``optuna-llm-sampler compare`` to the command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_compare_parser(parser.add_subparsers(dest="command"))  # doctest: +ELLIPSIS
        ArgumentParser(...)
    """
    parser = subparsers.add_parser(
        "compare",
        help="compare samplers (LLM and Optuna's) over seeds on a linear-policy objective",
        description=(
            "Run every sampler with every seed on a linear policy of a gymnasium environment "
            "(one study each, in one storage), re-score each study's best policy on fresh "
            "episodes, and write summary.md, summary.csv, studies.csv and best_so_far.png to "
            "--out. Running the same command again resumes: finished studies are not redone."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", default=MOUNTAINCAR, help="gymnasium id (Box spaces)")
    parser.add_argument(
        "--samplers",
        default=",".join(DEFAULT_SAMPLERS),
        help=f"comma-separated, among {','.join(SAMPLER_NAMES)}",
    )
    parser.add_argument(
        "--model", default=None, help="LLM: gpt-4o, gemini-2.0-flash, local, ... (llm only)"
    )
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server (llm only)")
    parser.add_argument("--seeds", default="5", help="a count (5: seeds 0-4) or a list 0,3,7")
    parser.add_argument(
        "--guidance",
        default="auto",
        choices=("auto", "on", "off"),
        help="the LLM's prompt guidance, as in 'run': auto is on for local models only",
    )
    parser.add_argument("--n-trials", type=int, default=100, help="trials per study")
    parser.add_argument("--out", default="compare", help="folder of the summary files")
    parser.add_argument(
        "--storage", default=None, help="URL or journal:PATH (default: sqlite:///OUT/compare.db)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"value counted as solved (default: 90 on {MOUNTAINCAR}, none elsewhere)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (1: run in this process)",
    )
    parser.add_argument("--n-startup-trials", type=int, default=20, help="llm only")
    parser.add_argument("--n-eval-episodes", type=int, default=20, help="episodes per trial")
    parser.add_argument("--rescore-episodes", type=int, default=100, help="fresh episodes")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--low", type=float, default=-7.0)
    parser.add_argument("--high", type=float, default=7.0)
    parser.add_argument("--bias", action="store_true", help="add a bias per action")
    parser.add_argument("--search-std", type=float, default=1.0, help="llm only")
    parser.add_argument(
        "--expected-optimum",
        type=float,
        default=None,
        help=f"llm prompt's hint (default: 50 on {MOUNTAINCAR}, none elsewhere)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plot", action="store_true", help="no best_so_far.png")
    parser.set_defaults(handler=_compare_command)
    return parser


def _parse_seeds(text: str) -> int | list[int]:
    try:
        if "," in text:
            return [int(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise ValueError(
            f"--seeds must be a count or a list such as 0,3,7, got {text!r}."
        ) from None


def _compare_command(args: argparse.Namespace) -> int:
    from optuna_llm_sampler.rl import default_param_names

    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if "llm" not in samplers and (args.model or args.base_url):
        raise ValueError("--model and --base-url apply to the llm sampler only.")
    for flag in ("n_trials", "n_eval_episodes", "rescore_episodes", "max_steps"):
        if getattr(args, flag) <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be positive.")
    if not args.low < args.high:
        raise ValueError(f"--low must be below --high, got {args.low} and {args.high}.")
    default_param_names(args.env, bias=args.bias)  # a clear error for unknown or discrete envs
    threshold = args.threshold
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS.get(args.env)
    from optuna_llm_sampler._run import expected_optimum_hint
    from optuna_llm_sampler._run import guidance_options

    expected = expected_optimum_hint(args.env, args.expected_optimum)
    from optuna_llm_sampler._run import RunConfig

    model = args.model or default_model()
    llm_options: dict[str, Any] = {
        "model": model,
        "search_std": args.search_std,
        "expected_optimum": expected,
        **guidance_options(RunConfig(env=args.env, guidance=args.guidance), model),
    }
    if args.base_url:
        llm_options["base_url"] = args.base_url
    result = compare(
        LinearPolicyFactory(
            args.env,
            n_eval_episodes=args.n_eval_episodes,
            max_steps=args.max_steps,
            low=args.low,
            high=args.high,
            bias=args.bias,
        ),
        name=args.env,
        samplers=samplers,
        seeds=_parse_seeds(args.seeds),
        n_trials=args.n_trials,
        storage=args.storage,
        out=args.out,
        llm_options=llm_options,
        n_startup_trials=args.n_startup_trials,
        n_jobs=args.n_jobs,
        threshold=threshold,
        rescore=LinearPolicyRescore(
            args.env, n_episodes=args.rescore_episodes, max_steps=args.max_steps, bias=args.bias
        ),
        plot=not args.no_plot,
        progress=not args.no_progress,
    )
    print()
    print(result.table())
    print()
    for path in (result.summary_md, result.summary_csv, result.studies_csv, result.plot):
        if path is not None:
            print(f"wrote {path}")
    print(f"took {result.elapsed_s:.1f} s; watch it: {dashboard_command(result.storage)}")
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors else 0
