"""The contract suite: the tests every backend must pass, reusable in a few lines.

A backend's conformance file subclasses :class:`ArtifactStoreContract` and
provides one fixture, ``artifact_uri``: a fresh, empty root URI for each test::

    from mlartifacts.testing.contract import ArtifactStoreContract

    class TestMyBackend(ArtifactStoreContract):
        @pytest.fixture
        def artifact_uri(self, my_server):
            return f"my://{my_server}/{uuid.uuid4().hex}"

Optional fixtures to override: ``registry`` (default: the installed plugins; pass a
:class:`PluginRegistry` with your plugin registered to test it uninstalled),
``settings``, ``large_file_size`` and ``corrupt`` (see :class:`IntegrityTests`).
Capability-gated tests (multipart, ranged reads, incomplete-upload listing, batches,
resumable uploads with ``list_parts``) skip, saying why, when the backend reports it
lacks the capability. Topic classes
(``RoundTripTests``, ``PathSafetyTests``...) can be combined one by one instead.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from .. import ArtifactStore, Part, PluginRegistry, Settings
from .._types import MiB
from ..errors import ArtifactError, InvalidPath, NotFound
from ..paths import TEMP_PREFIX
from ._fixtures import ContractFixtures, digest, random_bytes, read_tree, write_tree
from ._integrity_tests import Corrupt, IntegrityTests, flip_byte_in_place
from ._resume_tests import ResumeTests
from ._silent_tests import SilentEndpointTests

__all__ = [
    "ArtifactStoreContract",
    "BatchTests",
    "ContractFixtures",
    "DeleteTests",
    "Corrupt",
    "ErrorTests",
    "IntegrityTests",
    "ListingTests",
    "MultipartTests",
    "PathSafetyTests",
    "RangedReadTests",
    "ResumeTests",
    "RoundTripTests",
    "SilentEndpointTests",
    "StreamTests",
    "TreeTests",
    "ConcurrencyTests",
    "flip_byte_in_place",
    "random_bytes",
    "write_tree",
]


class RoundTripTests(ContractFixtures):
    """Bytes come back exactly as they went in, whatever the size."""

    @pytest.mark.parametrize("size", [0, 1, 1000, 1024 * 1024 + 7])
    def test_round_trip(self, store: ArtifactStore, tmp_path: Path, size: int) -> None:
        data = random_bytes(size, seed=size)
        src = tmp_path / "src" / "blob.bin"
        src.parent.mkdir()
        src.write_bytes(data)
        store.log_artifact(str(src), "dir")
        info = store.stat("dir/blob.bin")
        assert (info.is_dir, info.file_size) == (False, size)
        local = store.download_artifacts("dir/blob.bin", str(tmp_path / "dst"))
        assert local == str(tmp_path / "dst" / "dir" / "blob.bin")
        assert Path(local).read_bytes() == data

    def test_round_trip_multipart_sized(
        self, multipart_store: ArtifactStore, tmp_path: Path, part_size: int
    ) -> None:
        data = random_bytes(part_size * 2 + part_size // 2 + 1, seed=2)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        multipart_store.log_artifact(str(src))
        out = multipart_store.download_artifacts("big.bin", str(tmp_path / "dst"))
        assert Path(out).read_bytes() == data

    def test_round_trip_large(self, store: ArtifactStore, tmp_path: Path, large_file_size: int) -> None:
        src = tmp_path / "large.bin"
        with open(src, "wb") as f:
            for i in range(0, large_file_size, 8 * MiB):
                f.write(random_bytes(min(8 * MiB, large_file_size - i), seed=i))
        store.log_artifact(str(src), "models")
        out = store.download_artifacts("models/large.bin", str(tmp_path / "dst"))
        assert os.path.getsize(out) == large_file_size
        assert digest(Path(out)) == digest(src)

    def test_overwrite_replaces_whole_content(self, store: ArtifactStore, tmp_path: Path) -> None:
        src = tmp_path / "f.txt"
        src.write_bytes(b"a much longer first version")
        store.log_artifact(str(src))
        src.write_bytes(b"short")
        store.log_artifact(str(src))
        assert store.read_bytes("f.txt") == b"short"
        assert store.stat("f.txt").file_size == 5

    def test_download_to_default_temporary_directory(self, store: ArtifactStore, tmp_path: Path) -> None:
        (tmp_path / "m.txt").write_bytes(b"model")
        store.log_artifact(str(tmp_path / "m.txt"), "a")
        local = store.download_artifacts("a/m.txt")
        try:
            assert Path(local).read_bytes() == b"model"
            assert local.endswith(os.path.join("a", "m.txt"))
        finally:
            shutil.rmtree(Path(local).parents[1])  # the temporary directory made for it

    def test_download_replaces_existing_local_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.write_bytes("f.bin", b"new")
        (tmp_path / "dst").mkdir()
        target = tmp_path / "dst" / "f.bin"
        target.write_bytes(b"old and longer")
        store.download_file("f.bin", str(target))
        assert target.read_bytes() == b"new"
        assert [p.name for p in target.parent.iterdir()] == ["f.bin"]  # no temporary left behind


class TreeTests(ContractFixtures):
    """Directory trees upload and download whole, names intact."""

    def _files(self) -> dict[str, bytes]:
        files = {
            "top.txt": b"top",
            "a/b/c/deep.bin": random_bytes(5000, seed=1),
            "a/sibling.txt": b"sibling",
            "with space/file name.txt": b"spaces",
            "empty.bin": b"",
        }
        if self.unicode_names:
            files["données/模型 v1.txt"] = "unicode ✓".encode()
        return files

    def test_tree_round_trip(self, store: ArtifactStore, tmp_path: Path) -> None:
        files = self._files()
        write_tree(tmp_path / "src", files)
        store.log_artifacts(str(tmp_path / "src"), "run/artifacts")
        out = store.download_artifacts("run/artifacts", str(tmp_path / "dst"))
        assert out == str(tmp_path / "dst" / "run" / "artifacts")
        assert read_tree(Path(out)) == files

    def test_tree_at_root(self, store: ArtifactStore, tmp_path: Path) -> None:
        files = self._files()
        write_tree(tmp_path / "src", files)
        store.log_artifacts(str(tmp_path / "src"))
        assert {f.path for f in store.iter_files()} == set(files)
        out = store.download_artifacts("", str(tmp_path / "dst"))
        assert read_tree(Path(out)) == files

    def test_download_subdirectory(self, store: ArtifactStore, tmp_path: Path) -> None:
        write_tree(tmp_path / "src", self._files())
        store.log_artifacts(str(tmp_path / "src"))
        out = store.download_artifacts("a", str(tmp_path / "dst"))
        assert read_tree(Path(out)) == {"b/c/deep.bin": random_bytes(5000, seed=1), "sibling.txt": b"sibling"}

    def test_missing_local_directory(self, store: ArtifactStore, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            store.log_artifacts(str(tmp_path / "nope"))


class ListingTests(ContractFixtures):
    """``list_artifacts`` returns direct children with MLflow's semantics."""

    @pytest.fixture
    def populated(self, store: ArtifactStore) -> ArtifactStore:
        store.write_bytes("a.txt", b"12345")
        store.write_bytes("dir/b.txt", b"x")
        store.write_bytes("dir/sub/c.txt", b"yy")
        store.write_bytes("dirty.txt", b"zzz")
        return store

    def test_root_children(self, populated: ArtifactStore) -> None:
        entries = populated.list_artifacts()
        assert [(e.path, e.is_dir, e.file_size) for e in entries] == [
            ("a.txt", False, 5),
            ("dir", True, None),
            ("dirty.txt", False, 3),
        ]

    def test_nested_children_paths_are_relative_to_root(self, populated: ArtifactStore) -> None:
        entries = populated.list_artifacts("dir")
        assert [(e.path, e.is_dir, e.file_size) for e in entries] == [
            ("dir/b.txt", False, 1),
            ("dir/sub", True, None),
        ]
        assert [e.path for e in populated.list_artifacts("dir/sub/")] == ["dir/sub/c.txt"]

    def test_missing_path_and_file_have_no_children(self, populated: ArtifactStore) -> None:
        assert populated.list_artifacts("nope") == []
        assert populated.list_artifacts("a.txt") == []
        assert populated.list_artifacts("di") == []  # a prefix of a name is not a directory

    def test_empty_store(self, store: ArtifactStore) -> None:
        assert store.list_artifacts() == []
        assert list(store.iter_files()) == []

    def test_recursive_listing(self, populated: ArtifactStore) -> None:
        found = sorted((f.path, f.file_size) for f in populated.iter_files())
        assert found == [("a.txt", 5), ("dir/b.txt", 1), ("dir/sub/c.txt", 2), ("dirty.txt", 3)]
        assert sorted(f.path for f in populated.iter_files("dir")) == ["dir/b.txt", "dir/sub/c.txt"]

    def test_stat(self, populated: ArtifactStore) -> None:
        assert populated.stat("dir").is_dir
        info = populated.stat("dir/sub/c.txt")
        assert (info.path, info.is_dir, info.file_size) == ("dir/sub/c.txt", False, 2)
        assert populated.exists("a.txt")
        assert not populated.exists("a.tx")


