"""One 20-episode evaluation, gymnasium's loop vs the fast path: MountainCarContinuous's compiled
simulator, then every task of the ProPS paper side by side (``--tasks``; MuJoCo needs the
``mujoco`` extra).

Both backends evaluate the same weight pairs on the same reset seeds in the same run, and the
script checks that they return the same episode returns. The numba JIT is warmed first (its
compile, or its load from the on-disk cache, is printed separately and not counted), so the
timings are of the steady state a study sees from its second trial on. Each timing is the median
over ``--repeats`` evaluations. The pairs cover a good policy (goal reached in ~100-500 steps), a
mediocre one and one that never reaches the goal (999 steps every episode).

The ProPS tasks use the paper's policy (weights and a bias per action) at two points: all zero
(episodes as long as the task allows: 1,000 steps on Swimmer, 500 on a balanced CartPole...)
and a seeded uniform draw from the paper's box [-6, 6] (what a random sampler plays; most of
them end early). The fast path there plays the 20 episodes side by side on unwrapped
environments; MuJoCo's physics, which it cannot shorten, is most of a MuJoCo step.

Run: ``python benchmarks/objective_speed.py [--repeats 5] [--tasks]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from optuna_llm_sampler.rl import evaluate_linear_policy
from optuna_llm_sampler.rl import PAPER_TASKS


PAIRS = {
    "good      (a=0.0, b=7.0)": [0.0, 7.0],
    "mediocre  (a=-1.0, b=4.0)": [-1.0, 4.0],
    "no goal   (a=0.5, b=0.5)": [0.5, 0.5],
    "random    (a=3.1, b=-5.2)": [3.1, -5.2],
}
N_EPISODES = 20


def _median_seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _paper_task_points(env_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    task = PAPER_TASKS[env_id]
    shape = (task.state_dim, task.action_dim)
    rng = np.random.default_rng(0)
    return {
        "zero": (np.zeros(shape), np.zeros(task.action_dim)),
        "uniform [-6, 6]": (
            np.round(rng.uniform(-6, 6, shape), 1),
            np.round(rng.uniform(-6, 6, task.action_dim), 1),
        ),
    }


def paper_tasks(repeats: int) -> None:
    """The ProPS paper's tasks other than MountainCarContinuous, side by side."""
    print(f"\nProPS paper's tasks: {N_EPISODES} episodes per evaluation, median of {repeats}\n")
    print(f"{'task':<28}{'policy':<17}{'gymnasium':>11}{'fast':>11}{'ratio':>8}  mean return")
    for env_id in PAPER_TASKS:
        if env_id == "MountainCarContinuous-v0":
            continue
        for name, (w, b) in _paper_task_points(env_id).items():

            def run(backend: str, w=w, b=b, env_id=env_id) -> np.ndarray:  # type: ignore[no-untyped-def]
                return evaluate_linear_policy(
                    w, env_id, n_episodes=N_EPISODES, bias=b, backend=backend
                )

            slow_returns, fast_returns = run("gymnasium"), run("fast")  # also warms the pool
            if slow_returns.tolist() != fast_returns.tolist():
                raise SystemExit(f"{env_id} {name}: the fast path's returns differ")
            slow = _median_seconds(lambda run=run: run("gymnasium"), repeats)
            fast = _median_seconds(lambda run=run: run("fast"), repeats)
            print(
                f"{env_id:<28}{name:<17}{slow * 1e3:>9.1f}ms{fast * 1e3:>9.1f}ms"
                f"{slow / fast:>7.2f}x  {fast_returns.mean():>11.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations per backend")
    parser.add_argument(
        "--tasks", action="store_true", help="also every task of the ProPS paper (slower)"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    evaluate_linear_policy([0.0, 7.0], n_episodes=1, backend="fast")
    print(f"numba warm-up (import + compile or cache load): {time.perf_counter() - start:.2f} s")
    evaluate_linear_policy([0.0, 7.0], n_episodes=1, backend="gymnasium")  # gymnasium imports

    print(f"\n{N_EPISODES} episodes per evaluation, median of {args.repeats} evaluations\n")
    print(f"{'weights':<28}{'gymnasium':>12}{'fast':>12}{'ratio':>9}  mean return  max |diff|")
    total_slow = total_fast = 0.0
    for name, w in PAIRS.items():
        slow_returns = evaluate_linear_policy(w, n_episodes=N_EPISODES, backend="gymnasium")
        fast_returns = evaluate_linear_policy(w, n_episodes=N_EPISODES, backend="fast")
        diff = float(np.max(np.abs(slow_returns - fast_returns)))
        slow = _median_seconds(
            lambda w=w: evaluate_linear_policy(w, n_episodes=N_EPISODES, backend="gymnasium"),
            args.repeats,
        )
        fast = _median_seconds(
            lambda w=w: evaluate_linear_policy(w, n_episodes=N_EPISODES, backend="fast"),
            args.repeats * 20,
        )
        total_slow += slow
        total_fast += fast
        print(
            f"{name:<28}{slow * 1e3:>10.1f}ms{fast * 1e3:>10.2f}ms{slow / fast:>8.0f}x"
            f"  {fast_returns.mean():>11.2f}  {diff:.1e}"
        )
    print(
        f"\nall pairs: gymnasium {total_slow * 1e3:.1f} ms, fast {total_fast * 1e3:.2f} ms, "
        f"ratio {total_slow / total_fast:.0f}x (target >= 100x)"
    )
    if args.tasks:
        paper_tasks(max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
