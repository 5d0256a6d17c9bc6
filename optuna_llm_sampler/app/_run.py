"""The tutorial's loop as one call: a study of a linear policy, sampled by an LLM or by Optuna."""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import tempfile
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_llm_sampler._records import llm_usage
from optuna_llm_sampler._records import OUTAGE_TRIALS
from optuna_llm_sampler._records import provider_outage
from optuna_llm_sampler.app._llm_options import python_call
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app._named_samplers import make_sampler
from optuna_llm_sampler.app._run_config import group_fallbacks
from optuna_llm_sampler.app._run_config import RunConfig
from optuna_llm_sampler.app._run_config import RunSummary
from optuna_llm_sampler.app._run_note import publish_run
from optuna_llm_sampler.app._storage import open_storage
from optuna_llm_sampler.app._workers import StudyTarget
from optuna_llm_sampler.integrations import TrialNoteCallback
from optuna_llm_sampler.providers import redact_url


def _with_artifacts(
    objective: Callable[[optuna.Trial], float],
    config: RunConfig,
    names: tuple[str, ...],
    store: Any,
) -> Callable[[optuna.Trial], float]:
    """Per trial, while it runs: one evaluation episode (state, action, reward per step) and the
    policy, uploaded as Optuna artifacts (the tutorial's rollout logs)."""
    from optuna.artifacts import upload_artifact

    from optuna_llm_sampler.rl import policy_from_params
    from optuna_llm_sampler.rl import rollout_episode

    def with_artifacts(trial: optuna.Trial) -> float:
        value = objective(trial)
        policy = policy_from_params(
            trial.params, env_id=config.env, param_names=names, bias=config.bias
        )
        rollout = rollout_episode(
            policy.weights,
            env_id=config.env,
            seed=config.seed + 10_000_000 + trial.number,
            max_steps=config.max_steps,
            bias=policy.bias,
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"rollout_trial_{trial.number}.csv"
            with path.open("w", encoding="utf-8") as f:
                state_cols = [f"state_{i}" for i in range(rollout.states.shape[1])]
                action_cols = [f"action_{i}" for i in range(rollout.actions.shape[1])]
                f.write(",".join(["step", *state_cols, *action_cols, "reward"]) + "\n")
                for t in range(rollout.length):
                    row = [str(t)]
                    row += [repr(float(x)) for x in rollout.states[t]]
                    row += [repr(float(x)) for x in rollout.actions[t]]
                    row.append(repr(float(rollout.rewards[t])))
                    f.write(",".join(row) + "\n")
                f.write(f"# Total reward: {rollout.total_return!r}\n")
            policy_path = Path(folder) / f"policy_trial_{trial.number}.json"
            policy_path.write_text(
                json.dumps(
                    {
                        "env": config.env,
                        "params": trial.params,
                        "weights": policy.weights.tolist(),
                        "bias": None if policy.bias is None else policy.bias.tolist(),
                        "value": value,
                        "rollout_return": rollout.total_return,
                    },
                    indent=2,
                )
            )
            for file in (path, policy_path):
                upload_artifact(artifact_store=store, file_path=str(file), study_or_trial=trial)
        return value

    return with_artifacts


def run_study(
    config: RunConfig, *, echo: Callable[[str], None] = print, create_only: bool = False
) -> RunSummary:
    """Run (or resume) the study ``config`` describes and summarize it.

    With ``create_only``, the study is created (or found) and nothing runs: start many workers
    after this, so they do not race to create the same storage schema.

    Raises:
        ValueError: A bad setting (unknown env, discrete actions, low >= high, unreachable
            storage); the message names it.
        ProviderConfigError: The LLM cannot be used (missing key or extra).
    """
    from optuna_llm_sampler.rl import default_param_names

    config.validate()
    names = tuple(default_param_names(config.env, bias=config.bias))  # validates the env
    # The sampler first: a bad flag, a missing key or module is an error before any storage
    # (a SQLite file, a journal) is created.
    model = config.resolved_model() if config.sampler == "llm" else None
    sampler = _make_run_sampler(config, model, echo)
    storage = open_storage(
        config.storage,
        heartbeat_interval=config.heartbeat_interval,
        grace_period=None if config.heartbeat_interval is None else 2 * config.heartbeat_interval,
        retry_failed_trials=1 if config.heartbeat_interval else 0,
    )
    study_name = config.resolved_study_name()
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=sampler,
        load_if_exists=True,
    )
    _remember_setup(study, config, model, names)
    if not study.trials:
        _add_startup_points(study, config, names, echo)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    # Counts every worker's running trials too, so N workers stop at n_trials in total; the
    # worker's own count stays a bound (n_trials - done), for objectives that keep failing.
    target = StudyTarget(config.n_trials)
    remaining = 0 if create_only or target.room(study) == 0 else config.n_trials - done
    if done:
        echo(f"resuming study {study_name!r}: {done} of {config.n_trials} trials complete")
    if remaining > 0:
        _optimize(
            study,
            target.guard(_objective(config, names)),
            n_trials=remaining,
            show_progress_bar=config.progress,
            callbacks=[target, TrialNoteCallback()],
        )
    summary = _summarize(study, config, model, names)
    publish_run(study, summary, config)
    return summary


