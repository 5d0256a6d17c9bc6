"""Storage URLs as the CLI takes them: RDB URLs and ``journal:PATH``, ready for many workers.

Three things Optuna leaves to the user are handled here:

* Several workers creating the same RDB storage at once race to create its tables and to stamp
  its schema version; the losers fail with ``IntegrityError`` ("duplicate key value violates
  unique constraint", "already exists"). :func:`open_storage` retries those few known errors with
  a short, jittered backoff: by then the winner has created everything.
* Optuna's :class:`~optuna.storages.JournalStorage` has no heartbeat (checked in Optuna 5.0: only
  ``RDBStorage`` implements ``BaseHeartbeat``), so a worker killed mid-trial would leave the trial
  RUNNING forever. :class:`HeartbeatJournalStorage` adds one, kept in the journal itself.
* :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` copies every user attribute of the
  failed trial into its retry, which would count the failed trial's LLM tokens twice in
  :func:`~optuna_llm_sampler.llm_usage`; :class:`RetryStaleTrialCallback` leaves the LLM record on
  the failed trial, where it was spent.
"""

from __future__ import annotations

from collections.abc import Callable
import inspect
import os
import random
import time
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages.journal import BaseJournalBackend
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.providers import redact_url


if TYPE_CHECKING:
    from optuna.study import Study


try:  # Optuna >= 4.9; the old name is a deprecated alias there
    from optuna.storages import RetryHeartbeatStaleTrialCallback as _RetryBase
except ImportError:  # pragma: no cover - Optuna 4.8
    from optuna.storages import RetryFailedTrialCallback as _RetryBase

from optuna.storages._heartbeat import BaseHeartbeat


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

JOURNAL_PREFIX = "journal:"
# Journal heartbeats: system attribute ``heartbeat:<trial_id>`` holds the worker's time.time().
# The trial id in the key keeps a retry (which copies system attributes) from inheriting it.
HEARTBEAT_KEY_PREFIX = "heartbeat:"

SCHEMA_RACE_ATTEMPTS = 6
SCHEMA_RACE_BACKOFF_S = 0.2
_SCHEMA_RACE_MARKERS = (
    "duplicate key",  # PostgreSQL: pg_type rows of a new table, alembic_version, version_info
    "already exists",  # PostgreSQL, SQLite, MySQL: CREATE TABLE lost the race
    "uniqueviolation",
    "duplicatetable",
    "duplicate entry",  # MySQL
    "unique constraint failed",  # SQLite
    "deadlock detected",  # concurrent DDL on PostgreSQL
)
# What the failed trial keeps and its retry does not: the LLM's record of the call that was paid
# for (it stays on the failed trial, found through ``retry_history``) and per-trial heartbeats.
_NOT_RETRIED_USER_ATTR_PREFIX = "llm_"
_NOT_RETRIED_SYSTEM_ATTR_PREFIXES = ("llm:conversation:", HEARTBEAT_KEY_PREFIX)


StaleTrialCallback = Callable[["Study", FrozenTrial], None]


