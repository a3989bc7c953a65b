"""MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT against a hung S3: every operation fails at the deadline.

The storage hangs as a SIGSTOPped server does (connections accepted, nothing
answered, streams stalled midway): a TCP relay in front of the session's
SeaweedFS is stopped, so the shared server itself never is. Without the engine
bounding each call, botocore would wait 60 s per attempt, twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import OperationTimeout
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.servers import Relay

if TYPE_CHECKING:
    from conftest import SeaweedFS

MiB = 1024 * 1024
TIMEOUT = 3.0
MARGIN = 5.0  # a correctness bound (the deadline plus a few seconds), not a speed figure


@pytest.fixture(scope="module")
def relay(seaweedfs: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    port = urlsplit(seaweedfs.endpoint).port
    assert port is not None
    with Relay(port, tmp_path_factory.mktemp("relay") / "relay.log") as running:
        yield running


@pytest.fixture
def store(s3_env: SeaweedFS, relay: Relay, unique_uri: str) -> Iterator[ArtifactStore]:
    """A store reaching SeaweedFS through the relay, with the timeout set."""
    s3_env_vars = pytest.MonkeyPatch()
    s3_env_vars.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{relay.port}")
    try:
        settings = Settings.from_env().replace(timeout=TIMEOUT, retry_backoff=0.1, retry_backoff_max=0.5)
        store = ArtifactStore(unique_uri, settings=settings)
    finally:
        s3_env_vars.undo()
    store.write_bytes("small.bin", b"small")
    try:
        yield store
    finally:
        store.close()


def _timed_out(relay: Relay, operation: Callable[[], object]) -> float:
    started = time.monotonic()
    with relay.hung(), pytest.raises(OperationTimeout, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"):
        operation()
    return time.monotonic() - started


@pytest.mark.parametrize("operation", ["upload", "download", "stat", "write", "copy", "list"])
def test_hung_storage_fails_each_operation_at_the_deadline(
    store: ArtifactStore, relay: Relay, tmp_path: Path, operation: str
) -> None:
    (tmp_path / "up.bin").write_bytes(b"up" * 1000)
    calls: dict[str, Callable[[], object]] = {
        "upload": lambda: store.upload_file(str(tmp_path / "up.bin"), "up.bin"),
        "download": lambda: store.download_file("small.bin", str(tmp_path / "out" / "small.bin")),
        "stat": lambda: store.stat("small.bin"),
        "write": lambda: store.write("w.bin", iter([b"w" * 1000] * 10)),
        "copy": lambda: store.copy_to("small.bin", store, "copy.bin"),
        "list": lambda: store.list_artifacts(""),
    }
    elapsed = _timed_out(relay, calls[operation])
    assert elapsed < TIMEOUT + MARGIN, f"{operation} failed after {elapsed:.1f} s"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_read_stalled_midway_fails_at_the_deadline(store: ArtifactStore, relay: Relay) -> None:
    data = random_bytes(24 * MiB, seed=13)
    store.write_bytes("big.bin", data)
    received = []
    started = time.monotonic()
    chunks = store.read("big.bin")
    received.append(next(chunks))
    with relay.hung(), pytest.raises(OperationTimeout):
        received.extend(chunks)
    elapsed = time.monotonic() - started
    assert sum(len(c) for c in received) < len(data)  # it did stall midway
    assert elapsed < TIMEOUT + MARGIN, f"the stalled read failed after {elapsed:.1f} s"