class DeleteTests(ContractFixtures):
    """Deletes remove exactly what they name."""

    def test_delete_file(self, store: ArtifactStore) -> None:
        store.write_bytes("d/a.txt", b"a")
        store.write_bytes("d/b.txt", b"b")
        store.delete_artifacts("d/a.txt")
        assert [e.path for e in store.iter_files()] == ["d/b.txt"]

    def test_delete_tree_respects_name_boundaries(self, store: ArtifactStore) -> None:
        store.write_bytes("foo/x.txt", b"1")
        store.write_bytes("foo/y/z.txt", b"2")
        store.write_bytes("foobar/keep.txt", b"3")
        store.write_bytes("foo.txt", b"4")
        store.delete_artifacts("foo")
        assert sorted(e.path for e in store.iter_files()) == ["foo.txt", "foobar/keep.txt"]

    def test_delete_everything(self, store: ArtifactStore) -> None:
        store.write_bytes("a/b.txt", b"1")
        store.write_bytes("c.txt", b"2")
        store.delete_artifacts()
        assert list(store.iter_files()) == []

    def test_missing(self, store: ArtifactStore) -> None:
        store.delete_artifacts("never-was")  # MLflow semantics: not an error
        with pytest.raises(NotFound):
            store.delete("never-was")


class ErrorTests(ContractFixtures):
    """Missing things raise NotFound (also a FileNotFoundError); no partial file is left."""

    def test_missing_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        dst = tmp_path / "dst"
        dst.mkdir()
        with pytest.raises(NotFound):
            store.download_artifacts("missing.bin", str(dst))
        with pytest.raises(FileNotFoundError):
            store.download_file("missing.bin", str(dst / "x"))
        with pytest.raises(NotFound):
            store.stat("missing.bin")
        with pytest.raises(NotFound):
            store.read_bytes("missing.bin")
        assert list(dst.iterdir()) == []

    def test_missing_local_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            store.log_artifact(str(tmp_path / "absent.txt"))

    def test_directory_is_not_a_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.write_bytes("d/f.txt", b"x")
        dst = tmp_path / "dst"
        dst.mkdir()
        with pytest.raises(ArtifactError):
            store.download_file("d", str(dst / "d"))
        assert list(dst.iterdir()) == []


