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

from typing import Callable

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import SilentEndpointTests

TIMEOUT = SilentEndpointTests.TIMEOUT


class TestSilentEndpoint(SilentEndpointTests):
    ours = b"/silent/o"  # object requests (the bucket's background metadata fetch is not ours)

    @pytest.fixture
    def silent_uri(self, google_env: pytest.MonkeyPatch) -> Callable[[int], str]:
        def uri(port: int) -> str:
            google_env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
            return "gs://silent/runs"

        return uri


def test_requests_carry_the_capped_timeout(unique_uri: str) -> None:
    with ArtifactStore(unique_uri, settings=SilentEndpointTests.timeout_settings()) as store:
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
