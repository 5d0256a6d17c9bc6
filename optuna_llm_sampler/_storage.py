"""Storage URLs as the CLI takes them: RDB URLs and ``journal:PATH``."""

from __future__ import annotations

from optuna.storages import BaseStorage


JOURNAL_PREFIX = "journal:"


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
    Optuna's :class:`~optuna.storages.RetryFailedTrialCallback` re-queues it (up to that many
    times), so a killed worker leaves nothing stuck in RUNNING.

    Raises:
        ValueError: The URL is not a storage URL or the storage cannot be reached; the message
            says which and how to fix it.
    """
    import optuna
    from optuna.storages import RetryFailedTrialCallback

    if heartbeat_interval is not None and heartbeat_interval <= 0:
        raise ValueError(f"heartbeat_interval must be positive, got {heartbeat_interval}.")
    callback = (
        RetryFailedTrialCallback(max_retry=retry_failed_trials) if retry_failed_trials else None
    )
    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages.journal import JournalFileBackend
        from optuna.storages.journal import JournalStorage

        path = url[len(JOURNAL_PREFIX) :]
        if not path:
            raise ValueError("storage 'journal:' needs a file path, e.g. journal:./study.log.")
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ValueError(
            f"storage {url!r} is not a storage URL: use sqlite:///study.db, "
            "postgresql+psycopg2://user:pass@host/db or journal:./study.log."
        )
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            failed_trial_callback=callback,
        )
    except ImportError as error:
        raise ValueError(
            f"storage {_safe(url)} needs a database driver that is not installed ({error}); "
            'for PostgreSQL: pip install "optuna-llm-sampler[postgres]".'
        ) from None
    except Exception as error:  # SQLAlchemy's OperationalError and friends
        raise ValueError(
            f"cannot open storage {_safe(url)}: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}"
        ) from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
