"""A silent Blob endpoint: every operation fails at the engine's deadline, and its requests give up too.

The connection string's ``BlobEndpoint`` points at a server that accepts connections
and never answers (a hung storage). Each operation fails within the deadline with a
TransferError naming the URI: the engine's OperationTimeout, or the request's own
timeout translated (raised from it) when that fires first. The transport's read
timeout (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``, 600 s by default) and its 20 s
connect timeout are capped by the engine's ``Settings.timeout``, so an abandoned
request closes its connection at the deadline instead of ten minutes later.
Azurite checks that a store with the capped timeout still works normally.
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

ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every install).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = f"{ACCOUNT}.blob.core.windows.net"
TIMEOUT = 2.0
MARGIN = 4.0  # a correctness bound (the deadline plus a few seconds), not a speed figure

OPERATIONS: dict[str, Callable[[ArtifactStore, Path], object]] = {
    "upload": lambda store, tmp: store.upload_file(str(tmp / "up.bin"), "up.bin"),
    "download": lambda store, tmp: store.download_file("a.bin", str(tmp / "out" / "a.bin")),
    "stat": lambda store, tmp: store.stat("a.bin"),
    "list": lambda store, tmp: store.list_artifacts(""),
}


def settings() -> Settings:
    return Settings.from_env().replace(timeout=TIMEOUT, retry_backoff=0.1, retry_backoff_max=0.5)


def assert_timed_out(error: TransferError) -> None:
    """The engine's deadline, or (when the capped request timeout fired first) the request's, from it."""
    if not isinstance(error, OperationTimeout):
        assert error.__cause__ is not None and "timed out" in str(error.__cause__).lower(), repr(error)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_silent_endpoint_fails_at_the_deadline(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, operation: str
) -> None:
    (tmp_path / "up.bin").write_bytes(b"up" * 1000)
    with SilentServer() as server:
        clean_env.setenv(
            "AZURE_STORAGE_CONNECTION_STRING",
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{server.port}/{ACCOUNT};",
        )
        uri = f"wasbs://silent@{HOST}/runs"
        with ArtifactStore(uri, settings=settings()) as store:
            started = time.monotonic()
            with pytest.raises(TransferError, match=re.escape(uri)) as caught:
                OPERATIONS[operation](store, tmp_path)
            elapsed = time.monotonic() - started
        assert_timed_out(caught.value)
        assert elapsed < TIMEOUT + MARGIN, f"{operation} failed after {elapsed:.1f} s"
        assert server.connections, "the client never connected"
        late = server.open_after(TIMEOUT + MARGIN)
        assert late == [], f"{len(late)} request(s) still waiting on the silent endpoint"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_the_capped_timeout_leaves_a_live_server_working(unique_uri: str) -> None:
    with ArtifactStore(unique_uri, settings=settings()) as store:
        assert store.backend.root.config.timeout == TIMEOUT
        store.write_bytes("a.txt", b"alive")
        assert store.read_bytes("a.txt") == b"alive"
        assert [f.path for f in store.list_artifacts()] == ["a.txt"]
