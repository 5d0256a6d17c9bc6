"""``optuna-llm-sampler plot``: one episode of a trial's policy (or of weights) as PNG and GIF."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_plot_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plot one episode of a trial's policy (position, velocity, action, reward) and a GIF",
        description=(
            "Play one episode with the policy of a study's trial (the best by default) or of "
            "given weights, and save the tutorial's episode figure (PNG) and an animated GIF."
        ),
    )
    parser.add_argument("--storage", default=None, help="the study's storage URL")
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
    import optuna

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
        study = optuna.load_study(study_name=args.study_name, storage=args.storage)
        trial = study.best_trial if args.trial is None else study.trials[args.trial]
        env = env or study.user_attrs.get("env", "MountainCarContinuous-v0")
        names = list(study.user_attrs.get("params", ",".join(trial.params)).split(","))
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
