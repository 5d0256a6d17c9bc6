"""Storages for many workers: opening one at once (the schema race), journal heartbeats, and the
retry of a dead worker's trial."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import time
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
import pytest

from optuna_llm_sampler.app._storage import HEARTBEAT_KEY_PREFIX
from optuna_llm_sampler.app._storage import HeartbeatJournalStorage
from optuna_llm_sampler.app._storage import is_schema_race
from optuna_llm_sampler.app._storage import open_storage
from optuna_llm_sampler.app._storage import RetryStaleTrialCallback
from tests._postgres import PostgresCluster


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_workers_opening_a_fresh_database_at_once_all_succeed(postgres: PostgresCluster) -> None:
    url = postgres.create_database("schema_race")
    start_at = time.time() + 4.0  # all three past their imports by then
    code = (
        "import sys, time\n"
        "from optuna_llm_sampler.app._storage import open_storage\n"
        "start_at = float(sys.argv[2])\n"
        "while time.time() < start_at:\n"
        "    pass\n"
        "open_storage(sys.argv[1])\n"
        "print('opened')\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, repr(start_at)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert all("opened" in out for out in outputs)


def test_schema_race_errors_are_recognised() -> None:
    assert is_schema_race(
        Exception(
            "(psycopg2.errors.UniqueViolation) duplicate key value violates unique "
            'constraint "pg_type_typname_nsp_index"'
        )
    )
    assert is_schema_race(Exception('relation "studies" already exists'))
    assert not is_schema_race(Exception('password authentication failed for user "x"'))


def test_open_storage_names_the_fix_for_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="journal:./study.log"):
        open_storage("journal:")
    with pytest.raises(ValueError, match="heartbeat_interval must be positive"):
        open_storage(f"journal:{tmp_path / 'a.log'}", heartbeat_interval=0)
    with pytest.raises(ValueError, match="not a storage URL"):
        open_storage("study.db")
    assert isinstance(
        open_storage(f"journal:{tmp_path / 'b.log'}", heartbeat_interval=1),
        HeartbeatJournalStorage,
    )


def test_journal_heartbeat_fails_a_silent_trial_and_queues_its_retry(tmp_path: Path) -> None:
    storage = open_storage(
        f"journal:{tmp_path / 'study.log'}",
        heartbeat_interval=1,
        grace_period=1,
        retry_failed_trials=1,
    )
    study = optuna.create_study(storage=storage, direction="maximize")
    with pytest.warns(UserWarning, match="Heartbeat"):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.set_trial_user_attr(trial._trial_id, "llm_model", "m")
    study._storage.set_trial_user_attr(trial._trial_id, "note", "kept")
    study._storage.set_trial_system_attr(trial._trial_id, "llm:conversation:0", "[]")
    with pytest.warns(UserWarning, match="Heartbeat"):
        asked = study.ask()  # never sends a heartbeat: never stale
    assert isinstance(storage, HeartbeatJournalStorage)
    storage.record_heartbeat(trial._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []
    key = f"{HEARTBEAT_KEY_PREFIX}{trial._trial_id}"
    storage.set_trial_system_attr(trial._trial_id, key, time.time() - 5)
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]

    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[asked.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == {"x": trial.params["x"]}
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == trial.number
    assert retry.user_attrs == {"note": "kept"}  # the LLM record stays on the failed trial
    assert not any(
        k.startswith(("llm:conversation:", HEARTBEAT_KEY_PREFIX)) for k in retry.system_attrs
    )
    storage.record_heartbeat(trial._trial_id)  # a late heartbeat of a failed trial is ignored


def test_retry_limit_is_kept(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 's.log'}"))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(trial, state=TrialState.FAIL)
    callback = RetryStaleTrialCallback(max_retry=1)
    callback(study, study.trials[0])
    callback(study, study.trials[1])  # the retry failed too: not retried again
    assert len(study.trials) == 2


def test_open_storage_retries_only_the_schema_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = optuna.storages.RDBStorage
    errors = [Exception('duplicate key value violates unique constraint "pg_type_typname"')] * 2

    def flaky(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
        if errors:
            raise errors.pop()
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr("optuna_llm_sampler.app._storage.SCHEMA_RACE_BACKOFF_S", 0.01)
    assert isinstance(open_storage(f"sqlite:///{tmp_path / 'a.db'}"), real)
    errors.append(Exception("could not connect to server: Connection refused"))
    with pytest.raises(ValueError, match="cannot open storage .*Connection refused"):
        open_storage(f"sqlite:///{tmp_path / 'b.db'}")
