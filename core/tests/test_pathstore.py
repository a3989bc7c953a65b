"""The path-store toolkit: what it derives from a store's primitives, on the in-memory tree."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, PluginRegistry, Settings
from mlartifacts.errors import InvalidPath, NotFound, PreconditionFailed
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.pathstore import PathFileSystem, PathStorePlugin, shared
from mlartifacts.testing import memory_tree
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt
from mlartifacts.testing.memory_tree import MemoryTree

QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.1)


def memtree_registry() -> PluginRegistry:
    """A registry holding only the in-memory path store."""
    registry = PluginRegistry(autoload=False)
    registry.register(memory_tree.plugin, "memtree")
    return registry


@pytest.fixture
def registry() -> PluginRegistry:
    return memtree_registry()


def open_store(registry: PluginRegistry, tree: str = "") -> tuple[ArtifactStore, MemoryTree]:
    store = ArtifactStore(f"memtree://{tree or uuid.uuid4().hex}/runs/1", settings=QUICK, registry=registry)
    fs = store.backend.root.fs
    assert isinstance(fs, MemoryTree)
    return store, fs


class TestMemoryTree(ArtifactStoreContract):
    @pytest.fixture
    def registry(self) -> PluginRegistry:
        return memtree_registry()

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        def flip(store: ArtifactStore, path: str) -> None:
            fs, target = store.backend.root.fs, store.backend.root.path(path)
            data = bytearray(fs.files[target])
            data[len(data) // 2] ^= 0xFF
            fs.files[target] = bytes(data)

        return flip

    @pytest.fixture
    def artifact_uri(self) -> str:
        return f"memtree://{uuid.uuid4().hex}/some/base"


class TestRenameThatDoesNotReplace(TestMemoryTree):
    """SFTP v3 and some FTP servers refuse to rename over a file: the toolkit removes it first."""

    @pytest.fixture
    def artifact_uri(self) -> str:
        return f"memtree://v3-{uuid.uuid4().hex}/some/base"


def test_settings_reach_what_the_plugin_builds() -> None:
    seen: list[Settings] = []

    def resolve(uri: str, settings: Settings) -> tuple[PathFileSystem, str]:
        seen.append(settings)
        return shared(("settings-test",), MemoryTree), "/x"

    registry = PluginRegistry(autoload=False)
    registry.register(PathStorePlugin(schemes=["sized"], resolve=resolve), "sized")
    settings = Settings(max_workers=32)
    with ArtifactStore("sized://h/x", settings=settings, registry=registry):
        pass
    assert seen == [settings]


def test_a_message_names_the_location_once_and_never_the_password() -> None:
    def resolve(uri: str, settings: Settings) -> tuple[PathFileSystem, str]:
        return shared(("password-test",), MemoryTree), "/base"

    registry = PluginRegistry(autoload=False)
    registry.register(PathStorePlugin(schemes=["pw"], resolve=resolve), "pw")
    with ArtifactStore("pw://alice:s3cret@host/base", settings=QUICK, registry=registry) as store:
        with pytest.raises(NotFound) as caught:
            store.stat("missing.bin")
        with pytest.raises(NotFound) as read:
            store.read_bytes("missing.bin")
    for error in (caught.value, read.value):
        message = str(error)
        assert "s3cret" not in message
        assert message.count("pw://alice:***@host/base/missing.bin") == 1
        assert message.count("host/base") == 1


def test_mkdir_p_remembers_directories(registry: PluginRegistry) -> None:
    store, fs = open_store(registry)
    with store:
        store.write_bytes("a/b/c/one.txt", b"1")
        assert fs.calls.count("mkdir") == 5  # /runs, /runs/1, .../a, .../a/b, .../a/b/c
        fs.calls.clear()
        store.write_bytes("a/b/c/two.txt", b"2")
        # No mkdir: the directory is known. The temporary's stat and the second write and
        # rename are its digest's sidecar, recorded before the file is renamed into place.
        assert fs.calls == ["open_write", "stat", "open_write", "rename", "rename"]


def test_a_directory_removed_behind_our_back_is_made_again(registry: PluginRegistry) -> None:
    store, fs = open_store(registry)
    with store:
        store.write_bytes("d/one.txt", b"1")
        fs.files.clear()
        fs.dirs.difference_update({d for d in fs.dirs if d.startswith("/runs/1/d")})
        store.write_bytes("d/two.txt", b"2")
        assert [f.path for f in store.iter_files()] == ["d/two.txt"]


def test_recursive_listing_is_sorted(registry: PluginRegistry) -> None:
    names = ["b.txt", "a/z.txt", "a.txt", "a-b/c.txt", "a/b/c.txt", "A.txt"]
    store, _ = open_store(registry)
    with store:
        for name in names:
            store.write_bytes(name, b"x")
        assert [f.path for f in store.iter_files()] == sorted(names)
        assert [f.path for f in store.list_artifacts()] == ["A.txt", "a", "a-b", "a.txt", "b.txt"]


def test_temporaries_are_never_listed_and_never_left(registry: PluginRegistry) -> None:
    store, fs = open_store(registry)

    def broken() -> Iterator[bytes]:
        yield b"partial"
        listed = [f.path for f in store.iter_files()]
        assert listed == ["kept.txt"]  # the temporary being written is hidden
        raise ConnectionResetError("the client went away")

    with store:
        store.write_bytes("kept.txt", b"kept")
        with pytest.raises(ConnectionResetError):
            store.write("new.txt", broken())
    assert not [f for f in fs.files if TEMP_PREFIX in f]


def test_writing_over_a_directory_or_through_a_file(registry: PluginRegistry) -> None:
    store, fs = open_store(registry)
    with store:
        store.write_bytes("d/x.txt", b"x")
        with pytest.raises(InvalidPath, match="it is a directory"):
            store.write_bytes("d", b"y")
        with pytest.raises(InvalidPath, match="a file is in the way"):
            store.write_bytes("d/x.txt/y.txt", b"y")
        with pytest.raises(InvalidPath, match="is a directory, not a file"):
            store.read_bytes("d")
    assert not [f for f in fs.files if TEMP_PREFIX in f]


def test_a_write_whose_directory_is_deleted_midway_stores_nothing(tmp_path: Path) -> None:
    # A concurrent tree delete takes the half-written temporary with it: the write must
    # neither start the consumed stream over (a truncated file) nor say "not found".
    root = tmp_path / "store"
    with ArtifactStore(str(root)) as store:
        store.write_bytes("d/keep.bin", b"k")  # the directory is now known to the toolkit

        def chunks() -> Iterator[bytes]:
            yield b"a" * 1000
            shutil.rmtree(root / "d")
            yield b"b" * 1000

        with pytest.raises(PreconditionFailed, match="deleted while it was written"):
            store.write("d/f.bin", chunks())
        assert not store.exists("d/f.bin")
        store.write_bytes("d/again.bin", b"x")  # and the directory is made again for the next one
        assert store.read_bytes("d/again.bin") == b"x"
