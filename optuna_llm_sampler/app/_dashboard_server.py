"""``optuna-llm-sampler dashboard``: optuna-dashboard's WSGI app on a threading server."""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import sys
from typing import Any
from typing import TYPE_CHECKING
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer

import optuna

from optuna_llm_sampler.app._install import install_hint
from optuna_llm_sampler.integrations._dashboard_note import dashboard_module


if TYPE_CHECKING:
    from optuna.storages import BaseStorage


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

DEFAULT_PORT = 8080


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        _logger.debug(f"{self.address_string()} {format % args}")


class DashboardServer:
    """optuna-dashboard on a threaded local HTTP server, bound as soon as it is created.

    Example:
        .. code-block:: python

            with DashboardServer("sqlite:///study.db", artifacts="art", port=0) as server:
                print(server.url)  # http://127.0.0.1:PORT/dashboard
                server.serve_forever()

    Args:
        storage: A storage URL (``sqlite:///study.db``, ``journal:PATH``, ...) or a storage.
        artifacts: The folder ``run --artifacts`` uploaded to, so trials show their files.
        host: The address to listen on; the dashboard has no authentication, so keep it local.
        port: The port; ``0`` picks a free one (see :attr:`port`).

    Raises:
        ValueError: A bad storage URL, a missing SQLite or journal file or artifacts folder, a
            port out of range or busy.
        ImportError: optuna-dashboard is not installed.
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        *,
        artifacts: str | None = None,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        from optuna.artifacts import FileSystemArtifactStore

        from optuna_llm_sampler.app._storage import open_existing_storage

        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (a free port) to 65535, got {port!r}.")
        dashboard = dashboard_module()
        if dashboard is None:
            raise ImportError(
                "optuna-llm-sampler dashboard needs optuna-dashboard: " + install_hint("dashboard")
            )
        if isinstance(storage, str):
            # Serving a file that is not there would create it and show an empty storage.
            storage = open_existing_storage(storage)
        store = None
        if artifacts is not None:
            if not os.path.isdir(artifacts):
                raise ValueError(f"--artifacts {artifacts!r} is not a folder.")
            store = FileSystemArtifactStore(artifacts)
        app = dashboard.wsgi(storage, artifact_store=store)
        try:
            self._server = make_server(
                host,
                port,
                app,
                server_class=_ThreadingServerV6 if ":" in host else _ThreadingServer,
                handler_class=_QuietHandler,
            )
        except OSError as error:
            raise ValueError(
                f"cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard"

    def serve_forever(self) -> None:
        """Answer requests until :meth:`shutdown` is called from another thread."""
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (from another thread) and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def close(self) -> None:
        """Close the socket of a server that is not serving."""
        self._server.server_close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_dashboard_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``optuna-llm-sampler dashboard`` on the command's sub-parsers."""
    from optuna_llm_sampler.app._run_config import DEFAULT_STORAGE

    parser = subparsers.add_parser(
        "dashboard",
        help="open a study's storage (and artifacts) in optuna-dashboard",
        description=(
            "Serve optuna-dashboard for a storage: each LLM trial shows its reasoning, prompt "
            "excerpt and answer in its note, its llm_* user attributes, and its artifacts "
            "(rollouts) when --artifacts is given. Stop it with Ctrl-C."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="URL or journal:PATH")
    parser.add_argument("--artifacts", default=None, help="the folder given to run --artifacts")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (no authentication: keep local)"
    )
    parser.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0 (a free port) to 65535, got {args.port}.")
    try:
        server = DashboardServer(
            args.storage, artifacts=args.artifacts, host=args.host, port=args.port
        )
    except ImportError as error:
        raise ValueError(str(error)) from None
    print(f"optuna-dashboard at {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.close()
    return 0
