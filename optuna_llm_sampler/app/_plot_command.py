"""``optuna-llm-sampler plot``: one episode of a trial's policy (or of weights) as PNG and GIF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import optuna


def add_plot_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plot one episode of a trial's policy (position, velocity, action, reward) and a GIF",
        description=(
            "Play one episode with the policy of a study's trial (the best by default) or of "
            "given weights, and save the tutorial's episode figure (PNG) and an animated GIF."
        ),
    )
    parser.add_argument("--storage", default=None, help="the study's storage: URL or journal:PATH")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    parser.add_argument(
        "--weights", default=None, help="comma-separated weights, e.g. --weights=-0.2,6.5"
    )
    parser.add_argument("--env", default=None, help="default: the study's env, or MountainCar")
    parser.add_argument("--bias", action="store_true", help="the last weights are the bias")
    parser.add_argument("--seed", type=int, default=0, help="the episode's reset seed")
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--out", default="plots", help="folder for the files")
    parser.add_argument("--no-gif", action="store_true", help="only the PNG")
    parser.set_defaults(handler=_plot)


def _plot(args: argparse.Namespace) -> int:
    import numpy as np

    from optuna_llm_sampler.app._plots import plot_episode
    from optuna_llm_sampler.app._plots import save_episode_gif
    from optuna_llm_sampler.rl import policy_from_params
    from optuna_llm_sampler.rl import rollout_episode

    env = args.env
    if args.weights is not None:
        if args.storage or args.trial is not None:
            raise ValueError("give either --weights or --storage/--study-name/--trial, not both.")
        try:
            values = [float(x) for x in args.weights.split(",")]
        except ValueError:
            raise ValueError(
                f"--weights must be comma-separated numbers, got {args.weights!r}."
            ) from None
        env = env or "MountainCarContinuous-v0"
        names = [f"w{i}" for i in range(len(values))]
        policy = policy_from_params(
            dict(zip(names, values, strict=True)), env, param_names=names, bias=args.bias
        )
        label = "weights"
    else:
        if not args.storage:
            raise ValueError("give --storage (and --study-name) or --weights.")
        study = _load_study(args.storage, args.study_name)
        trial = _pick_trial(study, args.trial)
        env = env or study.user_attrs.get("env", "MountainCarContinuous-v0")
        names = list(study.user_attrs.get("params", ",".join(trial.params)).split(","))
        missing = [name for name in names if name not in trial.params]
        if missing:
            raise ValueError(
                f"trial {trial.number} ({trial.state.name}) has no value for "
                f"{', '.join(missing)}: give --trial of a complete trial."
            )
        policy = policy_from_params(trial.params, env, param_names=names, bias=args.bias)
        label = f"trial{trial.number}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rollout = rollout_episode(
        policy.weights, env, seed=args.seed, max_steps=args.max_steps, bias=policy.bias
    )
    png = plot_episode(rollout, out / f"episode_{label}.png", env_id=env)
    print(f"{png} (return {rollout.total_return:.2f}, {rollout.length} steps)")
    if not args.no_gif:
        gif = save_episode_gif(
            np.asarray(policy.weights),
            out / f"episode_{label}.gif",
            env_id=env,
            seed=args.seed,
            max_steps=args.max_steps,
            bias=policy.bias,
        )
        print(gif)
    return 0


def _load_study(url: str, study_name: str | None) -> optuna.Study:
    """The study to plot; a missing file, study or name is a one-line error naming the fix."""
    import optuna

    from optuna_llm_sampler.app._storage import open_existing_storage
    from optuna_llm_sampler.providers import redact_url

    storage = open_existing_storage(url)
    names = [s.study_name for s in storage.get_all_studies()]
    shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
    if study_name is None:
        if len(names) != 1:
            holds = f"{len(names)} studies ({shown})" if names else "no study"
            raise ValueError(f"storage {redact_url(url)} holds {holds}: give --study-name.")
        study_name = names[0]
    elif study_name not in names:
        holds = f"it holds {shown}" if names else "it holds no study"
        raise ValueError(f"no study {study_name!r} in storage {redact_url(url)}: {holds}.")
    return optuna.load_study(study_name=study_name, storage=storage)


def _pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of ``study``, or its best; a missing one is a one-line error."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if number is None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise ValueError(
                f"study {study.study_name!r} has no complete trial yet: give --trial N."
            )
        return study.best_trial
    for trial in trials:
        if trial.number == number:
            return trial
    have = f"trials 0 to {len(trials) - 1}" if trials else "no trial"
    raise ValueError(f"--trial {number}: study {study.study_name!r} has {have}.")
