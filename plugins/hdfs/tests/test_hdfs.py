"""HDFS-specific behaviour on the real cluster: blocks, ranges, big trees, URIs, and failures.

What this cluster cannot prove (Hadoop 3, Kerberos, HA namenodes, WebHDFS) is listed
in the plugin's README; the Kerberos test is in test_kerberos.py.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import InvalidPath, NotFound
from mlartifacts.paths import DIGEST_PREFIX
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree

QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.1)


def _raw(hdfs: Any) -> Any:
    """A plain pyarrow client, to look at the cluster behind the plugin's back."""
    from pyarrow import fs

    return fs.HadoopFileSystem("127.0.0.1", hdfs.port)


def _names_below(hdfs: Any, uri: str) -> list[str]:
    from pyarrow import fs

    base = uri.split(hdfs.authority, 1)[1]
    listed = _raw(hdfs).get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    # Every name but the digests' sidecars (issue 15), which the plugin keeps beside files.
    names = (info.path[len(base) + 1 :] for info in listed)
    return sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith(DIGEST_PREFIX))


def test_file_across_many_blocks(hdfs: Any, tmp_path: Path) -> None:
    size = 6 * hdfs.block_size + 12345  # seven blocks of the cluster's 1 MiB
    data = random_bytes(size, seed=7)
    (tmp_path / "ckpt.bin").write_bytes(data)
    before = hdfs.block_files()
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.log_artifact(str(tmp_path / "ckpt.bin"), "model")
        # The cluster's block size was used, not pyarrow's; the eighth block is the digest's sidecar.
        assert len(hdfs.block_files() - before) == 8
        assert store.stat("model/ckpt.bin").file_size == size
        out = store.download_artifacts("model/ckpt.bin", str(tmp_path / "dst"))
        assert hashlib.sha256(Path(out).read_bytes()).digest() == hashlib.sha256(data).digest()
        streamed = b"".join(store.read("model/ckpt.bin"))
        assert streamed == data


def test_ranged_reads_cross_block_boundaries(hdfs: Any) -> None:
    block = hdfs.block_size
    data = random_bytes(3 * block + 100, seed=3)
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.write_bytes("r.bin", data)
        for offset, length in [(0, 10), (block - 5, 10), (2 * block - 1, block + 2), (3 * block + 90, None)]:
            got = b"".join(store.read("r.bin", offset, length))
            assert got == data[offset : None if length is None else offset + length]
        assert b"".join(store.read("r.bin", len(data), None)) == b""


def test_concurrent_ranged_reads(hdfs: Any) -> None:
    # As the artifacts service answers many Range requests for one file at once.
    block = hdfs.block_size
    data = random_bytes(5 * block + 3, seed=5)
    ranges = [(i * block // 2, block // 2 + 7) for i in range(10)]
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.write_bytes("big.bin", data)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda r: b"".join(store.read("big.bin", r[0], r[1])), ranges))
        assert got == [data[offset : offset + length] for offset, length in ranges]


def test_missing_paths(hdfs: Any, tmp_path: Path) -> None:
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.write_bytes("here.txt", b"x")
        with pytest.raises(NotFound, match=r"missing\.txt"):
            store.stat("missing.txt")
        with pytest.raises(NotFound, match=r"missing\.txt"):
            store.download_artifacts("missing.txt", str(tmp_path))
        with pytest.raises(NotFound):
            store.read_bytes("missing/deeper.bin")
        with pytest.raises(NotFound):
            store.delete("missing.txt")
        assert store.list_artifacts("missing") == []
        assert not store.exists("here.txt/below")
        assert list(tmp_path.iterdir()) == []


def test_a_thousand_files(hdfs: Any, tmp_path: Path) -> None:
    files = {f"d{i % 10}/f{i:04d}.bin": random_bytes(100 + i, seed=i) for i in range(1000)}
    write_tree(tmp_path / "src", files)
    # Hadoop 2.7's client waits 400 ms to close a file whose block the NameNode has not
    # heard of yet, about every other small file here: more workers hide that latency.
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK.replace(max_workers=32)) as store:
        store.log_artifacts(str(tmp_path / "src"), "tree")
        assert sorted(f.path for f in store.iter_files("tree")) == sorted(f"tree/{p}" for p in files)
        listed = store.list_artifacts("tree/d3")
        assert [e.path for e in listed] == sorted(f"tree/{p}" for p in files if p.startswith("d3/"))
        out = store.download_artifacts("tree", str(tmp_path / "dst"))
        assert read_tree(Path(out)) == files
        store.delete_artifacts("tree")
        assert not store.exists("tree")