BAD_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "/etc/passwd",
    "a\\..\\b.txt",
    "nul\x00byte",
    "line\nbreak",
    "C:/windows",
    f"dir/{TEMP_PREFIX}sneaky",
]


class PathSafetyTests(ContractFixtures):
    """Unsafe paths are refused before anything reaches the backend."""

    @pytest.mark.parametrize("bad", BAD_PATHS)
    def test_refused_everywhere(self, store: ArtifactStore, tmp_path: Path, bad: str) -> None:
        src = tmp_path / "f.txt"
        src.write_bytes(b"x")
        with pytest.raises(InvalidPath):
            store.log_artifact(str(src), bad)
        with pytest.raises(InvalidPath):
            store.upload_file(str(src), bad)
        with pytest.raises(InvalidPath):
            store.write_bytes(bad, b"x")
        with pytest.raises(InvalidPath):
            store.list_artifacts(bad)
        with pytest.raises(InvalidPath):
            store.download_artifacts(bad, str(tmp_path / "dst"))
        with pytest.raises(InvalidPath):
            store.delete_artifacts(bad)
        assert list(store.iter_files()) == []
        assert not (tmp_path / "dst").exists()

    def test_invalid_path_is_a_value_error(self, store: ArtifactStore) -> None:
        with pytest.raises(ValueError, match=r"\.\."):
            store.stat("../x")


