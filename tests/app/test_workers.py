"""Many ``optuna-llm-sampler run`` workers on one study, on PostgreSQL and on a journal file.

Each worker is a real process (``python -m optuna_llm_sampler.app.cli run``) that reaches the local
stub of the OpenAI API served from this test process; the stub plays a greedy model that proposes
the untried grid point nearest the best one, so workers asking at the same moment propose the same
point and the cross-process duplicate check is put to work. Then a worker is SIGKILLed mid-trial
and another one, with heartbeats, fails its trial and runs the retry.

The PostgreSQL tests start a throwaway cluster (tests/_postgres.py, the ``postgres`` fixture of
tests/app/conftest.py) and skip, with the reason, only when the server binaries are missing. The
storages' own checks are in test_storage.py, the claims in tests/test_claims.py.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
import itertools
import json
import math
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_llm_sampler import get_llm_record
from optuna_llm_sampler import llm_usage
from optuna_llm_sampler.app._storage import open_storage
from optuna_llm_sampler.app._workers import StudyTarget
from tests._postgres import PostgresCluster
from tests.providers.stub_server import Reply
from tests.providers.stub_server import request_text
from tests.providers.stub_server import StubLLMServer


REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 150
STORAGE_KINDS = ("postgres", "journal")


# -- the model: greedy on a grid ---------------------------------------------------------------

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_CSV_ROW = re.compile(rf"^\s*({_NUMBER}),\s*({_NUMBER}),\s*({_NUMBER}|pending)\s*$", re.M)
_NAMED = re.compile(
    rf"\ba:\s*({_NUMBER})[;,]\s*b:\s*({_NUMBER})(?:;\s*f\(a,\s*b\):\s*({_NUMBER}))?"
)


class GreedyGridModel:
    """Proposes the untried point of a 0.25-grid nearest the best point in the prompt.

    Deterministic in what the prompt shows: two workers that see the same history at the same
    moment propose the same point, as a real model that exploits the best point tends to. Points
    named anywhere in the conversation (history, pending rows, "already evaluated" feedback)
    count as tried. Counts calls and the tokens it reports, to check the study's totals.
    """

    step = 0.25

    def __init__(self) -> None:
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        text = request_text(body)
        tried: set[tuple[float, float]] = set()
        best: tuple[float, float, float] | None = None
        rows = [m.groups() for m in _CSV_ROW.finditer(text)]
        rows += [m.groups() for m in _NAMED.finditer(text)]
        for a_text, b_text, value_text in rows:
            a, b = float(a_text), float(b_text)
            tried.add((round(a, 2), round(b, 2)))
            if value_text not in (None, "pending"):
                value = float(value_text)
                if math.isfinite(value) and (best is None or value > best[2]):
                    best = (a, b, value)
        center = (0.0, 5.0) if best is None else (best[0], best[1])
        a, b = self._nearest_untried(center, tried)
        answer = {"a": a, "b": b, "reasoning": "The untried grid point next to the best one."}
        reply_text = json.dumps(answer) if body.get("response_format") else f"a: {a}, b: {b}\nok"
        prompt_tokens, completion_tokens = len(text) // 4 + 1, len(reply_text) // 4 + 1
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
        return Reply(reply_text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _nearest_untried(
        self, center: tuple[float, float], tried: set[tuple[float, float]]
    ) -> tuple[float, float]:
        ca, cb = (round(c / self.step) * self.step for c in center)
        for radius in range(0, 57):
            ring = [
                (ca + i * self.step, cb + j * self.step)
                for i, j in itertools.product(range(-radius, radius + 1), repeat=2)
                if max(abs(i), abs(j)) == radius
            ]
            ring.sort(key=lambda p: ((p[0] - ca) ** 2 + (p[1] - cb) ** 2, p))
            for a, b in ring:
                if -7 <= a <= 7 and -7 <= b <= 7 and (round(a, 2), round(b, 2)) not in tried:
                    return round(a, 2), round(b, 2)
        return 0.0, 0.0


# -- fixtures ------------------------------------------------------------------------------------


_database_numbers = itertools.count()


def _storage_url(kind: str, request: pytest.FixtureRequest, folder: Path) -> str:
    if kind == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        return cluster.create_database(f"study{next(_database_numbers)}")
    return f"journal:{folder / 'study.log'}"


@pytest.fixture
def model() -> GreedyGridModel:
    return GreedyGridModel()


@pytest.fixture
def llm_server(model: GreedyGridModel) -> Iterator[StubLLMServer]:
    with StubLLMServer(responder=model) as server:
        yield server


# -- workers -------------------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout: float = WORKER_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker {self.name} hung:\n{self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_worker(
    name: str,
    *,
    storage: str,
    server: StubLLMServer,
    folder: Path,
    n_trials: int,
    extra: Sequence[str] = (),
) -> Worker:
    """``optuna-llm-sampler run`` in a process of its own, logging to ``folder/name.log``."""
    argv = [
        sys.executable,
        "-m",
        "optuna_llm_sampler.app.cli",
        "run",
        "--model",
        "stub-model",
        "--base-url",
        server.openai_base_url,
        "--storage",
        storage,
        "--study-name",
        "shared",
        "--n-trials",
        str(n_trials),
        "--n-startup-trials",
        "5",
        "--n-eval-episodes",
        "2",
        "--no-progress",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Worker(name, process, log)


def finish(workers: Sequence[Worker]) -> None:
    """Wait for every worker; fail with their logs if one failed."""
    codes = [worker.wait() for worker in workers]
    failed = [(w, c) for w, c in zip(workers, codes, strict=True) if c != 0]
    assert not failed, "\n\n".join(f"{w.name} exited {c}:\n{w.output()}" for w, c in failed)


def load(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="shared", storage=open_storage(storage))


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def duplicates(trials: Sequence[FrozenTrial]) -> list[list[int]]:
    """Groups of complete trials that share their parameters (a retry and its original aside)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            groups.setdefault(tuple(sorted(trial.params.items())), []).append(trial.number)
    return [numbers for numbers in groups.values() if len(numbers) > 1]


