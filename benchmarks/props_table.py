"""The ProPS paper's table beside Optuna's samplers: ``compare`` on each of its tasks.

Each task runs ``optuna-llm-sampler compare`` with the paper's policy (weights and a bias per
action in [-6, 6], episodes capped at 1,000 steps) and the budget below: the paper's 400 trials
of 20 episodes where the machine allows it, fewer trials or episodes per trial where it does not
(``BUDGETS``; ``--scale`` multiplies the trials, for a quick pilot). The GP runs in a second
``compare`` of its own (fewer trials), in ``OUT/TASK/gp``. Every study's best policy is
re-scored on 20 fresh episodes (the paper evaluates on 20) and the table prints, per sampler,
that re-scored return (the median over seeds), beside the paper's GPT-4o figures (10 seeds,
400 iterations; its site, props-llm.github.io). It also prints the objective's cost per trial and
the wall time per task. Studies are kept in ``--out`` (one folder per task): running the command
again resumes and redoes nothing finished.

Run: ``python benchmarks/props_table.py --out props_table [--seeds 1] [--scale 1]``
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
import time

from optuna_llm_sampler.app.cli import main as cli_main
from optuna_llm_sampler.rl import PAPER_TASKS


#: The paper's table (GPT-4o): best RL baseline, ProPS, ProPS+ (mean ± std over 10 seeds).
PAPER = {
    "MountainCarContinuous-v0": ("SAC 86.65", "87.21 ± 29.28", "89.16 ± 29.72"),
    "InvertedPendulum-v5": ("TRPO 571.31", "1000", "1000"),
    "InvertedDoublePendulum-v5": ("TRPO 3609.37", "128.17", "148.39"),
    "Swimmer-v5": ("TRPO 52.96", "218.83", "227.30"),
    "Hopper-v5": ("TRPO 716.90", "284.16", "356.22"),
    "Walker2d-v5": ("TRPO 519.38", "147.17", "126.75"),
    "Reacher-v5": ("PPO -7.32", "-11.32", "-18.15"),
    "MountainCar-v0": ("DQN -194.36", "-126.11", "-116.71"),
    "CartPole-v1": ("TRPO 465.34", "478.27", "500"),
}

ALL_SAMPLERS = ("cmaes", "tpe", "gp", "random")
SAMPLERS = ("cmaes", "tpe", "random")

#: Per task: (trials, episodes per trial) of CMA-ES, TPE and random search, and the trials of the
#: GP (``None``: not run). Chosen from the measured cost per trial so that the whole table takes
#: about 25 minutes of one core (see docs/results_props.md). GPSampler's own cost per trial grows
#: with the trials (0.7 s at 60 trials on MountainCarContinuous here, 1.2 s on CartPole), so it
#: gets fewer.
BUDGETS: dict[str, tuple[int, int, int | None]] = {
    "MountainCarContinuous-v0": (400, 20, 40),
    "InvertedPendulum-v5": (400, 5, 40),
    "InvertedDoublePendulum-v5": (400, 5, 40),
    "Swimmer-v5": (100, 5, 20),
    "Hopper-v5": (200, 5, 40),
    # 108 parameters: the GP's fit and acquisition search would cost more than the episodes.
    "Walker2d-v5": (100, 5, None),
    "Reacher-v5": (200, 20, 40),
    "MountainCar-v0": (200, 20, 40),
    "CartPole-v1": (400, 20, 40),
}

RESCORE_EPISODES = 20


def compare_argv(
    env: str, out: Path, seeds: str, samplers: tuple[str, ...], n_trials: int, n_episodes: int
) -> list[str]:
    """The ``compare`` command line of one task (the paper's policy box and bias)."""
    argv = ["compare", "--env", env, "--samplers", ",".join(samplers), "--seeds", seeds]
    argv += ["--n-trials", str(n_trials), "--n-eval-episodes", str(n_episodes)]
    argv += ["--rescore-episodes", str(RESCORE_EPISODES)]
    argv += ["--bias", "--low", "-6", "--high", "6", "--max-steps", "1000"]
    argv += ["--n-jobs", "1", "--no-progress", "--no-plot", "--out", str(out)]
    return argv


def _run(argv: list[str]) -> tuple[dict[str, dict[str, str]], float, int]:
    """Run one ``compare``; its summary rows by sampler, its wall time and its exit status."""
    print("optuna-llm-sampler " + " ".join(argv), flush=True)
    start = time.perf_counter()
    status = cli_main(argv)
    wall = time.perf_counter() - start
    summary = Path(argv[argv.index("--out") + 1]) / "summary.csv"
    rows = {}
    if summary.exists():
        rows = {row["sampler"]: row for row in csv.DictReader(summary.open())}
    return rows, wall, status


def _cell(row: dict[str, str] | None, key: str, digits: int = 2) -> str:
    if row is None or not row.get(key):
        return "–"
    return f"{float(row[key]):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="props_table", help="folder of the studies")
    parser.add_argument("--seeds", default="1", help="as compare's --seeds")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget")
    parser.add_argument("--tasks", default=",".join(PAPER), help="comma-separated ids")
    args = parser.parse_args()
    out = Path(args.out)
    lines = []
    total = 0.0
    for env in [t for t in args.tasks.split(",") if t]:
        n_trials, n_episodes, gp_trials = BUDGETS[env]
        n_trials = max(2, round(n_trials * args.scale))
        rows, wall, status = _run(
            compare_argv(env, out / env, args.seeds, SAMPLERS, n_trials, n_episodes)
        )
        budget = f"{n_trials} x {n_episodes}"
        if gp_trials is not None:
            gp_trials = max(2, round(gp_trials * args.scale))
            gp_rows, gp_wall, gp_status = _run(
                compare_argv(env, out / env / "gp", args.seeds, ("gp",), gp_trials, n_episodes)
            )
            rows.update(gp_rows)
            wall, status = wall + gp_wall, status or gp_status
            budget += f" (gp: {gp_trials})"
        total += wall
        best_rl, props, props_plus = PAPER[env]
        cells = [_cell(rows.get(s), "rescored_best_median") for s in ALL_SAMPLERS]
        costs = [
            float(r["objective_ms_per_trial_median"])
            for r in rows.values()
            if r.get("objective_ms_per_trial_median")
        ]
        cost = f"{min(costs):.0f}-{max(costs):.0f}" if costs else "–"
        task = PAPER_TASKS[env]
        lines.append(
            f"| {task.name} | {task.n_params} | {budget} | {best_rl} | {props} | {props_plus} | "
            + " | ".join(cells)
            + f" | {cost} | {wall:.0f}{'' if status == 0 else ' (errors)'} |"
        )
    print()
    print(
        "| task | params | trials x episodes | best RL (paper) | ProPS (paper) | ProPS+ (paper) | "
        + " | ".join(ALL_SAMPLERS)
        + " | objective ms/trial | wall s |"
    )
    print("|" + "---|" * (8 + len(ALL_SAMPLERS)))
    print("\n".join(lines))
    print(f"\ntotal wall time: {total:.0f} s")


if __name__ == "__main__":
    main()
