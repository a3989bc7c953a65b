"""Digests (issue 15): computed while uploading, recorded, returned, and checked on download."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, MultipartLimits, PluginRegistry, Settings, hookimpl
from mlartifacts.errors import IntegrityError
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import random_bytes
from mlartifacts.transfer import _digest
from mlartifacts.transfer._digest import OrderedHasher, file_sha256, from_base64, to_base64

KiB = 1024
LIMITS = MultipartLimits(min_part_size=4 * KiB, max_part_size=1 << 20, max_parts=1000)
FAST = Settings(
    retry_backoff=0.001,
    retry_backoff_max=0.01,
    max_retries=2,
    multipart_threshold=16 * KiB,
    multipart_chunksize=4 * KiB,
    ranged_download_threshold=16 * KiB,
    ranged_download_chunksize=4 * KiB,
    max_workers=4,
)


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(LIMITS, chunk_size=1000)


@pytest.fixture
def store(backend: MemoryBackend) -> Iterator[ArtifactStore]:
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    with ArtifactStore("memory://b/root", registry=registry, settings=FAST) as store:
        yield store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1000, 10 * 4 * KiB + 123], ids=["empty", "whole", "multipart"])
def test_upload_records_the_digest(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path, size: int
) -> None:
    data = random_bytes(size)
    (tmp_path / "f.bin").write_bytes(data)
    store.upload_file(str(tmp_path / "f.bin"), "d/f.bin")
    assert backend.count("complete_multipart") == (1 if size > 16 * KiB else 0)
    assert store.stat("d/f.bin").digest == sha(data)
    assert [e.digest for e in store.list_artifacts("d")] == [sha(data)]


@pytest.mark.parametrize("size", [100, 40 * KiB], ids=["short", "parts"])
def test_stream_records_the_digest(store: ArtifactStore, size: int) -> None:
    data = random_bytes(size)
    store.write("s.bin", (data[i : i + 1000] for i in range(0, size, 1000)))
    assert store.stat("s.bin").digest == sha(data)


@pytest.mark.parametrize("size", [100, 40 * KiB], ids=["short", "parts"])
def test_stream_with_a_wrong_announced_digest_stores_nothing(
    store: ArtifactStore, backend: MemoryBackend, size: int
) -> None:
    data = random_bytes(size)
    with pytest.raises(IntegrityError, match="SHA-256") as caught:
        store.engine.write_stream(store.backend, "s.bin", [data], size, digest=sha(b"other"))
    assert sha(b"other") in str(caught.value) and sha(data) in str(caught.value)
    assert backend.objects("b") == {}
    assert backend.pending_uploads() == []


@pytest.mark.parametrize("size", [1000, 10 * 4 * KiB + 123], ids=["single", "ranged"])
def test_a_byte_flipped_in_storage_is_caught(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path, size: int
) -> None:
    data = random_bytes(size)
    store.write_bytes("f.bin", data)
    backend.corrupt_stored("b", "root/f.bin", offset=size // 2)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    with pytest.raises(IntegrityError) as caught:
        store.download_file("f.bin", str(dest))
    message = str(caught.value)
    assert "memory://b/root/f.bin" in message and "memory backend" in message
    assert sha(data) in message  # the recorded digest
    assert sha(backend.objects("b")["root/f.bin"]) in message  # and the received one
    assert list(dest.parent.iterdir()) == []


def test_a_byte_flipped_in_a_tree_is_caught(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    for i in range(3):
        store.write_bytes(f"t/{i}.bin", random_bytes(500 + i))
    backend.corrupt_stored("b", "root/t/1.bin")
    with pytest.raises(IntegrityError, match=r"t/1\.bin"):
        store.download_tree("t", str(tmp_path / "t"))
    assert not (tmp_path / "t" / "1.bin").exists()


def test_copy_keeps_the_digest(store: ArtifactStore) -> None:
    data = random_bytes(3000)
    store.write_bytes("a.bin", data)
    store.copy_to("a.bin", store, "b.bin")
    assert store.stat("b.bin").digest == sha(data)


def test_ordered_hasher_hashes_parts_in_order_whatever_the_arrival() -> None:
    parts = [random_bytes(1000 + i) for i in range(20)]
    hasher = OrderedHasher()
    order = list(range(20))[::-1]
    threads = [threading.Thread(target=hasher.feed, args=(i + 1, parts[i])) for i in order]
    assert hasher.hexdigest(20) is None
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hasher.feed(3, parts[2])  # a retried part is hashed once
    assert hasher.hexdigest(20) == sha(b"".join(parts))
    assert hasher.hexdigest(21) is None


def test_file_sha256_and_base64(tmp_path: Path) -> None:
    data = random_bytes(5 * 1024 * 1024 + 7)
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(str(tmp_path / "f")) == sha(data)
    assert file_sha256(str(tmp_path / "f"), 100) == sha(data[:100])
    assert from_base64(to_base64(sha(data))) == sha(data)
    assert from_base64("not base64!") is None


def test_digests_can_be_turned_off(backend: MemoryBackend, tmp_path: Path) -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    off = FAST.replace(digests=False)
    data = random_bytes(10 * 4 * KiB + 123)
    (tmp_path / "f.bin").write_bytes(data)
    with ArtifactStore("memory://b/root", registry=registry, settings=off) as store:
        store.upload_file(str(tmp_path / "f.bin"), "big.bin")  # multipart
        store.write_bytes("small.bin", data[:100])  # a stream: its bytes are in memory, hashed anyway
        assert store.stat("big.bin").digest is None
        assert store.stat("small.bin").digest == sha(data[:100])
        backend.corrupt_stored("b", "root/small.bin")
        # Without digests only the size and the native checksum (memory: MD5) are checked.
        with pytest.raises(IntegrityError, match="md5"):
            store.download_file("small.bin", str(tmp_path / "out.bin"))


def test_digests_setting_from_the_environment() -> None:
    assert Settings.from_env({}).digests is True
    assert Settings.from_env({"MLARTIFACTS_DIGESTS": "false"}).digests is False


BIG = 9 * 1024 * 1024  # above the size from which a single-stream download is hashed as it arrives


def one_stream(backend: MemoryBackend) -> ArtifactStore:
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    settings = FAST.replace(ranged_download_threshold=1 << 40)  # one stream, whatever the size
    return ArtifactStore("memory://b/root", registry=registry, settings=settings)


def test_a_large_download_is_hashed_as_it_arrives(backend: MemoryBackend, tmp_path: Path) -> None:
    data = random_bytes(BIG)
    with one_stream(backend) as store:
        store.write_bytes("big.bin", data)
        out = store.download_file("big.bin", str(tmp_path / "big.bin"))
        assert Path(out).read_bytes() == data
        backend.corrupt_stored("b", "root/big.bin", offset=BIG - 1)  # in the tail
        with pytest.raises(IntegrityError, match="SHA-256"):
            store.download_file("big.bin", str(tmp_path / "again.bin"))
        assert not (tmp_path / "again.bin").exists()


class Backwards(MemoryBackend):
    """Writes a download from its end to its start (a plugin the trailing hash cannot follow)."""

    @hookimpl
    def download(self, root: Any, path: str, local_file: str, progress: Any) -> str | None:
        obj = self._get(root, path)
        with open(local_file, "r+b") as f:
            f.truncate(len(obj.data))
            for start in reversed(range(0, len(obj.data), 1 << 20)):
                f.seek(start)
                f.write(obj.data[start : start + (1 << 20)])
                progress(min(1 << 20, len(obj.data) - start))
        return obj.digest


def test_a_plugin_writing_out_of_order_is_verified_by_a_full_read(tmp_path: Path) -> None:
    data = random_bytes(BIG, seed=5)
    with one_stream(Backwards(LIMITS, chunk_size=1 << 20)) as store:
        store.write_bytes("big.bin", data)
        out = store.download_file("big.bin", str(tmp_path / "big.bin"))
        assert Path(out).read_bytes() == data  # no false alarm: the whole file was read again


def test_a_large_ranged_download_is_hashed_behind_its_ranges(
    backend: MemoryBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel ranges: the hash follows the contiguous prefix written, and still catches a flipped byte."""
    from mlartifacts.transfer import _digest

    reached: list[int] = []
    reach = _digest.Trailing.reach

    def recording(self: _digest.Trailing, offset: int) -> None:
        reached.append(offset)
        reach(self, offset)

    monkeypatch.setattr(_digest.Trailing, "reach", recording)
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    settings = FAST.replace(ranged_download_threshold=1 << 20, ranged_download_chunksize=1 << 20)
    data = random_bytes(BIG)
    with ArtifactStore("memory://b/root", registry=registry, settings=settings) as store:
        store.write_bytes("big.bin", data)
        out = store.download_file("big.bin", str(tmp_path / "big.bin"))
        assert Path(out).read_bytes() == data
        assert max(reached) == BIG and len(set(reached)) > 2  # followed range by range
        backend.corrupt_stored("b", "root/big.bin", offset=BIG // 2)
        with pytest.raises(IntegrityError, match="SHA-256"):
            store.download_file("big.bin", str(tmp_path / "again.bin"))
        assert not (tmp_path / "again.bin").exists()


def test_a_long_stream_is_hashed_beside_its_consumer_and_matches() -> None:
    chunks = [bytes([i]) * (1024 * 1024) for i in range(20)]  # 20 MiB: past BESIDE_FROM
    hashed = _digest.Hashing(chunks)
    assert b"".join(hashed) == b"".join(chunks)
    assert hashed._thread is None  # joined once the stream ended
    assert hashed.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_an_abandoned_long_stream_ends_its_hashing_thread() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * (1024 * 1024)

    hashed = _digest.Hashing(endless())
    for _ in range(12):
        next(hashed)
    thread = hashed._thread
    assert thread is not None and thread.is_alive()
    hashed.close()
    assert not thread.is_alive() and hashed.hexdigest() is None  # unfinished: no digest
