"""A silent GCS endpoint: every operation fails at the engine's deadline, and its requests give up too.

``STORAGE_EMULATOR_HOST`` points at a server that accepts connections and never
answers (a hung storage). Each operation fails within the deadline with a
TransferError naming the URI: the engine's OperationTimeout, or the request's own
timeout translated (raised from it) when that fires first. Each request's timeout
(``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``, 60 s by default) is capped by the
engine's ``Settings.timeout``, so an abandoned request closes its connection at the
deadline instead of a minute later. (google-cloud-storage also fetches the bucket's
metadata in the background with its own fixed 10 s timeout: not a request of ours,
told apart by its path.) fake-gcs-server checks that the capped timeout is what
requests carry on a live server.
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


def settings() -> Settings:
    return Settings.from_env().replace(timeout=TIMEOUT, retry_backoff=0.1, retry_backoff_max=0.5)


def assert_timed_out(error: TransferError) -> None:
    """The engine's deadline, or (when the capped request timeout fired first) the request's, from it."""
    if not isinstance(error, OperationTimeout):
        assert error.__cause__ is not None and "timed out" in str(error.__cause__).lower(), repr(error)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_silent_endpoint_fails_at_the_deadline(
    google_env: pytest.MonkeyPatch, tmp_path: Path, operation: str
) -> None:
    (tmp_path / "up.bin").write_bytes(b"up" * 1000)
    with SilentServer() as server:
        google_env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.port}")
        with ArtifactStore("gs://silent/runs", settings=settings()) as store:
            started = time.monotonic()
            with pytest.raises(TransferError, match=re.escape("gs://silent/runs")) as caught:
                OPERATIONS[operation](store, tmp_path)
            elapsed = time.monotonic() - started
        assert_timed_out(caught.value)
        assert elapsed < TIMEOUT + MARGIN, f"{operation} failed after {elapsed:.1f} s"
        ours = b"/silent/o"  # object requests (the bucket's background metadata fetch is not ours)
        assert any(ours in c.received for c in server.connections), "no request of ours reached the server"
        late = server.open_after(TIMEOUT + MARGIN, sent=ours)
        assert late == [], f"{len(late)} request(s) still waiting on the silent endpoint"
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_requests_carry_the_capped_timeout(unique_uri: str) -> None:
    with ArtifactStore(unique_uri, settings=settings()) as store:
        session = store.backend.root.client.session
        original = session.request
        timeouts: list[object] = []

        def request(method: str, url: str, *args: object, **kwargs: object) -> object:
            if "/o" in url.split("?")[0]:  # ours (not the SDK's background bucket lookup)
                timeouts.append(kwargs.get("timeout", "unset"))
            return original(method, url, *args, **kwargs)

        session.request = request
        try:
            store.write_bytes("t.txt", b"t")
            assert store.read_bytes("t.txt") == b"t"
            assert [f.path for f in store.list_artifacts()] == ["t.txt"]
        finally:
            del session.request
    assert len(timeouts) >= 3 and set(timeouts) == {TIMEOUT}
