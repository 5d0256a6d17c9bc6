"""Ctrl-C as a terminal sends it: SIGINT to every process of the command's process group."""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest


REPO = Path(__file__).resolve().parents[2]


def interrupt_when(
    args: list[str], ready: Callable[[], bool], *, cwd: Path, timeout: float = 120
) -> tuple[int, str]:
    """Run ``optuna-llm-sampler ARGS`` in its own session, press Ctrl-C once ``ready()``, and
    return its exit status and stderr, after checking that no process of it is left."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        # faulthandler: a command that does not stop shows where it is (SIGABRT below).
        [sys.executable, "-X", "faulthandler", "-m", "optuna_llm_sampler.app.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"exited before Ctrl-C: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("never got ready for Ctrl-C")
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"still running 60 s after Ctrl-C:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Nothing of it goes on running: the workers were stopped, not orphaned.
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("processes of the interrupted command are still running")
    return proc.returncode, err


def complete_trials(url: str) -> list[int]:
    """Complete trials per study of ``url`` (empty while the storage cannot be read yet)."""
    import optuna

    from optuna_llm_sampler.app._storage import open_existing_storage
    from optuna_llm_sampler.app._storage import storage_file

    path = storage_file(url)
    if path is None or not os.path.exists(path):
        return []
    try:
        storage = open_existing_storage(url)
        return [
            storage.get_n_trials(s._study_id, optuna.trial.TrialState.COMPLETE)
            for s in storage.get_all_studies()
        ]
    except Exception:  # being created by the command right now
        return []