class ConcurrencyTests(ContractFixtures):
    """Writers of different files don't interfere; a contested file ends whole."""

    def test_concurrent_uploads(self, store: ArtifactStore, tmp_path: Path) -> None:
        files = {f"w{i}/file{i}.bin": random_bytes(20_000 + i, seed=i) for i in range(24)}
        write_tree(tmp_path / "src", files)

        def upload(rel: str) -> None:
            local = tmp_path / "src" / rel
            store.log_artifact(str(local), rel.rsplit("/", 1)[0])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, files))
        out = store.download_artifacts("", str(tmp_path / "dst"))
        assert read_tree(Path(out)) == files

    def test_contested_file_is_never_partial(self, store: ArtifactStore) -> None:
        versions = [random_bytes(300_000, seed=s) for s in range(6)]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda data: store.write_bytes("same.bin", data), versions))
        assert store.read_bytes("same.bin") in versions


class StreamTests(ContractFixtures):
    """Objects of unknown length are written from streams and read back as streams."""

    def test_write_stream_and_read(self, multipart_store: ArtifactStore, part_size: int) -> None:
        data = random_bytes(part_size * 2 + 12345, seed=3)
        chunks = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
        multipart_store.write("streamed/blob.bin", chunks)
        assert multipart_store.stat("streamed/blob.bin").file_size == len(data)
        assert b"".join(multipart_store.read("streamed/blob.bin")) == data

    def test_small_stream(self, store: ArtifactStore) -> None:
        store.write("s.txt", iter([b"he", b"", b"llo"]))
        assert store.read_bytes("s.txt") == b"hello"

    @pytest.mark.parametrize("parts_before_failure", [0, 2])
    def test_broken_stream_leaves_nothing(
        self, multipart_store: ArtifactStore, part_size: int, parts_before_failure: int
    ) -> None:
        def chunks() -> Iterator[bytes]:
            yield random_bytes(part_size * parts_before_failure + 10)
            raise OSError("client went away")

        with pytest.raises(OSError, match="client went away"):
            multipart_store.write("broken.bin", chunks())
        assert not multipart_store.exists("broken.bin")
        assert multipart_store.list_artifacts() == []
        if multipart_store.capabilities.list_multipart_uploads:
            assert list(multipart_store.backend.list_multipart_uploads("")) == []


