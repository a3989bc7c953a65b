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

from typing import Callable

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import SilentEndpointTests

TIMEOUT = SilentEndpointTests.TIMEOUT


class TestSilentServer(SilentEndpointTests):
    @pytest.fixture
    def silent_uri(self) -> Callable[[int], str]:
        return lambda port: f"ftp://tester:secret@127.0.0.1:{port}/runs"


def test_the_capped_timeout_leaves_a_live_server_working(pyftpd_uri: str) -> None:
    with ArtifactStore(pyftpd_uri, settings=SilentEndpointTests.timeout_settings()) as store:
        assert store.backend.root.fs.config.timeout == TIMEOUT
        store.write_bytes("a.txt", b"alive")
        assert store.read_bytes("a.txt") == b"alive"
