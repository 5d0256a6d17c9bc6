"""One study of a comparison, as a worker process runs it: open the storage, run the missing
trials with the objective timed, re-score the best trial.

Everything here is module-level and picklable, so it runs in ``spawn`` worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
from dataclasses import field
import os
from pathlib import Path
import sys
import time
from typing import Any
from typing import TYPE_CHECKING
import warnings

from optuna_llm_sampler.app._storage import JOURNAL_PREFIX
from optuna_llm_sampler.app._storage import open_storage


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage


#: Trial user attribute: seconds the objective took, without the time spent in ``suggest_*``
#: (where samplers sample). ``datetime_complete - datetime_start - objective_s`` is the time the
#: sampler and the storage took for the trial.
OBJECTIVE_S = "objective_s"
#: Study user attributes written by the comparison.
SAMPLER_ATTR = "sampler"
SEED_ATTR = "seed"
OBJECTIVE_ATTR = "objective"
MODEL_ATTR = "model"
RESCORED_ATTR = "rescored_best"
RESCORED_TRIAL_ATTR = "rescored_trial"
#: SQLite waits this long for a lock held by another worker before giving up.
SQLITE_TIMEOUT_S = 60

ObjectiveFactory = Callable[[int], Callable[["optuna.Trial"], float]]
Rescore = Callable[["optuna.Study"], float]


def absolute_storage_url(url: str) -> str:
    """``url`` with a relative SQLite or journal path made absolute, so that worker processes
    find the same file whatever their working directory.

    Example:
        >>> absolute_storage_url("journal:runs.log")  # doctest: +SKIP
        'journal:/home/me/runs.log'
    """
    if url.startswith(JOURNAL_PREFIX):
        path = url[len(JOURNAL_PREFIX) :]
        return JOURNAL_PREFIX + str(Path(path).absolute()) if path else url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and path != ":memory:" and not path.startswith("file:"):
            return prefix + str(Path(path).absolute())
    return url


def dashboard_command(url: str) -> str:
    """The command that opens ``url`` in optuna-dashboard (a journal is given by its path; a
    password in the URL is shown as ``***``).

    Example:
        >>> dashboard_command("journal:compare/compare.log")
        'optuna-dashboard compare/compare.log'
    """
    from optuna_llm_sampler.providers import redact_url

    if url.startswith(JOURNAL_PREFIX):
        return f"optuna-dashboard {url[len(JOURNAL_PREFIX) :]}"
    return f"optuna-dashboard {redact_url(url)}"


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines (one per trial and study) and its experimental warnings
    (``QMCSampler``), restoring the verbosity afterwards."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def open_compare_storage(url: str) -> BaseStorage:
    """Open ``url`` for a comparison: SQLite with a generous lock timeout (several worker
    processes write to one file), anything else through :func:`open_storage`.

    Raises:
        ValueError: The URL is not a storage URL or the storage cannot be opened.
    """
    if url.startswith("sqlite:"):
        import optuna

        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError(
                "storage must be a file (sqlite:///compare.db): an in-memory SQLite database is "
                "not shared with the worker processes."
            )
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
            )
        except Exception as error:  # SQLAlchemy's OperationalError and friends
            from optuna_llm_sampler.providers import redact_url

            raise ValueError(
                f"cannot open storage {redact_url(url)}: {type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}"
            ) from None
    return open_storage(url)


class TimedObjective:
    """Wraps an objective and records, per trial, the seconds it took without its ``suggest_*``
    calls in the user attribute ``objective_s``.

    Samplers sample inside ``suggest_*`` (relative samplers lazily, on the first call), so the
    time spent there belongs to the sampler, not to the objective.

    Example:
        >>> study.optimize(TimedObjective(objective), n_trials=10)  # doctest: +SKIP
    """

    def __init__(self, objective: Callable[[optuna.Trial], float]) -> None:
        self._objective = objective

    def __call__(self, trial: optuna.Trial) -> float:
        in_suggest = 0.0
        suggest = getattr(trial, "_suggest", None)
        if callable(suggest):

            def timed_suggest(name: str, distribution: Any) -> Any:
                nonlocal in_suggest
                started = time.perf_counter()
                try:
                    return suggest(name, distribution)
                finally:
                    in_suggest += time.perf_counter() - started

            # Every suggest_* goes through Trial._suggest; an instance attribute shadows it.
            setattr(trial, "_suggest", timed_suggest)  # noqa: B010
        started = time.perf_counter()
        try:
            return self._objective(trial)
        finally:
            elapsed = time.perf_counter() - started
            trial.set_user_attr(OBJECTIVE_S, round(max(0.0, elapsed - in_suggest), 6))


@dataclass(frozen=True)
class StudyTask:
    """One (sampler, seed) study to run or finish.

    Attributes:
        storage: Storage URL (absolute paths).
        study_name: The study.
        sampler: A name of :data:`~optuna_llm_sampler.app._named_samplers.SAMPLER_NAMES`.
        seed: Seeds the sampler and the objective factory.
        n_trials: Complete trials the study must hold when done.
        objective_factory: ``factory(seed) -> objective``.
        rescore: ``rescore(study) -> float`` for the best trial, or ``None``.
        n_startup_trials: Startup trials of the LLM sampler (``None``: its default).
        llm_options: Keyword arguments of the LLM sampler.
    """

    storage: str
    study_name: str
    sampler: str
    seed: int
    n_trials: int
    objective_factory: ObjectiveFactory
    rescore: Rescore | None = None
    n_startup_trials: int | None = None
    llm_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What a worker did for one study.

    Attributes:
        study_name: The study.
        ran: Trials this call ran.
        elapsed_s: Wall-clock seconds this call took.
        error: ``"ExceptionType: message"`` when the study stopped on an error, else ``None``.
    """

    study_name: str
    ran: int
    elapsed_s: float
    error: str | None = None