def _optimize(
    study: optuna.Study, objective: Callable[[optuna.Trial], float], **kwargs: Any
) -> None:
    """``study.optimize``; the trial a Ctrl-C (or any error) stops in its objective or while its
    result is stored is failed, not left RUNNING.

    Optuna fails a trial whose objective is interrupted, but not one interrupted while its
    result is stored; left RUNNING, that trial would count towards ``--n-trials`` on resume
    (StudyTarget counts running trials, which may be other workers'). A trial interrupted while
    Optuna creates it is not known here and stays RUNNING; a heartbeat
    (``--heartbeat-interval``) fails it.
    """
    current: list[int] = []

    def tracked(trial: optuna.Trial) -> float:
        current[:] = [trial._trial_id]
        return objective(trial)

    try:
        study.optimize(tracked, **kwargs)
    except BaseException:
        for trial_id in current:
            try:
                if not study._storage.get_trial(trial_id).state.is_finished():
                    study._storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except Exception:  # finished meanwhile, or the storage is gone: nothing to undo
                pass
        raise


def _add_startup_points(
    study: optuna.Study, config: RunConfig, names: tuple[str, ...], echo: Callable[[str], None]
) -> None:
    """A new study's first points: the tutorial's warmup files, or its warmup draws."""
    from optuna_llm_sampler.rl import add_warmup_trials

    if config.warmup_dir:
        added = add_warmup_trials(
            study, config.warmup_dir, param_names=names, low=config.low, high=config.high
        )
        echo(f"warmup: {len(added)} trials imported from {config.warmup_dir}")
    elif config.startup == "tutorial":
        for params in tutorial_warmup(names, config.n_startup_trials, seed=config.seed):
            study.enqueue_trial(params)
        echo(f"startup: {config.n_startup_trials} warmup points in [-3, 3], as in the tutorial")


def _objective(config: RunConfig, names: tuple[str, ...]) -> Callable[[optuna.Trial], float]:
    """The linear-policy objective, uploading each trial's rollout with ``--artifacts``."""
    from optuna_llm_sampler.app._compare_objectives import episode_seed
    from optuna_llm_sampler.rl import linear_policy_objective

    objective = linear_policy_objective(
        config.env,
        n_eval_episodes=config.n_eval_episodes,
        max_steps=config.max_steps,
        low=config.low,
        high=config.high,
        param_names=names,
        bias=config.bias,
        seed=episode_seed(config.seed),  # compare's episodes of this seed
    )
    if not config.artifacts:
        return objective
    from optuna.artifacts import FileSystemArtifactStore

    os.makedirs(config.artifacts, exist_ok=True)
    return _with_artifacts(objective, config, names, FileSystemArtifactStore(config.artifacts))


