"""Running ``compare``'s studies: in this process or in worker processes, with progress."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import concurrent.futures
import multiprocessing
import os
import sys
from typing import Any
from typing import TYPE_CHECKING

from optuna_llm_sampler.app._compare_worker import init_worker
from optuna_llm_sampler.app._compare_worker import RESCORED_ATTR
from optuna_llm_sampler.app._compare_worker import run_task
from optuna_llm_sampler.app._compare_worker import run_task_in_worker
from optuna_llm_sampler.app._compare_worker import SAMPLER_ATTR
from optuna_llm_sampler.app._compare_worker import StudyTask
from optuna_llm_sampler.app._compare_worker import TaskResult


if TYPE_CHECKING:
    from optuna.storages import BaseStorage


_POLL_S = 1.0


def run_tasks(
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
            except BaseException:  # Ctrl-C: the workers ignore it (init_worker); stop them here
                _stop_workers(executor)
                raise
        return results
    finally:
        if bar is not None:
            bar.close()


def _stop_workers(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the running workers now.

    ``shutdown(wait=False)`` alone would leave the running studies going to their end (the
    interpreter joins the workers at exit). A killed worker leaves its trial RUNNING; the next
    ``compare`` marks it FAIL and runs the trial again.
    """
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


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
