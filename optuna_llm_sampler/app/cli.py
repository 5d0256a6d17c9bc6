"""The ``optuna-llm-sampler`` command: ``run`` (the tutorial's loop on Optuna) and friends."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import sys

from optuna_llm_sampler.app._compare_command import add_compare_parser
from optuna_llm_sampler.app._dashboard_server import add_dashboard_parser
from optuna_llm_sampler.app._interrupts import caused_by_interrupt
from optuna_llm_sampler.app._interrupts import quiet_interrupts
from optuna_llm_sampler.app._llm_options import add_llm_flags
from optuna_llm_sampler.app._llm_options import given_options
from optuna_llm_sampler.app._named_samplers import SAMPLER_NAMES
from optuna_llm_sampler.app._plot_command import add_plot_parser
from optuna_llm_sampler.app._run import run_study
from optuna_llm_sampler.app._run_config import DEFAULT_STORAGE
from optuna_llm_sampler.app._run_config import RunConfig


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run (or resume) a study of a linear policy, as the ProPS tutorial does",
        description=(
            "Optimize the weights of a linear policy on a gymnasium environment with an LLM "
            "(or one of Optuna's samplers). Defaults follow the ProPS tutorial. The model "
            "defaults to gpt-4o when OPENAI_API_KEY is set, else to the embedded offline model."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = RunConfig()
    parser.add_argument("--env", default=d.env, help="gymnasium id (Box observations/actions)")
    parser.add_argument("--sampler", default=d.sampler, choices=SAMPLER_NAMES)
    parser.add_argument("--model", default=None, help="gpt-4o, gemini-2.0-flash, local, ...")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server")
    parser.add_argument("--n-trials", type=int, default=d.n_trials)
    parser.add_argument("--n-startup-trials", type=int, default=d.n_startup_trials)
    parser.add_argument("--n-eval-episodes", type=int, default=d.n_eval_episodes)
    parser.add_argument("--max-steps", type=int, default=d.max_steps)
    parser.add_argument("--low", type=float, default=d.low)
    parser.add_argument("--high", type=float, default=d.high)
    parser.add_argument("--bias", action="store_true", help="add a bias per action")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="URL or journal:PATH")
    parser.add_argument("--study-name", default=None, help="default: ENV-SAMPLER-seedN")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--artifacts", default=None, help="folder for per-trial rollouts")
    parser.add_argument("--warmup-dir", default=None, help="tutorial warmup_rollout_N.txt files")
    parser.add_argument("--max-total-tokens", type=int, default=None)
    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=None,
        help="seconds; fails and retries trials of killed workers (RDB or journal storage)",
    )
    parser.add_argument(
        "--startup",
        default=d.startup,
        choices=("random", "tutorial"),
        help="startup trials: random over the box, or the tutorial's warmup in [-3, 3]",
    )
    add_llm_flags(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--create-only",
        action="store_true",
        help="create the study and exit (before starting many workers)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    config = RunConfig(
        env=args.env,
        sampler=args.sampler,
        model=args.model,
        base_url=args.base_url,
        n_trials=args.n_trials,
        n_startup_trials=args.n_startup_trials,
        n_eval_episodes=args.n_eval_episodes,
        max_steps=args.max_steps,
        low=args.low,
        high=args.high,
        bias=args.bias,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.seed,
        artifacts=args.artifacts,
        warmup_dir=args.warmup_dir,
        max_total_tokens=args.max_total_tokens,
        heartbeat_interval=args.heartbeat_interval,
        progress=not args.no_progress,
        startup=args.startup,
        guidance=args.guidance,
        options=given_options(args),
    )
    if args.create_only:
        config.n_trials = 1
    summary = run_study(config, create_only=args.create_only)
    for line in summary.lines():
        print(line)
    # A study whose LLM never answered is a random search: not a success.
    return 1 if summary.outage else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optuna-llm-sampler",
        description="An Optuna sampler that asks an LLM for the next trial (ProPS on Optuna).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run(subparsers)
    add_compare_parser(subparsers)
    add_dashboard_parser(subparsers)
    add_plot_parser(subparsers)
    return parser


#: What Ctrl-C prints, per command: one line, the state it leaves and how to go on.
INTERRUPTED = {
    "run": "interrupted; the study is saved and resumes with the same command",
    "compare": "interrupted; finished trials are saved and the same command resumes",
}


def one_line(error: BaseException) -> str:
    """An exception's message on one line (an SDK's or a database's may span many).

    Example:
        >>> one_line(ValueError("bad\\n  value"))
        'bad value'
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 600 else text[:599] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optuna-llm-sampler`` console script.

    Every error a user can cause (a bad flag, a missing file, study, key or optional module) is
    one line on stderr and exit status 2; Ctrl-C is one line and 130. No traceback. A ``run``
    whose first LLM trials all fell back for the same provider reason ends with status 1.

    Example:
        >>> main(["run", "--sampler", "random", "--n-trials", "5"])  # doctest: +SKIP
        0
    """
    from optuna_llm_sampler.providers import ProviderError

    args = build_parser().parse_args(argv)
    try:
        with quiet_interrupts():
            return int(args.handler(args))
    except BaseException as error:
        # Ctrl-C, also when it surfaces as another error raised while handling it (Optuna 5.0's
        # _run_trial raises UnboundLocalError when it lands while a trial's result is stored).
        if caused_by_interrupt(error):
            print(INTERRUPTED.get(args.command, "interrupted"), file=sys.stderr)
            return 130
        if isinstance(error, (ValueError, ProviderError, ImportError, OSError)):
            print(f"optuna-llm-sampler {args.command}: error: {one_line(error)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
