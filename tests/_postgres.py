"""A throwaway PostgreSQL 15 cluster for tests: ``initdb`` into a temporary folder, serve it on a
free loopback port (127.0.0.1 only, its socket in the same folder), stop and delete it after.

The server refuses to run as root, so when the tests run as root the folder is handed to the
``postgres`` system user and ``initdb`` / ``pg_ctl`` run through ``runuser``.

Example:
    .. code-block:: python

        with PostgresCluster() as cluster:
            url = cluster.create_database("study")  # postgresql+psycopg2://...
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import pwd
import shutil
import socket
import subprocess
import tempfile


__all__ = ["PostgresCluster", "find_bin_dir", "unavailable_reason"]

_BIN_DIRS = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)
_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    for folder in (os.environ.get("PG_BIN_DIR"), *_BIN_DIRS):
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or ``None`` when one can."""
    if find_bin_dir() is None:
        return (
            "PostgreSQL server binaries not found (looked in "
            f"{', '.join(_BIN_DIRS)} and PATH); install them with "
            "`apt-get install -y postgresql-15` (bash .ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_USER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return 'psycopg2 is not installed: pip install ".[postgres]" (from the checkout)'
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A PostgreSQL server of its own, on 127.0.0.1, for the length of a ``with`` block."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(unavailable_reason() or "PostgreSQL binaries not found")
        self._bin = bin_dir
        self._as_root = os.geteuid() == 0
        self._root: Path | None = None
        self._started = False
        self.port = 0
        self.user = _USER if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def data_dir(self) -> Path:
        if self._root is None:
            raise RuntimeError("the cluster is not started")
        return self._root / "data"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", _USER, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}"
            )
        return result

    def start(self) -> PostgresCluster:
        """``initdb`` a fresh cluster and start it; returns ``self``."""
        self._root = Path(tempfile.mkdtemp(prefix="optuna-llm-pg-"))
        os.chmod(self._root, 0o700)
        if self._as_root:
            entry = pwd.getpwnam(_USER)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            )
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=100"
            )
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(self._root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            )
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL (psycopg2 driver)."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        if self._root is None:
            return ""
        with contextlib.suppress(OSError):
            return (self._root / "server.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and delete its folder. Safe to call twice."""
        root, self._root = self._root, None
        if root is None:
            return
        if self._started:
            self._started = False
            self._root = root
            try:
                self._run(
                    "pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop", timeout=60
                )
            except (RuntimeError, subprocess.TimeoutExpired):
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "stop")
            finally:
                self._root = None
        shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
