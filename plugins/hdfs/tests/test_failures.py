"""A DataNode that dies or stops answering: a clear error, nothing partial visible, a usable cluster after.

The DataNode is killed (SIGKILL, as a crash) or stopped (SIGSTOP, as a hung
machine) in the middle of a test and restarted (or resumed) before the test ends,
so the tests after these still have a cluster.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlartifacts import ArtifactStore, NullProgress, Settings
from mlartifacts.errors import OperationTimeout, TransientError
from mlartifacts.paths import DIGEST_PREFIX
from mlartifacts.testing.contract import random_bytes

# One retry, quickly: each attempt fails at once while the DataNode is down.
ONE_RETRY = Settings(max_retries=1, retry_backoff=0.01, retry_backoff_max=0.1)
# The Hadoop client retries a block it cannot fetch after waits of about 3, 6 and 9 s
# by default; these make a read give up at once (and show the setting at work).
QUICK_READ_FAILURE = "dfs.client.retry.window.base=10,dfs.client.max.block.acquire.failures=1"


def _names(hdfs: Any, uri: str) -> list[str]:
    from pyarrow import fs

    base = uri.split(hdfs.authority, 1)[1]
    raw = fs.HadoopFileSystem("127.0.0.1", hdfs.port)
    listed = raw.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    # Every name but the digests' sidecars (issue 15), which the plugin keeps beside files.
    names = (info.path[len(base) + 1 :] for info in listed)
    return sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith(DIGEST_PREFIX))


@pytest.fixture
def datanode_down(hdfs: Any) -> Iterator[Any]:
    """The cluster, whose DataNode the test may kill: it is running again when the test ends."""
    try:
        yield hdfs
    finally:
        if hdfs.datanode.popen is None or hdfs.datanode.popen.poll() is not None:
            hdfs.start_datanode()


def test_datanode_killed_mid_upload(datanode_down: Any, tmp_path: Path) -> None:
    hdfs = datanode_down
    src = tmp_path / "ckpt.bin"
    src.write_bytes(random_bytes(12 * hdfs.block_size, seed=12))
    uri = hdfs.fresh_uri()
    with ArtifactStore(uri, settings=ONE_RETRY) as store:
        store.write_bytes("kept.txt", b"written before")

        class KillOnFirstBytes(NullProgress):
            def update(self, nbytes: int) -> None:
                if nbytes > 0 and hdfs.datanode.popen.poll() is None:
                    hdfs.kill_datanode()  # a few MiB are in, most of the file is still to come

        with pytest.raises(TransientError) as raised:
            store.upload_file(str(src), "model/ckpt.bin", progress=KillOnFirstBytes())
        message = str(raised.value)
        assert "model/ckpt.bin" in message and "NameNode or a DataNode" in message
        # Nothing partial, and no temporary, is visible; what was there before still is.
        assert not store.exists("model/ckpt.bin")
        assert _names(hdfs, uri) == ["kept.txt", "model"]

        hdfs.start_datanode()
        store.upload_file(str(src), "model/ckpt.bin")
        assert store.stat("model/ckpt.bin").file_size == src.stat().st_size


def test_datanode_killed_before_download(
    datanode_down: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hdfs = datanode_down
    monkeypatch.setenv("MLFLOW_PYARROW_EXTRA_CONF", QUICK_READ_FAILURE)
    data = random_bytes(3 * hdfs.block_size, seed=33)
    with ArtifactStore(hdfs.fresh_uri(), settings=ONE_RETRY) as store:
        store.write_bytes("w.bin", data)
        hdfs.kill_datanode()
        with pytest.raises(TransientError, match=r"w\.bin"):
            store.download_file("w.bin", str(tmp_path / "w.bin"))
        assert list(tmp_path.iterdir()) == []  # no partial local file either
        hdfs.start_datanode()
        assert Path(store.download_file("w.bin", str(tmp_path / "w.bin"))).read_bytes() == data


def test_hung_datanode_meets_the_transfer_timeout(
    hdfs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT bounds the transfer, and also caps the
    # Hadoop client's socket timeout, so the thread stuck on the DataNode comes back.
    monkeypatch.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "2")
    data = random_bytes(2 * hdfs.block_size, seed=2)
    uri = hdfs.fresh_uri()
    with ArtifactStore(uri, settings=Settings(max_retries=0)) as store:
        store.write_bytes("h.bin", data)
    with ArtifactStore(uri) as store:  # the timeout from the environment
        assert store.settings.timeout == 2
        assert hdfs.datanode.popen is not None
        hdfs.datanode.popen.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(OperationTimeout):
                store.download_file("h.bin", str(tmp_path / "h.bin"))
        finally:
            hdfs.datanode.popen.send_signal(signal.SIGCONT)
        assert not (tmp_path / "h.bin").exists()
        assert store.read_bytes("h.bin") == data