def limit_threads(threads: int | None) -> None:
    """Cap BLAS/OpenMP/PyTorch threads, so parallel workers do not oversubscribe the cores."""
    if threads is None:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")  # read at import otherwise; never imported just for this
    if torch is not None:
        torch.set_num_threads(threads)


def run_task(
    task: StudyTask, *, on_trial: Callable[[], None] | None = None, quiet: bool = True
) -> TaskResult:
    """Run ``task``'s missing trials, then re-score the best trial if that is not done yet.

    Trials left RUNNING by an interrupted earlier run are marked FAIL first: a comparison runs
    each study in one worker at a time, so no other process can be evaluating them.

    Args:
        task: The study to run.
        on_trial: Called after each finished trial (progress in the same process).
        quiet: Silence Optuna's per-trial log lines.

    Returns:
        The :class:`TaskResult`; an exception of the objective or the sampler is caught and
        reported in it, so one broken study does not stop the others.
    """
    import optuna
    from optuna.trial import TrialState

    from optuna_llm_sampler.app._interrupts import caused_by_interrupt
    from optuna_llm_sampler.app._named_samplers import make_sampler
    from optuna_llm_sampler.integrations import TrialNoteCallback

    started = time.perf_counter()
    ran = 0
    with quiet_optuna() if quiet else contextlib.nullcontext():
        try:
            storage = open_compare_storage(task.storage)
            sampler = make_sampler(
                task.sampler,
                seed=task.seed,
                n_startup_trials=task.n_startup_trials,
                llm_options=paired_llm_options(task),
            )
            study = optuna.load_study(study_name=task.study_name, storage=storage, sampler=sampler)
            for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                storage.set_trial_state_values(stale._trial_id, TrialState.FAIL)
            done = storage.get_n_trials(study._study_id, TrialState.COMPLETE)
            remaining = task.n_trials - done
            if remaining > 0:
                objective = TimedObjective(task.objective_factory(task.seed))
                callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
                    TrialNoteCallback()
                ]
                if on_trial is not None:

                    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                        on_trial()

                    callbacks.append(progress)
                before = len(study.get_trials(deepcopy=False))
                try:
                    study.optimize(objective, n_trials=remaining, callbacks=callbacks)
                finally:
                    ran = len(study.get_trials(deepcopy=False)) - before
            if task.rescore is not None:
                rescore_best(study, task.rescore)
        except Exception as error:
            if caused_by_interrupt(error):  # Ctrl-C, not a broken study: stop every study
                raise KeyboardInterrupt from error
            message = f"{type(error).__name__}: {str(error)[:500]}"
            return TaskResult(task.study_name, ran, time.perf_counter() - started, message)
    return TaskResult(task.study_name, ran, time.perf_counter() - started)


def paired_llm_options(task: StudyTask) -> dict[str, Any]:
    """The LLM sampler's options for ``task``, its startup trials drawn as ``random`` draws them.

    The startup and fallback points of ``llm`` and ``llm-control`` come from
    :func:`~optuna_llm_sampler.app._named_samplers.startup_sampler` of the seed, the ``random``
    sampler of the same seed (and ``run``'s), so the studies of one seed start from the same
    points and their difference is the LLM's. With a base sampler in control (``base_sampler``,
    ``preset="advised"``) the base draws the startup, as it does alone on the same seed.
    """
    from optuna_llm_sampler.app._named_samplers import llm_base_sampler
    from optuna_llm_sampler.app._named_samplers import startup_sampler

    if llm_base_sampler(task.llm_options) is not None:
        return dict(task.llm_options)  # a base sampler in control draws its own startup
    return {"independent_sampler": startup_sampler(task.seed), **task.llm_options}


def rescore_best(study: optuna.Study, rescore: Rescore) -> float | None:
    """Re-score ``study``'s best trial with ``rescore`` unless that trial is re-scored already;
    the result goes to the study's user attributes ``rescored_best`` and ``rescored_trial``."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial.number
    attrs = study.user_attrs
    if attrs.get(RESCORED_TRIAL_ATTR) == best and RESCORED_ATTR in attrs:
        return float(attrs[RESCORED_ATTR])
    value = float(rescore(study))
    study.set_user_attr(RESCORED_ATTR, value)
    study.set_user_attr(RESCORED_TRIAL_ATTR, best)
    return value


def init_worker(threads: int | None) -> None:
    """Initializer of a worker process: cap threads before anything imports PyTorch, and leave
    Ctrl-C to the parent.

    Ctrl-C reaches every process of the terminal's process group; a worker that took it would
    print its own traceback. The parent stops the workers instead (see ``run_tasks``).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)


def run_task_in_worker(task: StudyTask) -> TaskResult:
    """:func:`run_task` for a worker process (Optuna's log lines silenced)."""
    return run_task(task, quiet=True)
