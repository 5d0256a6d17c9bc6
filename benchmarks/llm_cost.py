"""What the LLM cost per trial in finished studies, read back from their records.

For every study of a storage whose name contains ``--match`` and that has at least
``--min-trials`` complete trials: the LLM trials (trials with an LLM record), the median of the
generated tokens per LLM trial, the calls per LLM trial (re-asks included), the fallbacks, the
median seconds per call and the median wall time of a study. The figures of docs/results.md's
cost section come from this script run on `compare`'s storage.

Run: ``python benchmarks/llm_cost.py mc60/compare.log --match llm-local --min-trials 60``
(a journal file, or any storage URL).
"""

from __future__ import annotations

import argparse
import statistics

import optuna
from optuna.trial import TrialState

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler.app._storage import open_existing_storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("storage", help="a journal file or a storage URL")
    parser.add_argument("--match", default="llm-local", help="part of the studies' names")
    parser.add_argument("--min-trials", type=int, default=1, help="complete trials a study needs")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # A bare path is compare's journal file; open_existing_storage refuses a missing one.
    url = args.storage if ":" in args.storage else f"journal:{args.storage}"
    try:
        storage = open_existing_storage(url)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    tokens: list[int] = []
    latencies: list[float] = []
    walls: list[float] = []
    per_study: list[int] = []
    calls = fallbacks = 0
    for summary in optuna.get_all_study_summaries(storage):
        if args.match not in summary.study_name:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        if len(done) < args.min_trials:
            continue
        records = [r for r in map(get_llm_record, study.trials) if r is not None]
        per_study.append(len(records))
        for record in records:
            tokens.append(record.completion_tokens)
            calls += record.attempts
            fallbacks += record.fallback is not None
            if record.attempts:
                latencies.append(record.latency_s / record.attempts)
        ended = [t for t in done if t.datetime_start and t.datetime_complete]
        if ended:
            first = min(t.datetime_start for t in ended if t.datetime_start)
            last = max(t.datetime_complete for t in ended if t.datetime_complete)
            walls.append((last - first).total_seconds())
    n = len(tokens)
    if not n:
        raise SystemExit(f"no LLM trials in studies matching {args.match!r}")
    print(
        f"studies {len(per_study)}, LLM trials {n} (per study median "
        f"{statistics.median(per_study)}), generated tokens per LLM trial median "
        f"{statistics.median(tokens)}, calls per LLM trial {calls / n:.2f}, fallbacks "
        f"{fallbacks} ({fallbacks / n:.0%}), s per call median "
        f"{statistics.median(latencies) if latencies else 0:.1f}, study wall s median "
        f"{statistics.median(walls) if walls else 0:.0f}"
    )


if __name__ == "__main__":
    main()
