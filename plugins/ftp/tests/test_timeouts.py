"""A silent FTP server: every operation fails at the engine's deadline, and its sockets give up too.

The server accepts connections and never sends its welcome (a hung server). Each
operation fails within the deadline with a TransferError naming the URI: the
engine's OperationTimeout, or the socket's timeout translated (raised from it) when
that fires first. The engine gives up on each operation at ``Settings.timeout``
(``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``); the plugin's socket timeout
(``MLARTIFACTS_FTP_TIMEOUT``, 60 s by default) is capped by it, so the abandoned
call closes its connection at the deadline instead of holding it for a minute.
pyftpdlib checks that a store with the capped timeout still works normally.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import OperationTimeout, TransferError
from mlartifacts.testing.servers import SilentServer

TIMEOUT = 2.0
MARGIN = 4.0  # a correctness bound (the deadline plus a few seconds), not a speed figure

OPERATIONS: dict[str, Callable[[ArtifactStore, Path], object]] = {
    "upload": lambda store, tmp: store.upload_file(str(tmp / "up.bin"), "up.bin"),
    "download": lambda store, tmp: store.download_file("a.bin", str(tmp / "out" / "a.bin")),
    "stat": lambda store, tmp: store.stat("a.bin"),
    "list": lambda store, tmp: store.list_artifacts(""),
}


def assert_timed_out(error: TransferError) -> None:
    """The engine's deadline, or (when the capped socket timeout fired first) the socket's, from it."""
    if not isinstance(error, OperationTimeout):
        assert isinstance(error.__cause__, TimeoutError), repr(error.__cause__)
        assert "timed out" in str(error)


def settings() -> Settings:
    return Settings.from_env().replace(timeout=TIMEOUT, retry_backoff=0.1, retry_backoff_max=0.5)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_silent_server_fails_at_the_deadline(tmp_path: Path, operation: str) -> None:
    (tmp_path / "up.bin").write_bytes(b"up" * 1000)
    with SilentServer() as server:
        uri = f"ftp://tester:secret@127.0.0.1:{server.port}/runs"
        with ArtifactStore(uri, settings=settings()) as store:
            started = time.monotonic()
            shown = re.escape(f"ftp://tester:***@127.0.0.1:{server.port}/runs")
            with pytest.raises(TransferError, match=shown) as caught:
                OPERATIONS[operation](store, tmp_path)
            elapsed = time.monotonic() - started
        assert_timed_out(caught.value)
        assert elapsed < TIMEOUT + MARGIN, f"{operation} failed after {elapsed:.1f} s"
        assert server.connections, "the client never connected"
        late = server.open_after(TIMEOUT + MARGIN)
        assert late == [], f"{len(late)} connection(s) still waiting on the silent server"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_the_capped_timeout_leaves_a_live_server_working(pyftpd_uri: str) -> None:
    with ArtifactStore(pyftpd_uri, settings=settings()) as store:
        assert store.backend.root.fs.config.timeout == TIMEOUT
        store.write_bytes("a.txt", b"alive")
        assert store.read_bytes("a.txt") == b"alive"
