"""Stopping a server a test started, without leaving it behind."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Terminate ``process``, and kill it if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