class RangedReadTests(ContractFixtures):
    """Byte ranges read exactly; parallel ranged downloads where the backend reads ranges."""

    @pytest.fixture
    def blob(self, store: ArtifactStore) -> bytes:
        data = random_bytes(3 * MiB + 17, seed=4)
        store.write_bytes("blob.bin", data)
        return data

    @pytest.mark.parametrize(
        ("offset", "length"),
        [(0, None), (0, 10), (5, 1), (1_000_000, 2_000_000), (3 * MiB, None), (3 * MiB + 17, None)],
    )
    def test_read_range(self, store: ArtifactStore, blob: bytes, offset: int, length: int | None) -> None:
        end = None if length is None else offset + length
        assert b"".join(store.read("blob.bin", offset, length)) == blob[offset:end]

    def test_ranged_download(
        self,
        artifact_uri: str,
        registry: PluginRegistry,
        settings: Settings,
        blob: bytes,
        tmp_path: Path,
        hook_calls: list[str],
    ) -> None:
        tuned = settings.replace(ranged_download_threshold=MiB, ranged_download_chunksize=MiB // 2)
        with ArtifactStore(artifact_uri, settings=tuned, registry=registry) as store:
            if not store.capabilities.ranged_read:
                pytest.skip(f"the '{store.plugin}' backend does not read ranges")
            local = store.download_file("blob.bin", str(tmp_path / "blob.bin"))
        assert Path(local).read_bytes() == blob
        if store.capabilities.single_stream:  # one stream is fastest there: no ranges
            assert hook_calls.count("download") == 1
            assert hook_calls.count("read") == 0
        else:
            assert hook_calls.count("read") >= 7  # 3 MiB in half-MiB ranges


class MultipartTests(ContractFixtures):
    """Multipart uploads (where supported): parts in parallel, nothing left on failure."""

    @pytest.fixture
    def needs_multipart(self, store: ArtifactStore) -> None:
        if store.multipart_limits is None:
            pytest.skip(f"the '{store.plugin}' backend has no multipart upload")

    @pytest.mark.usefixtures("needs_multipart")
    def test_large_file_goes_in_parts(
        self, multipart_store: ArtifactStore, tmp_path: Path, part_size: int, hook_calls: list[str]
    ) -> None:
        data = random_bytes(part_size * 3 + 1, seed=5)
        (tmp_path / "m.bin").write_bytes(data)
        multipart_store.log_artifact(str(tmp_path / "m.bin"))
        assert hook_calls.count("create_multipart") == 1
        assert hook_calls.count("upload_part") == 4
        assert hook_calls.count("complete_multipart") == 1
        assert multipart_store.read_bytes("m.bin") == data

    @pytest.mark.usefixtures("needs_multipart")
    def test_file_changing_under_upload_aborts(
        self, multipart_store: ArtifactStore, tmp_path: Path, part_size: int, hook_calls: list[str]
    ) -> None:
        # A local file that shrinks after its size was taken makes a part come up
        # short: the upload must abort and leave neither an object nor a pending upload.
        src = tmp_path / "shrinking.bin"
        src.write_bytes(random_bytes(part_size * 3, seed=6))

        class Shrink:
            def begin(self, total_bytes: int | None, total_files: int) -> None:
                os.truncate(src, part_size)

            def update(self, nbytes: int) -> None: ...
            def file_done(self, path: str) -> None: ...
            def end(self) -> None: ...

        with pytest.raises(ArtifactError, match="shrank"):
            multipart_store.upload_file(str(src), "shrinking.bin", progress=Shrink())
        assert "abort_multipart" in hook_calls
        assert not multipart_store.exists("shrinking.bin")
        if multipart_store.capabilities.list_multipart_uploads:
            assert list(multipart_store.backend.list_multipart_uploads("")) == []

    @pytest.mark.usefixtures("needs_multipart")
    def test_explicit_multipart_api(self, store: ArtifactStore, part_size: int) -> None:
        backend = store.backend
        first, last = random_bytes(part_size, seed=7), b"tail"
        upload_id = backend.create_multipart("manual.bin")
        parts = []
        for number, data in ((2, last), (1, first)):  # order of sending must not matter
            parts.append(Part(number, backend.upload_part("manual.bin", upload_id, number, data)))
        backend.complete_multipart("manual.bin", upload_id, parts)
        assert store.read_bytes("manual.bin") == first + last


class BatchTests(ContractFixtures):
    """Batches of small files (where supported): one exchange per batch, every byte intact."""

    @pytest.fixture
    def needs_batch(self, store: ArtifactStore) -> None:
        if not store.capabilities.batch:
            pytest.skip(f"the '{store.plugin}' backend has no batch transfers")

    @pytest.fixture
    def batch_store(
        self, artifact_uri: str, registry: PluginRegistry, settings: Settings
    ) -> Iterator[ArtifactStore]:
        """A store that batches files up to 4 KiB, three to a batch (two workers)."""
        tuned = settings.replace(batch_file_size=4096, batch_files=3, max_workers=2)
        with ArtifactStore(artifact_uri, settings=tuned, registry=registry) as store:
            yield store

    def _files(self) -> dict[str, bytes]:
        files = {f"d{i % 3}/f{i}.bin": random_bytes(i * 300, seed=i) for i in range(8)}
        files["big.bin"] = random_bytes(5000, seed=99)  # above the batch size: sent on its own
        if self.unicode_names:
            files["données/é.txt"] = "é".encode()
        return files

    @pytest.mark.usefixtures("needs_batch")
    def test_small_files_go_in_batches(
        self, batch_store: ArtifactStore, tmp_path: Path, hook_calls: list[str]
    ) -> None:
        files = self._files()
        write_tree(tmp_path / "src", files)
        batch_store.log_artifacts(str(tmp_path / "src"), "t")
        small = len(files) - 1
        assert hook_calls.count("upload_batch") == -(-small // 3)
        assert hook_calls.count("upload") == 1  # big.bin
        hook_calls.clear()
        out = batch_store.download_artifacts("t", str(tmp_path / "dst"))
        assert read_tree(Path(out)) == files
        assert hook_calls.count("download_batch") == -(-small // 3)
        assert hook_calls.count("download") == 1

    @pytest.mark.usefixtures("needs_batch")
    def test_explicit_batch_api(self, store: ArtifactStore) -> None:
        backend = store.backend
        files = {"a.txt": b"alpha", "sub/b.bin": random_bytes(3000, seed=3), "empty": b""}
        backend.upload_batch("dir", iter(files.items()))
        assert {f.path: store.read_bytes(f.path) for f in store.iter_files("dir")} == {
            f"dir/{name}": data for name, data in files.items()
        }
        got = dict(backend.download_batch("dir", ["sub/b.bin", "a.txt", "empty"]))
        assert got == files

    @pytest.mark.usefixtures("needs_batch")
    def test_missing_file_in_a_batch(self, store: ArtifactStore) -> None:
        store.write_bytes("dir/here.txt", b"here")
        with pytest.raises(NotFound):
            list(store.backend.download_batch("dir", ["here.txt", "gone.txt"]))

    @pytest.mark.usefixtures("needs_batch")
    def test_unsafe_names_in_a_batch(self, store: ArtifactStore) -> None:
        for bad in ("../escape.txt", "/abs.txt", "a/../../b.txt"):
            with pytest.raises(InvalidPath):
                store.backend.upload_batch("dir", iter([(bad, b"x")]))
            with pytest.raises(InvalidPath):
                list(store.backend.download_batch("dir", [bad]))
        assert list(store.iter_files()) == []


class ArtifactStoreContract(
    IntegrityTests,
    RoundTripTests,
    TreeTests,
    ListingTests,
    DeleteTests,
    ErrorTests,
    PathSafetyTests,
    ConcurrencyTests,
    StreamTests,
    RangedReadTests,
    MultipartTests,
    BatchTests,
    ResumeTests,
):
    """Every contract test. Subclass it and provide an ``artifact_uri`` fixture."""
