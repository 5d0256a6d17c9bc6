"""Ctrl-C in the commands: one line, whatever it interrupts.

Optuna logs a trial failed by a KeyboardInterrupt with its whole traceback, and an interrupt that
lands while Optuna stores a trial's result surfaces as another exception raised while handling it
(Optuna 5.0's ``_run_trial``: ``UnboundLocalError``). Both are an interruption, told in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
import re


class _NoInterruptedTrialLog(logging.Filter):
    """Drops Optuna's log of a trial failed by Ctrl-C: its 50-line traceback of the
    KeyboardInterrupt and the "failed with value None" line after it. The command says it was
    interrupted, in one line."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        number = re.match(r"Trial (\d+) failed", record.getMessage())
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            if number:
                self._interrupted.add(number.group(1))
            return False
        return not (number and number.group(1) in self._interrupted)


@contextlib.contextmanager
def quiet_interrupts() -> Iterator[None]:
    """Within it, Optuna does not log the traceback of a trial that Ctrl-C failed.

    Example:
        >>> with quiet_interrupts():
        ...     pass
    """
    # Optuna logs a failed trial (KeyboardInterrupt included) from this logger, with exc_info.
    logger = logging.getLogger("optuna.study._optimize")
    quiet = _NoInterruptedTrialLog()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is a KeyboardInterrupt or was raised while one was being handled.

    Example:
        >>> caused_by_interrupt(ValueError("x")), caused_by_interrupt(KeyboardInterrupt())
        (False, True)
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
