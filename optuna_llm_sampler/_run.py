"""The tutorial's loop as one call: a study of a linear policy, sampled by an LLM or by Optuna."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
import json
import math
import os
from pathlib import Path
import tempfile
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_llm_sampler._dashboard import publish_run
from optuna_llm_sampler._distributed import PerTrialRandomSampler
from optuna_llm_sampler._distributed import StudyTarget
from optuna_llm_sampler._records import llm_usage
from optuna_llm_sampler._records import LLMUsage
from optuna_llm_sampler._samplers import default_model
from optuna_llm_sampler._samplers import make_sampler
from optuna_llm_sampler._samplers import SAMPLER_NAMES
from optuna_llm_sampler._storage import open_storage
from optuna_llm_sampler.rl._tasks import TASK_DESCRIPTIONS


MOUNTAINCAR = "MountainCarContinuous-v0"
DEFAULT_STORAGE = "sqlite:///optuna_llm_sampler.db"


@dataclass
class RunConfig:
    """Everything ``optuna-llm-sampler run`` takes. Defaults follow the ProPS tutorial.

    Attributes:
        env: A gymnasium id with Box observation and action spaces.
        sampler: ``llm`` or one of Optuna's samplers (``tpe``, ``cmaes``, ``gp``, ``random``,
            ``qmc``).
        model: The LLM; ``None`` picks ``gpt-4o`` when ``OPENAI_API_KEY`` is set, else the
            embedded offline model.
        base_url: An OpenAI-compatible server for ``model``.
        n_trials: Trials the study should hold when done (a resumed study runs the rest).
        n_startup_trials: Random trials before the LLM is asked (the tutorial's warmup).
        n_eval_episodes: Episodes averaged per trial.
        max_steps: Step cap per episode.
        search_std: The exploration step the prompt suggests.
        low: Lower bound of every weight.
        high: Upper bound of every weight.
        bias: Add a bias per action to the policy.
        expected_optimum: The prompt's hint; ``None`` gives the tutorial's 50 on MountainCar and
            no hint elsewhere.
        storage: Optuna storage URL, or ``journal:PATH``.
        study_name: ``None`` derives one from the env, sampler and seed.
        seed: Seeds the sampler and the evaluation episodes.
        artifacts: A folder for per-trial rollouts and policies (Optuna artifacts).
        warmup_dir: A folder of the tutorial's ``warmup_rollout_N.txt`` files to start from.
        max_history_tokens: Token budget of the prompt's history table.
        max_total_tokens: Study-wide LLM token budget.
        heartbeat_interval: Seconds between heartbeats of running trials (RDB or journal
            storage); a trial of a killed worker is failed after twice that and retried once.
        progress: Show a progress bar.
        rescore_episodes: Fresh episodes used to re-score the best weights at the end.
        startup: ``"random"``: the startup trials are random over the whole box; ``"tutorial"``:
            the tutorial's warmup, weights uniform in [-3, 3] rounded to one decimal.
        task_description: ``"auto"`` describes the environment to the LLM when one is known
            (MountainCar, ProPS+), ``None`` keeps "assume no prior knowledge", or your own text.
        guidance: ``"on"`` turns on the set-up that measured best with the embedded model
            (docs/results.md): ``task_description="auto"``, ``hints``, ``min_distance=0.1``,
            ``n_candidates=3``, ``steps_from_best``, ``out_of_range="clip"``; ``"off"`` keeps
            the tutorial's prompt; ``"auto"`` is ``"on"`` for local models and ``"off"`` for
            the others. Options set explicitly win.
        hints: End the prompt with the best point and the least explored slices of the box
            (``None``: as ``guidance`` says).
        min_distance: Re-ask proposals closer than this to a tried point (``None``: as
            ``guidance`` says).
        n_candidates: Proposals per LLM call; the best-scored one is evaluated (``None``: as
            ``guidance`` says).
        steps_from_best: The LLM answers with changes to the best point instead of absolute
            weights (``None``: as ``guidance`` says).
        out_of_range: ``"reject"`` re-asks a weight outside ``[low, high]``, ``"clip"`` moves it
            to the bound (``None``: as ``guidance`` says).
        widen_steps_after: With steps from the best point, double the suggested step for every
            this many trials without a new best (``None``: as ``guidance`` says).
        history_style: ``"csv"`` or ``"tutorial"`` history rows.
        precision: Digits of numbers in the prompt (``None``: full precision).
    """

    env: str = MOUNTAINCAR
    sampler: str = "llm"
    model: str | None = None
    base_url: str | None = None
    n_trials: int = 400
    n_startup_trials: int = 20
    n_eval_episodes: int = 20
    max_steps: int = 1000
    search_std: float = 1.0
    low: float = -7.0
    high: float = 7.0
    bias: bool = False
    expected_optimum: float | None = None
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    seed: int = 0
    artifacts: str | None = None
    warmup_dir: str | None = None
    max_history_tokens: int | None = None
    max_total_tokens: int | None = None
    heartbeat_interval: int | None = None
    progress: bool = True
    rescore_episodes: int = 100
    startup: str = "random"
    task_description: str | None = None
    guidance: str = "auto"
    hints: bool | None = None
    min_distance: float | None = None
    n_candidates: int | None = None
    steps_from_best: bool | None = None
    out_of_range: str | None = None
    widen_steps_after: int | None = None
    history_style: str = "csv"
    precision: int | None = 3
    llm_options: dict[str, Any] = field(default_factory=dict)

    def resolved_model(self) -> str:
        return self.model or default_model()

    def resolved_study_name(self) -> str:
        if self.study_name:
            return self.study_name
        who = self.sampler
        if self.sampler == "llm":
            who = "llm-" + self.resolved_model().replace("/", "_").replace(":", "_")
        return f"{self.env}-{who}-seed{self.seed}"

    def validate(self) -> None:
        if self.sampler not in SAMPLER_NAMES:
            raise ValueError(
                f"--sampler must be one of {', '.join(SAMPLER_NAMES)}, got {self.sampler!r}."
            )
        for name in ("n_trials", "n_eval_episodes", "max_steps", "rescore_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive.")
        if self.n_startup_trials < 0:
            raise ValueError("--n-startup-trials must be non-negative.")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"--low must be below --high, got {self.low} and {self.high}.")
        if not self.search_std > 0:
            raise ValueError(f"--search-std must be positive, got {self.search_std}.")
        if self.sampler != "llm" and (self.model or self.base_url):
            raise ValueError("--model and --base-url apply to --sampler llm only.")
        if self.guidance not in ("auto", "on", "off"):
            raise ValueError(f"--guidance must be auto, on or off, got {self.guidance!r}.")
        if self.startup not in ("random", "tutorial"):
            raise ValueError(f"--startup must be 'random' or 'tutorial', got {self.startup!r}.")
        if self.startup == "tutorial" and not (self.low <= -3 and self.high >= 3):
            raise ValueError(
                "--startup tutorial draws weights in [-3, 3], which must lie within "
                f"[--low, --high] = [{self.low}, {self.high}]."
            )


@dataclass
class RunSummary:
    """What a run found and what it cost."""

    study_name: str
    storage: str
    n_trials: int
    best_value: float | None
    best_params: dict[str, Any]
    rescored_mean: float | None
    rescored_std: float | None
    usage: LLMUsage
    model: str | None
    artifacts: str | None

    def lines(self) -> list[str]:
        out = [f"study {self.study_name!r} in {self.storage}: {self.n_trials} complete trials"]
        if self.best_value is not None:
            weights = ", ".join(f"{k}={v:.4g}" for k, v in self.best_params.items())
            out.append(f"best weights: {weights}")
            out.append(f"best value seen: {self.best_value:.2f}")
        if self.rescored_mean is not None:
            out.append(
                f"best re-scored on fresh episodes: {self.rescored_mean:.2f} "
                f"± {self.rescored_std:.2f} (the value seen overstates it)"
            )
        u = self.usage
        if u.llm_trials:
            out.append(
                f"LLM ({self.model}): {u.proposals} proposals, {u.fallbacks} fallbacks "
                f"({u.proposal_share:.0%} of {u.llm_trials} LLM trials were the LLM's own), "
                f"{u.calls} calls, {u.prompt_tokens} prompt + {u.completion_tokens} "
                f"completion tokens, {u.latency_s:.1f} s waiting"
            )
        from optuna_llm_sampler._dashboard import dashboard_command

        out.append(f"watch it: {dashboard_command(self.storage, self.artifacts)}")
        return out


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
    from optuna_llm_sampler.rl import add_warmup_trials
    from optuna_llm_sampler.rl import default_param_names
    from optuna_llm_sampler.rl import evaluate_best
    from optuna_llm_sampler.rl import linear_policy_objective

    config.validate()
    names = tuple(default_param_names(config.env, bias=config.bias))  # validates the env
    storage = open_storage(
        config.storage,
        heartbeat_interval=config.heartbeat_interval,
        grace_period=None if config.heartbeat_interval is None else 2 * config.heartbeat_interval,
        retry_failed_trials=1 if config.heartbeat_interval else 0,
    )
    model = config.resolved_model() if config.sampler == "llm" else None
    expected = expected_optimum_hint(config.env, config.expected_optimum)
    llm_options: dict[str, Any] = {
        "model": model,
        "search_std": config.search_std,
        "expected_optimum": expected,
        "budget": config.n_trials,
        "max_history_tokens": config.max_history_tokens,
        "max_total_tokens": config.max_total_tokens,
        **guidance_options(config, model),
        "history_style": config.history_style,
        "precision": config.precision,
        # Workers share --seed; RandomSampler(seed) would repeat one worker's points in another.
        "independent_sampler": PerTrialRandomSampler(seed=config.seed),
    }
    if config.base_url:
        llm_options["base_url"] = config.base_url
    llm_options.update(config.llm_options)
    if config.sampler == "llm":
        echo(
            f"sampler: LLM, model {model}" + (f" at {config.base_url}" if config.base_url else "")
        )
    else:
        echo(f"sampler: {config.sampler}")
    sampler = make_sampler(
        config.sampler,
        seed=config.seed,
        n_startup_trials=config.n_startup_trials,
        llm_options=llm_options,
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
    if config.warmup_dir and not study.trials:
        added = add_warmup_trials(
            study, config.warmup_dir, param_names=names, low=config.low, high=config.high
        )
        echo(f"warmup: {len(added)} trials imported from {config.warmup_dir}")
    elif config.startup == "tutorial" and not study.trials:
        for params in tutorial_warmup(names, config.n_startup_trials, seed=config.seed):
            study.enqueue_trial(params)
        echo(f"startup: {config.n_startup_trials} warmup points in [-3, 3], as in the tutorial")
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    # Counts every worker's running trials too, so N workers stop at n_trials in total; the
    # worker's own count stays a bound (n_trials - done), for objectives that keep failing.
    target = StudyTarget(config.n_trials)
    remaining = 0 if create_only or target.room(study) == 0 else config.n_trials - done
    if done:
        echo(f"resuming study {study_name!r}: {done} of {config.n_trials} trials complete")
    objective = linear_policy_objective(
        config.env,
        n_eval_episodes=config.n_eval_episodes,
        max_steps=config.max_steps,
        low=config.low,
        high=config.high,
        param_names=names,
        bias=config.bias,
        seed=config.seed,
    )
    if config.artifacts:
        from optuna.artifacts import FileSystemArtifactStore

        os.makedirs(config.artifacts, exist_ok=True)
        store = FileSystemArtifactStore(config.artifacts)
        objective = _with_artifacts(objective, config, names, store)
    if remaining > 0:
        study.optimize(
            target.guard(objective),
            n_trials=remaining,
            show_progress_bar=config.progress,
            callbacks=[target],
        )
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
    summary = RunSummary(
        study_name=study_name,
        storage=config.storage,
        n_trials=len(complete),
        best_value=best_value,
        best_params=best_params or {},
        rescored_mean=rescored_mean,
        rescored_std=rescored_std,
        usage=llm_usage(study),
        model=model,
        artifacts=config.artifacts,
    )
    publish_run(study, summary, config)
    return summary


def expected_optimum_hint(env: str, expected_optimum: float | None) -> float | None:
    """The prompt's "expected optimum" hint: the one given, else the tutorial's 50 on
    MountainCarContinuous and none elsewhere.

    Example:
        >>> expected_optimum_hint("MountainCarContinuous-v0", None)
        50.0
    """
    if expected_optimum is None and env == MOUNTAINCAR:
        return 50.0
    return expected_optimum


GUIDED: dict[str, Any] = {
    "task_description": "auto",
    "hints": True,
    "min_distance": 0.1,
    "n_candidates": 3,
    "steps_from_best": True,
    "out_of_range": "clip",
}


def guidance_options(config: RunConfig, model: str | None) -> dict[str, Any]:
    """The LLMSampler options ``config.guidance`` implies, with explicit settings winning.

    Example:
        >>> guidance_options(RunConfig(guidance="on"), "gpt-4o")["n_candidates"]
        3
    """
    on = config.guidance == "on" or (
        config.guidance == "auto" and model is not None and model.startswith("local")
    )
    chosen: dict[str, Any] = {
        "task_description": config.task_description,
        "hints": config.hints,
        "min_distance": config.min_distance,
        "n_candidates": config.n_candidates,
        "steps_from_best": config.steps_from_best,
        "out_of_range": config.out_of_range,
        "widen_steps_after": config.widen_steps_after,
    }
    for key, value in GUIDED.items():
        if chosen[key] is None and on:
            chosen[key] = value
    if chosen["task_description"] == "auto":
        chosen["task_description"] = TASK_DESCRIPTIONS.get(config.env)
    elif chosen["task_description"] == "none":
        chosen["task_description"] = None
    chosen["hints"] = bool(chosen["hints"])
    chosen["steps_from_best"] = bool(chosen["steps_from_best"])
    chosen["n_candidates"] = chosen["n_candidates"] or 1
    chosen["out_of_range"] = chosen["out_of_range"] or "reject"
    return chosen


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
    for key, value in setup.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
