"""Behaviour specific to local disks and NFS mounts: atomicity, containment, URI forms."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.errors import InvalidPath, InvalidUri, NotFound
from mlartifacts.paths import TEMP_PREFIX


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore(str(root)) as store:
        yield store


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_served_by_the_nfs_plugin(store: ArtifactStore) -> None:
    assert store.plugin == "nfs"


def test_reader_never_sees_a_partial_write(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("model.bin", b"old version")
    seen_during_write: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        yield b"new "
        seen_during_write.append((root / "model.bin").read_bytes())
        seen_during_write.append(b"".join(store.read("model.bin")))
        yield b"version"

    store.write("model.bin", chunks())
    assert seen_during_write == [b"old version", b"old version"]
    assert (root / "model.bin").read_bytes() == b"new version"
    assert temporaries(root) == []


def test_failed_write_leaves_no_trace(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("keep.txt", b"keep")

    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.write("new.txt", chunks())
    with pytest.raises(ConnectionResetError):
        store.write("keep.txt", chunks())
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]  # the digest is its xattr, no sidecar
    assert (root / "keep.txt").read_bytes() == b"keep"
    assert store.stat("keep.txt").digest == hashlib.sha256(b"keep").hexdigest()  # still its own


def test_temporaries_are_hidden(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("a.txt", b"a")
    (root / f"{TEMP_PREFIX}abc").write_bytes(b"in flight")
    assert [e.path for e in store.list_artifacts()] == ["a.txt"]
    assert [e.path for e in store.iter_files()] == ["a.txt"]


def test_written_files_get_usual_permissions(store: ArtifactStore, root: Path, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    store.write_bytes("w.txt", b"x")
    (tmp_path / "u.txt").write_bytes(b"y")
    store.log_artifact(str(tmp_path / "u.txt"))
    for name in ("w.txt", "u.txt"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o666 & ~umask


def test_symlink_out_of_the_root_is_refused(store: ArtifactStore, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    root.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "escape_file").symlink_to(outside / "secret.txt")
    with pytest.raises(InvalidPath, match="outside the store root"):
        store.read_bytes("escape/secret.txt")
    with pytest.raises(InvalidPath, match="outside the store root"):
        store.read_bytes("escape_file")
    with pytest.raises(InvalidPath):
        store.write_bytes("escape/planted.txt", b"x")
    with pytest.raises(InvalidPath):
        store.delete_artifacts("escape")
    assert store.list_artifacts() == []  # links out of the root are not listed
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"


def test_symlink_inside_the_root_works(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("real/data.txt", b"data")
    (root / "alias").symlink_to(root / "real")
    assert store.read_bytes("alias/data.txt") == b"data"
    store.delete("alias")  # removes the link, not what it points to
    assert store.read_bytes("real/data.txt") == b"data"


def test_file_in_the_way(store: ArtifactStore) -> None:
    store.write_bytes("a", b"file")
    with pytest.raises(InvalidPath, match="in the way"):
        store.write_bytes("a/b.txt", b"x")
    store.write_bytes("d/x", b"1")
    with pytest.raises(InvalidPath, match="directory"):
        store.write_bytes("d", b"x")


def test_concurrent_writers_in_a_new_directory(store: ArtifactStore) -> None:
    barrier = threading.Barrier(16)

    def writer(i: int) -> None:
        barrier.wait()
        store.write_bytes(f"fresh/dir/file{i}.txt", str(i).encode())

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.path for e in store.iter_files()) == sorted(f"fresh/dir/file{i}.txt" for i in range(16))


def test_delete_everything_removes_the_root(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("a/b.txt", b"x")
    store.delete_artifacts()
    assert not root.exists()
    with pytest.raises(NotFound):
        store.stat()


@pytest.mark.parametrize(
    "make_uri",
    [
        lambda p: p.as_uri(),
        lambda p: "file:" + str(p),
        lambda p: "file://localhost" + str(p),
        lambda p: "FILE://" + str(p),
    ],
)
def test_file_uri_forms(tmp_path: Path, make_uri: object) -> None:
    target = tmp_path / "with space" / "ünï"
    uri = make_uri(target)  # type: ignore[operator]
    with ArtifactStore(uri) as store:
        store.write_bytes("x.txt", b"x")
    assert (target / "x.txt").read_bytes() == b"x"


def test_relative_path_is_resolved_against_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ArtifactStore("mlruns/0") as store:
        store.write_bytes("a.txt", b"a")
    assert (tmp_path / "mlruns" / "0" / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize("uri", ["file://otherhost/share/x", "file:///x?query=1", "file:"])
def test_unusable_file_uris(uri: str) -> None:
    with pytest.raises(InvalidUri):
        ArtifactStore(uri)


def test_store_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "one.bin").write_bytes(b"123")
    with ArtifactStore(str(tmp_path / "one.bin")) as store:
        assert store.stat().file_size == 3
        assert store.root_name == "one.bin"
        out = store.download_artifacts("", str(tmp_path / "dst"))
    assert Path(out).read_bytes() == b"123"


def test_digest_is_an_extended_attribute_and_survives_the_rename(store: ArtifactStore, root: Path) -> None:
    store.write_bytes("d/m.bin", b"model bytes")
    line = os.getxattr(root / "d" / "m.bin", "user.mlartifacts.sha256").decode()
    assert line.startswith(f"sha256 {hashlib.sha256(b'model bytes').hexdigest()} 11 ")
    assert sorted(p.name for p in (root / "d").iterdir()) == ["m.bin"]
    # Rewritten in place by another tool (same inode, attribute kept): the record no longer
    # describes the file (its time changed), so it is not used: no false alarm.
    (root / "d" / "m.bin").write_bytes(b"other bytes")
    os.utime(root / "d" / "m.bin", (1, 1))
    assert store.stat("d/m.bin").digest is None
    assert store.read_bytes("d/m.bin") == b"other bytes"
    out = store.download_file("d/m.bin", str(root.parent / "out.bin"))
    assert Path(out).read_bytes() == b"other bytes"