def test_overwrite_and_directory_in_the_way(hdfs: Any) -> None:
    uri = hdfs.fresh_uri()
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("a/b.txt", b"first")
        store.write_bytes("a/b.txt", b"second")
        assert store.read_bytes("a/b.txt") == b"second"
        with pytest.raises(InvalidPath, match="directory"):
            store.write_bytes("a", b"over a directory")  # HDFS would move it *into* a/
        with pytest.raises(InvalidPath):
            store.write_bytes("a/b.txt/c", b"below a file")
        assert _names_below(hdfs, uri) == ["a", "a/b.txt"]  # no temporary left anywhere


def test_default_namenode_and_viewfs(hdfs: Any) -> None:
    name = uuid.uuid4().hex
    with ArtifactStore(f"hdfs:///tests/{name}", settings=QUICK) as store:
        store.write_bytes("via-default.txt", b"default")
    with ArtifactStore(hdfs.uri(f"tests/{name}"), settings=QUICK) as store:
        assert store.read_bytes("via-default.txt") == b"default"
    _raw(hdfs).create_dir("/viewfs-data")
    with ArtifactStore(f"viewfs://testcluster/data/{name}", settings=QUICK) as store:
        store.write_bytes("m/via-viewfs.txt", b"viewfs")
        assert [e.path for e in store.list_artifacts("m")] == ["m/via-viewfs.txt"]
    with ArtifactStore(hdfs.uri(f"viewfs-data/{name}"), settings=QUICK) as store:
        assert store.read_bytes("m/via-viewfs.txt") == b"viewfs"


def test_filesystem_is_shared_per_namenode_and_settings(hdfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with ArtifactStore(hdfs.fresh_uri()) as one, ArtifactStore(hdfs.fresh_uri()) as two:
        assert one.backend.root.fs is two.backend.root.fs
    monkeypatch.setenv("MLFLOW_KERBEROS_USER", "alice")
    with ArtifactStore(hdfs.fresh_uri()) as three:
        assert three.backend.root.fs is not one.backend.root.fs


def test_kerberos_user_is_who_acts(hdfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # With simple authentication, MLFLOW_KERBEROS_USER is the HDFS user: it owns what it
    # writes, and another user cannot write into its directories (permissions are on).
    uri = hdfs.fresh_uri()
    monkeypatch.setenv("MLFLOW_KERBEROS_USER", "alice")
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("run/model.bin", b"alice's")
    base = uri.split(hdfs.authority, 1)[1]
    owner = hdfs.shell("-stat", "%u", f"{base}/run/model.bin").strip()
    assert owner == "alice"
    monkeypatch.setenv("MLFLOW_KERBEROS_USER", "bob")
    from mlartifacts.errors import PermissionDenied

    with ArtifactStore(uri, settings=QUICK) as store:
        assert store.read_bytes("run/model.bin") == b"alice's"  # readable (mode 644)...
        with pytest.raises(PermissionDenied, match="permission denied"):
            store.write_bytes("run/other.bin", b"bob's")  # ...but not writable
        assert [e.path for e in store.list_artifacts("run")] == ["run/model.bin"]


def test_extra_conf_reaches_the_client(hdfs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A client-side setting: the block size of new files (2 MiB instead of the cluster's 1 MiB).
    monkeypatch.setenv("MLFLOW_PYARROW_EXTRA_CONF", f"dfs.blocksize={2 * hdfs.block_size}")
    before = hdfs.block_files()
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.write_bytes("two-blocks.bin", random_bytes(4 * hdfs.block_size, seed=4))
    assert len(hdfs.block_files() - before) == 3  # and one for the digest's sidecar


def test_close_then_use_again(hdfs: Any) -> None:
    with ArtifactStore(hdfs.fresh_uri(), settings=QUICK) as store:
        store.write_bytes("a.txt", b"before")
        store.backend.root.fs.close()  # what happens at exit, or to drop a connection
        assert store.read_bytes("a.txt") == b"before"  # connects again
        store.write_bytes("b.txt", b"after")
        assert [e.path for e in store.list_artifacts()] == ["a.txt", "b.txt"]
