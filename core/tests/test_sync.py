"""``sync``: new, changed, unchanged and deleted files, dry runs, interrupted runs, every direction.

The stores are memory backends registered for each test: one recording SHA-256
digests (as every backend does once it carries ``FileInfo.digest``), one with sizes
only. Their call logs show what a sync cost: a re-run over an unchanged tree lists,
and transfers nothing. Syncs through the artifacts service and across backends are
in test_sync_backends.py.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, Checksum, FileInfo, NullProgress
from mlartifacts.errors import InvalidPath, NotFound
from mlartifacts.sync import SyncResult, decide, digest_algorithm, sync
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree

from ._digest_memory import BareMemory, DigestMemory, registry_with

TREE = {
    "model.bin": random_bytes(70_000, seed=1),
    "conf/params.json": b'{"lr": 0.1}',
    "conf/deep/notes.txt": b"notes",
    "data/0.csv": b"a,b\n1,2\n",
    "empty": b"",
}
TRANSFERS = {"upload", "write", "download", "read", "copy", "upload_part", "create_multipart", "upload_batch"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the comparison, file by file ------------------------------------------------------------


def test_decide_by_size_digest_and_mtime() -> None:
    a = FileInfo("f", False, 3, digest=sha(b"abc"), modified=100.0)
    assert decide(a, None) == "new"
    assert decide(a, FileInfo("f", False, 4)) == "size"
    # Same size: the digest decides when both sides give one...
    assert decide(a, a, "digest", "sha256", sha(b"abc"), sha(b"abc")) is None
    assert decide(a, a, "digest", "sha256", sha(b"abc"), sha(b"abd")) == "digest"
    assert decide(a, a, "digest", "md5", "1" * 32, "2" * 32) == "checksum"
    # ...else the size does, and mtime only when asked.
    older = FileInfo("f", False, 3, modified=50.0)
    assert decide(a, older, "digest") is None
    assert decide(a, older, "size") is None
    assert decide(a, older, "mtime") == "newer"
    assert decide(older, a, "mtime") is None
    assert decide(a, FileInfo("f", False, 3, modified=99.5), "mtime") is None  # within a second
    # Equal digests win over a newer time; size mode ignores digests.
    assert decide(a, older, "mtime", "sha256", sha(b"abc"), sha(b"abc")) is None
    assert decide(a, a, "size", "sha256", sha(b"abc"), sha(b"abd")) is None
    # Sizes unknown and nothing else to go by: copy.
    assert decide(FileInfo("f", False), FileInfo("f", False)) == "unknown"


def test_digest_algorithm_prefers_sha256_and_hashes_only_a_local_side() -> None:
    both = FileInfo("f", False, 1, digest="a" * 64, checksum=Checksum("md5", "b" * 32))
    md5 = FileInfo("f", False, 1, checksum=Checksum("md5", "b" * 32))
    bare = FileInfo("f", False, 1)
    local = FileInfo("f", False, 1)
    assert digest_algorithm(both, both) == "sha256"
    assert digest_algorithm(both, md5) == "md5"
    assert digest_algorithm(md5, bare) is None
    assert digest_algorithm(local, both, src_local=True) == "sha256"
    assert digest_algorithm(local, md5, src_local=True) == "md5"
    assert digest_algorithm(bare, local, dst_local=True) is None  # nothing recorded: nothing to hash
    unknown = FileInfo("f", False, 1, checksum=Checksum("no-such-hash", "00"))
    assert digest_algorithm(local, unknown, src_local=True) is None


# -- local -> store ------------------------------------------------------------------------------


@pytest.fixture
def dmem() -> DigestMemory:
    return DigestMemory(limits=None)


@pytest.fixture
def store(dmem: DigestMemory) -> Iterator[ArtifactStore]:
    with ArtifactStore("dmem://bucket/run", registry=registry_with(dmem)) as s:
        yield s


def test_upload_new_unchanged_changed_deleted(
    tmp_path: Path, dmem: DigestMemory, store: ArtifactStore
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    first = store.sync_from(src)
    assert sorted(a.path for a in first.copied) == sorted(TREE)
    assert {a.reason for a in first.copied} == {"new"}
    assert first.bytes_copied == sum(map(len, TREE.values()))
    assert dmem.objects("bucket") == {f"run/{k}": v for k, v in TREE.items()}

    # Unchanged: listings only (the local files are hashed against the recorded digests).
    dmem.calls.clear()
    again = store.sync_from(src)
    assert (again.copied, again.deleted, again.skipped) == ([], [], len(TREE))
    assert {hook for hook, _ in dmem.calls} == {"list"}

    # Changed without changing size: the digest tells; a new file; a file removed locally.
    (src / "conf/params.json").write_bytes(b'{"lr": 0.2}')
    (src / "data/0.csv").write_bytes(b"a,b\n1,2\n3,4\n")
    (src / "new.txt").write_bytes(b"new")
    (src / "conf/deep/notes.txt").unlink()
    kept = store.sync_from(src)
    assert {(a.path, a.reason) for a in kept.copied} == {
        ("conf/params.json", "digest"),
        ("data/0.csv", "size"),
        ("new.txt", "new"),
    }
    assert kept.deleted == [] and kept.kept == 1
    assert dmem.objects("bucket")["run/conf/deep/notes.txt"] == b"notes"  # kept without delete

    gone = store.sync_from(src, delete=True)
    assert gone.copied == [] and [a.path for a in gone.deleted] == ["conf/deep/notes.txt"]
    assert dmem.objects("bucket") == {f"run/{k}": v for k, v in read_tree(src).items()}


def test_size_mode_never_hashes(tmp_path: Path, dmem: DigestMemory, store: ArtifactStore) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store.sync_from(src)
    (src / "conf/params.json").write_bytes(b'{"lr": 0.2}')  # same size
    assert store.sync_from(src, compare="size").copied == []
    assert [a.path for a in store.sync_from(src).copied] == ["conf/params.json"]


def test_without_digests_sizes_decide(tmp_path: Path) -> None:
    bare = BareMemory(limits=None)
    with ArtifactStore("bare://b", registry=registry_with(bare)) as store:
        src = write_tree(tmp_path / "src", TREE)
        store.sync_from(src)
        (src / "conf/params.json").write_bytes(b'{"lr": 0.2}')  # same size: not seen
        (src / "empty").write_bytes(b"now something")
        assert [(a.path, a.reason) for a in store.sync_from(src).copied] == [("empty", "size")]


def test_dry_run_changes_nothing(tmp_path: Path, dmem: DigestMemory, store: ArtifactStore) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store.sync_from(src, path="", delete=True)
    (src / "model.bin").write_bytes(random_bytes(70_000, seed=2))
    (src / "extra.txt").write_bytes(b"x")
    os.unlink(src / "empty")
    before = dmem.objects("bucket")
    dmem.calls.clear()
    plan = store.sync_from(src, delete=True, dry_run=True)
    assert plan.dry_run
    assert {(a.path, a.reason) for a in plan.copied} == {("model.bin", "digest"), ("extra.txt", "new")}
    assert [a.path for a in plan.deleted] == ["empty"]
    assert dmem.objects("bucket") == before
    assert {hook for hook, _ in dmem.calls} == {"list"}
    # The real run does exactly what the plan said.
    done = store.sync_from(src, delete=True)
    assert (done.copied, done.deleted) == (plan.copied, plan.deleted)
    assert dmem.objects("bucket") == {f"run/{k}": v for k, v in read_tree(src).items()}


# -- store -> local ------------------------------------------------------------------------------


def test_download_new_unchanged_changed_deleted(
    tmp_path: Path, dmem: DigestMemory, store: ArtifactStore
) -> None:
    store.sync_from(write_tree(tmp_path / "src", TREE))
    dst = tmp_path / "dst"
    assert len(store.sync(dst).copied) == len(TREE)
    assert read_tree(dst) == TREE
    dmem.calls.clear()
    again = store.sync(dst)
    assert (again.copied, again.skipped) == ([], len(TREE))
    assert not {hook for hook, _ in dmem.calls} & TRANSFERS

    (dst / "conf/params.json").write_bytes(b'{"lr": 9.9}')  # damaged locally, same size
    (dst / "stray/file.txt").parent.mkdir()
    (dst / "stray/file.txt").write_bytes(b"stray")
    result = store.sync(dst, delete=True)
    assert [(a.path, a.reason) for a in result.copied] == [("conf/params.json", "digest")]
    assert [a.path for a in result.deleted] == ["stray/file.txt"]
    assert read_tree(dst) == TREE
    assert not (dst / "stray").exists()  # the directory it left empty went with it


def test_mtime_mode_copies_what_is_newer(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    dst = tmp_path / "dst"  # two local directories: the destination is a store of the local disk
    assert len(sync(src, dst).copied) == len(TREE)
    past = time.time() - 100
    for tree in (src, dst):
        for rel in TREE:
            os.utime(tree / rel, (past, past))
    assert sync(src, dst, compare="mtime").copied == []
    (src / "conf/params.json").write_bytes(b'{"lr": 0.2}')  # same size, newer
    assert [(a.path, a.reason) for a in sync(src, dst, compare="mtime").copied] == [
        ("conf/params.json", "newer")
    ]
    assert read_tree(dst) == read_tree(src)
    assert sync(src, dst, compare="mtime").copied == []
    # Downloads keep the source's times (where its listing has them): a copy is never "older".
    with ArtifactStore(str(dst)) as store:
        back = tmp_path / "back"
        assert len(store.sync(back).copied) == len(TREE)
        for info in store.iter_files():
            assert info.modified is not None
            assert abs(os.path.getmtime(back / info.path) - info.modified) < 1e-3
        assert sync(back, store, compare="mtime").copied == []


# -- store -> store --------------------------------------------------------------------------------


def test_store_to_store_lists_only_when_unchanged(tmp_path: Path) -> None:
    a, b = DigestMemory("dmem", limits=None), DigestMemory("dmem2", limits=None)
    registry = registry_with(a, b)
    with (
        ArtifactStore("dmem://one/x", registry=registry) as one,
        ArtifactStore("dmem2://two/y", registry=registry) as two,
    ):
        one.sync_from(write_tree(tmp_path / "src", TREE))
        assert len(one.sync(two).copied) == len(TREE)
        assert b.objects("two") == {f"y/{k}": v for k, v in TREE.items()}
        a.calls.clear()
        b.calls.clear()
        assert one.sync(two).skipped == len(TREE)
        assert {h for h, _ in a.calls} | {h for h, _ in b.calls} == {"list"}
        # A corrupted copy at the destination is found by its digest... only if it was
        # recorded: corrupt() keeps the old digest, as storage rot would. Change it properly.
        two.write_bytes("conf/params.json", b'{"lr": 0.5}')
        assert [(x.path, x.reason) for x in one.sync(two).copied] == [("conf/params.json", "digest")]
        assert b.objects("two")["y/conf/params.json"] == TREE["conf/params.json"]


# -- interruptions and refusals ------------------------------------------------------------------


class StopAfter(NullProgress):
    """A listener that interrupts the sync after ``n`` files."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done: list[str] = []
        self._lock = threading.Lock()

    def file_done(self, path: str) -> None:
        with self._lock:
            self.done.append(path)
            if len(self.done) >= self.n:
                raise KeyboardInterrupt("stopped by the test")


