"""Starts llama-cpp-python's real OpenAI-compatible server on the embedded model, for tests.

``python -m llama_cpp.server --model PATH`` is what users run. Its settings have no switch for
llama.cpp's extra weight buffers, whose AMX repacking crashes llama.cpp 0.3.36 on CPUs that have
AMX; so this launcher builds the same app (``llama_cpp.server.app.create_app`` with the same
settings classes) while the model is loaded the way :class:`LlamaCppClient` loads it (see
``extra_buffers`` there), then serves it with uvicorn, as ``llama_cpp.server`` does. Run it as::

    python -m tests.providers.llama_server --model PATH --port 8123 [--alias NAME]

:func:`start_llama_server` runs it in a subprocess on a free loopback port and waits until the
model is loaded.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests._process import stop_process


__all__ = ["LlamaServer", "main", "start_llama_server"]

_REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LlamaServer:
    """A running server: ``base_url`` for :class:`OpenAIClient`, ``model`` its alias."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log: Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default="embedded", help="the model name clients pass")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--n-threads", type=int, default=1)
    args = parser.parse_args(argv)

    import llama_cpp
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings
    from llama_cpp.server.settings import ServerSettings
    import uvicorn

    from optuna_llm_sampler.providers._llamacpp import _cpu_has_amx
    from optuna_llm_sampler.providers._llamacpp import _extra_buffers

    server = ServerSettings(host="127.0.0.1", port=args.port)
    model = ModelSettings(
        model=args.model,
        model_alias=args.alias,
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
        n_threads_batch=args.n_threads,
        verbose=False,
    )
    # create_app loads the model (LlamaProxy), so the safe buffers apply to that load.
    with _extra_buffers(llama_cpp, enabled=not _cpu_has_amx()):
        app = create_app(server_settings=server, model_settings=[model])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def start_llama_server(
    model_path: Path, *, log: Path, alias: str = "embedded", ready_timeout: float = 300.0
) -> Iterator[LlamaServer]:
    """Run the server in a subprocess until the block ends; it is ready when ``GET /v1/models``
    answers. Its output goes to ``log`` (shown in the error if it never gets ready)."""
    port = _free_port()
    # This checkout first, so the server runs the package under test.
    paths = [str(_REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    command = [
        sys.executable,
        "-m",
        "tests.providers.llama_server",
        "--model",
        str(model_path),
        "--port",
        str(port),
        "--alias",
        alias,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=_REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(base_url, process, log, ready_timeout)
        yield LlamaServer(base_url=base_url, model=alias, process=process, log=log)
    finally:
        stop_process(process, timeout=30)


def _wait_ready(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"llama-cpp-python's server exited ({process.returncode}):\n{_tail(log)}"
            )
        try:
            with opener.open(f"{base_url}/models", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama-cpp-python's server not ready after {timeout:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    main()
