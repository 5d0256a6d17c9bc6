"""The benchmark scripts that read finished studies run as a user runs them."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from optuna_llm_sampler import LLMSampler
from optuna_llm_sampler.providers import ScriptedClient
from tests._answers import SchemaResponder


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_llm_cost_reads_the_records_of_matching_studies(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    client = ScriptedClient(respond=SchemaResponder(seed=0), supports_schema=True)
    for name, n_trials in (("compare-x-llm-local-seed0", 8), ("compare-x-llm-local-seed1", 3)):
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=LLMSampler(model=client, n_startup_trials=2, seed=0),
        )
        study.optimize(lambda t: -(t.suggest_float("x", -5, 5) ** 2), n_trials=n_trials)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "llm_cost.py"), str(path), "--min-trials", "8"],
        capture_output=True,
        text=True,
        check=True,
    )
    # Only the 8-trial study counts: its 6 LLM trials, one call each.
    assert re.search(r"studies 1, LLM trials 6 .*calls per LLM trial 1\.00", done.stdout)
