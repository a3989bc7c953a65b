"""Uploads to the local disk keep the kernel copy and are hashed beside it, on a second thread.

The digest recorded (``user.mlartifacts.sha256``) must describe the bytes stored: a
source that changes while it is copied (or was modified too recently for its time
to tell) has its copy read back and hashed instead.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mlartifacts.pathstore._plugin as pathstore_plugin
import mlartifacts.transfer._digest as engine_digest
from mlartifacts import ArtifactStore
from mlartifacts_nfs import LocalFS

XATTR = "user.mlartifacts.sha256"
OLD = os.urandom(3 * 1024 * 1024 + 17)  # several of the hasher's blocks, not a multiple of one
NEW = os.urandom(len(OLD))  # the same size: only the contents (and ctime) change


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recorded(path: Path) -> str:
    return os.getxattr(path, XATTR).decode().split()[1]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore(str(root)) as store:
        yield store


def settled(path: Path, data: bytes) -> Path:
    """A source file last modified well before the upload (as a model file usually is)."""
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


@pytest.fixture
def read_back(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each read-back of a stored copy to hash it (the fallback)."""
    calls: list[str] = []
    original = pathstore_plugin.stored_sha256

    def spy(fs: Any, path: str) -> str:
        calls.append(path)
        return original(fs, path)

    monkeypatch.setattr(pathstore_plugin, "stored_sha256", spy)
    return calls


def test_the_engine_does_not_read_the_file_first(
    store: ArtifactStore, root: Path, tmp_path: Path, read_back: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.capabilities.hashes_uploads
    source = settled(tmp_path / "model.bin", OLD)

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("the engine hashed the file before the upload")

    monkeypatch.setattr(engine_digest, "file_sha256", refuse)
    copied: list[int] = []
    kernel_copy = os.copy_file_range

    def counting(src: int, dst: int, count: int, *args: Any) -> int:
        sent = kernel_copy(src, dst, count, *args)
        copied.append(sent)
        return sent

    monkeypatch.setattr(os, "copy_file_range", counting)
    store.log_artifact(str(source), "m")
    stored = root / "m" / "model.bin"
    assert stored.read_bytes() == OLD
    assert sum(copied) == len(OLD)  # copied in the kernel
    assert recorded(stored) == sha(OLD)  # hashed beside it
    assert read_back == []  # the source was settled: its own hash was trusted
    assert store.stat("m/model.bin").digest == sha(OLD)
    assert store.verify().ok


def hashed_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have the beside-hash finish before the copy starts (it then sees the old bytes)."""
    original = pathstore_plugin.digest_beside

    def finished_first(local_file: str) -> Any:
        beside = original(local_file)
        beside._join()
        return beside

    monkeypatch.setattr(pathstore_plugin, "digest_beside", finished_first)


def rewriting_put_file(monkeypatch: pytest.MonkeyPatch, change: Callable[[Path], None]) -> None:
    original = LocalFS.put_file

    def put_file(self: LocalFS, local_file: str, path: str, progress: Any) -> None:
        change(Path(local_file))
        original(self, local_file, path, progress)

    monkeypatch.setattr(LocalFS, "put_file", put_file)


def test_a_small_file_is_uploaded_from_one_read(
    store: ArtifactStore, root: Path, tmp_path: Path, read_back: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kernel copy and no second read: what was read is what is hashed and written."""
    source = tmp_path / "small.bin"
    source.write_bytes(OLD[:100_000])  # fresh: no waiting for the file clock either

    def refuse(*args: object) -> None:
        raise AssertionError("a small file went through the kernel copy")

    monkeypatch.setattr(LocalFS, "put_file", refuse)
    store.log_artifact(str(source), "m")
    stored = root / "m" / "small.bin"
    assert stored.read_bytes() == OLD[:100_000]
    assert recorded(stored) == sha(OLD[:100_000])
    assert read_back == []
    assert store.verify().ok


def test_a_source_changed_during_the_copy_has_its_copy_hashed(
    store: ArtifactStore,
    root: Path,
    tmp_path: Path,
    read_back: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = OLD, NEW
    source = settled(tmp_path / "model.bin", old)

    def rewrite_keeping_size_and_time(path: Path) -> None:
        st = path.stat()
        with open(path, "r+b") as f:  # in place: same inode, same size
            f.write(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even the time put back: ctime tells

    hashed_first(monkeypatch)
    rewriting_put_file(monkeypatch, rewrite_keeping_size_and_time)
    store.log_artifact(str(source), "m")
    stored = root / "m" / "model.bin"
    assert stored.read_bytes() == new
    assert recorded(stored) == sha(new)  # not the hash of the old bytes, taken beside the copy
    assert len(read_back) == 1
    assert store.verify().ok


def test_a_source_replaced_during_the_copy_has_its_copy_hashed(
    store: ArtifactStore, root: Path, tmp_path: Path, read_back: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = settled(tmp_path / "model.bin", OLD)
    other = settled(tmp_path / "other.bin", NEW)
    hashed_first(monkeypatch)
    rewriting_put_file(monkeypatch, lambda path: os.replace(other, path))
    store.log_artifact(str(source), "m")
    stored = root / "m" / "model.bin"
    assert stored.read_bytes() == NEW
    assert recorded(stored) == sha(NEW)
    assert len(read_back) == 1


def test_a_source_modified_just_before_is_not_trusted(
    store: ArtifactStore, root: Path, tmp_path: Path, read_back: list[str]
) -> None:
    """Its next write may fall in the same tick of the file clock: its time could not tell."""
    source = tmp_path / "fresh.bin"
    source.write_bytes(OLD)
    store.log_artifact(str(source), "m")
    assert recorded(root / "m" / "fresh.bin") == sha(OLD)
    assert len(read_back) == 1


def test_without_digests_nothing_is_hashed_or_recorded(
    root: Path, tmp_path: Path, read_back: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLARTIFACTS_DIGESTS", "false")
    source = settled(tmp_path / "model.bin", OLD)
    started: list[str] = []
    monkeypatch.setattr(pathstore_plugin, "digest_beside", lambda local_file: started.append(local_file))
    with ArtifactStore(str(root)) as store:
        store.log_artifact(str(source), "m")
        store.write_bytes("m/small.txt", b"small")
    for name in ("model.bin", "small.txt"):
        assert XATTR not in os.listxattr(root / "m" / name)
    assert started == [] and read_back == []
    assert (root / "m" / "model.bin").read_bytes() == OLD
