"""The contract's integrity tests (issue 15): digests recorded, returned and enforced.

Kept apart from :mod:`.contract`, which includes them in ``ArtifactStoreContract`` and
re-exports ``IntegrityTests``, ``Corrupt`` and ``flip_byte_in_place``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import Callable

import pytest

from .. import ArtifactStore, PluginRegistry
from .._types import MiB
from ..errors import IntegrityError
from ._fixtures import ContractFixtures, random_bytes

__all__ = ["Corrupt", "IntegrityTests", "flip_byte_in_place"]

#: Flips one byte of the stored file at an artifact path, behind the backend's back.
Corrupt = Callable[[ArtifactStore, str], None]


def flip_byte_in_place(local_path: str | os.PathLike[str]) -> None:
    """Flip the middle byte of a file on this machine's disk, its modification time put back.

    What bit rot leaves: same size, same time, other bytes. For path stores whose test
    server serves a local directory (sftp, ftp): their ``corrupt`` fixture maps the
    artifact to its file and calls this.
    """
    before = os.stat(local_path)
    with open(local_path, "r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(local_path, ns=(before.st_atime_ns, before.st_mtime_ns))


class IntegrityTests(ContractFixtures):
    """Digests (issue 15): recorded on upload, returned by stat and list, enforced on download.

    Needs the ``corrupt`` fixture for the storage-side test: a function that flips one
    byte of a stored file behind the backend's back (through the storage's own API or
    its disk, keeping whatever metadata the backend recorded).
    """

    #: Set False (with a comment saying why) when the storage's listing cannot carry digests.
    digests_in_listings = True
    #: Set False when the storage keeps no digest at all (MLflow's own artifacts server).
    records_digests = True

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        if not self.records_digests:
            pytest.skip("the storage keeps no digest: only sizes can be checked there")
        pytest.skip("this conformance class supplies no 'corrupt' fixture to change stored bytes")

    def _expect(self, store: ArtifactStore, path: str, data: bytes) -> None:
        expected = hashlib.sha256(data).hexdigest()
        if not self.records_digests:
            assert store.stat(path).digest is None  # never one made up
            return
        assert store.stat(path).digest == expected
        listed = {e.path: e.digest for e in store.list_artifacts(posixpath.dirname(path))}
        walked = {e.path: e.digest for e in store.iter_files()}
        if self.digests_in_listings:
            assert listed[path] == expected
            assert walked[path] == expected

    def test_digest_recorded_on_upload(self, store: ArtifactStore, tmp_path: Path) -> None:
        data = random_bytes(3000, seed=15)
        (tmp_path / "f.bin").write_bytes(data)
        store.upload_file(str(tmp_path / "f.bin"), "d/f.bin")
        self._expect(store, "d/f.bin", data)
        store.write_bytes("d/w.bin", data[:100])
        self._expect(store, "d/w.bin", data[:100])

    def test_digest_recorded_on_multipart_upload(
        self, multipart_store: ArtifactStore, tmp_path: Path, part_size: int
    ) -> None:
        data = random_bytes(part_size * 2 + 17, seed=16)
        (tmp_path / "big.bin").write_bytes(data)
        multipart_store.upload_file(str(tmp_path / "big.bin"), "big.bin")
        self._expect(multipart_store, "big.bin", data)
        multipart_store.delete("big.bin")

    def test_stream_with_a_wrong_digest_is_refused(self, store: ArtifactStore) -> None:
        data = random_bytes(2000, seed=17)
        wrong = hashlib.sha256(b"something else").hexdigest()
        with pytest.raises(IntegrityError):
            store.engine.write_stream(store.backend, "w.bin", [data], len(data), digest=wrong)
        assert not store.exists("w.bin")
        assert list(store.iter_files()) == []

    @pytest.mark.parametrize("size", [1000, 3 * MiB + 5], ids=["small", "ranged"])
    def test_byte_flipped_in_storage_is_caught(
        self,
        store: ArtifactStore,
        corrupt: Corrupt,
        registry: PluginRegistry,
        tmp_path: Path,
        size: int,
    ) -> None:
        data = random_bytes(size, seed=18)
        (tmp_path / "up.bin").write_bytes(data)
        store.upload_file(str(tmp_path / "up.bin"), "c/f.bin")
        corrupt(store, "c/f.bin")
        dest = tmp_path / "down"
        dest.mkdir()
        quick = store.engine.settings.replace(
            max_retries=1, ranged_download_threshold=MiB, ranged_download_chunksize=MiB
        )
        with ArtifactStore(store.uri, settings=quick, registry=registry) as checked:
            with pytest.raises(IntegrityError) as caught:
                checked.download_file("c/f.bin", str(dest / "f.bin"))
            message = str(caught.value)
            assert "c/f.bin" in message
            assert store.plugin in message
            assert hashlib.sha256(data).hexdigest() in message
            with pytest.raises(IntegrityError):
                checked.download_tree("c", str(dest / "tree"))
        assert [p for p in dest.rglob("*") if p.is_file()] == []