def _summarize(
    study: optuna.Study, config: RunConfig, model: str | None, names: tuple[str, ...]
) -> RunSummary:
    """The best weights, re-scored on fresh episodes, and what the LLM cost."""
    from optuna_llm_sampler.rl import evaluate_best

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best_value = best_params = rescored_mean = rescored_std = None
    if complete:
        best = study.best_trial
        best_value, best_params = best.value, dict(best.params)
        result = evaluate_best(
            study,
            n_episodes=config.rescore_episodes,
            env_id=config.env,
            max_steps=config.max_steps,
            param_names=names,
            bias=config.bias,
        )
        rescored_mean, rescored_std = result.mean, result.std
        study.set_user_attr("best_rescored_mean", round(result.mean, 4))
    usage = llm_usage(study)
    trials = study.get_trials(deepcopy=False)
    # A run with fewer LLM trials than OUTAGE_TRIALS is judged on the ones it had.
    outage = (
        provider_outage(trials, first=min(OUTAGE_TRIALS, usage.llm_trials))
        if usage.llm_trials
        else None
    )
    return RunSummary(
        study_name=study.study_name,
        storage=config.storage,
        n_trials=len(complete),
        best_value=best_value,
        best_params=best_params or {},
        rescored_mean=rescored_mean,
        rescored_std=rescored_std,
        usage=usage,
        model=model,
        artifacts=config.artifacts,
        fallback_groups=group_fallbacks(trials),
        outage=outage.message() if outage else None,
    )


def tutorial_warmup(names: tuple[str, ...], n: int, *, seed: int) -> list[dict[str, float]]:
    """The tutorial's warmup policies: ``round((rand(dims) - 0.5) * 6, 1)``, one per trial.

    Example:
        >>> tutorial_warmup(("a", "b"), 2, seed=0)
        [{'a': 0.8, 'b': -1.4}, {'a': -2.8, 'b': -2.9}]
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    draws = np.round((rng.random((n, len(names))) - 0.5) * 6, 1)
    return [{name: float(x) + 0.0 for name, x in zip(names, row, strict=True)} for row in draws]


def _make_run_sampler(
    config: RunConfig, model: str | None, echo: Callable[[str], None]
) -> optuna.samplers.BaseSampler:
    """The run's sampler, said as the Python call that builds it."""
    if model is None:
        echo(f"sampler: {config.sampler}")
        return make_sampler(config.sampler, seed=config.seed)
    llm_options = sampler_options(
        env=config.env,
        model=model,
        guidance=config.guidance,
        given=config.options,
        budget=config.n_trials,
    )
    if config.base_url:
        llm_options["base_url"] = config.base_url
    if config.max_total_tokens is not None:
        llm_options["max_total_tokens"] = config.max_total_tokens
    llm_options.update(config.llm_options)
    where = f" at {redact_url(config.base_url)}" if config.base_url else ""
    echo(f"sampler: LLM, model {model}{where}")
    call = python_call(
        {**llm_options, "n_startup_trials": config.n_startup_trials, "seed": config.seed},
        env=config.env,
    )
    echo(f"in Python: {call}")
    return make_sampler(
        "llm", seed=config.seed, n_startup_trials=config.n_startup_trials, llm_options=llm_options
    )


def _remember_setup(
    study: optuna.Study, config: RunConfig, model: str | None, names: tuple[str, ...]
) -> None:
    """The study's setup in user attributes: short values the dashboard shows."""
    setup = {
        "env": config.env,
        "sampler": config.sampler,
        "params": ",".join(names),
        "n_eval_episodes": config.n_eval_episodes,
        "max_steps": config.max_steps,
        "low": config.low,
        "high": config.high,
        "seed": config.seed,
    }
    if model:
        setup["model"] = model
    if model and config.base_url:
        setup["base_url"] = redact_url(config.base_url)
    for key, value in setup.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
