"""``optuna-llm-sampler compare``: samplers over seeds on a linear policy, from the shell."""

from __future__ import annotations

import argparse
import os
import sys

from optuna_llm_sampler.app._compare import compare
from optuna_llm_sampler.app._compare import COMPARE_SAMPLER_NAMES
from optuna_llm_sampler.app._compare import DEFAULT_SAMPLERS
from optuna_llm_sampler.app._compare import default_storage
from optuna_llm_sampler.app._compare_objectives import LinearPolicyFactory
from optuna_llm_sampler.app._compare_objectives import LinearPolicyRescore
from optuna_llm_sampler.app._compare_worker import dashboard_command
from optuna_llm_sampler.app._llm_options import add_llm_flags
from optuna_llm_sampler.app._llm_options import given_options
from optuna_llm_sampler.app._llm_options import sampler_options
from optuna_llm_sampler.app._named_samplers import CONTROL
from optuna_llm_sampler.app._named_samplers import default_model
from optuna_llm_sampler.app._run_config import add_policy_flags
from optuna_llm_sampler.app._run_config import resolve_policy_flags
from optuna_llm_sampler.rl import MOUNTAINCAR


#: ``--threshold`` default per environment: MountainCarContinuous counts as solved at 90.
DEFAULT_THRESHOLDS = {MOUNTAINCAR: 90.0}
#: ``--fail-below`` default per environment: on MountainCarContinuous a re-scored best below 50
#: is a failed seed (the do-nothing plateau scores 0, a solved policy about 93).
DEFAULT_FAIL_LINES = {MOUNTAINCAR: 50.0}


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
            "--out, with a paired section (each sampler against the others, seed by seed: "
            "median difference, bootstrap interval, signed-rank p-value) in summary.md and "
            "paired.csv. llm-control is the llm's set-up with random answers instead of the "
            "model. Running the same command again resumes: finished studies are not redone."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", default=MOUNTAINCAR, help="gymnasium id (Box, Discrete actions)")
    parser.add_argument(
        "--samplers",
        default=",".join(DEFAULT_SAMPLERS),
        help=f"comma-separated, among {','.join(COMPARE_SAMPLER_NAMES)} (llm-control: the llm's "
        "set-up, preset and options with random answers instead of the model; no model needed)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="LLM: gpt-4o, gemini-2.0-flash, local, ... (llm; llm-control takes its set-up)",
    )
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server (llm only)")
    parser.add_argument(
        "--seeds",
        default="20",
        help="a count (20: seeds 0-19) or a list 0,3,7; the samplers that need no model run "
        "all of them",
    )
    parser.add_argument(
        "--llm-seeds",
        type=int,
        default=5,
        help="the llm sampler runs the first LLM_SEEDS of --seeds (all if fewer)",
    )
    parser.add_argument("--n-trials", type=int, default=100, help="trials per study")
    parser.add_argument("--out", default="compare", help="folder of the summary files")
    parser.add_argument(
        "--storage",
        default=argparse.SUPPRESS,  # not None: the help names the real default, not "None"
        help=f"URL or journal:PATH (default: {default_storage('OUT')}, in the --out folder)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"value counted as solved (default: 90 on {MOUNTAINCAR}, none elsewhere)",
    )
    parser.add_argument(
        "--fail-below",
        type=float,
        default=None,
        help="a re-scored best below it counts as a failed seed (default: 50 on "
        f"{MOUNTAINCAR}, none elsewhere)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes (1: run in this process)",
    )
    parser.add_argument(
        "--n-startup-trials",
        type=int,
        default=None,
        help="llm and llm-control only (default: 20, or the base sampler's own startup with "
        "--base-sampler or --guidance advised)",
    )
    parser.add_argument("--n-eval-episodes", type=int, default=20, help="episodes per trial")
    parser.add_argument("--rescore-episodes", type=int, default=100, help="fresh episodes")
    parser.add_argument("--max-steps", type=int, default=1000)
    add_policy_flags(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plot", action="store_true", help="no best_so_far.png")
    add_llm_flags(parser)
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

    resolve_policy_flags(args)
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if "llm" not in samplers and CONTROL not in samplers and args.model:
        raise ValueError("--model applies to the llm and llm-control samplers only.")
    if "llm" not in samplers and args.base_url:
        raise ValueError("--base-url applies to the llm sampler only.")
    if args.llm_seeds <= 0:
        raise ValueError("--llm-seeds must be positive.")
    for flag in ("n_trials", "n_eval_episodes", "rescore_episodes", "max_steps"):
        if getattr(args, flag) <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be positive.")
    if not args.low < args.high:
        raise ValueError(f"--low must be below --high, got {args.low} and {args.high}.")
    default_param_names(args.env, bias=args.bias)  # a clear error for unknown or discrete envs
    threshold = args.threshold
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS.get(args.env)
    fail_below = args.fail_below
    if fail_below is None:
        fail_below = DEFAULT_FAIL_LINES.get(args.env)
    model = args.model or default_model()
    llm_options = sampler_options(
        env=args.env, model=model, guidance=args.guidance, given=given_options(args)
    )
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
        llm_seeds=args.llm_seeds,
        n_trials=args.n_trials,
        storage=getattr(args, "storage", None),
        out=args.out,
        llm_options=llm_options,
        n_startup_trials=args.n_startup_trials,
        n_jobs=args.n_jobs,
        threshold=threshold,
        fail_below=fail_below,
        rescore=LinearPolicyRescore(
            args.env, n_episodes=args.rescore_episodes, max_steps=args.max_steps, bias=args.bias
        ),
        plot=not args.no_plot,
        progress=not args.no_progress,
    )
    print()
    print(result.table())
    print()
    paired = result.paired_table()
    if paired is not None:
        print("Paired, seed by seed (sampler - against; see summary.md):")
        print(paired)
        print()
    paths = (result.summary_md, result.summary_csv, result.paired_csv, result.studies_csv)
    for path in (*paths, result.plot):
        if path is not None:
            print(f"wrote {path}")
    print(f"took {result.elapsed_s:.1f} s; watch it: {dashboard_command(result.storage)}")
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors else 0
