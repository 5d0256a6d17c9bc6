"""Compare samplers on one objective: every (sampler, seed) is one study in one storage.

:func:`compare` runs the studies in parallel worker processes, resumes where an earlier run
stopped, and writes a summary computed from the storage alone: ``summary.md``,
``summary.csv`` (per sampler: median and spread over seeds), ``studies.csv`` (per seed) and
``best_so_far.png``. The studies stay in the storage, so ``optuna-dashboard STORAGE`` shows
each of them.

Example:
    .. code-block:: python

        from optuna_llm_sampler.app._compare import compare
        from optuna_llm_sampler.app._compare import LinearPolicyFactory
        from optuna_llm_sampler.app._compare import LinearPolicyRescore

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

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import math
import os
from pathlib import Path
import pickle
import subprocess
import time
from typing import Any
from typing import TYPE_CHECKING

from optuna_llm_sampler._options import PromptOptions
from optuna_llm_sampler.app._compare_objectives import LinearPolicyFactory
from optuna_llm_sampler.app._compare_objectives import LinearPolicyRescore
from optuna_llm_sampler.app._compare_pool import run_tasks
from optuna_llm_sampler.app._compare_report import paired_table
from optuna_llm_sampler.app._compare_report import plot_best_so_far
from optuna_llm_sampler.app._compare_report import summary_table
from optuna_llm_sampler.app._compare_report import write_paired_csv
from optuna_llm_sampler.app._compare_report import write_studies_csv
from optuna_llm_sampler.app._compare_report import write_summary_csv
from optuna_llm_sampler.app._compare_report import write_summary_md
from optuna_llm_sampler.app._compare_stats import Direction
from optuna_llm_sampler.app._compare_stats import paired_stats
from optuna_llm_sampler.app._compare_stats import PairedStats
from optuna_llm_sampler.app._compare_stats import sampler_stats
from optuna_llm_sampler.app._compare_stats import SamplerStats
from optuna_llm_sampler.app._compare_stats import Spread
from optuna_llm_sampler.app._compare_stats import study_stats
from optuna_llm_sampler.app._compare_stats import StudyStats
from optuna_llm_sampler.app._compare_worker import absolute_storage_url
from optuna_llm_sampler.app._compare_worker import MODEL_ATTR
from optuna_llm_sampler.app._compare_worker import OBJECTIVE_ATTR
from optuna_llm_sampler.app._compare_worker import OBJECTIVE_S
from optuna_llm_sampler.app._compare_worker import ObjectiveFactory
from optuna_llm_sampler.app._compare_worker import open_compare_storage
from optuna_llm_sampler.app._compare_worker import quiet_optuna
from optuna_llm_sampler.app._compare_worker import Rescore
from optuna_llm_sampler.app._compare_worker import RESCORED_ATTR
from optuna_llm_sampler.app._compare_worker import RESCORED_TRIAL_ATTR
from optuna_llm_sampler.app._compare_worker import SAMPLER_ATTR
from optuna_llm_sampler.app._compare_worker import SEED_ATTR
from optuna_llm_sampler.app._compare_worker import StudyTask
from optuna_llm_sampler.app._named_samplers import check_sampler_available
from optuna_llm_sampler.app._named_samplers import CONTROL
from optuna_llm_sampler.app._named_samplers import default_model
from optuna_llm_sampler.app._named_samplers import make_sampler
from optuna_llm_sampler.app._named_samplers import SAMPLER_NAMES


if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage


__all__ = [
    "DEFAULT_SAMPLERS",
    "OBJECTIVE_S",
    "ComparisonResult",
    "LinearPolicyFactory",
    "LinearPolicyRescore",
    "PairedStats",
    "SamplerStats",
    "Spread",
    "StudyStats",
    "compare",
]

DEFAULT_SAMPLERS = ("llm", "tpe", "cmaes", "gp", "qmc", "random")
#: Every sampler name ``compare`` takes: ``run``'s and the LLM's no-LLM control.
COMPARE_SAMPLER_NAMES = (*SAMPLER_NAMES, CONTROL)
#: Samplers that ask a model, and so run on the first ``llm_seeds`` seeds only.
MODEL_SAMPLERS = ("llm",)
#: The storage a comparison uses when none is given, in its ``out`` folder.
DEFAULT_STORAGE_FILE = "compare.log"


def default_storage(out: str | os.PathLike[str]) -> str:
    """The storage of a comparison whose ``storage`` is not given: a journal in ``out``.

    A journal rather than SQLite: several worker processes append to it without SQLite's
    database-wide write lock.

    Example:
        >>> default_storage("compare")
        'journal:compare/compare.log'
    """
    return f"journal:{Path(out) / DEFAULT_STORAGE_FILE}"


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
        paired: Per-seed differences of ``llm`` against ``llm-control`` and every other sampler,
            and of ``llm-control`` against the others (:func:`paired_comparisons`).
        summary_md: ``summary.md``.
        summary_csv: ``summary.csv`` (one row per sampler).
        studies_csv: ``studies.csv`` (one row per study).
        paired_csv: ``paired.csv`` (one row per pair and metric), or ``None`` without pairs.
        plot: ``best_so_far.png``, or ``None`` when not drawn.
        elapsed_s: Wall-clock seconds of this call.
        errors: ``"study: error"`` for each study that stopped on an error.
        fail_below: The failure line of the re-scored best, or ``None``.
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
    paired: tuple[PairedStats, ...] = field(default=())
    paired_csv: Path | None = None
    fail_below: float | None = None

    def table(self) -> str:
        """The main table in Markdown (as in ``summary.md``)."""
        return summary_table(
            self.samplers,
            n_trials=self.n_trials,
            threshold=self.threshold,
            fail_below=self.fail_below,
            direction=self.direction,
        )

    def paired_table(self) -> str | None:
        """The paired section's table in Markdown, or ``None`` without pairs."""
        return paired_table(self.paired, direction=self.direction)

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
    if sampler not in MODEL_SAMPLERS:
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
    seeds: int | Sequence[int] = 20,
    llm_seeds: int | None = 5,
    n_trials: int = 100,
    storage: str | None = None,
    out: str | os.PathLike[str] = "compare",
    llm_options: Mapping[str, Any] | None = None,
    n_startup_trials: int | None = None,
    n_jobs: int | None = None,
    threshold: float | None = None,
    fail_below: float | None = None,
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
    ``seed`` and the objective is ``objective_factory(seed)``; the startup trials of ``llm`` and
    ``llm-control`` are the ``random`` sampler's of the same seed. The sampler that asks a
    model (``llm``) runs on the first ``llm_seeds`` seeds, the others on all of them, so every
    seed the model ran is paired with every other sampler's. The studies run in ``n_jobs``
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
        samplers: Names among ``llm``, ``llm-control``, ``tpe``, ``cmaes``, ``gp``, ``qmc``,
            ``random`` (Optuna's samplers with their defaults and ``seed``; ``cmaes`` needs
            cmaes, ``qmc`` SciPy, ``gp`` PyTorch and SciPy: a missing one is refused before
            anything runs). ``llm-control`` is ``llm``'s set-up (``llm_options``: preset,
            prompt, history, proposal...) with the model replaced by
            :class:`~optuna_llm_sampler.providers.RandomProposer`: no model, no tokens.
        seeds: A number of seeds (``20`` means 0-19) or the seeds themselves.
        llm_seeds: How many of the first ``seeds`` the ``llm`` sampler runs (all when there
            are fewer); ``None`` runs all.
        n_trials: Complete trials per study.
        storage: Optuna storage URL (``sqlite:///path.db``, ``postgresql+psycopg2://...``) or
            ``journal:PATH``; default ``journal:{out}/compare.log`` (:func:`default_storage`).
            SQLite is opened with a 60 s lock timeout, since several processes write to it.
        out: Folder of ``summary.md``, ``summary.csv``, ``studies.csv`` and ``best_so_far.png``.
        llm_options: Keyword arguments of :class:`~optuna_llm_sampler.LLMSampler` for the
            ``llm`` sampler: ``model`` (default ``gpt-4o`` with ``OPENAI_API_KEY``, else the
            embedded model), ``base_url``, ``prompt``, ``proposal``... The prompt's ``budget``
            defaults to ``n_trials``.
        n_startup_trials: Trials sampled before the LLM is asked (``llm`` and ``llm-control``
            only); ``None``: 20, or the base sampler's own startup when one is in control.
        n_jobs: Worker processes; default ``min(2, os.cpu_count())``. ``1`` runs everything in
            this process (any callable works then).
        threshold: A value counted as "solved": the summary reports how many trials each seed
            needed to reach it (a seed whose study failed below it is reported as failed, not
            as never reaching it). ``None`` leaves it out.
        fail_below: A failure line of the re-scored best: the summary counts the seeds below
            it (above it when minimizing). ``None`` leaves it out.
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
            (e.g. ``gp`` without PyTorch: the message says how to install it), or a storage
            that cannot be opened.
        ProviderConfigError: The LLM cannot be used (missing API key or extra).

    Example:
        .. code-block:: python

            result = compare(factory, name="quadratic", samplers=("random", "tpe"), seeds=3,
                             n_trials=50, direction="minimize", out="cmp")
            print(result.table())
    """
    started = time.perf_counter()
    name = _check_arguments(
        objective_factory,
        name=name,
        rescore=rescore,
        n_trials=n_trials,
        n_jobs=n_jobs,
        direction=direction,
        threshold=threshold,
        n_startup_trials=n_startup_trials,
    )
    labels, sampler_names = _check_samplers(samplers, llm_options)
    for sampler in sampler_names:  # before any storage or folder is created
        check_sampler_available(sampler)
    seed_list = _check_seeds(seeds)
    if llm_seeds is not None and (
        isinstance(llm_seeds, bool) or not isinstance(llm_seeds, int) or llm_seeds <= 0
    ):
        raise ValueError(f"llm_seeds must be a positive integer or None, got {llm_seeds!r}.")
    if fail_below is not None and not math.isfinite(fail_below):
        raise ValueError(f"fail_below must be a finite number or None, got {fail_below!r}.")
    model_seeds = seed_list if llm_seeds is None else seed_list[:llm_seeds]
    if n_jobs is None:
        n_jobs = min(2, os.cpu_count() or 1)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if storage is None:
        storage = default_storage(out_dir)
    if not isinstance(storage, str):
        raise ValueError(
            "storage must be a URL string (sqlite:///compare.db, journal:./compare.log, ...), "
            f"which every worker process opens itself; got {type(storage).__name__}."
        )
    worker_url = absolute_storage_url(storage)
    options = _with_budget(llm_options, n_trials)

    opened = open_compare_storage(worker_url)
    plan = _plan_studies(
        opened,
        labels=labels,
        sampler_names=sampler_names,
        seeds=seed_list,
        model_seeds=model_seeds,
        name=name,
        direction=direction,
        template=StudyTask(
            storage=worker_url,
            study_name="",
            sampler="",
            seed=0,
            n_trials=n_trials,
            objective_factory=objective_factory,
            rescore=rescore,
            n_startup_trials=n_startup_trials,
            llm_options=options,
        ),
    )
    todo = plan.todo
    if len(todo) < len(plan.tasks):
        echo(
            f"{len(plan.tasks) - len(todo)} of {len(plan.tasks)} studies already done, "
            "not run again"
        )
    with quiet_optuna():
        for sampler in sorted({t.sampler for t in todo}):
            # Fail early, in this process, with a clear message (missing PyTorch or API key).
            make_sampler(sampler, seed=0, n_startup_trials=n_startup_trials, llm_options=options)

    workers = min(n_jobs, len(todo))
    _note_local_model_sharing(workers, todo, options, echo)
    if workers > 1:
        _check_picklable(next((t for t in todo if t.sampler == "llm"), todo[0]))
    results = run_tasks(
        todo,
        workers=workers,
        storage=opened,
        study_ids=plan.study_ids,
        progress=progress,
        echo=echo,
    )
    errors = tuple(f"{r.study_name}: {r.error}" for r in results if r.error)
    return _summarize(
        opened,
        plan.keys,
        name=name,
        url=storage,
        out=out_dir,
        n_trials=n_trials,
        threshold=threshold,
        fail_below=fail_below,
        direction=direction,
        pairs=paired_comparisons(labels, sampler_names),
        plot=plot,
        errors=errors,
        failures={r.study_name: r.error for r in results if r.error},
        started=started,
    )


def _check_arguments(
    objective_factory: Any,
    *,
    name: str | None,
    rescore: Any,
    n_trials: Any,
    n_jobs: Any,
    direction: str,
    threshold: float | None,
    n_startup_trials: Any,
) -> str:
    """Check :func:`compare`'s scalar arguments; return the objective's name."""
    if not callable(objective_factory):
        raise ValueError(
            "objective_factory must be a callable factory(seed) -> objective, "
            f"got {type(objective_factory).__name__}."
        )
    if rescore is not None and not callable(rescore):
        raise ValueError(f"rescore must be a callable or None, got {type(rescore).__name__}.")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials <= 0:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}.")
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1
    ):
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}.")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}.")
    if threshold is not None and not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}.")
    if n_startup_trials is not None and (
        isinstance(n_startup_trials, bool) or n_startup_trials < 0
    ):
        raise ValueError(f"n_startup_trials must be non-negative, got {n_startup_trials!r}.")
    if name is None:
        name = str(
            getattr(objective_factory, "env_id", None)
            or getattr(objective_factory, "__name__", "objective")
        )
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"name must be a non-empty word without spaces, got {name!r}.")
    return name


@dataclass(frozen=True)
class _Plan:
    """The comparison's studies: all of them, those with work left, and their ids."""

    tasks: list[StudyTask]
    todo: list[StudyTask]
    keys: list[tuple[str, int, str]]
    study_ids: dict[str, int]


def _plan_studies(
    storage: BaseStorage,
    *,
    labels: Sequence[str],
    sampler_names: Sequence[str],
    seeds: Sequence[int],
    model_seeds: Sequence[int],
    name: str,
    direction: Direction,
    template: StudyTask,
) -> _Plan:
    """Create (or find) one study per (sampler, seed), and the task that runs each."""
    import optuna

    plan = _Plan([], [], [], {})
    options = template.llm_options
    with quiet_optuna():
        for label, sampler in zip(labels, sampler_names, strict=True):
            for seed in model_seeds if sampler in MODEL_SAMPLERS else seeds:
                name_ = study_name(name, label, seed)
                study = optuna.create_study(
                    storage=storage, study_name=name_, direction=direction, load_if_exists=True
                )
                if study.direction.name.lower() != direction:
                    raise ValueError(
                        f"direction {direction!r} does not match the existing study {name_!r} "
                        f"({study.direction.name.lower()}); use another storage or name."
                    )
                _remember(study, label=label, seed=seed, objective=name, llm_options=options)
                plan.study_ids[name_] = study._study_id
                task = dataclasses.replace(
                    template,
                    study_name=name_,
                    sampler=sampler,
                    seed=seed,
                    llm_options=options if sampler in ("llm", CONTROL) else {},
                )
                plan.tasks.append(task)
                plan.keys.append((label, seed, name_))
                if _needs_work(study, template.n_trials, template.rescore is not None):
                    plan.todo.append(task)
    return plan


def _note_local_model_sharing(
    workers: int,
    todo: Sequence[StudyTask],
    options: Mapping[str, Any],
    echo: Callable[[str], None],
) -> None:
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


def _check_samplers(
    samplers: Sequence[str], llm_options: Mapping[str, Any] | None
) -> tuple[list[str], list[str]]:
    if isinstance(samplers, str) or not samplers:
        raise ValueError(
            f"samplers must be a non-empty sequence of names such as ('tpe', 'random'), "
            f"got {samplers!r}."
        )
    names = list(samplers)
    unknown = [s for s in names if s not in COMPARE_SAMPLER_NAMES]
    if unknown:
        raise ValueError(
            f"samplers must be among {', '.join(COMPARE_SAMPLER_NAMES)}, got unknown {unknown}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"samplers must not repeat a name, got {names}.")
    if llm_options is not None and not isinstance(llm_options, Mapping):
        raise ValueError(f"llm_options must be a mapping, got {type(llm_options).__name__}.")
    labels = [sampler_label(s, llm_options) for s in names]
    if len(set(labels)) != len(labels):
        raise ValueError(
            f"samplers must have distinct labels, got {labels}: the llm's model 'control' is "
            "the llm-control sampler already; leave one of them out."
        )
    return labels, names


def paired_comparisons(labels: Sequence[str], names: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(sampler, other)`` label pairs of the paired section: ``llm`` against
    ``llm-control`` first, then against every other sampler; then ``llm-control`` against
    the samplers that are not LLMs.

    Example:
        >>> paired_comparisons(["llm-local", "llm-control", "gp"], ["llm", "llm-control", "gp"])
        [('llm-local', 'llm-control'), ('llm-local', 'gp'), ('llm-control', 'gp')]
    """
    by_name = dict(zip(names, labels, strict=True))
    plain = [by_name[n] for n in names if n not in ("llm", CONTROL)]
    pairs: list[tuple[str, str]] = []
    if "llm" in by_name:
        controls = [by_name[CONTROL]] if CONTROL in by_name else []
        pairs += [(by_name["llm"], other) for other in controls + plain]
    if CONTROL in by_name:
        pairs += [(by_name[CONTROL], other) for other in plain]
    return pairs


def _with_budget(llm_options: Mapping[str, Any] | None, n_trials: int) -> dict[str, Any]:
    """``llm_options`` whose prompt tells the LLM the study's trial count, unless it says one."""
    options = dict(llm_options or {})
    prompt = options.get("prompt") or PromptOptions()
    if isinstance(prompt, PromptOptions) and prompt.budget is None:
        options["prompt"] = dataclasses.replace(prompt, budget=n_trials)
    return options


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
    if label == CONTROL:
        setup[MODEL_ATTR] = "control"
    elif label.startswith("llm-"):
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


def code_versions() -> str:
    """The code a summary was computed with: this package's version and git commit (when it
    runs from a checkout; ``+dirty`` with uncommitted changes), Optuna's and gymnasium's
    versions.

    Example:
        >>> code_versions()  # doctest: +SKIP
        'optuna-llm-sampler 0.1.0 (commit 1a2b3c4), optuna 5.0.0, gymnasium 1.4.0'
    """
    import importlib.metadata

    from optuna_llm_sampler import __version__

    commit = ""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        commit = f" (commit {head}{'+dirty' if dirty else ''})" if head else ""
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed wheel), or no git: the version says enough
    parts = [f"optuna-llm-sampler {__version__}{commit}"]
    for name in ("optuna", "gymnasium"):
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def _git(*args: str) -> str:
    """The output of ``git ARGS`` in the package's folder."""
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def _summarize(
    storage: BaseStorage,
    keys: Sequence[tuple[str, int, str]],
    *,
    name: str,
    url: str,
    out: Path,
    n_trials: int,
    threshold: float | None,
    fail_below: float | None,
    direction: Direction,
    pairs: Sequence[tuple[str, str]],
    plot: bool,
    errors: Sequence[str],
    failures: Mapping[str, str],
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
            error=failures.get(name_),
        )
        studies.append(stats)
        by_label[label] = (*by_label.get(label, ()), stats)
    rows = tuple(
        sampler_stats(
            label,
            group,
            n_trials=n_trials,
            threshold=threshold,
            fail_below=fail_below,
            direction=direction,
        )
        for label, group in by_label.items()
    )
    metrics = (["rescored_best"] if any(s.rescored is not None for s in studies) else []) + (
        ["trials_to_threshold"] if threshold is not None else []
    )
    paired = tuple(
        paired_stats(by_label[a], by_label[b], metric=metric, n_trials=n_trials)
        for metric in metrics
        for a, b in pairs
        if by_label.get(a) and by_label.get(b)
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
        paired=paired,
        fail_below=fail_below,
        versions=code_versions(),
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
        paired=paired,
        paired_csv=write_paired_csv(out / "paired.csv", paired) if paired else None,
        fail_below=fail_below,
        studies_csv=write_studies_csv(
            out / "studies.csv", studies, n_trials=n_trials, threshold=threshold
        ),
        plot=plot_path,
        elapsed_s=time.perf_counter() - started,
        errors=tuple(errors),
    )