def check_no_duplicates(trials: Sequence[FrozenTrial]) -> None:
    """No two complete trials share a point: LLMSampler claims each proposal (publish, then
    check again: claim_proposal), and random points are drawn per trial number."""
    assert duplicates(trials) == []


def check_records(study: optuna.Study, model: GreedyGridModel) -> None:
    """Every LLM trial has its record; the study's totals are the sum of the trials' and what
    the model server counted."""
    trials = study.get_trials(deepcopy=False)
    llm_trials = [t for t in trials if "llm_model" in t.user_attrs]
    for trial in llm_trials:
        record = get_llm_record(trial)
        assert record is not None and record.messages, f"trial {trial.number} lost its record"
        assert record.attempts >= 1 and record.prompt_tokens > 0
        if record.fallback is None and trial.state == TrialState.COMPLETE:
            assert record.proposal == trial.params, trial.number
    usage = llm_usage(study)
    attrs = [t.user_attrs for t in llm_trials]
    assert usage.llm_trials == len(llm_trials)
    assert usage.calls == sum(a["llm_attempts"] for a in attrs) == model.calls
    assert usage.prompt_tokens == sum(a["llm_prompt_tokens"] for a in attrs) == model.prompt_tokens
    assert (
        usage.completion_tokens
        == sum(a["llm_completion_tokens"] for a in attrs)
        == model.completion_tokens
    )
    assert usage.fallbacks == sum("llm_fallback" in a for a in attrs)


# -- many workers --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_three_workers_share_one_study(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    llm_server: StubLLMServer,
    model: GreedyGridModel,
) -> None:
    # No --create-only: the three create the (fresh) storage and the study at the same moment.
    storage = _storage_url(kind, request, tmp_path)
    workers = [
        start_worker(f"w{i}", storage=storage, server=llm_server, folder=tmp_path, n_trials=60)
        for i in range(3)
    ]
    finish(workers)

    study = load(storage)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    # n_trials counts the study's trials, not each worker's; a surplus trial started at the
    # same moment as the last one is pruned before it samples anything.
    assert states.count(TrialState.COMPLETE) == 60, [t.state.name for t in trials]
    assert states.count(TrialState.PRUNED) == len(trials) - 60 <= 2
    # Workers start random trials until 5 are complete. Each of the other two workers may have
    # one in flight when the fifth completes (7), and a worker counts the complete trials as of
    # its ask() (Optuna's per-trial cache, as its own samplers read it), so each other worker may
    # also finish one unseen before the decision: at most 9.
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    startup = [t.number for t in complete if "llm_model" not in t.user_attrs]
    assert 5 <= len(startup) <= 9, startup
    check_records(study, model)
    assert model.calls >= 60 - len(startup)
    for worker in workers:
        assert "complete trials" in worker.output()  # the summary (one may end first)
    check_no_duplicates(trials)


# -- a killed worker ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_a_killed_workers_trial_is_failed_and_run_again(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    llm_server: StubLLMServer,
    model: GreedyGridModel,
) -> None:
    storage = _storage_url(kind, request, tmp_path)
    heartbeat = ["--heartbeat-interval", "1"]
    common = {"storage": storage, "server": llm_server, "folder": tmp_path}
    # Five random startup trials, so the next trial is the LLM's.
    finish([start_worker("startup", n_trials=5, extra=heartbeat, **common)])
    # A worker whose trial takes minutes (a million episodes): killed once it is evaluating.
    victim = start_worker(
        "victim", n_trials=10, extra=[*heartbeat, "--n-eval-episodes", "1000000"], **common
    )

    def evaluating() -> FrozenTrial | None:
        running = load(storage).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return next((t for t in running if {"a", "b"} <= set(t.params)), None)

    try:
        killed = wait_for(evaluating, 60, "the victim's trial to start evaluating")
        time.sleep(0.5)
        assert victim.process.poll() is None, victim.output()
    finally:
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()

    # A worker with heartbeats finishes the study: it fails the dead trial after the grace
    # period (2 s) and runs its retry (it waits for it rather than leave it RUNNING).
    survivor = start_worker("survivor", n_trials=8, extra=heartbeat, **common)
    finish([survivor])
    assert f"Trial {killed.number} was failed: its worker stopped sending heartbeats" in (
        survivor.output()
    )

    study = load(storage)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials if t.state == TrialState.RUNNING] == []
    assert study.trials[killed.number].state == TrialState.FAIL
    retries = [
        t
        for t in trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number
    ]
    assert len(retries) == 1, [t.system_attrs for t in retries]
    retry = retries[0]
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params
    assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [killed.number]
    # The LLM call was paid for once, by the killed trial: its record stays there.
    assert get_llm_record(study.trials[killed.number]) is not None
    assert get_llm_record(retry) is None
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 8
    check_records(study, model)
    check_no_duplicates(trials)


# -- the study's target, in process --------------------------------------------------------------


def test_study_target_counts_every_workers_trials() -> None:
    study = optuna.create_study()
    target = StudyTarget(3)
    assert target.room(study) == 3
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    running = study.ask()  # another worker's trial
    assert target.room(study) == 1
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5, callbacks=[target])
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 2
    study.tell(running, 0.5)
    assert target.room(study) == 0
    with pytest.raises(ValueError, match="n_trials must be positive"):
        StudyTarget(0)