@pytest.mark.parametrize("direction", ["upload", "download", "copy"])
def test_interrupted_sync_rerun_finishes(
    tmp_path: Path, dmem: DigestMemory, store: ArtifactStore, direction: str
) -> None:
    files = {f"f/{i:02d}.bin": random_bytes(1000 + i, seed=i) for i in range(30)}
    src = write_tree(tmp_path / "src", files)
    dst = tmp_path / "dst"
    if direction != "upload":
        store.sync_from(src)
    copy_dst = ArtifactStore("dmem://other/copy", registry=registry_with(dmem))

    def run(**kw: Any) -> SyncResult:
        if direction == "upload":
            return store.sync_from(src, **kw)
        return store.sync(dst if direction == "download" else copy_dst, **kw)

    def present() -> set[str]:
        if direction == "upload":
            return {k.removeprefix("run/") for k in dmem.objects("bucket")}
        if direction == "copy":
            return {k.removeprefix("copy/") for k in dmem.objects("other")}
        return set(read_tree(dst)) if dst.exists() else set()

    with pytest.raises(KeyboardInterrupt):
        run(progress=StopAfter(5))
    there = present()
    assert 5 <= len(there) < len(files)
    rest = run()
    assert {a.path for a in rest.copied} == set(files) - there
    assert rest.skipped == len(there)
    assert present() == set(files)
    assert run().copied == []
    copy_dst.close()


def test_missing_or_file_source_is_refused(tmp_path: Path, store: ArtifactStore, dmem: DigestMemory) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        sync(tmp_path / "nope", store)
    # An empty or missing store source never reads as "delete everything at the destination".
    dst = write_tree(tmp_path / "dst", {"keep.txt": b"keep"})
    with pytest.raises(NotFound, match="holds no files"):
        store.sync(dst, path="nothing-here", delete=True)
    assert (dst / "keep.txt").read_bytes() == b"keep"
    store.write_bytes("single.txt", b"one")
    with pytest.raises(InvalidPath, match="is a file"):
        store.sync(dst, path="single.txt")
    with pytest.raises(InvalidPath, match="is a file"):
        sync(dst / "keep.txt", store)
    with pytest.raises(ValueError, match="compare must be"):
        sync(dst, store, compare="fast")