class RetryStaleTrialCallback(_RetryBase):  # type: ignore[misc, valid-type]
    """Re-queue a trial whose worker died, without copying its LLM record into the retry.

    It works as Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`, with one
    difference: the failed trial's LLM record stays on the failed trial.

    The retry is a WAITING trial with the failed trial's parameters, so the next worker that asks
    evaluates the same point again without asking the LLM. Its system attributes ``failed_trial``
    and ``retry_history`` (read them with ``RetryHeartbeatStaleTrialCallback.retried_trial_number``
    and ``.retry_history``) lead back to the failed trial, which keeps the ``llm_*`` user
    attributes and the conversation, so :func:`~optuna_llm_sampler.llm_usage` counts the tokens
    once. Other user attributes are copied; the published proposal (``llm:proposal``) too, so
    other workers' prompts show the point as pending while the retry runs.

    Args:
        max_retry: Retries of one original trial at most; ``None`` retries without limit.
    """

    def __init__(self, max_retry: int | None = None) -> None:
        super().__init__(max_retry=max_retry)
        self._limit = max_retry

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        system_attrs: dict[str, Any] = {"failed_trial": trial.number}
        system_attrs.update(
            (key, value)
            for key, value in trial.system_attrs.items()
            if not key.startswith(_NOT_RETRIED_SYSTEM_ATTR_PREFIXES)
        )
        history = [*system_attrs.get("retry_history", []), trial.number]
        system_attrs["retry_history"] = history
        if self._limit is not None and len(history) > self._limit:
            _logger.warning(
                f"Trial {trial.number} was failed (its worker stopped sending heartbeats) and is "
                f"not retried: it was retried {self._limit} time(s) already ({history})."
            )
            return
        user_attrs = {
            key: value
            for key, value in trial.user_attrs.items()
            if not key.startswith(_NOT_RETRIED_USER_ATTR_PREFIX)
        }
        study.add_trial(
            optuna.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=user_attrs,
                system_attrs=system_attrs,
            )
        )
        _logger.warning(
            f"Trial {trial.number} was failed: its worker stopped sending heartbeats. "
            f"It is queued again (retry {len(history)} of "
            f"{'unlimited' if self._limit is None else self._limit})."
        )


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A :class:`~optuna.storages.JournalStorage` with Optuna's heartbeat protocol.

    While a trial runs under ``study.optimize``, its worker writes the time to the trial's system
    attribute ``heartbeat:<trial_id>`` every ``heartbeat_interval`` seconds. Before asking for a
    new trial, every worker fails the RUNNING trials whose last heartbeat is older than
    ``grace_period`` and calls ``stale_trial_callback`` on each (as ``RDBStorage`` does). Trials
    that never sent a heartbeat (``study.ask()`` outside ``optimize``) are never failed.

    Heartbeats are compared with each worker's own clock (``time.time()``), not a database
    server's: workers on several machines need clocks in sync (NTP) to well within the grace
    period. Each heartbeat is one line in the journal (about 150 bytes).

    Args:
        backend: The journal backend, e.g. ``JournalFileBackend(path)``.
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds without a heartbeat before a running trial is failed; ``None`` for
            twice ``heartbeat_interval``.
        stale_trial_callback: Called with ``(study, failed_trial)`` for each trial failed this
            way, e.g. :class:`RetryStaleTrialCallback`.

    Raises:
        ValueError: ``heartbeat_interval`` or ``grace_period`` is not positive.
    """

    def __init__(
        self,
        backend: BaseJournalBackend,
        *,
        heartbeat_interval: int,
        grace_period: int | None = None,
        stale_trial_callback: StaleTrialCallback | None = None,
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}.")
        if grace_period is not None and grace_period <= 0:
            raise ValueError(f"grace_period must be positive or None, got {grace_period}.")
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            if self.get_trial(trial_id).state.is_finished():
                return
            self.set_trial_system_attr(
                trial_id, f"{HEARTBEAT_KEY_PREFIX}{trial_id}", round(time.time(), 3)
            )
        except UpdateFinishedTrialError:
            pass  # another worker failed it as stale meanwhile; its own tell reports that

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self._grace_period or 2 * self._heartbeat_interval
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(f"{HEARTBEAT_KEY_PREFIX}{trial._trial_id}")
            if isinstance(beat, (int, float)) and now - beat > grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleTrialCallback | None:
        return self._stale_trial_callback

    def get_failed_trial_callback(self) -> StaleTrialCallback | None:  # Optuna < 4.9
        return self._stale_trial_callback


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_failed_trials: int = 0,
) -> BaseStorage:
    """Open ``url``: ``sqlite:///study.db``, ``postgresql+psycopg2://...``, or ``journal:PATH``.

    With ``heartbeat_interval``, running trials send heartbeats, a trial whose worker died is
    marked FAIL once ``grace_period`` passes without one, and with ``retry_failed_trials > 0``
    :class:`RetryStaleTrialCallback` re-queues it (up to that many times), so a killed worker
    leaves nothing stuck in RUNNING. This works for RDB URLs (Optuna's heartbeat) and for
    ``journal:PATH`` (:class:`HeartbeatJournalStorage`).

    Many workers may open the same fresh RDB storage at the same moment: the errors of Optuna's
    schema-creation race (duplicate key / already exists) are retried up to
    :data:`SCHEMA_RACE_ATTEMPTS` times with a short backoff.

    Raises:
        ValueError: The URL is not a storage URL, a setting is invalid, or the storage cannot be
            reached; the message says which and how to fix it.
    """
    if heartbeat_interval is not None and heartbeat_interval <= 0:
        raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}.")
    if grace_period is not None and grace_period <= 0:
        raise ValueError(f"grace_period must be positive, got {grace_period}.")
    if retry_failed_trials < 0:
        raise ValueError(f"retry_failed_trials must be non-negative, got {retry_failed_trials}.")
    callback = (
        RetryStaleTrialCallback(max_retry=retry_failed_trials) if retry_failed_trials else None
    )
    if url.startswith(JOURNAL_PREFIX):
        return _open_journal(
            url[len(JOURNAL_PREFIX) :], heartbeat_interval, grace_period, callback
        )
    if "://" not in url:
        raise ValueError(
            f"storage {url!r} is not a storage URL: use sqlite:///study.db, "
            "postgresql+psycopg2://user:pass@host/db or journal:./study.log."
        )
    kwargs: dict[str, Any] = {
        "heartbeat_interval": heartbeat_interval,
        "grace_period": grace_period,
    }
    if heartbeat_interval is not None:
        parameters = inspect.signature(optuna.storages.RDBStorage).parameters
        name = (
            "heartbeat_stale_trial_callback"
            if "heartbeat_stale_trial_callback" in parameters
            else "failed_trial_callback"
        )
        kwargs[name] = callback
    try:
        return _create_rdb_storage(url, kwargs)
    except ImportError as error:
        raise ValueError(
            f"storage {redact_url(url)} needs a database driver that is not installed ({error}); "
            f"for PostgreSQL: {install_hint('postgres')}."
        ) from None
    except Exception as error:  # SQLAlchemy's OperationalError and friends
        raise ValueError(
            f"cannot open storage {redact_url(url)}: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else ''}"
        ) from None


def storage_file(url: str) -> str | None:
    """The file a ``sqlite:///`` or ``journal:`` URL names; ``None`` for a database server or
    an in-memory database.

    Example:
        >>> storage_file("sqlite:///runs/study.db?timeout=60"), storage_file("journal:s.log")
        ('runs/study.db', 's.log')
    """
    if url.startswith(JOURNAL_PREFIX):
        return url[len(JOURNAL_PREFIX) :] or None
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:" and not path.startswith("file:"):
            return path
    return None


def open_existing_storage(url: str) -> BaseStorage:
    """:func:`open_storage` for commands that read a study: a storage file that does not exist is
    an error, not a new empty storage (SQLite and the journal create theirs on open).

    Example:
        >>> storage = open_existing_storage("sqlite:///optuna_llm_sampler.db")  # doctest: +SKIP

    Raises:
        ValueError: No such file, or :func:`open_storage`'s errors.
    """
    path = storage_file(url)
    if path is not None and not os.path.isfile(path):
        raise ValueError(
            f"storage {redact_url(url)}: no such file {path!r}; give the --storage that run or "
            "compare wrote to."
        )
    return open_storage(url)


def _open_journal(
    path: str,
    heartbeat_interval: int | None,
    grace_period: int | None,
    callback: StaleTrialCallback | None,
) -> JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    if not path:
        raise ValueError("storage 'journal:' needs a file path, e.g. journal:./study.log.")
    try:
        backend = JournalFileBackend(path)
    except OSError as error:
        raise ValueError(
            f"cannot open journal {path!r}: {error} (the folder must exist and be writable)."
        ) from None
    if heartbeat_interval is None:
        return JournalStorage(backend)
    return HeartbeatJournalStorage(
        backend,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        stale_trial_callback=callback,
    )


def is_schema_race(error: BaseException) -> bool:
    """Whether ``error`` is one of the errors of several workers creating one RDB schema at once.

    Example:
        >>> is_schema_race(Exception('duplicate key value violates unique constraint "x"'))
        True
    """
    text = f"{type(error).__name__} {error}".lower()
    return any(marker in text for marker in _SCHEMA_RACE_MARKERS)


def _create_rdb_storage(url: str, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """``RDBStorage(url, **kwargs)``, retrying the schema-creation race with a jittered backoff."""
    attempt = 1
    while True:
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError:
            raise
        except Exception as error:
            if attempt >= SCHEMA_RACE_ATTEMPTS or not is_schema_race(error):
                raise
            delay = SCHEMA_RACE_BACKOFF_S * attempt * (0.5 + random.random())
            _logger.info(
                f"Another worker is creating the storage's tables ({type(error).__name__}); "
                f"retrying in {delay:.2f} s (attempt {attempt} of {SCHEMA_RACE_ATTEMPTS})."
            )
            time.sleep(delay)
            attempt += 1
